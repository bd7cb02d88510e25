"""keepalived notify_fifo lines: what we act on, and what we log and ignore."""

from __future__ import annotations

import pytest

from nat_gateway_ha.fifo import Event, for_instance, parse


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ('INSTANCE "VI_1" MASTER 150', Event("INSTANCE", "VI_1", "MASTER", 150)),
        ('INSTANCE "VI_1" BACKUP 100\n', Event("INSTANCE", "VI_1", "BACKUP", 100)),
        ('INSTANCE "VI_1" FAULT 0', Event("INSTANCE", "VI_1", "FAULT", 0)),
        ('INSTANCE "VI_1" STOP 150', Event("INSTANCE", "VI_1", "STOP", 150)),
        ('INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150', Event("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 150)),
        ('INSTANCE "name with space" MASTER 1', Event("INSTANCE", "name with space", "MASTER", 1)),
        ('GROUP "G1" MASTER', Event("GROUP", "G1", "MASTER", None)),
    ],
)
def test_well_formed(line: str, event: Event) -> None:
    assert parse(line) == event


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "garbage",
        'INSTANCE "VI_1"',
        'INSTANCE "VI_1" PROMOTED 150',
        'INSTANCE "VI_1" MASTER high',
        'INSTANCE "VI_1 MASTER 150',
        'VRRP "VI_1" MASTER 150',
        'INSTANCE "VI_1" MASTER 150 extra',
        "\x00\xff",
    ],
)
def test_malformed_is_ignored_and_logged(line: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="natgw-ha")
    assert parse(line) is None
    if line.strip():
        assert "fifo_line_ignored" in caplog.text


def test_only_our_instance() -> None:
    assert for_instance('INSTANCE "VI_1" MASTER 150', "VI_1") is not None
    assert for_instance('INSTANCE "VI_2" MASTER 150', "VI_1") is None
    assert for_instance('GROUP "VI_1" MASTER', "VI_1") is None
