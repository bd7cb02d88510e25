"""Each gateway's event history: every VRRP transition, takeover and repair, with its reason, timings and
result, as JSON lines in the agent's state directory, so that at 3 a.m. `natgw-ha-agent history` says what
happened and how long it took, after the journal has rotated.

Appends are single `write`s of one line (O_APPEND), so a crash loses at most the line being written and a
reader skips a torn one. The file is kept to the last KEEP events: once it holds twice that, the tail is
rewritten atomically.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nat_gateway_ha import atomic

FILE = "history.jsonl"
KEEP = 500  # events kept per gateway: months of normal life, hours of a flapping pair


def record(state_dir: Path, event: str, **fields: Any) -> dict[str, Any]:
    """Append one event (`at` is now, epoch seconds) and trim the file when it has grown to 2 * KEEP."""
    entry = {"at": round(time.time(), 3), "event": event, **fields}
    path = state_dir / FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    if _torn(path):  # a crash mid-write left no newline: start on a line of our own
        line = b"\n" + line
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    events = read(state_dir)  # events are rare (a transition, a takeover, a repair): reading is cheap
    if len(events) > 2 * KEEP:
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events[-KEEP:])
        atomic.write_text(path, text, mode=0o600)
    return entry


def _torn(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def read(state_dir: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The events, oldest first (the `last` ones only if given); unreadable lines are skipped."""
    try:
        lines = (state_dir / FILE).read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(entry, dict):
            events.append(entry)
    return events[-last:] if last else events


def _result(e: dict[str, Any]) -> str:
    if e["event"] == "transition":
        return ""
    if e.get("conflict"):
        return "conflict"
    return "converged" if e.get("converged") else "NOT converged"


def table(events: Iterable[dict[str, Any]]) -> str:
    """A table a person reads at a glance: when, what, why, how long, how much moved, how it ended."""
    rows = [("time (UTC)", "event", "reason/state", "seconds", "moved", "result")]
    for e in events:
        when = datetime.fromtimestamp(float(e.get("at", 0)), UTC).strftime("%Y-%m-%d %H:%M:%S")
        why = str(e.get("reason") or e.get("state") or "")
        secs = f"{e['duration']:.3f}" if isinstance(e.get("duration"), int | float) else ""
        moved = f"{e['changed']}/{e['planned']}" if "planned" in e else ""
        rows.append((when, str(e.get("event", "?")), why, secs, moved, _result(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def record_result(state_dir: Path, event: str, reason: str, summary: dict[str, Any]) -> None:
    """A takeover or a repair, from its `Result.summary()`: the figures worth keeping, not the actions."""
    keep = (
        "converged",
        "conflict",
        "duration",
        "moved_seconds",
        "rounds",
        "throttled",
        "errors",
        "settle_checks",
    )
    figures = {k: summary[k] for k in keep if k in summary}
    record(
        state_dir,
        event,
        reason=reason,
        changed=summary.get("changed", 0),
        planned=len(summary.get("planned", [])),
        failed=len(summary.get("failed", {})),
        **figures,
    )
