"""Health tracking: turn the data-path checks into keepalived's track file, damped, and decide step-downs.

Which fault does what, and why:
- **Local faults** (a link down, the NAT ruleset gone, forwarding off, conntrack past its high-water mark)
  put the instance in FAULT: the master hands over at once (keepalived sends priority 0) and a backup
  cannot be elected. They are this host's own, so the peer is the better gateway whatever it reports.
  `fall` failed rounds trip it; `rise` good rounds clear it, so a flapping link does not flap the pair.
  The first round after a start is taken as it is, so a restarted agent never drops a healthy master.
- **Upstream** (the internet through the EIP) can only be probed by the master: on EC2 the backup's own
  address has no public path. A failure there may be shared by both gateways (an upstream outage), so the
  master steps down only if a peer says it is *eligible* (locally healthy, not held down, and its own
  upstream has not failed within `upstream_memory`). Then it holds FAULT for `upstream_holddown` seconds
  and remembers the failure, which makes it ineligible for the peer in turn: an outage that hits both
  moves the pair at most once, never back and forth. Unreachable peers count as not eligible: fail static.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nat_gateway_ha import atomic, checks, log, peers
from nat_gateway_ha.checks import Check
from nat_gateway_ha.config import AgentConfig


def write_track_file(path: Path, fault: bool) -> None:
    """keepalived reads the file on inotify: 0 is healthy, anything else is FAULT (weight 0)."""
    atomic.write_text(path, "1\n" if fault else "0\n")


class Health:
    """Runs the checks on threads of its own and publishes one verdict for keepalived and the peers."""

    def __init__(
        self,
        cfg: AgentConfig,
        is_master: Callable[[], bool],
        eligible_peer: Callable[[], str | None],
        local_checks: Callable[[], list[Check]] | None = None,
        upstream_check: Callable[[], Check] | None = None,
    ) -> None:
        self.cfg = cfg
        self.h = cfg.health
        self._is_master = is_master
        self._eligible_peer = eligible_peer
        source = str(cfg.eips[0].private_ip)
        probe = str(self.h.upstream_targets[0].host) if self.h.upstream_targets else "1.1.1.1"
        self._local_checks = local_checks or (
            lambda: checks.local(
                cfg.wan_interface,
                cfg.lan_interface,
                self.h.nat_table,
                self.h.conntrack_high_water,
                source,
                probe,
            )
        )
        via = str(cfg.probe_source or source)
        self._upstream_check = upstream_check or (
            lambda: checks.upstream(
                via, self.h.upstream_targets, self.h.upstream_method, self.h.upstream_timeout
            )
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.local_ok: bool | None = None
        self._fails = self._oks = 0
        self.last_checks: list[Check] = []
        self.upstream = "not probed"
        self.upstream_detail = ""
        self._up_fails = 0
        self._stepped_down_this_episode = False
        self.holddown_until = 0.0
        self.upstream_failed_at: float | None = None
        self.fault: bool | None = None
        self.changed = threading.Event()  # set whenever the verdict changes (the daemon republishes)

    # -- the verdict ----------------------------------------------------------------------------------
    def eligible(self) -> bool:
        """Whether this gateway could take the pair over from a peer whose upstream failed."""
        now = time.time()
        with self._lock:
            recent = (
                self.upstream_failed_at is not None and now - self.upstream_failed_at < self.h.upstream_memory
            )
            return (
                bool(self.local_ok)
                and now >= self.holddown_until
                and not recent
                and self.upstream != "failed"
            )

    def snapshot(self) -> dict[str, Any]:
        eligible = self.eligible()
        with self._lock:
            return {
                "healthy": self.local_ok,
                "fault": self.fault,
                "checks": [asdict(c) for c in self.last_checks],
                "upstream": self.upstream,
                "upstream_detail": self.upstream_detail,
                "upstream_failed_at_unix": self.upstream_failed_at,
                "holddown_until_unix": self.holddown_until or None,
                "eligible": eligible,
            }

    def _publish(self) -> None:
        fault = self.h.enabled and (not self.local_ok or time.time() < self.holddown_until)
        if fault == self.fault:
            return
        self.fault = fault
        if self.cfg.health_file is not None:
            try:
                write_track_file(self.cfg.health_file, fault)
            except OSError as err:
                log.error("track_file_write_failed", path=str(self.cfg.health_file), error=str(err))
        failing = ",".join(c.name for c in self.last_checks if not c.ok) or None
        (log.error if fault else log.info)(
            "health_verdict", fault=fault, failing=failing, upstream=self.upstream
        )
        self.changed.set()

    # -- local checks ---------------------------------------------------------------------------------
    def local_round(self) -> None:
        results = self._local_checks()
        ok = all(c.ok for c in results)
        with self._lock:
            self.last_checks = results
            if self.local_ok is None:
                self.local_ok = ok
            elif ok:
                self._oks, self._fails = self._oks + 1, 0
                if not self.local_ok and self._oks >= self.h.rise:
                    self.local_ok = True
            else:
                self._oks, self._fails = 0, self._fails + 1
                if self.local_ok and self._fails >= self.h.fall:
                    self.local_ok = False
        self._publish()

    # -- upstream -------------------------------------------------------------------------------------
    def upstream_round(self) -> None:
        if not self._is_master() or not self.h.enabled:
            with self._lock:
                self.upstream, self.upstream_detail, self._up_fails = "not probed", "backup", 0
                self._stepped_down_this_episode = False
            return
        result = self._upstream_check()
        with self._lock:
            self.upstream_detail = result.detail
            if result.ok:
                self.upstream, self._up_fails, self._stepped_down_this_episode = "ok", 0, False
                return
            self._up_fails += 1
            self.upstream = "failing" if self._up_fails < self.h.upstream_fall else "failed"
            decide = self.upstream == "failed" and not self._stepped_down_this_episode
            if decide:
                self._stepped_down_this_episode = True
        if decide:
            self._step_down_for_upstream(result.detail)

    def _step_down_for_upstream(self, detail: str) -> None:
        peer = self._eligible_peer()
        if peer is None:
            log.error("upstream_down_staying_master", detail=detail, reason="no eligible peer")
            return
        with self._lock:
            now = time.time()
            self.upstream_failed_at = now
            self.holddown_until = now + self.h.upstream_holddown
        log.error("upstream_down_stepping_down", detail=detail, to=peer, holddown=self.h.upstream_holddown)
        self._publish()

    # -- threads --------------------------------------------------------------------------------------
    def _loop(self, every: float, step: Callable[[], None]) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                step()
                if self.fault and time.time() >= self.holddown_until:
                    self._publish()  # a hold-down ran out
            except Exception as err:
                log.error("health_check_crashed", error=repr(err))
            self._stop.wait(max(0.0, every - (time.monotonic() - started)))

    def start(self) -> None:
        """One local round now (the verdict keepalived sees first), then checks in the background."""
        self.local_round()
        for name, every, step in (
            ("health", self.h.interval, self.local_round),
            ("upstream", self.h.upstream_interval, self.upstream_round),
        ):
            threading.Thread(target=self._loop, args=(every, step), name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def make_health(cfg: AgentConfig, is_master: Callable[[], bool]) -> Health:
    """The agent's health tracker, asking the pair's other members over the LAN when it must."""
    return Health(cfg, is_master, lambda: peers.eligible_peer(cfg.peers, cfg.listen_port, peers.TIMEOUT))
