"""A few of the agent's metrics in CloudWatch, where AWS users look first (optional, per pair).

A thread of its own puts them every `interval` seconds and soon after a change (a takeover, a health
verdict), so a takeover never waits on CloudWatch, and a CloudWatch outage costs nothing but a log line.
Per pair (dimension `Pair`): `Owner` (its Maximum says whether any gateway owns the pair), `SplitBrain`,
`Takeovers` and `TakeoverFailures` (sums), `TakeoverSeconds`; per gateway (`Pair`, `Host`): `Healthy`,
`Owner`. The instance role gets `cloudwatch:PutMetricData` for this namespace only, and only when enabled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from nat_gateway_ha import log
from nat_gateway_ha.config import AgentConfig

Snapshot = Callable[[], tuple[Mapping[str, Any], bool]]  # the agent's status and whether /healthz is 200
SOON = 2.0  # seconds a change waits, so that a burst of changes makes one put


class Publisher:
    def __init__(self, cfg: AgentConfig, client: Any, snapshot: Snapshot) -> None:
        self.cfg = cfg
        self.client = client
        self._snapshot = snapshot
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sent = {"takeovers_converged": 0, "takeovers_failed": 0}
        self._last_takeover: str | None = None
        self.puts = 0
        self.failures = 0

    def datums(self, status: Mapping[str, Any], healthy: bool) -> list[dict[str, Any]]:
        """The data for one put: gauges as they are, counters as their increase since the last put."""
        pair = [{"Name": "Pair", "Value": self.cfg.pair}]
        host = [*pair, {"Name": "Host", "Value": self.cfg.host}]
        owner = float(bool(status.get("owner")))
        out = [
            _datum("Owner", owner, pair),
            _datum("SplitBrain", float(bool(status.get("split_brain"))), pair),
            _datum("Takeovers", self._delta(status, "takeovers_converged"), pair),
            _datum("TakeoverFailures", self._delta(status, "takeovers_failed"), pair),
            _datum("Healthy", float(healthy), host),
            _datum("Owner", owner, host),
        ]
        last = status.get("last_takeover") or {}
        if last.get("started_at") and last.get("started_at") != self._last_takeover:
            self._last_takeover = last["started_at"]
            out.append(_datum("TakeoverSeconds", float(last.get("duration", 0)), pair, "Seconds"))
        return out

    def _delta(self, status: Mapping[str, Any], key: str) -> float:
        now = int(status.get(key, 0))
        delta, self._sent[key] = max(0, now - self._sent[key]), now
        return float(delta)

    def put_once(self) -> None:
        status, healthy = self._snapshot()
        data = self.datums(status, healthy)
        try:
            self.client.put_metric_data(Namespace=self.cfg.cloudwatch.namespace, MetricData=data)
            self.puts += 1
        except (ClientError, BotoCoreError) as err:
            self.failures += 1
            log.warning("cloudwatch_put_failed", error=str(err).replace("\n", "; "))

    def poke(self) -> None:
        """Something changed: put soon (at most one put per SOON seconds for a burst of changes)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.put_once()
            if self._wake.wait(self.cfg.cloudwatch.interval):
                self._wake.clear()
                self._stop.wait(SOON)

    def start(self) -> None:
        threading.Thread(target=self._loop, name="cloudwatch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def _datum(name: str, value: float, dims: list[dict[str, str]], unit: str = "None") -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Value": value, "Unit": unit}


def publisher(cfg: AgentConfig, region: str, snapshot: Snapshot) -> Publisher | None:
    """The agent's publisher, or None when the pair does not publish to CloudWatch."""
    if not cfg.cloudwatch.enabled:
        return None
    config = Config(
        region_name=region,
        connect_timeout=cfg.api_connect_timeout,
        read_timeout=cfg.api_read_timeout,
        retries={"mode": "standard", "total_max_attempts": 2},
    )
    client = boto3.client("cloudwatch", endpoint_url=cfg.cloudwatch.endpoint_url, config=config)
    return Publisher(cfg, client, snapshot)
