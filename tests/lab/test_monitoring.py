"""Monitoring that runs for real: a Prometheus server in the VPC scrapes both agents across a failover and a
split brain, evaluates the shipped alert rules, and answers every query of the shipped dashboard.

It needs a lab converged with site.yml, so it runs from the Molecule scenario `faults` (which sets
NATLAB_FAULT_MATRIX=1); anywhere else it skips.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest

from nat_gateway_ha_lab import faults, state
from nat_gateway_ha_lab import prometheus as lab_prometheus
from nat_gateway_ha_lab import topology as topo
from support import cloudwatch_stat

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.environ.get("NATLAB_FAULT_MATRIX") != "1",
        reason="needs the converged lab (molecule scenario faults)",
    ),
]

PAIR = topo.PAIR
SCRAPE = 1.0  # the lab Prometheus' scrape and evaluation interval (prometheus.config)


def _healthy(timeout: float = 30.0) -> state.LabState:
    deadline = time.monotonic() + timeout
    lab = state.describe()
    while not lab.healthy and time.monotonic() < deadline:
        time.sleep(0.3)
        lab = state.describe()
    assert lab.healthy, f"the lab did not end healthy:\n{lab.render()}"
    return lab


def _firing(prom: lab_prometheus.Prometheus, alert: str) -> list[dict[str, str]]:
    return [a for a in prom.alerts("firing") if a["alertname"] == alert]


def _healthz(host: str) -> dict[str, object] | None:
    return state.agent_status(host, "/healthz")


@pytest.fixture
def prom() -> Iterator[lab_prometheus.Prometheus]:
    _healthy()
    with lab_prometheus.running() as server:
        yield server
    faults.clear()
    for g in topo.gateways():
        faults.sh(g.name, "systemctl start keepalived nat-gateway-ha-agent")


def test_alerts_quiet_then_failover_then_split_brain(prom: lab_prometheus.Prometheus) -> None:
    lab = _healthy()
    master = lab.vrrp_master
    assert master is not None
    backup = next(g.name for g in topo.gateways() if g.name != master)

    # A healthy pair: the metrics say what the lab says, and no alert fires or is even pending.
    time.sleep(10 * SCRAPE)
    assert prom.query('natgw_ha_state{state="MASTER"}') == {master: 1.0, backup: 0.0}
    assert prom.query("natgw_ha_owner") == {master: 1.0, backup: 0.0}
    assert prom.query("natgw_ha_healthy") == {master: 1.0, backup: 1.0}
    assert prom.query("natgw_ha_split_brain") == {master: 0.0, backup: 0.0}
    assert prom.query('natgw_ha_cloud_calls_total{api="DescribeRouteTables",code="ok"}')[master] > 0
    assert 0 <= prom.query("natgw_ha_last_verified_age_seconds")[master] < 60
    assert prom.alerts("firing") == [] and prom.alerts("pending") == []

    # Every query of the shipped dashboard evaluates on the live data.
    dashboard = json.loads(lab_prometheus.DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$pair", ".*")
            prom.api("query", query=expr)  # raises on a query Prometheus rejects
    assert prom.query('max by (host) (natgw_ha_state{pair=~".*",state="MASTER"})')

    # Failover: keepalived stops on the master. Within a scrape or two of the lab settling, the metrics
    # and /healthz show the new owner and the gateway that cannot serve; the failover alert fires.
    stop = faults.FAULTS["stop"]
    since = datetime.now(UTC)
    stop.inject(master)
    try:
        _healthy()
        prom.wait(
            "the new owner", lambda: prom.query("natgw_ha_owner") == {master: 0.0, backup: 1.0}, 3 * SCRAPE
        )
        prom.wait("the old master unhealthy", lambda: prom.query("natgw_ha_healthy")[master] == 0, 3 * SCRAPE)
        assert prom.query("natgw_ha_keepalived_up") == {master: 0.0, backup: 1.0}
        old, new = _healthz(master), _healthz(backup)
        assert old is not None and old["ok"] is False and "keepalived is not running" in str(old["problems"])
        assert new is not None and new["ok"] is True, new
        prom.wait("the failover alert", lambda: _firing(prom, "NatGatewayHAFailover"), 5 * SCRAPE)
        assert [a["host"] for a in _firing(prom, "NatGatewayHAFailover")] == [backup]
        assert prom.query("natgw_ha_takeover_duration_seconds_count")[backup] >= 1
        # CloudWatch (on in the lab's pair): the takeover and the new owner, put within seconds.
        cw = boto3.client(
            "cloudwatch",
            region_name=topo.REGION,
            endpoint_url=state.ENDPOINT_URL,
            aws_access_key_id="natlab",
            aws_secret_access_key="natlab",
        )

        def published() -> bool:
            return cloudwatch_stat(cw, "Owner", "Maximum", since, Pair=PAIR, Host=backup) == 1.0

        prom.wait("the new owner in CloudWatch", published, 10.0)
        assert (cloudwatch_stat(cw, "TakeoverSeconds", "Maximum", since, Pair=PAIR) or 0) > 0
    finally:
        stop.restore(master)
    _healthy()
    assert _firing(prom, "NatGatewayHASplitBrain") == []

    # Split brain: VRRP between the gateways blocked. Both become master; the alert fires within its
    # `for:` (5 s), and clears once VRRP is back.
    partition = faults.FAULTS["vrrp-partition"]
    partition.inject(backup)
    try:
        prom.wait("the split-brain alert", lambda: _firing(prom, "NatGatewayHASplitBrain"), 20.0)
        assert prom.query('natgw_ha_state{state="MASTER"}') == {master: 1.0, backup: 1.0}
    finally:
        partition.restore(backup)
    _healthy()
    prom.wait("the split brain over", lambda: not _firing(prom, "NatGatewayHASplitBrain"), 30.0)
    assert _firing(prom, "NatGatewayHANoOwner") == [], "the pair was never without an owner for 30 s"
