"""The VRRP states, one enum for the FIFO parser, the daemon, the metrics and the CLI.

keepalived's notify_fifo words plus the agent's own UNKNOWN (before keepalived has said anything). A
StrEnum: the status JSON, the metrics' labels and the playbooks keep reading the same words.
"""

from __future__ import annotations

from enum import StrEnum


class VrrpState(StrEnum):
    MASTER = "MASTER"
    # Still master, and an advert of a lower priority was heard: a split brain healing. Re-claims.
    MASTER_RX_LOWER_PRI = "MASTER_RX_LOWER_PRI"
    BACKUP = "BACKUP"
    FAULT = "FAULT"
    STOP = "STOP"
    DELETED = "DELETED"  # the instance left keepalived's config: the agent treats it as STOP
    UNKNOWN = "UNKNOWN"


# Lines that make this gateway claim the cloud.
RECLAIM = frozenset({VrrpState.MASTER, VrrpState.MASTER_RX_LOWER_PRI})
# What keepalived writes to the FIFO.
FIFO_WORDS = frozenset(VrrpState) - {VrrpState.UNKNOWN}
# What the agent reports as its own state (status, metrics).
REPORTED = (VrrpState.MASTER, VrrpState.BACKUP, VrrpState.FAULT, VrrpState.STOP, VrrpState.UNKNOWN)
