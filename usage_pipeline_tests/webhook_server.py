"""A real HTTP server on loopback that records the JSON bodies POSTed to it (a stand-in for a
Slack incoming webhook), answering each with the next of ``statuses`` (then 200)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Webhook:
    url: str
    received: list[dict] = field(default_factory=list)  # every body, in arrival order
    statuses: list[int] = field(default_factory=list)  # answers to give first (then 200)

    @property
    def texts(self) -> list[str]:
        """The ``text`` of every message the server accepted (answered 2xx)."""
        return [body["text"] for body in self.received if body.get("_status", 200) < 300]


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length).decode())
            assert self.headers.get("Content-Type") == "application/json"
            status = hook.statuses.pop(0) if hook.statuses else 200
            hook.received.append({**body, "_status": status})
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
