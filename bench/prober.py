"""Client-side prober: a new connection every `--every` seconds, each one a GET /whoami with a short timeout.

Runs inside the client's network namespace beside the sampler: the sampler shows what a running download
feels, this shows when *new* connections work again. Standard library only. Writes one JSON file of
`[epoch, ok]` pairs.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path


def probe(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(f"GET /whoami HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            return b" 200 " in s.recv(64)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="198.51.100.10")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    samples: list[tuple[float, bool]] = []
    end = time.time() + args.duration
    while (now := time.time()) < end:
        samples.append((now, probe(args.host, args.port, args.timeout)))
        time.sleep(max(0.0, now + args.every - time.time()))
    args.out.write_text(json.dumps(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
