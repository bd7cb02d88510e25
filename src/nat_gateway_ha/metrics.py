"""The agent's Prometheus metrics, with prometheus_client (it escapes label values and keeps histograms).

One registry per agent. Events count as they happen (`takeover`, `repair`, every EC2 call attempt through a
botocore hook); the gauges are set from the agent's status (`sync`) before each scrape and each textfile
write, so `/metrics`, the optional node_exporter textfile and `/status` never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    write_to_textfile,
)

from nat_gateway_ha.states import REPORTED as STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ_EVERY = 1.0  # seconds between reads of the nftables counter, however often the endpoint is asked
# Answers that show EC2 serves this gateway: a throttled call reached EC2 and was authorised.
REACHABLE = frozenset({"ok", "RequestLimitExceeded", "Throttling", "DryRunOperation"})
# Takeovers take 0.05 s (two tables, unthrottled) to minutes (hundreds of tables at EC2's refill rate).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# The *_created series would double every counter for nothing an alert uses.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(
        self,
        pair: str,
        host: str,
        conntrack: Callable[[], tuple[int, int] | None],
        vrrp_foreign: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._conntrack = conntrack
        self._vrrp_foreign = vrrp_foreign
        self._vrrp_read_at = 0.0  # nft is a process: read its counter at most every READ_EVERY s
        base = ["pair", "host"]
        self.labels = {"pair": pair, "host": host}
        self.cloud_ok_at = 0.0  # the last EC2 answer that shows the API serves us (unix time)
        self.cloud_failed: tuple[float, str] | None = None  # the last call that shows it does not

        def gauge(name: str, doc: str, *extra: str) -> Gauge:
            return Gauge(f"natgw_ha_{name}", doc, [*base, *extra], registry=r)

        def counter(name: str, doc: str, *extra: str) -> Counter:
            return Counter(f"natgw_ha_{name}", doc, [*base, *extra], registry=r)

        self.state = gauge("state", "VRRP state the agent acts on (1 for the current one).", "state")
        self.owner = gauge(
            "owner", "1 when the last verification found this gateway owning the EIPs and routes."
        )
        self.split_brain = gauge(
            "split_brain", "1 while this gateway is VRRP master and a peer holds part of it."
        )
        self.healthy = gauge(
            "healthy", "1 when /healthz is 200: keepalived alive, data path healthy, no split."
        )
        self.cloud_ok = gauge(
            "cloud_reachable", "1 unless the last EC2 call failed and none succeeded since."
        )
        self.keepalived_up = gauge("keepalived_up", "1 while this gateway's keepalived runs.")
        self.health_fault = gauge("health_fault", "1 while the data-path checks hold this gateway in FAULT.")
        self.check_ok = gauge("health_check_ok", "Last result of each data-path check (1 passed).", "check")
        self.in_progress = gauge(
            "takeover_in_progress", "1 while a takeover or repair is making its changes."
        )
        self.moved = gauge(
            "takeover_moved", "Changes made so far by the current (or last) takeover or repair."
        )
        self.planned = gauge("takeover_planned", "Changes that takeover or repair set out to make.")
        self.verified_at = gauge(
            "last_verified_timestamp_seconds", "When ownership was last verified (unix)."
        )
        self.verified_age = gauge("last_verified_age_seconds", "Seconds since ownership was last verified.")
        self.conntrack_entries = gauge("conntrack_entries", "Entries in the kernel's conntrack table.")
        self.vrrp_foreign = gauge(
            "vrrp_foreign_dropped_packets",
            "VRRP packets dropped as not from the pair's peers (a kernel counter).",
        )
        self.conntrack_max = gauge(
            "conntrack_max", "Size of the kernel's conntrack table (nf_conntrack_max)."
        )
        self.takeovers = counter(
            "takeovers", "Takeovers run, by reason (VRRP state or cause) and result.", "reason", "result"
        )
        self.repairs = counter("repairs", "Reconcile passes that found drift and changed something.")
        self.cloud_calls = counter(
            "cloud_calls", "EC2 call attempts, by API and answer (ok or the error code).", "api", "code"
        )
        self.duration = Histogram(
            "natgw_ha_takeover_duration_seconds",
            "Takeover duration, start to verified (or given up).",
            base,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        for result in ("converged", "failed"):  # present from the start: rate() needs a first sample
            self.takeovers.labels(pair, host, "MASTER", result)

    # -- events -----------------------------------------------------------------------------------------
    def takeover(self, reason: str, converged: bool, seconds: float) -> None:
        self.takeovers.labels(
            **self.labels, reason=reason, result="converged" if converged else "failed"
        ).inc()
        self.duration.labels(**self.labels).observe(seconds)

    def repair(self) -> None:
        self.repairs.labels(**self.labels).inc()

    def cloud_call(self, api: str, code: str) -> None:
        self.cloud_calls.labels(**self.labels, api=api, code=code).inc()

    def attach(self, client: Any) -> None:
        """Count every attempt `client` makes, retries included, so throttling shows as it happens."""
        client.meta.events.register("needs-retry.ec2", self._after_attempt)

    def _after_attempt(
        self, response: Any = None, caught_exception: Any = None, event_name: str = "", **_: Any
    ) -> None:
        api = event_name.rsplit(".", 1)[-1]
        if response is not None:
            code = (response[1] or {}).get("Error", {}).get("Code") or "ok"
        else:
            code = type(caught_exception).__name__ if caught_exception is not None else "unknown"
        self.cloud_call(api, code)
        if code in REACHABLE:
            self.cloud_ok_at = time.time()
        else:
            self.cloud_failed = (time.time(), f"{api}: {code}")

    def cloud_problem(self) -> str | None:
        """Why EC2 does not serve this gateway now: its last call failed and none succeeded since."""
        if self.cloud_failed is None or self.cloud_failed[0] <= self.cloud_ok_at:
            return None
        what = self.cloud_failed[1]
        since = f"since {time.time() - self.cloud_ok_at:.0f} s" if self.cloud_ok_at else "never answered"
        return f"the EC2 API does not serve this gateway ({what}; {since})"

    # -- state ------------------------------------------------------------------------------------------
    def sync(self, status: Mapping[str, Any], healthy: bool, keepalived_up: bool) -> None:
        lb = self.labels
        for s in STATES:
            self.state.labels(**lb, state=s).set(int(status.get("state") == s))
        self.owner.labels(**lb).set(int(bool(status.get("owner"))))
        self.split_brain.labels(**lb).set(int(bool(status.get("split_brain"))))
        self.healthy.labels(**lb).set(int(healthy))
        self.keepalived_up.labels(**lb).set(int(keepalived_up))
        self.cloud_ok.labels(**lb).set(int(self.cloud_problem() is None))
        health = status.get("health") or {}
        self.health_fault.labels(**lb).set(int(bool(health.get("fault"))))
        for check in health.get("checks") or []:
            self.check_ok.labels(**lb, check=str(check["name"])).set(int(bool(check["ok"])))
        progress = status.get("progress") or {}
        self.in_progress.labels(**lb).set(int(bool(progress.get("in_progress"))))
        self.moved.labels(**lb).set(progress.get("moved", 0))
        self.planned.labels(**lb).set(progress.get("of", 0))
        verified = float(status.get("verified_at_unix") or 0)
        self.verified_at.labels(**lb).set(verified)
        self.verified_age.labels(**lb).set(round(time.time() - verified, 3) if verified else float("nan"))
        if time.monotonic() - self._vrrp_read_at >= READ_EVERY:
            self._vrrp_read_at = time.monotonic()
            dropped = self._vrrp_foreign()
            if dropped is not None:
                self.vrrp_foreign.labels(**lb).set(dropped)
        table = self._conntrack()
        if table is not None:
            self.conntrack_entries.labels(**lb).set(table[0])
            self.conntrack_max.labels(**lb).set(table[1])

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def write(self, path: Path) -> None:
        """The node_exporter textfile (written to a temporary file, then renamed, by prometheus_client)."""
        write_to_textfile(str(path), self.registry)
