"""Release lists from the user's index and full locks from uv (side effects, cached).

Version lists come from the index the user configured (UV_INDEX_URL / UV_DEFAULT_INDEX,
else PIP_INDEX_URL; extras from UV_EXTRA_INDEX_URL / PIP_EXTRA_INDEX_URL), through the
simple API (PEP 691 JSON where the index speaks it, PEP 503 HTML otherwise). Lists and
locks are cached with a TTL and used past it when the index cannot be reached, so a run
works offline once it has run online.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from . import proc
from .errors import InfraUnavailable, redact, without_credentials
from .keys import index_key, lock_key
from .matrix import Cell
from .paths import cache_dir, write_cache

DEFAULT_INDEX = "https://pypi.org/simple"
INDEX_TTL = float(os.environ.get("HARNESS_INDEX_TTL", 3600))
LOCK_TTL = float(os.environ.get("HARNESS_LOCK_TTL", 24 * 3600))
_NETWORK_HINTS = (
    "network was disabled",  # UV_OFFLINE / --offline and the cache lacks it
    "not found in the cache",
    "No space left",
    "Failed to fetch",
    "error sending request",
    "dns error",
    "Connection refused",
    "timed out",
    "Network is unreachable",
    "failed to download",
)


@dataclass(frozen=True)
class IndexConfig:
    index_url: str = DEFAULT_INDEX
    extra_urls: tuple[str, ...] = ()
    source: str = "given"  # uv | pip | default (indexes.discover) | given (made in code)
    find_links: tuple[str, ...] = ()  # folders or pages of release files, read beside the indexes

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> IndexConfig:
        """The index the user configured for uv or pip (indexes.py says where it looks)."""
        from .indexes import discover

        main, extras, source, links = discover(env, cwd)
        return cls(main, extras, source, links)

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.index_url, *self.extra_urls)

    @property
    def locations(self) -> tuple[str, ...]:
        """Everything releases are read from, for cache keys: the URLs, then the find-links."""
        return (*self.urls, *(f"find-links:{link}" for link in self.find_links))

    def uv_args(self) -> list[str]:
        """What uv is told: nothing when the settings are uv's own (it reads them itself, with
        all they say), the URLs when they came from pip's or from code."""
        if self.source in ("uv", "default"):
            return []
        args = self.explicit_args()
        if self.source == "pip" and self.extra_urls:
            args += ["--index-strategy", "unsafe-best-match"]  # pip's rule: the best version over every index
        return args

    def public(self) -> IndexConfig:
        """The same indexes without credentials (errors.without_credentials): for files that leave the machine."""
        from .errors import without_credentials

        return IndexConfig(
            without_credentials(self.index_url),
            tuple(without_credentials(u) for u in self.extra_urls),
            self.source,
            tuple(without_credentials(f) for f in self.find_links),
        )

    @property
    def has_credentials(self) -> bool:
        return any(u != self.public().urls[i] for i, u in enumerate(self.urls))

    def explicit_args(self, remote_only: bool = False) -> list[str]:
        """The URLs as flags, for a place that has no settings of its own (a Docker build;
        remote_only: without file:// indexes, which a container cannot see)."""
        urls = [u for u in self.urls if not (remote_only and u.startswith("file:"))] or [DEFAULT_INDEX]
        args = ["--index-url", urls[0]]
        for url in urls[1:]:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            if not (remote_only and not link.startswith(("http://", "https://"))):  # a container sees no folder of this machine
                args += ["--find-links", link]
        return args


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class ReleaseFile:
    filename: str
    requires_python: str | None = None
    yanked: bool = False


def compatible(file: ReleaseFile, python: str, machine: str | None = None) -> bool:
    """Could this file be installed on Linux for `python` (e.g. "3.11")?"""
    if file.yanked:
        return False
    if file.requires_python:
        try:
            if Version(python + ".0") not in SpecifierSet(file.requires_python):
                return False
        except InvalidSpecifier:
            pass
    if not file.filename.endswith(".whl"):
        return True  # an sdist: buildable in principle; uv decides
    try:
        _, _, _, tags = parse_wheel_filename(file.filename)
    except InvalidWheelFilename:
        return False
    return any(_tag_fits(tag, python, machine or os.uname().machine) for tag in tags)


