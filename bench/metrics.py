"""Figures from raw samples: data-path gaps, throughput series and the statistics the report quotes.

Kept free of lab access so the numbers can be recomputed from the raw JSON the bench keeps.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

Ticks = Sequence[Sequence[float]]  # [(epoch, cumulative bytes), ...] every 10 ms


def longest_gap(ticks: Ticks, start: float, end: float) -> tuple[float, float]:
    """Longest stretch with no byte received that is under way in [start, end]: (seconds, start epoch).

    A stretch starts at the last tick that saw the byte count grow and ends at the next one that does, so the
    figure is what the user waited, within one tick (10 ms). It is counted from `start` at the earliest but
    not cut at `end`: a failover whose path comes back only after the failback shows its whole wait. A
    download that never resumes gives a gap that runs to the end of the recording.
    """
    grew = [ticks[0][0]] if ticks else []
    grew += [t for (t, n), (_, prev) in zip(ticks[1:], ticks[:-1], strict=False) if n > prev]
    if ticks and (not grew or grew[-1] < ticks[-1][0]):
        grew.append(ticks[-1][0])  # a stall that lasts to the end still counts
    best, at = 0.0, start
    for a, b in itertools.pairwise(grew):
        if b < start or a > end:
            continue
        gap = b - max(a, start)
        if gap > best:
            best, at = gap, max(a, start)
    return best, at


def throughput(ticks: Ticks, bin_s: float = 0.1) -> tuple[list[float], list[float]]:
    """Bytes per second in bins of `bin_s`, as (bin start epochs, MB/s)."""
    if len(ticks) < 2:
        return [], []
    t0 = ticks[0][0]
    times: list[float] = []
    rates: list[float] = []
    i = 0
    edge = t0
    while edge < ticks[-1][0]:
        start_bytes = ticks[i][1]
        while i + 1 < len(ticks) and ticks[i + 1][0] <= edge + bin_s:
            i += 1
        times.append(edge)
        rates.append((ticks[i][1] - start_bytes) / bin_s / 1e6)
        edge += bin_s
    return times, rates


def stats(values: Sequence[float | None]) -> dict[str, Any]:
    """Median and spread of the measured values; runs that produced no figure are counted, not hidden."""
    xs = sorted(v for v in values if v is not None)
    out: dict[str, Any] = {"n": len(xs), "missing": len(values) - len(xs)}
    if xs:
        out |= {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "sum": sum(xs)}
        if len(xs) >= 4:
            q = statistics.quantiles(xs, n=4)
            out |= {"p25": q[0], "p75": q[2]}
    return out


def fmt(s: dict[str, Any], unit: str = "s", digits: int = 2) -> str:
    """`median [min-max] (n=..)` for the markdown table."""
    if not s.get("n"):
        return "n/a"
    text = f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]{unit and ' ' + unit}"
    text += f" (n={s['n']}"
    text += f", {s['missing']} missing)" if s.get("missing") else ")"
    return text
