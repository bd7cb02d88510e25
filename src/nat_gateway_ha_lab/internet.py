"""The internet host's HTTP server (in natlab-inet): who am I, and a long deterministic download.

- `GET /whoami` answers the caller's source address: through the lab's IGW that is the EIP, which proves
  the client's traffic left through the gateway that owns it.
- `GET /bytes?size=N[&rate=BPS]` streams N deterministic bytes (`payload()`), at most BPS bytes per second
  when given, so a download can last long enough to cross a failover and still be checked (`sha256()`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from nat_gateway_ha_lab import topology as topo

CHUNK = 64 * 1024
MAX_SIZE = 1 << 40
# One random block, fixed by its seed; chunk i is that block with i in its first 8 bytes, so a lost,
# repeated or reordered chunk changes the checksum.
_BLOCK = random.Random(20161116).randbytes(CHUNK)


def payload(size: int, offset_chunk: int = 0) -> Iterator[bytes]:
    """The bytes `/bytes?size=size` sends, chunk by chunk."""
    index = offset_chunk
    left = size
    while left > 0:
        chunk = (index.to_bytes(8, "big") + _BLOCK[8:])[:left]
        yield chunk
        left -= len(chunk)
        index += 1


def sha256(size: int) -> str:
    """The checksum a complete download of `size` bytes must have."""
    digest = hashlib.sha256()
    for chunk in payload(size):
        digest.update(chunk)
    return digest.hexdigest()


class Handler(BaseHTTPRequestHandler):
    server_version = "natlab-internet/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/whoami":
            self._send(200, f"{self.client_address[0]}\n".encode())
        elif url.path == "/bytes":
            self._bytes(parse_qs(url.query))
        else:
            self._send(404, b"not found\n")

    def _bytes(self, query: dict[str, list[str]]) -> None:
        try:
            size = int(query.get("size", ["0"])[0])
            rate = float(query.get("rate", ["0"])[0])
        except ValueError:
            self._send(400, b"size and rate must be numbers\n")
            return
        if not 0 <= size <= MAX_SIZE or rate < 0:
            self._send(400, b"size out of range or negative rate\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        start = time.monotonic()
        sent = 0
        piece = CHUNK if not rate else max(1024, min(CHUNK, int(rate / 50)))
        try:
            for chunk in payload(size):
                for i in range(0, len(chunk), piece):
                    part = chunk[i : i + piece]
                    if rate:
                        ahead = sent / rate - (time.monotonic() - start)
                        if ahead > 0:
                            time.sleep(ahead)
                    self.wfile.write(part)
                    sent += len(part)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger(__name__).info("%s %s", self.client_address[0], format % args)


def serve(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=str(topo.INTERNET_HOST.ip))
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = serve(args.host, args.port)
    logging.info("serving on %s:%d", args.host, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
