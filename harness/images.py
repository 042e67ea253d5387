"""Base images made locally from a Debian root file system, for machines with no registry.

`harness images base --python 3.11` runs debootstrap (minbase + python3, venv, pip,
ca-certificates) for the Debian release that ships that Python, and imports the tree
as `harness-base:py3.11`. About 45 s and 150 MB per image; needs root and a Debian
mirror (a package registry, not a container registry).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import proc
from .errors import BackendUnavailable, HarnessError, UsageError

# The Debian release whose python3 is the Python wanted.
SUITES = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}
BASE_REPOSITORY = "harness-base"
PACKAGES = "python3,python3-venv,python3-pip,ca-certificates,passwd"
MIRROR = os.environ.get("HARNESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def base_image_name(python: str) -> str:
    return f"{BASE_REPOSITORY}:py{python}"


def build_base_image(python: str, client: object | None = None, mirror: str = MIRROR) -> str:
    """debootstrap + docker import; returns the image name. Reuses an existing image."""
    suite = SUITES.get(python)
    if suite is None:
        raise UsageError(f"no Debian release ships Python {python}; harness images base supports {', '.join(SUITES)}")
    docker = client or _client()
    name = base_image_name(python)
    try:
        docker.images.get(name)  # type: ignore[attr-defined]
        return name
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound; anything else shows below
        pass
    debootstrap = proc.find_executable("debootstrap")
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as work:
        root = Path(work) / "root"
        done = proc.run([debootstrap, "--variant=minbase", f"--include={PACKAGES}", suite, str(root), mirror], timeout=1800)
        if not done.ok:
            raise HarnessError(
                f"debootstrap {suite} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
            )
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tarball = Path(work) / "rootfs.tar"
        packed = proc.run(["tar", "-C", str(root), "-cf", str(tarball), "."], timeout=600)
        if not packed.ok:
            raise HarnessError(f"packing the root file system failed: {packed.stderr.strip()}")
        repository, tag = name.split(":")
        docker.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=['CMD ["python3"]'])  # type: ignore[attr-defined]
    return name


DOCKER_EXTRA = "pip install 'harness[docker]'"


def sdk() -> Any:
    """The Docker SDK for Python (docker-py), an optional extra: the uv backend never needs it."""
    try:
        import docker
    except ImportError:
        raise BackendUnavailable(
            f"--backend docker needs the Docker SDK for Python, which is not installed: {DOCKER_EXTRA} (the docker extra)"
        ) from None
    return docker


def _client() -> object:
    docker = sdk()
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the daemon
        raise BackendUnavailable(f"no Docker daemon answers ({exc.__class__.__name__}); start one (dockerd) first") from None
    return client
