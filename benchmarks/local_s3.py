"""A trivial S3-compatible endpoint over local files, as a second benchmark baseline.

Usage::

    python benchmarks/local_s3.py ROOT

Serves on 127.0.0.1 and a free port, prints ``http://127.0.0.1:<port>`` and stops when its
stdin closes. It speaks just enough S3 for the benchmark's clients (buckets, PutObject,
GetObject with ranges, HeadObject, DeleteObject, ListObjectsV2, multipart uploads) and checks
nothing: no signatures, checksums, metadata or conditions. Bodies go straight to files and
downloads use ``sendfile``, so it costs far less per byte than moto, which keeps each request in
memory and reads whole objects for ranged GETs.
"""

from __future__ import annotations

import email.utils
import http.server
import os
import re
import shutil
import socket
import sys
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

_RANGE = re.compile(r"bytes=(\d+)-(\d*)\Z")
_CHUNK = 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms) of the headers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing ----------------------------------------------------------------------------

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(url.query, keep_blank_values=True)

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / "objects" / quote(key, safe="")

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str) -> None:
        self._reply(status, f"<Error><Code>{code}</Code></Error>".encode())

    def _receive(self, path: Path) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        temporary = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
        with temporary.open("wb") as file:
            while remaining:
                chunk = self.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    raise ConnectionError("body cut short")
                file.write(chunk)
                remaining -= len(chunk)
        if path.is_dir():
            _remove(path)
        temporary.replace(path)

    # -- operations --------------------------------------------------------------------------

    def do_PUT(self) -> None:
        bucket, key, query = self._target()
        if not key:
            (self.root / bucket / "objects").mkdir(parents=True, exist_ok=True)
            (self.root / bucket / "uploads").mkdir(exist_ok=True)
            return self._reply(200)
        if "uploadId" in query:
            upload = self.root / bucket / "uploads" / query["uploadId"][0]
            self._receive(upload / f"{int(query['partNumber'][0]):05d}")
        else:
            self._receive(self._path(bucket, key))
        self._reply(200, headers={"ETag": f'"{uuid.uuid4().hex}"'})

    def do_POST(self) -> None:
        bucket, key, query = self._target()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "uploads" in query:
            upload_id = uuid.uuid4().hex
            (self.root / bucket / "uploads" / upload_id).mkdir()
            xml = (
                f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
                f"<Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>"
            )
            return self._reply(200, xml.encode())
        # The parts become the object as they are, a directory of files served in order: S3
        # completes an upload without copying it, and copying here would cost every client a
        # pass over the payload that the network profiles would then count.
        upload = self.root / bucket / "uploads" / query["uploadId"][0]
        target = self._path(bucket, key)
        _remove(target)
        upload.rename(target)
        xml = (
            f"<CompleteMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
            f'<Key>{escape(key)}</Key><ETag>"{uuid.uuid4().hex}"</ETag>'
            "</CompleteMultipartUploadResult>"
        )
        self._reply(200, xml.encode())

    def do_DELETE(self) -> None:
        bucket, key, query = self._target()
        if "uploadId" in query:
            shutil.rmtree(self.root / bucket / "uploads" / query["uploadId"][0], True)
        else:
            _remove(self._path(bucket, key))
        self._reply(204)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        bucket, key, query = self._target()
        if not key:
            return self._list(bucket, query.get("prefix", [""])[0])
        path = self._path(bucket, key)
        if not path.exists():
            return self._error(404, "NoSuchKey")
        files = _files(path)
        size = sum(length for _, length in files)
        start, end, status = 0, size, 200
        headers = {
            "ETag": '"local"',
            "Last-Modified": email.utils.formatdate(path.stat().st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        match = _RANGE.match(self.headers.get("Range") or "")
        if match:
            start = int(match[1])
            end = min(size, int(match[2]) + 1) if match[2] else size
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "GET" and end > start:
            self.wfile.flush()
            offset = 0
            for piece, length in files:  # the parts of a multipart object, in order
                first, last = max(start, offset), min(end, offset + length)
                if first < last:
                    with piece.open("rb") as file:
                        self.connection.sendfile(file, first - offset, last - first)
                offset += length

    def _list(self, bucket: str, prefix: str) -> None:
        contents = []
        for path in sorted((self.root / bucket / "objects").iterdir()):
            key = unquote(path.name)
            if key.startswith(prefix) and not path.name.endswith(".tmp"):
                stamp = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                modified = stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                size = sum(length for _, length in _files(path))
                contents.append(
                    f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size>"
                    f"<LastModified>{modified}</LastModified></Contents>"
                )
        xml = (
            f"<ListBucketResult><Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(contents)}</KeyCount><IsTruncated>false</IsTruncated>"
            f"{''.join(contents)}</ListBucketResult>"
        )
        self._reply(200, xml.encode())


def _files(path: Path) -> list[tuple[Path, int]]:
    """The files an object is made of, with their sizes: itself, or its parts in order."""
    if path.is_dir():
        return [(part, part.stat().st_size) for part in sorted(path.iterdir())]
    return [(path, path.stat().st_size)]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients may hang up early
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def main() -> None:
    root = Path(sys.argv[1])
    root.mkdir(parents=True, exist_ok=True)
    handler = type("LocalS3Handler", (Handler,), {"root": root})
    server = Server(("127.0.0.1", 0), handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.umask(0o077)
    main()
