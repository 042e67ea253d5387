from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from packaging.version import Version

from harness.matrix import Cell
from harness.resolve import IndexConfig, Lock, ReleaseFile, Resolver, Unresolvable, compatible, versions_from_files


def test_index_config_follows_uv_then_pip_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no pip.conf or uv.toml of this machine's user
    assert IndexConfig.from_env({}, tmp_path).urls == ("https://pypi.org/simple",)
    pip = IndexConfig.from_env(
        {"PIP_INDEX_URL": "https://mirror/simple/", "PIP_EXTRA_INDEX_URL": "https://a/simple https://b/simple"}, tmp_path
    )
    assert pip.urls == ("https://mirror/simple", "https://a/simple", "https://b/simple")
    # uv does not read pip's settings: it is told them, with pip's rule (the best version over all indexes)
    assert pip.uv_args()[-2:] == ["--index-strategy", "unsafe-best-match"] and pip.uv_args()[:2] == ["--index-url", "https://mirror/simple"]
    config = IndexConfig.from_env({"UV_INDEX_URL": "https://uv/simple", "PIP_INDEX_URL": "https://pip/simple"}, tmp_path)
    assert config.index_url == "https://uv/simple"
    assert config.uv_args() == []  # uv reads its own settings, with all they say
    named = IndexConfig.from_env({"UV_INDEX": "corp=https://corp/simple https://other/simple"}, tmp_path)
    assert named.urls == ("https://corp/simple", "https://other/simple", "https://pypi.org/simple")


