"""The agent's endpoint: JSON routes and Prometheus' text at /metrics, served from the agent's memory."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import Agent
from support import plain_agent_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_are_served_as_prometheus_text(tmp_path: Path) -> None:
    port = _free_port()
    cfg = plain_agent_config(state_dir=str(tmp_path), listen_address="127.0.0.1", listen_port=port)
    cloud = SimpleNamespace(target=SimpleNamespace(wins_conflicts=True), pacer=None)
    agent = Agent(AgentConfig.model_validate(cfg), cloud, state="BACKUP")  # type: ignore[arg-type]
    endpoint = agent._serve()
    assert endpoint is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            kind, text = r.headers["Content-Type"], r.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/peer", timeout=5) as r:
            peer = r.read().decode()
    finally:
        endpoint.shutdown()
        endpoint.server_close()
    assert kind.startswith("text/plain; version=0.0.4")
    assert 'natgw_ha_state{pair="p",host="gw1",state="BACKUP"} 1' in text.splitlines()
    assert "# TYPE natgw_ha_owner gauge" in text
    assert '"state": "BACKUP"' in peer
