"""Turn the bench's raw runs into bench/results/: summary.json, results.md and one PNG timeline per kind.

Can be rerun on its own (`python bench/report.py`) from the raw files a run kept, so a figure can be
checked or the report reworded without repeating the measurements.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from metrics import fmt, stats, throughput

RESULTS = Path(__file__).resolve().parent / "results"
RAW = RESULTS / "raw"
KIND_LABELS = {
    "stop": "systemctl stop keepalived",
    "sigkill": "SIGKILL every keepalived process",
    "lan-down": "master's LAN link down",
    "linkdown": "master's LAN link down",  # the kind's name in results before the faults moved to the lab
}
VARIANT_LABELS = {"project": "project defaults", "seed": "seed (blog post)"}
DIRECTIONS = ("failover", "failback")
FIGURES = ("detection", "convergence", "plane_to_master", "outage", "moved_away", "carried")

STANDING_NOTES = [
    "The seed's script repoints only the VIP's /32 in each private route table. The VPC routes "
    "internet-bound traffic by 0.0.0.0/0 (as AWS does), which the seed never touches: after its takeover the "
    "client's packets still go to the old master while the EIP has moved to the new one, so the path works "
    "again only when the EIP comes back (the failback), or never if the old master's data path is gone.",
    "Seed runs: the post's two keepalived.conf blocks and its script are extracted from the post at run "
    "time; the EIP placeholder is filled in, `script_user root` is added (its hosts ran the script as root), "
    "`aws` is wrapped to add --endpoint-url (credentials: the instance role, through the lab's IMDS), "
    "each gateway gets the host route to its peer that VRRP across the two LAN subnets needs, and the "
    "instances get HttpTokens=optional for its IMDSv1 calls; all of it is undone afterwards.",
    "Flow carried by new master: bytes flowed again through the new master before the next fault and "
    "before anything moved the cloud away from it. A download can end intact without that, because the "
    "failback hands the flow back to the gateway that holds its connection state (TCP retries span the gap).",
]


def summarise_failovers(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant and kind: stats of every figure, per direction, over the runs that were made."""
    out: dict[str, Any] = {}
    for run in runs:
        out.setdefault(run["variant"], {}).setdefault(run["kind"], []).append(run)
    summary: dict[str, Any] = {}
    for variant, kinds in out.items():
        for kind, kruns in kinds.items():
            entry: dict[str, Any] = {
                "runs": len(kruns),
                "intact": sum(1 for r in kruns if r.get("intact")),
                "errors": [r["error"] for r in kruns if r.get("error")],
                "download_errors": [r["download_error"] for r in kruns if r.get("download_error")],
            }
            for i, direction in enumerate(DIRECTIONS):
                trs = [r["transitions"][i] if len(r["transitions"]) > i else {} for r in kruns]
                entry[direction] = {key: stats([t.get(key) for t in trs]) for key in FIGURES}
            summary.setdefault(variant, {})[kind] = entry
    return summary


def add_derived(runs: list[dict[str, Any]]) -> None:
    """Data plane applied from the new master (the API figure's origin), and who carried the flow.

    `carried` says whether bytes flowed again while the new master still owned the cloud, before the next
    fault: a download that is only "intact" because the failback gave the flow back to the gateway holding
    its connection state has not survived the failover.
    """
    for run in runs:
        trs = run["transitions"]
        plane_events = run.get("dataplane", [])
        for i, tr in enumerate(trs):
            plane, master = tr.get("plane_done_at"), tr.get("master_at")
            tr["plane_to_master"] = plane - master if plane is not None and master is not None else None
            if tr.get("outage") is None or tr.get("outage_at") is None:
                tr["carried"] = None
                continue
            resumed = tr["outage_at"] + tr["outage"]
            limit = trs[i + 1]["fault_at"] if i + 1 < len(trs) else float("inf")
            lost = [
                e["ts"]
                for e in plane_events
                if e["ts"] > tr["fault_at"]
                and (e["kind"] == "eip" or str(e.get("host", "")).startswith("gw"))
                and e.get("host") != tr["new"]
                and e["ts"] > (tr.get("api_done_at") or tr["fault_at"])
            ]
            limit = min([limit, *lost])
            tr["carried"] = 1.0 if resumed < limit else 0.0


