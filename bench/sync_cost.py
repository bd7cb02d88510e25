"""What flow sync costs: new connections per second a master forwards with conntrackd on and off.

In the lab (`make lab` first): a client opens short TCP connections (an HTTP GET each) to the internet host
through the pair from several threads for `--seconds`, once with conntrackd running on both gateways and once
with it stopped, alternating `--rounds` times; prints both rates side by side. Figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from nat_gateway_ha_lab import faults
from nat_gateway_ha_lab import topology as topo

HERE = Path(__file__).resolve().parent
CLIENT = """
import socket, sys, threading, time
host, seconds, workers = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
count = [0] * workers
def work(i):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, 80), timeout=2) as s:
                s.sendall(b"GET /whoami HTTP/1.0\\r\\n\\r\\n")
                while s.recv(4096):
                    pass
            count[i] += 1
        except OSError:
            pass
threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
[t.start() for t in threads]; [t.join() for t in threads]
print(sum(count) / seconds)
"""


def rate(seconds: float, workers: int) -> float:
    cmd = ["ip", "netns", "exec", topo.host("client").netns, "/usr/bin/python3", "-c", CLIENT]
    argv = [*cmd, str(topo.UPSTREAM_TARGETS[0]), str(seconds), str(workers)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return float(out.stdout.strip())


def sync(on: bool) -> None:
    for g in topo.gateways():
        faults.sh(g.name, f"systemctl {'start' if on else 'stop'} conntrackd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    on: list[float] = []
    off: list[float] = []
    try:
        for _ in range(args.rounds):
            sync(True)
            on.append(rate(args.seconds, args.workers))
            sync(False)
            off.append(rate(args.seconds, args.workers))
    finally:
        sync(True)
    med_on, med_off = statistics.median(on), statistics.median(off)
    print(f"| conntrackd | new connections/s (median of {args.rounds}) | runs |")
    print("|---|---|---|")
    print(f"| off | {med_off:.0f} | {', '.join(f'{r:.0f}' for r in off)} |")
    print(f"| on | {med_on:.0f} | {', '.join(f'{r:.0f}' for r in on)} |")
    print(f"cost: {100 * (1 - med_on / med_off):.1f} %")
    (HERE / "results" / "flows" / "sync_cost.json").write_text(json.dumps({"on": on, "off": off}, indent=1))


if __name__ == "__main__":
    main()
