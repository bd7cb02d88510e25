"""A failover drawn from what the gateways recorded: the picture in the README (`monitoring/failover.png`).

Needs the converged lab (`make lab`). A client downloads at 1 MB/s through the pair (bench/sampler.py in its
namespace); 4 s in, keepalived stops on the master. Afterwards each gateway's event history
(`natgw-ha-agent history --json`) gives the VRRP states and the takeovers with their durations, and the lab's
data plane log gives the cloud changes (EIP and routes) as EC2 applied them. Three panels on one clock:
client throughput, VRRP state per gateway, cloud calls.

    python bench/failover_picture.py [--out monitoring/failover.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab import Lab
from metrics import throughput
from nat_gateway_ha_lab import faults
from runner import SAMPLER

RATE, SECONDS, LEAD = 1_000_000, 14, 4.0
STATE_LEVEL = {"MASTER": 2, "BACKUP": 1, "FAULT": 0, "STOP": 0}


Histories = dict[str, list[dict[str, Any]]]


def record(lab: Lab, out_raw: Path) -> tuple[dict[str, Any], Histories, list[Any]]:
    """Run the download and the fault; return what happened, each gateway's history and the cloud log."""
    master = lab.wait("a single VRRP master", lab.vrrp_master, 30)
    cmd = [
        "ip", "netns", "exec", lab.netns("client"), sys.executable, str(SAMPLER),
        "--size", str(RATE * SECONDS), "--rate", str(RATE), "--out", str(out_raw), "--stall-timeout", "20",
    ]  # fmt: skip
    since = time.time()
    sampler = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert sampler.stdout is not None
    if sampler.stdout.readline().strip() != "ready":
        raise SystemExit("the client's download did not start")
    time.sleep(LEAD)
    stop = faults.FAULTS["stop"]
    fault_at = stop.inject(master)
    try:
        sampler.wait(timeout=SECONDS + 40)
    finally:
        stop.restore(master)
    time.sleep(2)
    agent = "/opt/nat-gateway-ha/venv/bin/natgw-ha-agent"
    histories: Histories = {}
    for g in lab.gateways:
        events = json.loads(lab.sh(g, f"{agent} history --json --last 0"))
        histories[g] = [e for e in events if e.get("at", 0) >= since - 1]
    return {"fault_at": fault_at, "master": master}, histories, lab.dataplane(since)


def draw(
    raw: dict[str, Any],
    meta: dict[str, Any],
    histories: Histories,
    plane: list[Any],
    out: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ticks = raw["ticks"]
    t0 = ticks[0][0]
    end = ticks[-1][0] - t0
    fig, (tp, st, cl) = plt.subplots(3, 1, figsize=(11, 6.5), sharex=True, height_ratios=[2.2, 1.2, 1.2])
    times, rates = throughput(ticks, 0.1)
    tp.plot([t - t0 for t in times], rates, lw=0.9, color="tab:blue", label="client throughput")
    tp.set_ylabel("MB/s (100 ms bins)")
    intact = "intact" if raw.get("intact") else "NOT intact"
    tp.set_title(f"keepalived stopped on {meta['master']} 4 s into a 1 MB/s download (download {intact})")
    for ax in (tp, st, cl):
        ax.axvline(meta["fault_at"] - t0, color="tab:red", ls="--", lw=1, label="keepalived stopped")
    tp.legend(fontsize=7, loc="lower right")
    colours = dict(zip(histories, ("tab:orange", "tab:green"), strict=False))
    for host, events in histories.items():
        changes = [
            (e["at"] - t0, STATE_LEVEL[e["state"]])
            for e in events
            if e.get("event") == "transition" and e.get("state") in STATE_LEVEL
        ]
        first = 2 if host == meta["master"] else 1  # before the first change: what it was when we began
        xs, ys = [0.0, *(x for x, _ in changes)], [first, *(y for _, y in changes)]
        st.step([*xs, end], [*ys, ys[-1]], where="post", color=colours[host], label=host)
        for e in events:
            if e.get("event") == "takeover" and e.get("planned"):
                start = e["at"] - e.get("duration", 0) - t0
                cl.axvspan(start, e["at"] - t0, color=colours[host], alpha=0.3, label=f"takeover by {host}")
                cl.annotate(
                    f"{host}: {e.get('changed')}/{e.get('planned')} in {e.get('duration', 0):.2f} s",
                    (e["at"] - t0, 2.6), fontsize=8,
                )  # fmt: skip
    st.set_yticks([0, 1, 2], ["STOP/FAULT", "BACKUP", "MASTER"])
    st.set_ylim(-0.4, 2.4)
    st.legend(fontsize=7, loc="lower right")
    st.set_ylabel("VRRP state")
    rows = {"eip": 2, "route": 1}
    for e in plane:
        if e.ts - t0 < 0:
            continue
        cl.plot(e.ts - t0, rows.get(e.kind, 0), "o", color=colours.get(e.host, "grey"), ms=5)
    cl.set_yticks([1, 2], ["route", "EIP"])
    cl.set_ylim(0.4, 3.0)
    cl.set_ylabel("cloud changes")
    cl.legend(fontsize=7, loc="lower right")
    cl.set_xlabel("seconds since the download started")
    cl.set_xlim(0, end)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=Path, default=root / "monitoring" / "failover.png")
    args = parser.parse_args()
    raw_path = Path("/tmp/natgw-failover-picture.json")
    meta, histories, plane = record(Lab(), raw_path)
    draw(json.loads(raw_path.read_text()), meta, histories, plane, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