def timeline(kind: str, runs: list[dict[str, Any]], out: Path) -> None:
    """Throughput through failover and failback, the run with the median outage of each variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in VARIANT_LABELS if any(r["variant"] == v for r in runs)]
    fig, axes = plt.subplots(len(variants), 1, figsize=(11, 3.2 * len(variants)), squeeze=False)
    for ax, variant in zip(axes[:, 0], variants, strict=True):
        vruns = [r for r in runs if r["variant"] == variant and r["transitions"]]
        vruns.sort(key=lambda r: r["transitions"][0].get("outage") or 0.0)
        if not vruns:
            continue
        run = vruns[len(vruns) // 2]
        raw = json.loads((RAW / run["raw"]).read_text()) if (RAW / run["raw"]).exists() else {"ticks": []}
        times, rates = throughput(raw["ticks"], 0.1)
        t0 = raw["ticks"][0][0] if raw["ticks"] else 0.0
        ax.plot([t - t0 for t in times], rates, lw=0.9, color="tab:blue", label="client throughput")
        marks = (
            ("fault_at", "tab:red", "fault"),
            ("master_at", "tab:orange", "new VRRP master"),
            ("api_done_at", "tab:green", "last EIP/route API call done"),
        )
        for n, tr in enumerate(run["transitions"]):
            for key, colour, label in marks:
                if tr.get(key):
                    ax.axvline(tr[key] - t0, color=colour, ls="--", lw=1, label=label if n == 0 else None)
            if tr.get("outage_at") and tr.get("outage"):
                start = tr["outage_at"] - t0
                ax.axvspan(
                    start,
                    start + tr["outage"],
                    color="grey",
                    alpha=0.25,
                    label="longest gap" if n == 0 else None,
                )
            ax.annotate(
                f"{'failover' if n == 0 else 'failback'} {tr['old']}->{tr['new']}",
                (tr["fault_at"] - t0, ax.get_ylim()[1] * 0.92),
                fontsize=8,
            )
        state = "intact" if run.get("intact") else f"NOT intact ({run.get('download_error') or 'checksum'})"
        ax.set_title(
            f"{VARIANT_LABELS[variant]}: {KIND_LABELS.get(kind, kind)} (run {run['run']}, download {state})",
            fontsize=10,
        )
        ax.set_ylabel("MB/s (100 ms bins)")
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("seconds since the download started")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's three goals, each with the measured figure and by how much it is met or missed."""
    fo = summary.get("failover", {})
    out: list[dict[str, Any]] = []
    kill = fo.get("project", {}).get("sigkill", {})
    med = kill.get("failover", {}).get("outage", {}).get("median")
    out.append(
        {
            "goal": "median data-path outage <= 1 s when keepalived is SIGKILLed (project defaults)",
            "measured": med,
            "met": med is not None and med <= 1.0,
        }
    )
    runs = sum(k["runs"] for k in fo.get("project", {}).values())
    intact = sum(k["intact"] for k in fo.get("project", {}).values())
    carried = sum(k["failover"]["carried"].get("sum", 0) for k in fo.get("project", {}).values())
    out.append(
        {
            "goal": "every download survives (project defaults, all kinds)",
            "measured": f"{intact}/{runs} intact; new master carried it in {carried:.0f}/{runs} failovers",
            # Intact only because the failback gave the flow back to the gateway holding its state is not
            # surviving the failover: both must hold.
            "met": runs > 0 and intact == runs and carried == runs,
        }
    )
    sweep = summary.get("sweep", {})
    p5 = sweep.get("project", {}).get("5", {}).get("median")
    s5 = sweep.get("seed", {}).get("5", {}).get("median")
    ratio = s5 / p5 if p5 and s5 else None
    out.append(
        {
            "goal": "cloud convergence >= 20x faster than the seed's script at 5 route tables",
            "measured": ratio,
            "met": ratio is not None and ratio >= 20,
        }
    )
    return out


def carried(s: dict[str, Any]) -> str:
    """In how many runs bytes flowed again through the new master before anything took the cloud away."""
    if not s.get("n"):
        return "n/a"
    return f"{round(s['sum']):d}/{s['n']}"


def moves(s: dict[str, Any]) -> str:
    """Total EIP/route changes away from the new master after its takeover, over the runs: 0 is right."""
    if not s.get("n"):
        return "n/a"
    return f"max {s['max']:.0f} (n={s['n']})"


