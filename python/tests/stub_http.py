"""A small HTTP server on 127.0.0.1 for the tracker's tests (no cluster):

- ``GET /events`` and ``POST /eval/stream``: a stream (``text/event-stream``) that sends
  one event, then waits until the client says it read it (``read_first()``, at most
  ``WAIT`` seconds), then a last event; ``in_time`` records, per stream, whether the
  client read the first event before the server gave up waiting;
- ``POST /eval``: ``{"eval_id": "<new id>"}``; ``POST /eval/long``: an eval_id of 70
  characters;
- ``POST /eval/redirect``: 303 to ``/results/<new id>``, whose GET answers
  ``{"eval_id": "<that id>"}``.

Every id handed out is in ``ids``.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from typing import Any, List

WAIT = 20.0


class Server:
    def __init__(self) -> None:
        srv = self
        self.streams: List[threading.Event] = []
        self.in_time: List[bool] = []
        self.ids: List[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _json(self, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                read = threading.Event()
                srv.streams.append(read)
                self.wfile.write(b"data: first\n\n")
                self.wfile.flush()
                srv.in_time.append(read.wait(WAIT))
                self.wfile.write(b"data: last\n\n")
                self.wfile.flush()

            def _new(self) -> str:
                e = "s" + secrets.token_hex(4)
                srv.ids.append(e)
                return e

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/events":
                    self._stream()
                elif self.path.startswith("/results/"):
                    self._json({"eval_id": self.path.rsplit("/", 1)[1]})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                if self.path == "/eval":
                    self._json({"eval_id": self._new()})
                elif self.path == "/eval/long":
                    self._json({"eval_id": "l" * 70})
                elif self.path == "/eval/stream":
                    self._stream()
                elif self.path == "/eval/redirect":
                    self.send_response(303)
                    self.send_header("Location", f"/results/{self._new()}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_error(404)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def waited(self, n: int) -> List[bool]:
        """``in_time`` once ``n`` streams have stopped waiting (a client may close a stream
        before its handler records it)."""
        deadline = time.monotonic() + WAIT + 10
        while len(self.in_time) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.in_time)

    def read_first(self) -> None:
        """The client read the first event of the latest stream."""
        self.streams[-1].set()

    def close(self) -> None:
        for e in self.streams:
            e.set()
        self.server.shutdown()
        self.server.server_close()
