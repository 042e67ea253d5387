"""The package index a user already configured, found where uv and pip look for it.

In order, the first that names an index wins:
1. uv's environment: UV_INDEX (`[name=]url` words, the first is the first searched),
   UV_DEFAULT_INDEX, UV_INDEX_URL, UV_EXTRA_INDEX_URL;
2. uv's files: the project's uv.toml or pyproject.toml `[tool.uv]` (from the working folder
   up), then the user's (`$XDG_CONFIG_HOME/uv/uv.toml`, `~/.config/uv/uv.toml`):
   `index = [{url = ..., default = true}]`, `index-url`, `extra-index-url`; with uv's
   find-links (UV_FIND_LINKS, `find-links`);
3. pip's settings, each variable over its own option from pip's files (PIP_INDEX_URL,
   PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS; the files in pip's order, pip_config_files, with
   PIP_CONFIG_FILE=/dev/null reading none);
4. PyPI.

From uv's own settings, uv is passed nothing: it reads them itself, with everything else
they say (named indexes, strategies, keyring provider). From pip's, uv is passed the
URLs and find-links (it does not read pip.conf). The harness's own release listings use the
same URLs and find-links; their credentials come from the URL, else a named index's
UV_INDEX_<NAME>_USERNAME/_PASSWORD, else ~/.netrc, else `keyring get URL USER` when the URL
names a user and the keyring CLI is there (as uv's subprocess provider does).
Credentials never reach a message: errors.redact takes them out of every URL.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .config import read_toml
from .errors import UsageError

PYPI = "https://pypi.org/simple"


def discover(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """(index URL, extra index URLs, where they came from: "uv" | "pip" | "default", find-links
    locations: folders or pages of release files, read beside the indexes)."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    found = _uv_env(env) or _uv_files(env, cwd)
    if found:
        return (*found, "uv", _uv_find_links(env, cwd))
    # pip: each variable overrides its own option from the files (PIP_INDEX_URL over index-url, ...)
    files = _pip_settings(env)
    main = env.get("PIP_INDEX_URL") or files.get("index-url")
    extras = (env.get("PIP_EXTRA_INDEX_URL") or files.get("extra-index-url") or "").split()
    links = tuple((env.get("PIP_FIND_LINKS") or files.get("find-links") or "").split())
    if main or extras or links:
        found = _split([main or PYPI, *extras])
        assert found is not None
        return (*found, "pip", links)
    return PYPI, (), "default", ()


def _split(urls: list[str]) -> tuple[str, tuple[str, ...]] | None:
    clean = [u.rstrip("/") for u in urls if u]
    return (clean[0], tuple(clean[1:])) if clean else None


def _named(word: str) -> tuple[str | None, str]:
    """uv's `[name=]url` word: (name or None, url)."""
    head = word.split("://", 1)[0]
    if "=" in head:
        name, url = word.split("=", 1)
        return name, url
    return None, word


def _uv_env(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]] | None:
    named = [_named(word)[1] for word in env.get("UV_INDEX", "").split()]
    default = _named(env["UV_DEFAULT_INDEX"])[1] if env.get("UV_DEFAULT_INDEX") else env.get("UV_INDEX_URL")
    extras = env.get("UV_EXTRA_INDEX_URL", "").split()
    if not (named or default or extras):
        return None
    # uv searches the named indexes first, the default one last
    return _split([*named, *extras, default or PYPI]) if named or extras else _split([default or PYPI])


def uv_setting_tables(env: Mapping[str, str], cwd: Path) -> Iterator[Mapping[str, Any]]:
    """uv's settings tables where uv reads them, first first: the project's uv.toml or
    pyproject.toml `[tool.uv]` from `cwd` up, then the user's uv.toml."""
    for folder in (cwd, *cwd.parents):
        for name, table in (("uv.toml", None), ("pyproject.toml", "uv")):
            path = folder / name
            if path.is_file():
                settings = _read_toml(path)
                tool = settings.get("tool")
                section = (tool.get(table) if isinstance(tool, dict) else None) if table else settings
                if isinstance(section, dict):
                    yield section
    user = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "uv" / "uv.toml"
    if user.is_file():
        yield _read_toml(user)


def _uv_files(env: Mapping[str, str], cwd: Path) -> tuple[str, tuple[str, ...]] | None:
    return next((found for section in uv_setting_tables(env, cwd) if (found := _uv_settings(section))), None)