def markdown(summary: dict[str, Any]) -> str:
    lines = ["# Failover as users feel it: project defaults vs the seed", ""]
    meta = summary.get("meta", {})
    lines += [
        f"Measured {meta.get('started', '?')} to {meta.get('finished', '?')} on {meta.get('machine', '?')} "
        f"by `make bench` ({meta.get('argv', '')}). Figures are `median [min-max] (n=runs)`; "
        "every time comes from the host's one clock (the lab's containers share it).",
        "",
        "## Failover and failback under a running download",
        "",
        "VRRP detection: fault to the new master's keepalived `Entering MASTER STATE`. Cloud convergence: "
        "new master to the last EIP/route API call answered (agent: its status; seed: its `Primary VIP "
        "config finished` log line). Data plane: new master to the lab's data plane applying the last change "
        "(the seed never moves 0.0.0.0/0, so its figure is the EIP alone). Outage: longest stretch with no "
        "byte at the client (10 ms samples) from the fault on (a gap the failover opens counts whole). Moves "
        "away after: data plane changes taking the EIP or a route away from the new master once its takeover "
        "is done, before the next fault (two gateways fighting over the cloud; 0 is right).",
        "",
        "| variant | failure | direction | VRRP detection | cloud convergence | data plane applied | "
        "data-path outage | flow carried by new master | downloads intact | moves away after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, kinds in summary.get("failover", {}).items():
        for kind, entry in kinds.items():
            for direction in DIRECTIONS:
                d = entry[direction]
                lines.append(
                    f"| {VARIANT_LABELS.get(variant, variant)} | {KIND_LABELS.get(kind, kind)} | {direction} "
                    "| "
                    f"{fmt(d['detection'])} | {fmt(d['convergence'])} | {fmt(d['plane_to_master'])} | "
                    f"{fmt(d['outage'])} | {carried(d['carried'])} | {entry['intact']}/{entry['runs']} | "
                    f"{moves(d['moved_away'])} |"
                )
    sweep = summary.get("sweep", {})
    if sweep:
        lines += [
            "",
            "## Cloud convergence by number of managed route tables",
            "",
            "Agent: a `systemctl stop keepalived` failover, new master to its last API call answered. Seed: "
            "primary-backup.sh run as notify_master runs it, start to end (its /32 routes exist already, "
            "as after an earlier takeover). The lab's minimum is 2 private tables (one per LAN subnet).",
            "",
            "| route tables | agent (project) | seed's script | seed / agent |",
            "|---|---|---|---|",
        ]
        sizes = sorted({int(k) for v in sweep.values() if isinstance(v, dict) for k in v}, key=int)
        for n in sizes:
            p = sweep.get("project", {}).get(str(n), {})
            s = sweep.get("seed", {}).get(str(n), {})
            ratio = f"{s['median'] / p['median']:.0f}x" if p.get("median") and s.get("median") else "n/a"
            lines.append(f"| {n} | {fmt(p, digits=3)} | {fmt(s)} | {ratio} |")
    ans = summary.get("ansible")
    if ans:
        lines += ["", "## Ansible wall time", "", "| run | wall time | recap |", "|---|---|---|"]
        for row in ans.get("rows", []):
            lines.append(f"| {row['name']} | {row['wall']:.1f} s | {row.get('recap', '')} |")
        lines += [f"- {note}" for note in ans.get("notes", [])]
    lines += ["", "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    for g in summary.get("goals", []):
        m = g["measured"]
        shown = f"{m:.2f}" if isinstance(m, float) else (m if m is not None else "not measured")
        lines.append(f"| {g['goal']} | {shown} | {'yes' if g['met'] else 'NO'} |")
    notes = list(dict.fromkeys([*summary.get("notes", []), *STANDING_NOTES]))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if summary.get("not_run"):
        lines += ["", "## Not run", ""] + [f"- {n}" for n in summary["not_run"]]
    return "\n".join(lines) + "\n"


def write(summary: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    add_derived(runs)
    summary["failover"] = summarise_failovers(runs)
    summary["goals"] = goals(summary)
    (RESULTS / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "results.md").write_text(markdown(summary))
    for kind in sorted({r["kind"] for r in runs}):
        timeline(kind, [r for r in runs if r["kind"] == kind], RESULTS / f"timeline-{kind}.png")


def main() -> int:
    summary = json.loads((RESULTS / "summary.json").read_text())
    runs = json.loads((RESULTS / "runs.json").read_text())
    write(summary, runs)
    print((RESULTS / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
