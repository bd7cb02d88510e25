"""The agent's endpoint: JSON routes and Prometheus' text at /metrics, served from the agent's memory."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import boto3

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import Agent
from nat_gateway_ha.metrics import Metrics
from support import plain_agent_config, sample, scrape


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agent(tmp_path: Path, port: int) -> Agent:
    cfg = plain_agent_config(
        state_dir=str(tmp_path),
        listen_address="127.0.0.1",
        listen_port=port,
        keepalived_pidfile=str(tmp_path / "keepalived.pid"),  # none: keepalived is not running
    )
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    cloud = SimpleNamespace(target=SimpleNamespace(wins_conflicts=True), pacer=None, ec2=ec2)
    return Agent(AgentConfig.model_validate(cfg), cloud, state="BACKUP")  # type: ignore[arg-type]


def _answers(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/peer", timeout=1) as r:
                return r.status == 200
        except OSError:
            time.sleep(0.05)
    return False


def test_an_endpoint_whose_port_is_held_binds_once_it_is_free(tmp_path: Path) -> None:
    """Right after a restart the old process may still hold the port: the endpoint keeps trying, so the
    gateway does not stay invisible to its peer and to monitoring."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = int(holder.getsockname()[1])
    agent = _agent(tmp_path, port)
    agent.reports.start()
    try:
        time.sleep(1.5)  # a try or two fail meanwhile
        holder.close()
        assert _answers(port, timeout=5), "the endpoint never bound once the port was free"
    finally:
        agent.reports.stop()


def test_metrics_are_served_as_prometheus_text(tmp_path: Path) -> None:
    port = _free_port()
    agent = _agent(tmp_path, port)
    agent.reports.start()
    try:
        assert _answers(port, timeout=5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            kind, text = r.headers["Content-Type"], r.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/peer", timeout=5) as r:
            peer = r.read().decode()
    finally:
        agent.reports.stop()
    assert kind.startswith("text/plain; version=0.0.4")
    got = scrape(text)
    assert sample(got, "natgw_ha_state", state="BACKUP") == 1
    assert sample(got, "natgw_ha_state", state="MASTER") == 0
    assert sample(got, "natgw_ha_owner", pair="p", host="gw1") == 0
    assert sample(got, "natgw_ha_keepalived_up") == 0
    assert sample(got, "natgw_ha_healthy") == 0, "no keepalived runs here: /healthz is red, so is the metric"
    assert '"state": "BACKUP"' in peer


def test_label_values_are_escaped_and_takeovers_fill_the_histogram() -> None:
    m = Metrics('pa"ir\\', "gw\n1", lambda: (5, 100), lambda: 7)
    m.takeover("MASTER", True, 0.3)
    m.takeover("peer_not_master", False, 40.0)
    m.sync({"state": "MASTER", "owner": True, "verified_at_unix": 0}, healthy=True, keepalived_up=True)
    got = scrape(m.text())
    lb = {"pair": 'pa"ir\\', "host": "gw\n1"}
    assert sample(got, "natgw_ha_takeovers_total", reason="MASTER", result="converged", **lb) == 1
    assert sample(got, "natgw_ha_takeovers_total", reason="peer_not_master", result="failed") == 1
    assert sample(got, "natgw_ha_takeover_duration_seconds_bucket", le="0.5") == 1
    assert sample(got, "natgw_ha_takeover_duration_seconds_bucket", le="30.0") == 1
    assert sample(got, "natgw_ha_takeover_duration_seconds_count") == 2
    assert sample(got, "natgw_ha_conntrack_entries") == 5 and sample(got, "natgw_ha_conntrack_max") == 100
    assert sample(got, "natgw_ha_owner") == 1 and sample(got, "natgw_ha_healthy") == 1
    assert sample(got, "natgw_ha_vrrp_foreign_dropped_packets") == 7