def _uv_settings(section: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    entries = [i for i in section.get("index") or [] if isinstance(i, dict) and i.get("url")]
    default = next((str(i["url"]) for i in entries if i.get("default")), None) or section.get("index-url")
    named = [str(i["url"]) for i in entries if not i.get("default")]
    extras = [str(u) for u in section.get("extra-index-url") or []]
    if not (named or default or extras):
        return None
    return _split([*named, *extras, str(default or PYPI)]) if named or extras else _split([str(default)])


PIP_SECTIONS = ("global", "install")  # a command's section (pip install's) overrides [global], whatever file holds it


def pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's configuration files in pip's order, later ones winning: the global ones
    ($XDG_CONFIG_DIRS/pip/pip.conf, /etc/pip.conf), the user's (~/.pip/pip.conf, then
    $XDG_CONFIG_HOME/pip/pip.conf), skipped when $PIP_CONFIG_FILE names a file that exists,
    the virtualenv's ($VIRTUAL_ENV/pip.conf), then $PIP_CONFIG_FILE. PIP_CONFIG_FILE=/dev/null:
    none at all (pip's "read no configuration")."""
    given = env.get("PIP_CONFIG_FILE")
    if given == os.devnull:
        return []
    home = Path(env.get("HOME") or Path.home())
    xdg_dirs = [d for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d]
    files = [*(Path(d) / "pip" / "pip.conf" for d in xdg_dirs), Path("/etc/pip.conf")]
    if not (given and Path(given).exists()):
        files += [home / ".pip" / "pip.conf", Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf"]
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    if given:
        files.append(Path(given))
    return files


def _pip_settings(env: Mapping[str, str]) -> dict[str, str]:
    """index-url, extra-index-url and find-links as pip would see them from its files."""
    values: dict[str, dict[str, str]] = {section: {} for section in PIP_SECTIONS}
    for path in pip_config_files(env):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, UnicodeDecodeError):
            continue
        for section in PIP_SECTIONS:
            for key in ("index-url", "extra-index-url", "find-links"):
                if parser.has_option(section, key):
                    values[section][key] = parser.get(section, key).strip()
    return {**values["global"], **values["install"]}


def _uv_find_links(env: Mapping[str, str], cwd: Path) -> tuple[str, ...]:
    """uv's find-links: UV_FIND_LINKS (comma-separated), else `find-links` in its settings."""
    if env.get("UV_FIND_LINKS"):
        return tuple(link.strip() for link in env["UV_FIND_LINKS"].split(",") if link.strip())
    for section in uv_setting_tables(env, cwd):
        links = section.get("find-links")
        if isinstance(links, list) and links:
            return tuple(str(link) for link in links)
    return ()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return read_toml(path)
    except UsageError:
        return {}  # uv says what is wrong with its own file when it runs


def index_names(env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """{url: name} of the indexes uv's settings name (UV_INDEX and UV_DEFAULT_INDEX words
    `name=url`, `[[index]]` / `[[tool.uv.index]]` tables with a name)."""
    found: dict[str, str] = {}
    for word in [*env.get("UV_INDEX", "").split(), *env.get("UV_DEFAULT_INDEX", "").split()]:
        name, url = _named(word)
        if name:
            found.setdefault(url.rstrip("/"), name)
    for section in uv_setting_tables(env, cwd):
        for entry in section.get("index") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("url"), str):
                found.setdefault(entry["url"].rstrip("/"), entry["name"])
    return found


def credential_variables(name: str) -> tuple[str, str]:
    """uv's variables for a named index's credentials: UV_INDEX_<NAME>_USERNAME and _PASSWORD,
    the name upper-cased with every character but letters and digits made `_` (as uv does)."""
    key = re.sub(r"[^A-Z0-9]", "_", name.upper())
    return f"UV_INDEX_{key}_USERNAME", f"UV_INDEX_{key}_PASSWORD"


def credentials(url: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[str, str] | None:
    """(user, password) for an index URL without them, where uv and pip look: the named index's
    UV_INDEX_<NAME>_USERNAME / _PASSWORD, else ~/.netrc, else the keyring CLI for a URL that
    names its user."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        return None  # the URL carries them
    env = os.environ if env is None else env
    host = parts.hostname or ""
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))).rstrip("/")
    name = next((n for u, n in index_names(env, cwd or Path.cwd()).items() if bare == u or bare.startswith(u + "/")), None)  # a project page too
    if name:
        user_var, password_var = credential_variables(name)
        if env.get(user_var) or env.get(password_var):
            return env.get(user_var) or urllib.parse.unquote(parts.username or ""), env.get(password_var) or ""
    try:
        import netrc

        entry = netrc.netrc(env.get("NETRC")).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        entry = None
    if entry and entry[2] is not None:
        return entry[0] or "", entry[2]
    keyring = shutil.which("keyring")
    if parts.username and keyring:
        clean = urllib.parse.urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
        try:
            done = subprocess.run([keyring, "get", clean, parts.username], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode == 0 and done.stdout.strip():
            return urllib.parse.unquote(parts.username), done.stdout.rstrip("\n")
    return None