def test_index_settings_from_uv_toml_pyproject_and_pip_conf(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text("[global]\nindex-url = https://pip.corp/simple\nextra-index-url = file:///opt/w\n")
    pip = IndexConfig.from_env({}, project)
    assert (pip.source, pip.urls) == ("pip", ("https://pip.corp/simple", "file:///opt/w"))
    assert pip.explicit_args(remote_only=True) == ["--index-url", "https://pip.corp/simple"]  # a container cannot see file://
    (tmp_path / "project" / "pyproject.toml").write_text(
        '[tool.uv]\nindex = [{name = "corp", url = "https://uv.corp/simple", default = true}]\n'
    )
    uv = IndexConfig.from_env({}, project)
    assert (uv.source, uv.urls, uv.uv_args()) == ("uv", ("https://uv.corp/simple",), [])
    (project / "uv.toml").write_text('extra-index-url = ["https://extra/simple"]\n')
    assert IndexConfig.from_env({}, project).urls == ("https://extra/simple", "https://pypi.org/simple")


def test_netrc_credentials_reach_the_listing_and_no_message(tmp_path, monkeypatch):
    """A loopback index that wants Basic auth; the password comes from ~/.netrc."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != "Basic " + __import__("base64").b64encode(b"ci:s3cret").decode():
                self.send_response(401)
                self.end_headers()
                return
            body = b'<a href="tf_keras-2.15.0-py3-none-any.whl">tf_keras-2.15.0-py3-none-any.whl</a>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        netrc = tmp_path / ".netrc"
        netrc.write_text("machine 127.0.0.1 login ci password s3cret\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        from harness.resolve import PackageIndex

        url = f"http://127.0.0.1:{server.server_port}/simple"
        index = PackageIndex(IndexConfig(url), cache=tmp_path / "cache")
        assert [str(v) for v in index.versions("tf-keras", "3.11")] == ["2.15.0"] and seen[-1] is not None
        # a URL that names its user but no password: the password is looked up too (netrc here, else keyring)
        named = PackageIndex(IndexConfig(f"http://ci@127.0.0.1:{server.server_port}/simple"), cache=tmp_path / "cache-named")
        assert [str(v) for v in named.versions("tf-keras", "3.11")] == ["2.15.0"]
    finally:
        server.shutdown()


def test_uv_named_index_credentials_reach_uv_and_the_listing_and_a_wrong_password_is_said_so(tmp_path, monkeypatch):
    """uv's documented way: UV_INDEX="private=URL" with UV_INDEX_PRIVATE_USERNAME/PASSWORD (real uv
    resolves from it), and the same for `[[tool.uv.index]]` in the project's pyproject.toml. A wrong
    password is "authentication failed" at that index, even with an older listing in the cache."""
    import subprocess

    from privateindex import PASSWORD, USER, private_index

    from harness.errors import InfraUnavailable
    from harness.resolve import PackageIndex, uv_bin

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with private_index(tmp_path) as index:
        env = {"UV_INDEX": f"private-corp={index.url}", "UV_DEFAULT_INDEX": index.open_url}
        creds = {"UV_INDEX_PRIVATE_CORP_USERNAME": USER, "UV_INDEX_PRIVATE_CORP_PASSWORD": PASSWORD}
        for key, value in {**env, **creds}.items():
            monkeypatch.setenv(key, value)
        (tmp_path / "req.in").write_text("tinypkg==1.0\n")
        compiled = subprocess.run(
            [uv_bin(), "pip", "compile", "--no-cache", "--python-version", "3.11", "req.in"], capture_output=True, text=True, timeout=120
        )
        assert compiled.returncode == 0 and "tinypkg==1.0" in compiled.stdout, compiled.stderr  # uv itself reads them so
        assert "/simple/tinypkg/" in index.authorized
        index.seen.clear()
        config = IndexConfig.from_env()
        assert config.urls == (index.url, index.open_url) and config.uv_args() == []
        listing = PackageIndex(config, cache=tmp_path / "cache", ttl=0)
        assert [str(v) for v in listing.versions("tinypkg", "3.11")] == ["1.0"] and index.authorized == ["/simple/tinypkg/"]  # the listing, with them

        monkeypatch.setenv("UV_INDEX_PRIVATE_CORP_PASSWORD", "wrong-one")
        with pytest.raises(InfraUnavailable) as failed:  # the cache holds a listing: it is not used
            PackageIndex(config, cache=tmp_path / "cache", ttl=0).versions("tinypkg", "3.11")
        said = str(failed.value)
        assert f"authentication failed at {index.url} (HTTP 401)" in said and "UV_INDEX_PRIVATE_CORP_PASSWORD" in said
        assert "wrong-one" not in said and PASSWORD not in said and "pypi.org" not in said

        # the same index named in pyproject.toml's [[tool.uv.index]] instead of UV_INDEX
        monkeypatch.delenv("UV_INDEX")
        monkeypatch.delenv("UV_DEFAULT_INDEX")
        monkeypatch.setenv("UV_INDEX_PRIVATE_CORP_PASSWORD", PASSWORD)
        (tmp_path / "pyproject.toml").write_text(
            f'[[tool.uv.index]]\nname = "private-corp"\nurl = "{index.url}"\n\n[[tool.uv.index]]\nurl = "{index.open_url}"\ndefault = true\n'
        )
        config = IndexConfig.from_env()
        assert config.urls == (index.url, index.open_url)
        assert [str(v) for v in PackageIndex(config, cache=tmp_path / "cache2", ttl=0).versions("tinypkg", "3.11")] == ["1.0"]


@pytest.mark.parametrize(
    ("filename", "python", "ok"),
    [
        ("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.11", True),
        ("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.12", False),
        ("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_aarch64.whl", "3.11", False),
        ("tensorflow_cpu-2.15.1-cp311-cp311-win_amd64.whl", "3.11", False),
        ("tf_keras-2.16.0-py3-none-any.whl", "3.13", True),
        ("ml_dtypes-0.5.0-cp39-abi3-manylinux_2_17_x86_64.whl", "3.11", True),
    ],
)
def test_wheel_compatibility(filename, python, ok):
    assert compatible(ReleaseFile(filename), python, machine="x86_64") is ok


def test_versions_only_where_a_file_fits_and_not_yanked():
    files = [
        ReleaseFile("tensorflow_cpu-2.8.0-cp39-cp39-manylinux2010_x86_64.whl"),
        ReleaseFile("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.whl"),
        ReleaseFile("tensorflow_cpu-2.16.1-cp311-cp311-manylinux_2_17_x86_64.whl", yanked=True),
        ReleaseFile("pkg-1.0.tar.gz", requires_python=">=3.12"),
    ]
    assert versions_from_files(files, "3.11", machine="x86_64") == [Version("2.15.1")]
    assert versions_from_files(files, "3.9", machine="x86_64") == [Version("2.8.0")]


@pytest.mark.e2e
def test_conflicting_pins_are_unresolvable_unless_overridden(tmp_path):
    resolver = Resolver({"tensorflow": "tensorflow-cpu"}, cache=tmp_path)
    pins = (("tensorflow", "2.15.1"), ("keras", "3.0.0"))
    result = resolver.resolve(Cell(python="3.11", pins=pins))
    assert isinstance(result, Unresolvable)
    assert "keras" in result.explanation and "tensorflow-cpu" in result.explanation
    # asked again, the answer comes from the lock cache: uv is not run (5,000-cell matrices are mostly unresolvable)
    resolver._compile = lambda *a: pytest.fail("uv ran for a cell the cache answers")  # type: ignore[method-assign]
    assert resolver.resolve(Cell(python="3.11", pins=pins)) == result
    resolver = Resolver({"tensorflow": "tensorflow-cpu"}, cache=tmp_path)
    forced = resolver.resolve(Cell(python="3.11", pins=pins, override=True))
    assert isinstance(forced, Lock)
    assert forced.pins["keras"] == "3.0.0" and forced.pins["tensorflow-cpu"] == "2.15.1"


def test_the_lock_cache_answers_while_fresh_and_when_uv_cannot(tmp_path, monkeypatch):
    """The seam is uv (Resolver._compile; the real one: the e2e test above)."""
    from harness.resolve import ResolveFailed

    answers: list = [Unresolvable("keras 3.0.0 needs tensorflow>=2.16"), ResolveFailed("offline"), Lock("tensorflow-cpu==2.15.1\n")]
    calls = []

    def compile_(self, *args):
        calls.append(args)
        return answers.pop(0)

    monkeypatch.setattr(Resolver, "_compile", compile_)
    cell = Cell(python="3.11", pins=(("tensorflow", "2.15.1"),))
    first = Resolver({}, cache=tmp_path).resolve(cell)
    assert first == Unresolvable("keras 3.0.0 needs tensorflow>=2.16")
    assert Resolver({}, cache=tmp_path).resolve(cell) == first and len(calls) == 1  # fresh: from the cache
    assert Resolver({}, cache=tmp_path, ttl=0).resolve(cell) == first and len(calls) == 2  # stale, uv offline: the last answer
    assert Resolver({}, cache=tmp_path, ttl=0).resolve(cell) == Lock("tensorflow-cpu==2.15.1\n")  # the index changed: now it resolves
    assert Resolver({}, cache=tmp_path).resolve(cell) == Lock("tensorflow-cpu==2.15.1\n") and len(calls) == 3
    assert sorted(p.suffix for p in (tmp_path / "locks").iterdir() if p.is_file()) == [".txt"]  # the old answer is gone


def test_index_from_a_local_folder_and_stale_cache_when_offline(tmp_path):
    from harness.resolve import IndexConfig, PackageIndex

    simple = tmp_path / "simple" / "tf-keras"
    simple.mkdir(parents=True)
    (simple / "index.html").write_text(
        '<a href="tf_keras-2.15.0-py3-none-any.whl">tf_keras-2.15.0-py3-none-any.whl</a>\n'
        '<a href="tf_keras-2.16.0-py3-none-any.whl" data-requires-python="&gt;=3.9">tf_keras-2.16.0-py3-none-any.whl</a>\n'
    )
    local = PackageIndex(IndexConfig(f"file://{tmp_path / 'simple'}"), cache=tmp_path / "cache")
    assert [str(v) for v in local.versions("tf-keras", "3.11")] == ["2.15.0", "2.16.0"]
    assert [str(v) for v in local.versions("tf_keras", "3.8")] == ["2.15.0"]  # requires-python kept

    # an index that cannot be reached (nothing listens on port 9 of loopback) ...
    offline = IndexConfig("http://127.0.0.1:9/simple")
    with pytest.raises(Exception, match="cannot list releases of tf-keras"):
        PackageIndex(offline, cache=tmp_path / "cache2").versions("tf-keras", "3.11")
    # ... is answered from a cache past its TTL
    fresh = PackageIndex(offline, cache=tmp_path / "cache2", ttl=0)
    key_dir = next((tmp_path / "cache").glob("index/*"))
    target = tmp_path / "cache2" / "index" / hashlib.sha256(" ".join(offline.urls).encode()).hexdigest()[:16]
    target.mkdir(parents=True)
    (target / "tf-keras.json").write_text((key_dir / "tf-keras.json").read_text())
    assert [str(v) for v in fresh.versions("tf-keras", "3.11")] == ["2.15.0", "2.16.0"]


def test_uv_offline_is_infrastructure_not_an_incompatibility(tmp_path, monkeypatch):
    """UV_OFFLINE with a cache that lacks the package: uv says "No solution found", but the cause
    is the network switched off, so the cell is infra-error, never unresolvable."""
    from harness.resolve import ResolveFailed

    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    result = Resolver({}, cache=tmp_path).resolve(Cell(python="3.11", pins=(("tf-keras", "2.15.0"),)))
    assert isinstance(result, ResolveFailed), result
    assert "network was disabled" in result.explanation


def test_index_credentials_go_in_a_header_and_never_in_messages():
    from harness.errors import redact
    from harness.resolve import _without_credentials

    url, headers = _without_credentials("https://user:s%40cret@example.org:8443/simple/x/")
    assert url == "https://example.org:8443/simple/x/"
    assert headers == {"Authorization": "Basic dXNlcjpzQGNyZXQ="}  # user:s@cret
    assert _without_credentials("https://pypi.org/simple/x/") == ("https://pypi.org/simple/x/", {})
    assert redact("from https://user:s3cret@host/simple: refused") == "from https://user:***@host/simple: refused"
    assert redact("https://ghp_token@host/simple and ssh://git@github.com/x") == "https://***@host/simple and ssh://***@github.com/x"
    assert redact("https://pypi.org/simple, user@example.com") == "https://pypi.org/simple, user@example.com"


def test_pip_settings_are_read_in_pips_order_as_pip_itself_merges_them(tmp_path, monkeypatch):
    """The global, user and PIP_CONFIG_FILE files, [install] over [global], a PIP_CONFIG_FILE
    that exists hiding the user's files, /dev/null reading none: compared with what the real
    pip says (`pip config list`) for the same files."""
    import subprocess
    import sys

    from harness.indexes import _pip_settings, pip_config_files

    home, xdg = tmp_path / "home", tmp_path / "xdg"
    for folder in (home / ".pip", home / ".config" / "pip", xdg / "pip"):
        folder.mkdir(parents=True)
    (xdg / "pip" / "pip.conf").write_text("[global]\nindex-url = https://xdg.example/simple\nfind-links = https://links.example/a\n")
    (home / ".pip" / "pip.conf").write_text("[global]\nindex-url = https://legacy.example/simple\nextra-index-url = https://extra.example/simple\n")
    (home / ".config" / "pip" / "pip.conf").write_text("[install]\nindex-url = https://user.example/simple\n")
    mine = tmp_path / "mine.conf"
    mine.write_text("[global]\nindex-url = https://env.example/simple\n")
    base = {"HOME": str(home), "XDG_CONFIG_DIRS": str(xdg), "XDG_CONFIG_HOME": str(home / ".config"), "PATH": os.environ["PATH"]}

    def pips_own(env: dict[str, str]) -> dict[str, str]:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=env, capture_output=True, text=True, timeout=60)
        values: dict[str, dict[str, str]] = {"global": {}, "install": {}}
        for line in listed.stdout.splitlines():
            key, _, value = line.partition("=")
            section, _, option = key.partition(".")
            if section in values and option in ("index-url", "extra-index-url", "find-links"):
                values[section][option] = value.strip("'").strip()
        return {**values["global"], **values["install"]}

    for extra, expected in (
        ({}, {"index-url": "https://user.example/simple", "extra-index-url": "https://extra.example/simple", "find-links": "https://links.example/a"}),
        ({"PIP_CONFIG_FILE": str(mine)}, {"index-url": "https://env.example/simple", "find-links": "https://links.example/a"}),
        ({"PIP_CONFIG_FILE": os.devnull}, {}),
    ):
        env = {**base, **extra}
        if Path("/etc/pip.conf").exists():  # this machine's own global file comes before ours; what we set wins
            expected = {**{k: v for k, v in pips_own(env).items() if k not in expected}, **expected}
        assert _pip_settings(env) == expected == pips_own(env)
    assert pip_config_files({**base, "PIP_CONFIG_FILE": os.devnull}) == []
    assert IndexConfig.from_env({**base, "PIP_CONFIG_FILE": os.devnull}, tmp_path).source in ("default", "uv")


def test_find_links_are_listed_and_passed_to_uv(tmp_path, monkeypatch):
    """PIP_FIND_LINKS (a folder of wheels): the harness's listing sees its releases, and uv, told
    them, resolves from it (no network: the index is an empty folder)."""
    import subprocess

    from privateindex import build_wheel

    from harness.resolve import PackageIndex, uv_bin

    monkeypatch.setenv("HOME", str(tmp_path))
    wheels, empty = tmp_path / "wheels", tmp_path / "empty"
    wheels.mkdir()
    empty.mkdir()
    build_wheel(wheels)
    (wheels / "other-2.0-py3-none-any.whl").write_bytes(b"")  # another project's file: not listed
    config = IndexConfig.from_env({"PIP_INDEX_URL": empty.as_uri(), "PIP_FIND_LINKS": str(wheels)}, tmp_path)
    assert (config.source, config.find_links) == ("pip", (str(wheels),))
    assert config.uv_args() == ["--index-url", empty.as_uri(), "--find-links", str(wheels)]
    assert "--find-links" not in config.explicit_args(remote_only=True)  # a container cannot see this folder
    assert [str(v) for v in PackageIndex(config, cache=tmp_path / "cache").versions("tinypkg", "3.11")] == ["1.0"]
    (tmp_path / "req.in").write_text("tinypkg\n")
    compiled = subprocess.run(
        [uv_bin(), "pip", "compile", "--no-cache", "--python-version", "3.11", *config.uv_args(), str(tmp_path / "req.in")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)},
    )
    assert compiled.returncode == 0 and "tinypkg==1.0" in compiled.stdout, compiled.stderr


def test_a_cell_a_package_s_python_requirement_rules_out_says_so_and_not_override():
    """uv's words for a Python 3.10 cell of keras 3.15.1 (real uv output): the fix names the
    requirement and the cell's Python; resolution: override cannot lift it, so it is not offered."""
    from harness.matrix import Cell
    from harness.modelfile import ModelInfo
    from harness.pipeline import Planned, unrun_results
    from harness.resolve import Unresolvable, python_requirement, unresolvable_line

    said = (
        "error: No solution found when resolving dependencies\n  cause: Because keras==3.15.1 requires Python >=3.11 and you "
        "require keras==3.15.1, we can conclude that your requirements are unsatisfiable."
    )
    assert python_requirement(said) == ("keras", "3.15.1", ">=3.11")
    assert unresolvable_line(said).startswith("Because keras==3.15.1 requires Python >=3.11")
    assert python_requirement("error: No solution found\n  Because numpy==2.4.6 and tensorflow==2.15.1 conflict") is None
    cell = Cell(python="3.10", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "jax"),), api="keras")
    planned = Planned(cells=[cell], resolutions={cell: Unresolvable(said)}, jobs=[], skipped={})
    info = ModelInfo(path="/m.keras", name="m.keras", sha256="0" * 64, size=1, format="keras", keras_version="3.15.1")
    [r] = unrun_results(planned, [info])
    assert r.status == "unresolvable" and r.fix.startswith("keras 3.15.1 needs Python >=3.11 and this cell is Python 3.10")
    assert "override cannot lift" in r.fix
