"""moto's services behind a threaded HTTP/1.1 server that keeps connections open.

Usage::

    python benchmarks/moto_keepalive.py

Serves on 127.0.0.1 and a free port, prints ``http://127.0.0.1:<port>`` and stops when its
stdin closes. moto's own server (werkzeug's) answers every request with ``Connection: close``,
so each SQS call opens a new connection; behind a network profile that would cost every call a
TCP and TLS handshake that real SQS, which keeps connections open, does not. This server runs
the same moto application, reads each request body by its ``Content-Length`` and answers with
one, so clients keep their connections as they would with AWS.

It also takes out one cost of moto's that grows with the queue (:func:`patch_moto_sqs`): for
every message it returns, moto's ``ReceiveMessage`` computes all of the queue's attributes
(approximate counts included, a pass over every message in the queue) to read one of them,
the retention period, so a receive of ten messages at a depth of 200 takes about 120 ms
instead of a few. SQS's own latency does not grow with the queue's depth.
"""

from __future__ import annotations

import http.server
import io
import socket
import sys
import threading
from typing import Any


def make_handler(app: Any) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm holds
            # the body until the client's delayed ACK (40 ms) of the headers.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            host, _, port = (self.headers.get("Host") or "127.0.0.1").partition(":")
            environ: dict[str, Any] = {
                "REQUEST_METHOD": self.command,
                "SCRIPT_NAME": "",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "RAW_URI": self.path,
                "REQUEST_URI": self.path,
                "SERVER_NAME": host,
                "SERVER_PORT": port or str(self.server.server_address[1]),
                "SERVER_PROTOCOL": self.request_version,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
                "REMOTE_ADDR": self.client_address[0],
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
            for name, value in self.headers.items():
                key = "HTTP_" + name.upper().replace("-", "_")
                if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                    environ[key] = value
            started: list[Any] = []

            def start_response(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Any:
                started[:] = [status, headers]
                return lambda data: None

            result = app(environ, start_response)
            try:
                payload = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status, headers = started
            self.send_response(int(status.split()[0]), status.partition(" ")[2])
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

    return Handler


def patch_moto_sqs() -> None:
    """Make moto's retention check of a received message read the queue's retention period
    alone (as moto stores it: an int of seconds) instead of computing every attribute of the
    queue; the check itself is unchanged."""
    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        queue = self.get_queue(queue_name)
        retention = int(queue.message_retention_period)  # type: ignore[attr-defined]
        return bool(retention + message.sent_timestamp / 1000 > unix_time())  # type: ignore[operator]

    setattr(  # noqa: B010
        SQSBackend,
        "is_message_valid_based_on_retention_period",
        is_message_valid_based_on_retention_period,
    )


def main() -> None:
    from moto.server import DomainDispatcherApplication, create_backend_app

    patch_moto_sqs()
    app = DomainDispatcherApplication(create_backend_app)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(app))
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
