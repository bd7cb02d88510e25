"""The agent's loop: keepalived's notify FIFO in, takeovers and reconciliation out, one at a time.

A reader thread turns FIFO lines into events; one worker acts on them. Fast transitions coalesce (the
latest state wins, after an optional debounce), so MASTER,BACKUP,MASTER ends as one owner and never runs
two takeovers at once. While MASTER the worker re-checks ownership every reconcile_interval seconds and
repairs drift (a route changed by hand, a claim lost in a split brain, a half-finished takeover).
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from nat_gateway_ha import history, log, peers, status
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.fifo import Event, for_instance
from nat_gateway_ha.flows import Flows
from nat_gateway_ha.health import Health, make_health
from nat_gateway_ha.keepalived import keepalived_alive, open_fifo
from nat_gateway_ha.ownership import Result
from nat_gateway_ha.reports import Reports
from nat_gateway_ha.states import RECLAIM, VrrpState
from nat_gateway_ha.status import AgentStatus
from nat_gateway_ha.takeover import Cloud

RETRY_UNCONVERGED = 1.0  # seconds between passes while the cloud is not yet fully ours
PROGRESS_EVERY = 0.5  # seconds between status writes while a (paced, long) takeover is under way


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Agent:
    """The order of events, written once: keepalived's FIFO line -> `submit` (latest wins) -> the worker's
    `handle` -> the peer's flows committed into the kernel (`Flows.before_takeover`) -> a claim
    (`Cloud.takeover(claim=True)`) -> conntrackd resynced (`Flows.after_takeover`) -> claims until
    converged -> reconciles (`claim=False`) every reconcile_interval while MASTER. Leaving MASTER shortens
    the kernel's conntrack timers (`Flows.stood_down`). Health tracking runs beside it and acts only through
    keepalived (the track file), so every change of mastership still arrives as a FIFO line.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        cloud: Cloud,
        dry_run: bool = False,
        state: str = VrrpState.UNKNOWN,
        health: Health | None = None,
    ) -> None:
        self.cfg = cfg
        self.cloud = cloud
        self.dry_run = dry_run
        self.state = VrrpState(state)
        self.health = health or make_health(cfg, self.serves_pair)
        self.flows = Flows(cfg.flow_sync and not dry_run)
        self._claiming = False  # elected and not yet owner of everything: move what a peer holds too
        self._cond = threading.Condition()
        self._latest: Event | None = None
        self._latest_at = 0.0
        self._stop = threading.Event()
        self._busy = False
        self.takeovers = 0
        self.last_result: Result | None = None
        self.status: AgentStatus = {
            "pair": cfg.pair,
            "host": cfg.host,
            "state": self.state,
            "owner": None,
            "dry_run": dry_run,
            "last_event": None,
            "last_takeover": None,
            "verified_at": None,
            "verified_at_unix": 0,
            "takeovers_converged": 0,
            "takeovers_failed": 0,
            "repairs": 0,
            "split_brain": False,
            "contested": [],
            "flows": self.flows.last,
            "progress": None,
            "api_throttled": 0,
            "pid": os.getpid(),
            "updated_at_unix": 0.0,
            "health": {},
        }
        self._progress_at = 0.0
        self.reports = Reports(self)
        self._cloud_checked_at = 0.0

    def _still_elected(self) -> bool:
        """No newer keepalived line that takes MASTER away waits to be handled."""
        latest = self._latest  # one read: the FIFO thread may replace it
        return latest is None or latest.state in RECLAIM

    def serves_pair(self) -> bool:
        """MASTER and verified owner: only then does the pair's egress (and an upstream probe) cross here."""
        return self.state == VrrpState.MASTER and self.status["owner"] is True

    # -- input ----------------------------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        """Queue a state change; a newer one replaces an unhandled older one (latest wins)."""
        with self._cond:
            self._latest = event
            self._latest_at = time.monotonic()
            self._cond.notify_all()
        log.info("vrrp_event", instance=event.name, state=event.state, priority=event.priority)

    def feed_line(self, line: str) -> None:
        event = for_instance(line, self.cfg.vrrp_instance)
        if event is not None:
            self.submit(event)

    def read_fifo(self, fd: int) -> None:
        """Reader thread: split the FIFO's bytes into lines, until stop()."""
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError as err:
                if err.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                raise
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self.feed_line(raw.decode("utf-8", "replace"))

    # -- work -----------------------------------------------------------------------------------------
    def _next_event(self, timeout: float) -> Event | None:
        with self._cond:
            deadline = time.monotonic() + timeout
            while self._latest is None and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            # Debounce: wait until the line has been quiet for `debounce` seconds; the latest state wins.
            while self._latest is not None and not self._stop.is_set():
                quiet = self._latest_at + self.cfg.debounce - time.monotonic()
                if quiet <= 0:
                    break
                self._cond.wait(quiet)
            event, self._latest = self._latest, None
            return event

    def handle(self, event: Event) -> None:
        self.status["last_event"] = {"state": event.state, "priority": event.priority, "at": _now()}
        history.record(self.cfg.state_dir, "transition", state=event.state, priority=event.priority)
        if event.state in RECLAIM:
            fresh = self.state != VrrpState.MASTER
            self.state = VrrpState.MASTER
            self.status["state"] = self.state
            if fresh:
                self.flows.before_takeover()
            self.run_takeover(reason=event.state)
            if fresh:
                self.flows.after_takeover()
        else:
            self.state = VrrpState.STOP if event.state == VrrpState.DELETED else VrrpState(event.state)
            self.flows.stood_down(self.state)
            self._claiming = False
            self.status["state"] = self.state
            self.status["owner"] = None  # no longer verified by us: the peer's agent owns the cloud side
            self._split_brain(None)
            log.info("reconcile_stopped", state=self.state)
            self.publish()

    def _progress(self, result: Result) -> None:
        """A takeover's calls answered: say how far it is (written at most every PROGRESS_EVERY s)."""
        self.status["progress"] = result.progress() | {"in_progress": True}
        now = time.monotonic()
        if now - self._progress_at >= PROGRESS_EVERY:
            self._progress_at = now
            self.publish()

    def _finished(self, result: Result) -> None:
        if result.planned:
            done = {"in_progress": False, "converged": result.converged}
            self.status["progress"] = result.progress() | done
        pacer = self.cloud.pacer
        self.status["api_throttled"] = pacer.throttled if pacer is not None else 0

    def run_takeover(self, reason: str) -> Result:
        started = _now()
        self._busy = True
        self._claiming = True
        try:
            result = self.cloud.takeover(
                dry_run=self.dry_run, claim=True, on_progress=self._progress, elected=self._still_elected
            )
        finally:
            self._busy = False
        self._finished(result)
        self.last_result = result
        summary = result.summary() | {"started_at": started, "reason": reason}
        self.status["last_takeover"] = summary
        history.record_result(self.cfg.state_dir, "takeover", reason, summary)
        self.reports.metrics.takeover(reason, result.converged, result.duration)
        if result.converged:
            self.status["takeovers_converged"] += 1
        else:
            self.status["takeovers_failed"] += 1
        self._verified(result)
        self.takeovers += 1  # last: whoever waits on the count finds the takeover's status complete
        log_fn = log.info if result.converged else log.error
        log_fn(
            "takeover",
            reason=reason,
            converged=result.converged,
            changed=len(result.done),
            pending=len(result.pending),
            failed=len(result.failed),
            switched=f"{result.moved:.3f}",  # the last change acknowledged: the data path moved
            duration=f"{result.duration:.3f}",  # to verified
            dry_run=self.dry_run,
        )
        self.publish()
        return result

    def reconcile(self) -> Result:
        result = self.cloud.takeover(dry_run=self.dry_run, claim=self._claiming, on_progress=self._progress)
        self._finished(result)
        self.last_result = result
        if result.done:
            history.record_result(self.cfg.state_dir, "repair", "drift", result.summary())
            self.reports.metrics.repair()
            self.status["repairs"] += 1  # last, as for takeovers: the count says the record is there
            log.warning(
                "drift_repaired", changed=len(result.done), actions=" ".join(str(a) for a in result.done)
            )
        if result.pending or "verify" in result.failed:
            log.error("reconcile_not_converged", pending=" ".join(str(a) for a in result.pending))
        self._verified(result)
        if result.contested and self._peers_stood_down():
            # The split healed with the peer going BACKUP before it could send us a lower-priority advert,
            # so keepalived emits nothing here: the peer itself says it is no longer master. Claim.
            return self.run_takeover(reason="peer_not_master")
        self.publish()
        return result

    def _next_watch(self) -> float:
        return time.monotonic() + self.cfg.view_max_age / 2

    def watch(self) -> None:
        """Not master: look, change nothing. Keeps a view fresh for a claim to act on (view_max_age)."""
        try:
            self.cloud.observe()
        except (ClientError, BotoCoreError) as err:
            log.warning("watch_failed", error=str(err).replace("\n", "; "))

    def check_cloud(self) -> None:
        """Idle: one cheap EC2 call when none succeeded for cloud_check_interval, so /healthz knows whether
        this gateway could take over (its path to EC2, its credentials) before it has to."""
        every, now = self.cfg.cloud_check_interval, time.time()
        due = now - max(self.reports.metrics.cloud_ok_at, self._cloud_checked_at) >= every
        if not every or not due:
            return
        self._cloud_checked_at = now
        try:
            self.cloud.ec2.describe_addresses(AllocationIds=[self.cloud.target.eips[0].allocation_id])
        except (ClientError, BotoCoreError) as err:
            log.warning("cloud_check_failed", error=str(err).replace("\n", "; "))

    def _peers_stood_down(self) -> bool:
        """Every peer answers, and none says MASTER: what a peer holds is then a stale claim."""
        views = peers.states(self.cfg.peers, self.cfg.listen_port, peers.TIMEOUT)
        return bool(views) and None not in views.values() and VrrpState.MASTER not in views.values()

    def _verified(self, result: Result) -> None:
        self.status["owner"] = result.converged and not result.dry_run
        if result.converged:
            self.status["verified_at"] = _now()
            self.status["verified_at_unix"] = round(time.time(), 3)
        if result.converged or (result.conflict and not self.cloud.target.wins_conflicts):
            self._claiming = False  # owner now, or a higher-priority peer claims at the same time: yield
        self._split_brain(result)

    def _split_brain(self, result: Result | None) -> None:
        """MASTER here while a peer holds part of the cloud: VRRP is split. Report it; never fight over it."""
        contested = [str(a) for a in result.contested] if result is not None else []
        split = self.state == VrrpState.MASTER and (bool(contested) or bool(result and result.conflict))
        if split and not self.status["split_brain"]:
            log.error(
                "split_brain", contested=len(contested), hint="both gateways are VRRP master: check VRRP"
            )
        elif self.status["split_brain"] and not split:
            log.info("split_brain_over")
        self.status["split_brain"] = split
        self.status["contested"] = contested

    def publish(self) -> None:
        self.status["updated_at_unix"] = round(time.time(), 3)
        self.status["health"] = self.health.snapshot()
        try:
            status.write(self.cfg.state_dir, self.status)
            self.reports.published()
        except OSError as err:
            log.error("status_write_failed", error=str(err))

    def _next_pass(self, result: Result | None) -> float:
        """When to reconcile next: soon if the cloud is still half-moved, else after reconcile_interval."""
        interval = self.cfg.reconcile_interval
        busy = result is not None and (result.pending or result.contested or "verify" in result.failed)
        if busy and result is not None and not result.dry_run:
            interval = min(interval, RETRY_UNCONVERGED)
        return time.monotonic() + interval

    def work(self) -> None:
        """The worker: events first, reconciliation when idle and MASTER."""
        next_reconcile = time.monotonic()
        if self.state == VrrpState.MASTER:
            next_reconcile = self._next_pass(self.run_takeover(reason="agent_start"))
        self.publish()
        while not self._stop.is_set():
            wait = max(0.0, next_reconcile - time.monotonic()) if self.state == VrrpState.MASTER else 3600.0
            event = self._next_event(min(wait, 1.0))
            if self._stop.is_set():
                break
            if self.health.changed.is_set():
                self.health.changed.clear()
                self.publish()
            if event is None and time.monotonic() < next_reconcile:
                if self.state != VrrpState.MASTER:
                    self.check_cloud()  # between a watching backup's looks too: quiet unless EC2 was
                continue
            if event is not None:
                self.handle(event)
                next_reconcile = self._next_pass(self.last_result if self.state == VrrpState.MASTER else None)
            elif self.state == VrrpState.MASTER and not keepalived_alive(self.cfg.keepalived_pidfile):
                log.error("keepalived_gone", pidfile=str(self.cfg.keepalived_pidfile))
                self.handle(Event("INSTANCE", self.cfg.vrrp_instance, VrrpState.STOP, None))
            elif self.state == VrrpState.MASTER:
                next_reconcile = self._next_pass(self.reconcile())
            elif self.cfg.view_max_age > 0:
                self.watch()
                next_reconcile = self._next_watch()
            else:
                self.check_cloud()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()  # the worker may be waiting for the next event

    def run(self, fifo_fd: int | None = None) -> None:
        """Serve until stop(): a reader thread on the FIFO and the worker on this thread."""
        fd = open_fifo(self.cfg.fifo_path) if fifo_fd is None else fifo_fd
        reader = threading.Thread(target=self.read_fifo, args=(fd,), name="fifo", daemon=True)
        reader.start()
        if self.health.fault is None:
            self.health.start()
        self.reports.start()
        log.info(
            "agent_started", pair=self.cfg.pair, host=self.cfg.host, state=self.state, fifo=self.cfg.fifo_path
        )
        try:
            self.work()
        finally:
            self._stop.set()
            self.health.stop()
            self.reports.stop()
            reader.join(timeout=2)
            if fifo_fd is None:
                os.close(fd)