def _tag_fits(tag: Tag, python: str, machine: str) -> bool:
    major, minor = python.split(".")
    cp = f"cp{major}{minor}"
    if tag.platform != "any" and not (tag.platform.startswith(("manylinux", "linux")) and tag.platform.endswith(machine)):
        return False
    if tag.interpreter in (cp, f"py{major}", f"py{major}{minor}"):
        return True
    if tag.abi == "abi3" and tag.interpreter.startswith("cp"):
        return int(tag.interpreter[3:] or 0) <= int(minor) and tag.interpreter[2] == major
    return False


def versions_from_files(files: Sequence[ReleaseFile], python: str, machine: str | None = None) -> list[Version]:
    """Releases with at least one file installable for `python` on this machine's Linux."""
    by_version: dict[Version, list[ReleaseFile]] = {}
    for f in files:
        version = _file_version(f.filename)
        if version is not None:
            by_version.setdefault(version, []).append(f)
    found = []
    for version, group in by_version.items():
        wheels = [f for f in group if f.filename.endswith(".whl")]
        candidates = wheels or group  # sdists count only where a release has no wheels
        if any(compatible(f, python, machine) for f in candidates):
            found.append(version)
    return sorted(found)


def _file_version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


class PackageIndex:
    """Release files per distribution, cached on disk with a TTL."""

    def __init__(self, config: IndexConfig | None = None, cache: Path | None = None, ttl: float = INDEX_TTL):
        self.config = config or IndexConfig.from_env()
        self.cache = (cache or cache_dir()) / "index"
        self.ttl = ttl
        self._memory: dict[str, list[ReleaseFile]] = {}
        self._versions: dict[tuple[str, str], list[Version]] = {}

    def versions(self, name: str, python: str) -> list[Version]:
        """The releases installable for `python`, filtered once per (name, python) and run: a
        matrix asks for the same list once per combination (5,000 times in a 5,000-cell one)."""
        key = (canonicalize_name(name), python)
        if key not in self._versions:
            self._versions[key] = self._filtered(key[0], python)
        return self._versions[key]

    def _filtered(self, name: str, python: str) -> list[Version]:
        """From the release list, parsed once per listing: the filtered list sits beside it,
        stamped with the listing's mtime and size (a re-run reads a few hundred bytes, not the
        listing and thousands of wheel names)."""
        listing = self.cache / index_key(self.config.locations) / f"{name}.json"
        derived = listing.with_name(f"{name}.versions-{python}-{os.uname().machine}.json")
        try:
            st = listing.stat()
            if time.time() - st.st_mtime < self.ttl:
                data = json.loads(derived.read_text())
                if data.get("listing") == [st.st_mtime_ns, st.st_size]:
                    return [Version(v) for v in data["versions"]]
        except (OSError, ValueError, TypeError, KeyError, InvalidVersion):
            pass  # no derived list, or not this listing's: filter again
        found = versions_from_files(self.files(name), python)
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            st = listing.stat()
            write_cache(derived, json.dumps({"listing": [st.st_mtime_ns, st.st_size], "versions": [str(v) for v in found]}))
        return found

    def files(self, name: str) -> list[ReleaseFile]:
        name = canonicalize_name(name)
        if name not in self._memory:
            self._memory[name] = self._cached_or_fetch(name)
        return self._memory[name]

    def _cached_or_fetch(self, name: str) -> list[ReleaseFile]:
        key = index_key(self.config.locations)
        path = self.cache / key / f"{name}.json"
        cached = None
        if path.exists():
            cached = [ReleaseFile(**f) for f in json.loads(path.read_text())["files"]]
            if time.time() - path.stat().st_mtime < self.ttl:
                return cached
        import http.client  # with the network code, only when a listing is fetched: a re-run from the cache never is
        from urllib.error import HTTPError

        files = []
        for url in (*self.config.urls, *(f"find-links:{link}" for link in self.config.find_links)):
            try:
                files += _find_links(url.removeprefix("find-links:"), name) if url.startswith("find-links:") else _fetch(url, name)
            except HTTPError as exc:
                if exc.code in (401, 403):  # never hidden behind a stale list: the credentials are wrong, not the network
                    raise InfraUnavailable(
                        f"authentication failed at {without_credentials(url)} (HTTP {exc.code}) listing releases of {name}; "
                        f"nothing was tested: check the credentials for that index ({credential_hint(url)})"
                    ) from None
                if cached is not None:
                    return cached
                raise InfraUnavailable(redact(f"cannot list releases of {name} from {url}: {exc}; nothing was tested")) from None
            except (OSError, ValueError, http.client.HTTPException) as exc:
                if cached is not None:
                    return cached  # offline: a stale list beats no list
                raise InfraUnavailable(
                    redact(
                        f"cannot list releases of {name} from {url}: {exc}; nothing was tested: "
                        "check the network or the index URL (a run that reached it once works offline from its cache)"
                    )
                ) from None
        write_cache(path, json.dumps({"files": [f.__dict__ for f in files]}))
        return files


