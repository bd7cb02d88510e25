"""The event history stays bounded and readable whatever a crash left in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nat_gateway_ha import history


def test_it_keeps_the_last_events_and_skips_a_torn_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(history, "KEEP", 5)
    for i in range(8):
        history.record(tmp_path, "transition", state="BACKUP", n=i)
    with (tmp_path / history.FILE).open("a") as f:
        f.write('{"at": 1, "event": "takeo')  # a crash in the middle of a write
    assert [e["n"] for e in history.read(tmp_path)] == list(range(8))
    monkeypatch.setattr(history, "KEEP", 3)
    history.record(tmp_path, "transition", state="MASTER", n=8)  # 9 events > 2 * KEEP: trimmed
    assert [e["n"] for e in history.read(tmp_path)] == [6, 7, 8]
    assert [e["n"] for e in history.read(tmp_path, last=2)] == [7, 8]


@pytest.mark.parametrize(
    ("summary", "result"),
    [
        ({"converged": True, "changed": 3, "planned": ["a", "b", "c"], "duration": 0.07}, "converged"),
        ({"converged": False, "changed": 1, "planned": ["a", "b"], "failed": {"a": "x"}}, "NOT converged"),
        ({"converged": True, "conflict": True, "changed": 2, "planned": ["a", "b"]}, "conflict"),
    ],
)
def test_the_table_says_how_a_takeover_ended(tmp_path: Path, summary: dict, result: str) -> None:
    history.record_result(tmp_path, "takeover", "MASTER", summary)
    header, row = history.table(history.read(tmp_path)).splitlines()
    assert header.split() == ["time", "(UTC)", "event", "reason/state", "seconds", "moved", "result"]
    assert row.split()[2:4] == ["takeover", "MASTER"]
    assert row.endswith(result) and f"{summary['changed']}/{len(summary['planned'])}" in row


def test_no_history_is_an_empty_table(tmp_path: Path) -> None:
    assert history.read(tmp_path) == []
    assert len(history.table([]).splitlines()) == 1
