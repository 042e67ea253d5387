"""A private package index on loopback that wants HTTP Basic auth, serving one tiny wheel
built here: the real consumers (uv, pip inside a Docker build, the harness's own release
listing) are pointed at it to check that credentials reach it the documented ways and
nowhere else."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

USER, PASSWORD = "ci", "s3cret-7f1d"  # a password no other file here holds, to search for
WHEEL = "tinypkg-1.0-py3-none-any.whl"


def build_wheel(folder: Path) -> Path:
    """A minimal, valid pure-Python wheel: tinypkg 1.0 (RECORD with real hashes)."""
    files = {
        "tinypkg/__init__.py": b"VALUE = 1\n",
        "tinypkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: harness-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files["tinypkg-1.0.dist-info/RECORD"] = ("\n".join([*record, "tinypkg-1.0.dist-info/RECORD,,"]) + "\n").encode()
    path = folder / WHEEL
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@dataclass
class PrivateIndex:
    url: str  # http://127.0.0.1:PORT/simple, without credentials

    @property
    def open_url(self) -> str:
        """An index on the same server that holds nothing and wants no credentials."""
        return self.url.replace("/simple", "/open/simple")
    seen: list[tuple[str, bool]] = field(default_factory=list)  # (path, authorized) of every request

    def with_credentials(self, user: str = USER, password: str = PASSWORD) -> str:
        return self.url.replace("http://", f"http://{user}:{password}@")

    @property
    def authorized(self) -> list[str]:
        return [path for path, ok in self.seen if ok]


@contextmanager
def private_index(folder: Path) -> Iterator[PrivateIndex]:
    """/simple/tinypkg/ and the wheel, behind Basic auth (401 without or with wrong credentials);
    every other project is 404, as an index that does not hold it answers."""
    wheel = build_wheel(folder).read_bytes()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    state: dict[str, PrivateIndex] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:
            if self.path.startswith("/open/"):  # a public index without any project (UV_DEFAULT_INDEX in tests)
                self.send_response(404)
                self.end_headers()
                return
            ok = self.headers.get("Authorization") == expected
            state["index"].seen.append((self.path, ok))
            if not ok:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="private"')
                self.end_headers()
                return
            if self.path.rstrip("/") == "/simple/tinypkg":
                body, kind = f'<a href="/files/{WHEEL}">{WHEEL}</a>'.encode(), "text/html"
            elif self.path == f"/files/{WHEEL}":
                body, kind = wheel, "application/octet-stream"
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["index"] = PrivateIndex(f"http://127.0.0.1:{server.server_port}/simple")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["index"]
    finally:
        server.shutdown()
        server.server_close()