def _find_links(location: str, name: str) -> list[ReleaseFile]:
    """The release files of `name` in a find-links location, as pip and uv read one: a folder
    (a path or file:// URL) of wheels and sdists, or an HTML page linking to them."""
    if location.startswith(("http://", "https://")):
        url, headers = _without_credentials(location)
        from urllib import request as url_request

        with url_request.urlopen(url_request.Request(url, headers=headers), timeout=30) as response:
            found = _parse_html(response.read(1 << 24).decode("utf-8", "replace"))
    else:
        folder = Path(urllib.parse.urlparse(location).path if location.startswith("file:") else location).expanduser()
        found = [ReleaseFile(p.name) for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return [f for f in found if _project_of(f.filename) == name]


def _project_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


def credential_hint(url: str) -> str:
    """Where the credentials for `url` are read from, for an error message (no value, ever)."""
    from .indexes import credential_variables, index_names

    name = index_names(os.environ, Path.cwd()).get(without_credentials(url).rstrip("/"))
    where = [f"{' and '.join(credential_variables(name))} for the index named {name!r}"] if name else []
    return ", ".join([*where, "the URL's user:password", "~/.netrc (or $NETRC)", "the keyring"])


def _fetch(index_url: str, name: str) -> list[ReleaseFile]:
    url = f"{index_url}/{name}/"
    if url.startswith("file://"):
        folder = Path(urllib.parse.urlparse(url).path)
        if not folder.is_dir():
            return []
        page = folder / "index.html"
        if page.exists():
            return _parse_html(page.read_text())
        return [ReleaseFile(p.name) for p in folder.iterdir()]
    given = url
    url, headers = _without_credentials(given)
    if urllib.parse.urlsplit(given).password is None:  # none in the URL: ~/.netrc, or the keyring for the user it names
        from .indexes import credentials

        found = credentials(given)
        if found is not None:
            headers["Authorization"] = basic_auth(*found)
    from urllib import error as url_error
    from urllib import request as url_request

    headers["Accept"] = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    request = url_request.Request(url, headers=headers)
    try:
        with url_request.urlopen(request, timeout=30) as response:
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
    except url_error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    if "json" in content_type:
        data = json.loads(body)
        return [ReleaseFile(f["filename"], f.get("requires-python"), bool(f.get("yanked"))) for f in data.get("files", [])]
    return _parse_html(body.decode("utf-8", "replace"))


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its userinfo, and the Basic auth header that carries it (as pip and uv do)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), {"Authorization": basic_auth(user, password)}


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _parse_html(text: str) -> list[ReleaseFile]:
    """The release files a PEP 503 page links to (html.parser is imported here: listings are
    mostly read from the cache, where they are JSON)."""
    import html
    import html.parser

    class Anchors(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.files: list[ReleaseFile] = []
            self._attrs: dict[str, str | None] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                self._attrs = dict(attrs)

        def handle_data(self, data: str) -> None:
            if self._attrs:
                requires = self._attrs.get("data-requires-python")
                self.files.append(ReleaseFile(data.strip(), html.unescape(requires) if requires else None, "data-yanked" in self._attrs))
                self._attrs = {}

    parser = Anchors()
    parser.feed(text)
    return parser.files


# --------------------------------------------------------------------------- locks


@dataclass(frozen=True)
class Lock:
    """A full lock: every distribution the cell installs, `name==version` per line."""

    text: str

    @property
    def pins(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in self.text.splitlines():
            m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
            if m:
                found[canonicalize_name(m.group(1))] = m.group(2)
        return found


@dataclass(frozen=True)
class Unresolvable:
    explanation: str


@dataclass(frozen=True)
class ResolveFailed:
    """The resolver could not run (network, disk): infra, never an incompatibility."""

    explanation: str


Resolution = Lock | Unresolvable | ResolveFailed


@functools.cache
def uv_bin() -> str:
    """The uv binary the uv wheel ships (nothing else to install).

    Cached, and first called from the main thread: find_uv_bin reads sysconfig, whose
    lazy initialisation is not thread-safe (seen here: a None EXE under a thread pool).
    """
    from uv import find_uv_bin

    return find_uv_bin()


class Resolver:
    def __init__(self, packages: Mapping[str, str], index: IndexConfig | None = None, cache: Path | None = None, ttl: float = LOCK_TTL):
        self.packages = dict(packages)
        self.index = index or IndexConfig.from_env()
        self.cache = (cache or cache_dir()) / "locks"
        self.ttl = ttl
        uv_bin()

    def resolve(self, cell: Cell) -> Resolution:
        """From the lock cache while it is fresh (an unresolvable cell too: most cells of a large
        matrix are, and asking uv again gives the same answer until the index changes), else uv."""
        requirements = "\n".join(cell.requirements(self.packages)) + "\n"
        overrides = requirements if cell.override else ""
        key = lock_key(requirements, overrides, cell.python, self.index.locations)
        locked, refused = self.cache / f"{key}.txt", self.cache / f"{key}.unresolvable"
        stale: Resolution | None = None
        for path, kind in ((locked, Lock), (refused, Unresolvable)):
            try:
                age = time.time() - path.stat().st_mtime
                found = kind(path.read_text())
            except OSError:
                continue
            if age < self.ttl:
                return found
            stale = found
        result = self._compile(requirements, overrides, cell.python, key)
        if isinstance(result, ResolveFailed) and stale is not None:
            return stale  # offline: the last answer beats none
        if isinstance(result, (Lock, Unresolvable)):
            write = locked if isinstance(result, Lock) else refused
            write_cache(write, result.text if isinstance(result, Lock) else result.explanation)
            (refused if isinstance(result, Lock) else locked).unlink(missing_ok=True)
        return result

    def _compile(self, requirements: str, overrides: str, python: str, key: str) -> Resolution:
        work = self.cache / "work" / key
        work.mkdir(parents=True, exist_ok=True)
        (work / "requirements.in").write_text(requirements)
        argv = [
            uv_bin(),
            "pip",
            "compile",
            str(work / "requirements.in"),
            "--python-version",
            python,
            "--no-header",
            "--no-annotate",
            "--quiet",
            *self.index.uv_args(),
        ]
        if overrides:
            (work / "overrides.txt").write_text(overrides)
            argv += ["--override", str(work / "overrides.txt")]
        done = proc.run(argv, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"}, timeout=600)
        if done.ok:
            return Lock(done.stdout)
        explanation = redact(_clean_uv_message(done.stderr))
        # Infrastructure first: offline uv also says "No solution found" (the cache lacks the package).
        if done.timed_out or any(h in done.stderr for h in _NETWORK_HINTS):
            return ResolveFailed(explanation or "uv pip compile timed out")
        if "No solution found" in done.stderr or "unsatisfiable" in done.stderr:
            return Unresolvable(explanation)
        return Unresolvable(explanation)


_NEEDS_PYTHON = re.compile(r"([A-Za-z0-9_.\-]+)==([^\s,]+) (?:requires|depends on) Python\s*([<>=!~]=?\s*[0-9][0-9.*]*)")


def python_requirement(explanation: str) -> tuple[str, str, str] | None:
    """(package, version, its Python requirement) when uv says that is why a cell cannot resolve:
    "Because keras==3.15.1 requires Python >=3.11 and you require keras==3.15.1" (uv 0.9, a
    Python 3.10 cell). resolution: override cannot lift it (overrides change dependencies,
    not a package's own Requires-Python)."""
    found = _NEEDS_PYTHON.search(explanation or "")
    return (found.group(1), found.group(2), found.group(3).replace(" ", "")) if found else None


def unresolvable_line(explanation: str) -> str:
    """The line of uv's explanation that says why ("Because ..."), else its first line."""
    lines = [line.strip() for line in (explanation or "").splitlines() if line.strip()]
    why = next((line for line in lines if "Because" in line or line.startswith("cause:")), None)
    return (why.removeprefix("cause:").strip() if why else (lines[0] if lines else ""))[:300]


def _clean_uv_message(stderr: str) -> str:
    lines = [re.sub(r"^\s*(×|╰─▶|│)\s*", "", line).rstrip() for line in stderr.splitlines()]
    return "\n".join(line for line in lines if line.strip())
