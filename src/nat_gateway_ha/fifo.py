"""keepalived's notify_fifo lines, parsed: `INSTANCE "VI_1" MASTER 150`, in keepalived's order."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from nat_gateway_ha import log
from nat_gateway_ha.states import FIFO_WORDS, VrrpState


@dataclass(frozen=True)
class Event:
    kind: str  # INSTANCE or GROUP
    name: str
    state: VrrpState
    priority: int | None


def parse(line: str) -> Event | None:
    """One FIFO line to an Event; None (and a log line) for anything we do not understand."""
    text = line.strip()
    if not text:
        return None
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = []
    if len(parts) not in (3, 4) or parts[0] not in ("INSTANCE", "GROUP") or parts[2] not in FIFO_WORDS:
        log.warning("fifo_line_ignored", reason="malformed", line=text[:200])
        return None
    priority: int | None = None
    if len(parts) == 4:
        try:
            priority = int(parts[3])
        except ValueError:
            log.warning("fifo_line_ignored", reason="bad priority", line=text[:200])
            return None
    return Event(parts[0], parts[1], VrrpState(parts[2]), priority)


def for_instance(line: str, vrrp_instance: str) -> Event | None:
    """The event if the line is about our vrrp_instance; other instances (and GROUP lines) are skipped."""
    event = parse(line)
    if event is None or event.kind != "INSTANCE" or event.name != vrrp_instance:
        return None
    return event
