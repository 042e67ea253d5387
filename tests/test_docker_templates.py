"""The Docker backend's pure parts: templates, settings, container paths (no daemon)."""

from __future__ import annotations

import pytest

from harness.backends import cell_request
from harness.backends.docker import DockerBackend, DockerSettings, _mount_spec, builtin_templates, render_dockerfile
from harness.errors import UsageError
from harness.plan import EnvSpec
from harness.request import ModelRequest, ProbeRequest
from harness.resolve import IndexConfig

LOCK_A = "numpy==1.26.4\ntensorflow-cpu==2.15.1\n"
LOCK_B = "numpy==1.26.4\ntensorflow-cpu==2.16.2\n"


def test_builtin_templates():
    assert builtin_templates() == ["default", "uv-cache"]


@pytest.mark.parametrize("template", ["default", "uv-cache"])
def test_layers_go_from_shared_to_specific(template):
    settings = DockerSettings(template=template, base_image="harness-base:py{python}")
    a = render_dockerfile(EnvSpec("3.11", LOCK_A, "docker"), settings, IndexConfig(), "ca-certificates.crt")
    b = render_dockerfile(EnvSpec("3.11", LOCK_B, "docker"), settings, IndexConfig(), "ca-certificates.crt")
    assert a.startswith("FROM harness-base:py3.11\n")
    assert a.split("COPY requirements.lock")[0] == b.split("COPY requirements.lock")[0]  # shared layers, cached once
    assert a != b and a.rstrip().endswith("USER 10001")
    assert "--index-url https://pypi.org/simple" in a
    assert ("--mount=type=cache" in a) == (template == "uv-cache")


@pytest.mark.parametrize("template", ["default", "uv-cache"])
def test_index_credentials_are_a_build_secret_never_text_of_the_dockerfile(template, tmp_path, monkeypatch):
    """Every install step mounts the netrc secret where the index wants credentials (and only
    then); the URLs are written without them. A user's template that has no place for the
    secret is refused before a build, not built into an image that holds the password."""
    from harness.backends.docker import SECRET_MOUNT, build_netrc

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    private = IndexConfig("https://ci:t0ken-x@corp.example/simple", source="given")
    settings = DockerSettings(template=template, base_image="harness-base:py{python}")
    text = render_dockerfile(EnvSpec("3.11", LOCK_A, "docker"), settings, private, None)
    installs = [line for line in text.splitlines() if "--index-url" in line]
    assert "t0ken-x" not in text and installs and all("--index-url https://corp.example/simple" in line for line in installs)
    steps = text.split("\nRUN ")
    assert all(SECRET_MOUNT in step and "NETRC=/run/secrets/harness-netrc" in step for step in steps if "--index-url" in step)
    assert build_netrc(private) == "machine corp.example login ci password t0ken-x\n"
    public = render_dockerfile(EnvSpec("3.11", LOCK_A, "docker"), settings, IndexConfig(), None)
    assert "secret" not in public and build_netrc(IndexConfig()) == ""


def test_a_users_template_without_the_secret_is_refused_when_the_index_wants_credentials(tmp_path, monkeypatch):
    mine = tmp_path / "mine.Dockerfile.j2"
    mine.write_text("FROM {{ base_image }}\nRUN pip install {{ index_args }} -r {{ requirements_file }}\n")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    backend = DockerBackend(DockerSettings(template=str(mine)), index=IndexConfig("https://ci:t0ken-x@corp.example/simple"), client=object())
    with pytest.raises(UsageError, match=r"does not use \{\{ secret_mount \}\}") as refused:
        backend._build(EnvSpec("3.11", LOCK_A, "docker"), "harness-env:test")
    assert "t0ken-x" not in str(refused.value)


def test_a_users_template_and_its_context(tmp_path):
    mine = tmp_path / "mine.Dockerfile.j2"
    mine.write_text(
        "FROM {{ base_image }}\n# {{ pins['tensorflow-cpu'] }} {{ python }} {{ env_key }} {{ venv }} {{ probe_dir }} {{ uid }}\n"
    )
    matrix = tmp_path / "m.yaml"
    settings = DockerSettings.from_matrix({"template": "mine.Dockerfile.j2"}, matrix)
    assert settings.template == str(mine)
    env = EnvSpec("3.9", LOCK_A, "docker")
    text = render_dockerfile(env, settings, IndexConfig(), None)
    assert text == f"FROM python:3.9-slim\n# 2.15.1 3.9 {env.key} /opt/harness/venv /harness 10001\n"


