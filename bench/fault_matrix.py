"""`make bench-faults`: the fault matrix's timing side, in the lab, under a running download.

For each fault kind and run: a rate-limited download and a prober of new connections run in the client;
the master is broken with the lab's own fault injection (src/nat_gateway_ha_lab/faults.py), held broken,
then restored. Per run: the time until new connections work again, the download's longest gap (data-path
outage), the EIP moves the data plane applied, whether the download ended intact, and whether the pair
ended right (one owner that is the VRRP master, egress through the EIP). Writes
bench/results/faults.md and faults.json. Figures, not tests: nothing here fails on a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from metrics import fmt, longest_gap, stats
from nat_gateway_ha_lab import faults, state
from nat_gateway_ha_lab import topology as topo

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CLIENT_NS = topo.host("client").netns
PYTHON = "/usr/bin/python3"  # the client namespace runs this machine's Python: stdlib-only scripts
# Kinds and how long each stays broken; the partition and the shared outage are timed faults.
KINDS: dict[str, float] = {
    "stop": 8,
    "sigkill": 8,
    "agent-sigkill": 8,
    "power-off": 8,
    "lan-down": 8,
    "wan-down": 8,
    "nat-flushed": 8,
    "forwarding-off": 8,
    "conntrack-full": 8,
    "restart-storm": 0,
    "upstream-down": 14,
    "vrrp-partition": 20,
    "upstream-down-both": 20,
    "planned-switchover": 0,
}
RATE = 1_000_000  # bytes per second of the download (as in bench/failover.py)
SPAN = 34.0  # seconds the download lasts; faults start 3 s in


def _wait_healthy(timeout: float = 40) -> state.LabState:
    deadline = time.monotonic() + timeout
    lab = state.describe()
    while not lab.healthy and time.monotonic() < deadline:
        time.sleep(0.5)
        lab = state.describe()
    return lab


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    cmd = ["ip", "netns", "exec", CLIENT_NS, PYTHON, str(HERE / script), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _recovery(samples: list[list[Any]], fault_at: float) -> tuple[float, int]:
    """(seconds from the fault until new connections work again, failed probes in all): the end of the
    first run of failures after the fault; 0 when none failed. A later blip (a heal) counts as failures."""
    after = [(t, ok) for t, ok in samples if t >= fault_at]
    failed = [t for t, ok in after if not ok]
    if not failed:
        return 0.0, 0
    back = [t for t, ok in after if ok and t > failed[0]]
    return (back[0] - fault_at if back else after[-1][0] - fault_at), len(failed)


def run_once(kind: str, index: int, raw_dir: Path) -> dict[str, Any]:
    lab = _wait_healthy()
    if not lab.healthy or lab.vrrp_master is None:
        return {"kind": kind, "run": index, "error": "lab not healthy before the fault"}
    master = lab.vrrp_master
    fault = faults.FAULTS[kind]
    dl_out, pr_out = raw_dir / f"{kind}-{index}-download.json", raw_dir / f"{kind}-{index}-probes.json"
    size = int(RATE * SPAN)
    sampler = _spawn(
        "sampler.py", "--size", str(size), "--rate", str(RATE), "--stall-timeout", "35", "--out", str(dl_out)
    )
    prober = _spawn("prober.py", "--duration", str(SPAN), "--out", str(pr_out))
    assert sampler.stdout is not None
    sampler.stdout.readline()  # "ready": bytes flow
    time.sleep(2)
    fault_at = fault.inject(master)
    time.sleep(max(0.0, fault_at + KINDS[kind] - time.time()))
    try:
        end = _wait_healthy(30) if KINDS[kind] < 15 else state.describe()
    finally:
        fault.restore(master)
    end = _wait_healthy()
    sampler.wait(timeout=SPAN + 120)
    prober.wait(timeout=SPAN + 30)
    download = json.loads(dl_out.read_text())
    probes = json.loads(pr_out.read_text())
    gap, _ = longest_gap(download.get("ticks", []), fault_at - 0.5, fault_at + 30)
    moves = state.eip_moves(fault_at)
    recovery, failed = _recovery(probes, fault_at)
    return {
        "kind": kind,
        "run": index,
        "master": master,
        "fault_at": fault_at,
        "recovery": recovery,
        "failed_probes": failed,
        "outage": round(gap, 3),
        "moves": len(moves),
        "intact": bool(download.get("intact")),
        "end_right": end.healthy,
        "owner": end.eip_owner,
    }


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Faults as users feel them (make bench-faults)",
        "",
        f"Lab, project defaults; a {RATE // 1000} kB/s download and a new connection every 0.1 s through the "
        "pair while the master is broken. Median [min-max] over the runs.",
        "",
        "| fault | runs | new connections work again | failed probes | download outage | EIP moves | "
        "download intact | end state right |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        runs = [r for r in rows if r["kind"] == kind and "error" not in r]
        if not runs:
            continue
        rec, out = stats([r["recovery"] for r in runs]), stats([r["outage"] for r in runs])
        lines.append(
            f"| {faults.FAULTS[kind].label} | {len(runs)} | {fmt(rec)} | "
            f"{', '.join(str(r['failed_probes']) for r in runs)} | {fmt(out)} | "
            f"{', '.join(str(r['moves']) for r in runs)} | {sum(r['intact'] for r in runs)}/{len(runs)} | "
            f"{sum(r['end_right'] for r in runs)}/{len(runs)} |"
        )
    lines += [
        "",
        "New connections: from the fault to the end of the first run of failed probes (0 when none failed); "
        "failed probes: of all probes after the fault, one every 0.1 s (a heal's blip shows here). "
        "Download outage: the longest stretch without a byte from 0.5 s before the fault to 30 s after. "
        "A partition or a shared upstream outage is timed (20 s), then restored.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="rebuild the tables from the raw files")
    args = parser.parse_args(argv)
    raw_dir = args.out / "faults-raw"
    if args.report_only:
        rows = json.loads((args.out / "faults.json").read_text())
        for row in rows:
            if "error" not in row:
                probes = json.loads((raw_dir / f"{row['kind']}-{row['run']}-probes.json").read_text())
                row["recovery"], row["failed_probes"] = _recovery(probes, row["fault_at"])
        (args.out / "faults.json").write_text(json.dumps(rows, indent=1) + "\n")
        (args.out / "faults.md").write_text(report(rows))
        print(report(rows))
        return 0
    raw_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(1, args.runs + 1):
        for kind in args.kinds:
            row = run_once(kind, i, raw_dir)
            print(json.dumps(row), flush=True)
            rows.append(row)
            faults.clear()
    (args.out / "faults.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "faults.md").write_text(report(rows))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
