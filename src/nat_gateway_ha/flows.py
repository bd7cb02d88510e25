"""conntrackd, driven by the agent on every VRRP transition: the order that keeps flows across a failover.

- Elected (MASTER): commit the peer's entries, kept in conntrackd's external cache, into the kernel
  *before* the cloud moves, so the first packet the new routes or the EIP bring here finds its flow. After
  the move: flush both caches, resync the internal cache from the kernel and send the peer a bulk update,
  so that it now holds this gateway's flows.
- BACKUP: shorten the kernel's timers (entries of flows the peer now serves expire instead of lingering)
  and ask the master for a full resync (the external cache may be stale after a restart).
- FAULT or STOP: shorten the timers only.

Each step is a conntrackd client call over its UNIX socket, bounded in time: a missing or stuck conntrackd
costs a log line, never the takeover.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

from nat_gateway_ha import log
from nat_gateway_ha.states import VrrpState

CONNTRACKD = "/usr/sbin/conntrackd"
CONFIG = "/etc/conntrackd/conntrackd.conf"
TIMEOUT = 5.0  # seconds per call; a commit of 100k entries takes well under one

BEFORE_TAKEOVER = (("commit", "-c"),)
AFTER_TAKEOVER = (("flush", "-f"), ("resync", "-R"), ("bulk_send", "-B"))
ON_BACKUP = (("shorten_timers", "-t"), ("request_resync", "-n"))
ON_FAULT = (("shorten_timers", "-t"),)


class Flows:
    """The conntrackd steps of each transition; `enabled=False` makes every step a no-op."""

    def __init__(self, enabled: bool, binary: str = CONNTRACKD, config: str = CONFIG) -> None:
        self.enabled = enabled
        self.binary = binary
        self.config = config
        self.last: dict[str, float | str] = {}

    def before_takeover(self) -> None:
        self._run(BEFORE_TAKEOVER)

    def after_takeover(self) -> None:
        self._run(AFTER_TAKEOVER)

    def stood_down(self, state: str) -> None:
        self._run(ON_BACKUP if state == VrrpState.BACKUP else ON_FAULT)

    def _run(self, steps: Sequence[tuple[str, str]]) -> None:
        if not self.enabled:
            return
        for name, flag in steps:
            t0 = time.monotonic()
            try:
                proc = subprocess.run(
                    [self.binary, "-C", self.config, flag],
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT,
                    check=False,
                )
                error = proc.stderr.strip()[-200:] if proc.returncode else ""
            except (OSError, subprocess.TimeoutExpired) as exc:
                error = str(exc)[-200:]
            took = time.monotonic() - t0
            self.last[name] = f"failed: {error}" if error else round(took, 4)
            if error:
                log.error("flows_step_failed", step=name, error=error.replace("\n", "; "))
            else:
                log.info("flows_step", step=name, duration=f"{took:.4f}")
