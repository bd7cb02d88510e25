"""The shipped Grafana dashboard's panels, drawn from a real Prometheus across a lab failover.

Grafana is not packaged for Debian, so this is not a Grafana screenshot: it evaluates every query of
`monitoring/grafana/nat-gateway-ha.json` with `query_range` on the lab's Prometheus (the one
tests/lab/test_monitoring.py starts: in the VPC, scraping both agents every second) and draws each panel
where the dashboard puts it. Needs the converged lab (`make lab`). Timeline: 20 s quiet, keepalived stopped
on the master, 40 s, keepalived back.

    python bench/dashboard_picture.py [--out monitoring/dashboard.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from nat_gateway_ha_lab import faults, state
from nat_gateway_ha_lab import prometheus as lab_prometheus

QUIET, AFTER = 20.0, 40.0
# Grafana's own windows ([1h], [1m]) would show nothing over a 90 s run: the same queries, shorter windows.
WINDOWS = {"[1h]": "[2m]", "[1m]": "[15s]"}


def _series(prom: lab_prometheus.Prometheus, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    for long, short in WINDOWS.items():
        expr = expr.replace(long, short)
    expr = expr.replace("$pair", ".*")
    data = prom.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step="1")
    return list(data["result"])


def _legend(fmt: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        fmt = fmt.replace("{{" + key + "}}", value)
    return fmt


def record() -> tuple[dict[str, list[list[dict[str, Any]]]], float, float, float, str]:
    dashboard = json.loads(lab_prometheus.DASHBOARD.read_text())
    lab = state.describe()
    master = lab.vrrp_master
    if master is None or not lab.healthy:
        raise SystemExit(f"the lab is not healthy:\n{lab.render()}")
    with lab_prometheus.running() as prom:
        start = time.time()
        time.sleep(QUIET)
        stop = faults.FAULTS["stop"]
        fault_at = stop.inject(master)
        try:
            time.sleep(AFTER)
        finally:
            stop.restore(master)
        time.sleep(5)
        end = time.time()
        panels = {
            p["title"]: [_series(prom, t["expr"], start, end) for t in p["targets"]]
            for p in dashboard["panels"]
        }
    return panels, start, end, fault_at, master


def draw(panels: dict[str, list[list[dict[str, Any]]]], start: float, fault_at: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(lab_prometheus.DASHBOARD.read_text())
    layout = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in layout) // 7
    fig, axes = plt.subplots(rows, 2, figsize=(13, 2.3 * rows), squeeze=False)
    for panel in layout:
        ax = axes[panel["gridPos"]["y"] // 7][panel["gridPos"]["x"] // 12]
        for target, results in zip(panel["targets"], panels[panel["title"]], strict=True):
            for r in results:
                xs = [float(t) - start for t, _ in r["values"]]
                ys = [float(v) for _, v in r["values"]]
                ax.step(xs, ys, where="post", lw=1.1, label=_legend(target["legendFormat"], r["metric"]))
        ax.axvline(fault_at - start, color="tab:red", ls="--", lw=0.8)
        ax.set_title(panel["title"], fontsize=9)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("seconds (red: keepalived stopped on the master)", fontsize=8)
    fig.suptitle(
        "nat-gateway-ha dashboard, its queries on the lab's Prometheus across a failover", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=Path, default=root / "monitoring" / "dashboard.png")
    args = parser.parse_args()
    panels, start, _end, fault_at, master = record()
    draw(panels, start, fault_at, args.out)
    print(f"wrote {args.out} (keepalived stopped on {master})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
