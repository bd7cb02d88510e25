"""Client-side sampler: one rate-limited HTTP download, bytes received recorded every 10 ms.

Runs inside the client's network namespace (`ip netns exec natlab-client python bench/sampler.py ...`), so
it sees the data path exactly as a user behind the NAT pair does. Standard library only: it must not depend
on anything the lab or the agent might break. Writes one JSON file; prints `ready` once bytes flow, so the
orchestrator knows when to start injecting faults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import selectors
import socket
import sys
import time
from pathlib import Path
from typing import Any

READ_SIZE = 256 * 1024


def _read_headers(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """Read the status line and headers; return status, lower-cased headers and any body bytes read."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def download(host: str, port: int, path: str, tick: float, stall_timeout: float) -> dict[str, Any]:
    """Download `path`, sampling the running byte count every `tick` seconds until EOF, error or stall."""
    digest = hashlib.sha256()
    ticks: list[tuple[float, int]] = []
    total = 0
    error: str | None = None
    started = time.time()
    sock = socket.create_connection((host, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: natgw-bench\r\n\r\n".encode())
    status, headers, body = _read_headers(sock, time.monotonic() + 10)
    length = int(headers["content-length"]) if "content-length" in headers else None
    digest.update(body)
    total += len(body)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    next_tick = time.monotonic()
    last_byte = next_tick
    announced = False
    try:
        while length is None or total < length:
            now = time.monotonic()
            if now >= next_tick:
                ticks.append((time.time(), total))
                next_tick += tick
                if next_tick < now:  # we were descheduled: resynchronise rather than burst ticks
                    next_tick = now + tick
            if now - last_byte > stall_timeout:
                error = f"stalled: no byte for {stall_timeout:.0f} s"
                break
            if not sel.select(timeout=max(0.0, next_tick - time.monotonic())):
                continue
            try:
                chunk = sock.recv(READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
            last_byte = time.monotonic()
            if not announced and total >= 64 * 1024:
                print("ready", flush=True)
                announced = True
    finally:
        ticks.append((time.time(), total))
        sel.close()
        sock.close()
    if error is None and length is not None and total < length:
        error = f"short read: {total} of {length} bytes"
    return {
        "started": started,
        "finished": time.time(),
        "status": status,
        "headers": headers,
        "content_length": length,
        "total": total,
        "sha256": digest.hexdigest(),
        "error": error,
        "tick": tick,
        "ticks": ticks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="198.51.100.10")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--size", type=int, required=True, help="bytes to download")
    parser.add_argument("--rate", type=int, required=True, help="bytes per second the server sends")
    parser.add_argument("--tick", type=float, default=0.01)
    parser.add_argument("--stall-timeout", type=float, default=90.0)
    parser.add_argument("--expect-sha256", default=None, help="digest of the deterministic stream")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    path = f"/bytes?size={args.size}&rate={args.rate}"
    try:
        result = download(args.host, args.port, path, args.tick, args.stall_timeout)
    except OSError as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "total": 0, "ticks": [], "sha256": None}
    result["size"] = args.size
    result["rate"] = args.rate
    result["expect_sha256"] = args.expect_sha256
    result["intact"] = bool(
        result["error"] is None
        and result["total"] == args.size
        and (args.expect_sha256 is None or result["sha256"] == args.expect_sha256)
    )
    args.out.write_text(json.dumps(result))
    print("done" if result["intact"] else f"failed: {result['error'] or 'checksum mismatch'}", flush=True)
    return 0 if result["intact"] else 1


if __name__ == "__main__":
    sys.exit(main())