def test_bad_settings_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown docker option"):
        DockerSettings.from_matrix({"memroy": "2g"}, tmp_path / "m.yaml")
    with pytest.raises(UsageError, match="docker template 'nope' not found"):
        DockerSettings.from_matrix({"template": "nope"}, tmp_path / "m.yaml")
    broken = tmp_path / "broken.j2"
    broken.write_text("FROM {{ no_such_name }}\n")
    with pytest.raises(UsageError, match="cannot render the template"):
        render_dockerfile(EnvSpec("3.11", LOCK_A), DockerSettings(template=str(broken)), IndexConfig(), None)


def test_cell_paths_and_read_only_mounts():
    models = (ModelRequest("m0", "/data/a.h5", "h5"), ModelRequest("m1", "/data/b.keras", "keras"), ModelRequest("m2", "/data/c.h5\nRUN x", "h5"))
    request = ProbeRequest(models, custom_objects="/src/objs.py")
    inner, mounts = cell_request(request, lambda host, wanted: wanted, "/work")
    assert [m["path"] for m in inner["models"]] == ["/models/m0.h5", "/models/m1.keras", "/models/m2"]  # an odd suffix is left out
    assert inner["custom_objects"] == "/harness/custom_objects.py" and inner["workdir"] == "/work" and "out" not in inner
    assert mounts == {
        "/models/m0.h5": "/data/a.h5",
        "/models/m1.keras": "/data/b.keras",
        "/models/m2": "/data/c.h5\nRUN x",
        "/harness/custom_objects.py": "/src/objs.py",
    }
    # without a sandbox that remaps, the cell uses the host paths
    plain, _ = cell_request(request, lambda host, wanted: host, "/tmp/x")
    assert [m["path"] for m in plain["models"]] == ["/data/a.h5", "/data/b.keras", "/data/c.h5\nRUN x"] and plain["workdir"] == "/tmp/x"


def test_mount_specs_keep_odd_paths_whole():
    assert _mount_spec("/data/a.h5", "/models/m0.h5", True) == "type=bind,source=/data/a.h5,target=/models/m0.h5,readonly"
    assert _mount_spec("/data/a,b.h5", "/models/m0.h5", False) == 'type=bind,"source=/data/a,b.h5",target=/models/m0.h5'


def test_the_image_key_follows_the_template_and_the_base():
    one = DockerBackend(DockerSettings(base_image="a:{python}")).fingerprint
    two = DockerBackend(DockerSettings(base_image="b:{python}")).fingerprint
    three = DockerBackend(DockerSettings(template="uv-cache", base_image="a:{python}")).fingerprint
    assert len({one, two, three}) == 3


@pytest.mark.parametrize(
    ("log", "infra"),
    [
        ("WARNING: Retrying ... Failed to establish a new connection: [Errno -3] Temporary failure in name resolution", True),
        ("write /var/lib/docker/overlay2/x: no space left on device", True),
        (
            "ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==2.99.0\nERROR: No matching distribution found",
            False,
        ),
        ("ERROR: tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.whl is not a supported wheel on this platform.", False),
        ("Could not fetch URL https://pypi.org/simple/x/ ... No matching distribution found for x", False),
    ],
)
def test_build_failures_are_told_apart(log, infra):
    from harness.backends.docker import is_infra_failure

    assert is_infra_failure(log) is infra


def test_a_repro_folder_holds_no_credential_and_says_how_to_give_them(tmp_path, monkeypatch):
    """harness repro's Dockerfile (a folder meant for bug reports): the URLs without their
    credentials, the install step mounting the secret, the README's build command passing it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    backend = DockerBackend(DockerSettings(), index=IndexConfig("https://ci:t0ken-x@corp.example/simple"), client=object())
    backend.write_build_files(EnvSpec("3.11", LOCK_A, "docker"), tmp_path, ["probe.py", "request.json"])
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert "t0ken-x" not in dockerfile and "--mount=type=secret,id=harness-netrc" in dockerfile
    commands = backend.reproduction_commands("3.11", {}, {}, ["python", "probe.py"])
    assert any("--secret id=harness-netrc,src=$HOME/.netrc" in c for c in commands)
    assert not any("t0ken-x" in c for c in commands)
