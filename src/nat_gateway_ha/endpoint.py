"""The agent's HTTP endpoint on the LAN: `/healthz` for probes, `/status` for people, `/peer` for the peers,
`/metrics` for Prometheus (the same text as the optional node_exporter textfile).

Read-only and small: it serves what the daemon already knows, from memory, so it answers while a takeover
runs. `/healthz` is 200 only when this gateway can do its job (keepalived alive, data path healthy).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nat_gateway_ha import log
from nat_gateway_ha.metrics import CONTENT_TYPE

Route = Callable[[], tuple[int, dict[str, Any] | str]]  # status code and JSON body, or text


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self._send(404, {"error": f"no such path {self.path[:100]}", "paths": sorted(self.server.routes)})
            return
        try:
            code, body = route()
        except Exception as err:
            code, body = 500, {"error": repr(err)}
        self._send(code, body)

    def _send(self, code: int, body: dict[str, Any] | str) -> None:
        if isinstance(body, str):  # Prometheus' text exposition format
            data, kind = body.encode(), CONTENT_TYPE
        else:
            data, kind = (json.dumps(body, sort_keys=True, default=str) + "\n").encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every second would drown the journal


class Endpoint(ThreadingHTTPServer):
    daemon_threads = True

    allow_reuse_address = True

    def __init__(self, address: str, port: int, routes: dict[str, Route]):
        super().__init__((address, port), _Handler)
        self.routes = routes

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of our own name (seconds without a resolver)."""
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def serve_in_background(self) -> None:
        threading.Thread(target=self.serve_forever, name="endpoint", daemon=True).start()
        log.info("endpoint_listening", address=self.server_address[0], port=self.server_address[1])
