"""Health tracking without a kernel to break: the checks' readings, damping, the track file, step-downs."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from nat_gateway_ha import checks, peers
from nat_gateway_ha.checks import Check
from nat_gateway_ha.config import AgentConfig, PeerRef, UpstreamTarget
from nat_gateway_ha.endpoint import Endpoint
from nat_gateway_ha.health import Health
from support import plain_agent_config


def _cfg(tmp_path: Path, **health: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        plain_agent_config(
            health_file=str(tmp_path / "health"),
            health={"fall": 2, "rise": 3, "upstream_fall": 2, "upstream_holddown": 1} | health,
        )
    )


class Fake:
    """Scripted check results and peer answers."""

    def __init__(self) -> None:
        self.local_ok = True
        self.upstream_ok = True
        self.master = True
        self.peer: str | None = "gw2"
        self.peer_asked = 0

    def local(self) -> list[Check]:
        return [Check("nat_ruleset", self.local_ok, "scripted")]

    def upstream(self) -> Check:
        return Check("upstream", self.upstream_ok, "scripted")

    def eligible_peer(self) -> str | None:
        self.peer_asked += 1
        return self.peer


def _health(tmp_path: Path, fake: Fake, **health: Any) -> Health:
    return Health(
        _cfg(tmp_path, **health), lambda: fake.master, fake.eligible_peer, fake.local, fake.upstream
    )


def _file(tmp_path: Path) -> str:
    return (tmp_path / "health").read_text().strip()


def test_first_round_is_taken_as_is_then_fall_and_rise_damp(tmp_path: Path) -> None:
    fake = Fake()
    h = _health(tmp_path, fake)
    h.local_round()
    assert _file(tmp_path) == "0" and h.fault is False  # a restarted agent never drops a healthy master
    fake.local_ok = False
    h.local_round()
    assert _file(tmp_path) == "0", "one failed round is not yet a fault (fall 2)"
    h.local_round()
    assert _file(tmp_path) == "1" and h.fault is True
    fake.local_ok = True
    h.local_round()
    h.local_round()
    assert _file(tmp_path) == "1", "two good rounds are not yet healthy (rise 3)"
    h.local_round()
    assert _file(tmp_path) == "0"


def test_a_start_on_a_broken_host_faults_at_once(tmp_path: Path) -> None:
    fake = Fake()
    fake.local_ok = False
    h = _health(tmp_path, fake)
    h.local_round()
    assert _file(tmp_path) == "1"
    assert h.snapshot()["checks"] == [{"name": "nat_ruleset", "ok": False, "detail": "scripted"}]


def test_disabled_health_never_faults(tmp_path: Path) -> None:
    fake = Fake()
    fake.local_ok = False
    h = _health(tmp_path, fake, enabled=False)
    h.local_round()
    h.upstream_round()
    assert _file(tmp_path) == "0" and fake.peer_asked == 0


def test_upstream_is_probed_by_the_master_only(tmp_path: Path) -> None:
    fake = Fake()
    fake.master, fake.upstream_ok = False, False
    h = _health(tmp_path, fake)
    h.local_round()
    for _ in range(5):
        h.upstream_round()
    assert h.upstream == "not probed" and fake.peer_asked == 0 and _file(tmp_path) == "0"


def test_master_steps_down_for_upstream_only_to_an_eligible_peer(tmp_path: Path) -> None:
    fake = Fake()
    fake.upstream_ok, fake.peer = False, None
    h = _health(tmp_path, fake)
    h.local_round()
    h.upstream_round()
    assert fake.peer_asked == 0 and h.upstream == "failing"
    h.upstream_round()
    assert fake.peer_asked == 1 and h.upstream == "failed"
    assert _file(tmp_path) == "0", "no eligible peer: stay master (an outage that hits both)"
    h.upstream_round()
    assert fake.peer_asked == 1, "asked once per episode"
    fake.upstream_ok = True
    h.upstream_round()  # the episode ends
    fake.upstream_ok, fake.peer = False, "gw2"
    h.upstream_round()
    h.upstream_round()
    assert fake.peer_asked == 2 and _file(tmp_path) == "1" and h.fault is True
    assert not h.eligible(), "a gateway whose upstream failed is not a step-down target for its peers"


def test_upstream_holddown_ends_but_the_memory_stays(tmp_path: Path) -> None:
    fake = Fake()
    fake.upstream_ok = False
    h = _health(tmp_path, fake, upstream_memory=60)
    h.local_round()
    h.upstream_round()
    h.upstream_round()
    assert _file(tmp_path) == "1"
    fake.master = False  # the peer took over
    h.upstream_round()
    time.sleep(1.05)
    h.local_round()
    assert _file(tmp_path) == "0", "after the hold-down it may be a backup again"
    assert not h.eligible() and h.snapshot()["upstream_failed_at_unix"] is not None


def test_checks_read_procfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "netfilter").mkdir()
    (tmp_path / "ipv4/conf/eth0").mkdir(parents=True)
    (tmp_path / "ipv4/conf/eth1").mkdir(parents=True)
    monkeypatch.setattr(checks, "PROC_SYS", tmp_path)
    (tmp_path / "netfilter/nf_conntrack_count").write_text("900\n")
    (tmp_path / "netfilter/nf_conntrack_max").write_text("1000\n")
    assert checks.conntrack(0.9) == Check("conntrack", False, "900 of 1000 entries")
    assert checks.conntrack(0.95).ok
    (tmp_path / "ipv4/ip_forward").write_text("1\n")
    (tmp_path / "ipv4/conf/eth0/forwarding").write_text("1\n")
    (tmp_path / "ipv4/conf/eth1/forwarding").write_text("0\n")
    assert checks.forwarding("eth0", "eth1") == Check(
        "forwarding", False, "off: net.ipv4.conf.eth1.forwarding"
    )


def test_upstream_needs_a_majority(monkeypatch: pytest.MonkeyPatch) -> None:
    targets = [UpstreamTarget.model_validate({"host": f"127.0.0.{i}"}) for i in (1, 2, 3)]
    answering = {"127.0.0.1", "127.0.0.2"}
    monkeypatch.setattr(checks, "_tcp", lambda source, t, timeout: str(t.host) in answering)
    assert checks.upstream("127.0.0.1", targets, "tcp", 0.3).ok
    answering.discard("127.0.0.2")
    result = checks.upstream("127.0.0.1", targets, "tcp", 0.3)
    assert not result.ok and result.detail == "1 of 3 answered (no answer: 127.0.0.2, 127.0.0.3)"


def test_a_tcp_probe_counts_any_answer_and_only_from_its_source() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        up = UpstreamTarget.model_validate({"host": "127.0.0.1", "port": port})
        assert checks._tcp("127.0.0.1", up, 0.5)
    refused = UpstreamTarget.model_validate({"host": "127.0.0.1", "port": port})  # closed now: a RST
    assert checks._tcp("127.0.0.1", refused, 0.5), "a refusal proves the path"
    assert not checks._tcp("192.0.2.77", up, 0.5), "a source this host does not have sends nothing"


def test_peers_are_asked_over_http_and_silence_is_not_eligible() -> None:
    answers = {"/peer": lambda: (200, {"host": "gw2", "eligible": True})}
    server = Endpoint("127.0.0.1", 0, answers)
    server.serve_in_background()
    port = server.server_address[1]
    try:
        peer = PeerRef.model_validate(
            {"host": "gw2", "address": "127.0.0.1", "priority": 140, "lan_mac": "02:00:00:00:00:01",
             "wan_mac": "02:00:00:00:00:02"}
        )  # fmt: skip
        assert peers.eligible_peer([peer], port, 0.5) == "gw2"
        answers["/peer"] = lambda: (200, {"host": "gw2", "eligible": False})
        assert peers.eligible_peer([peer], port, 0.5) is None
        assert json.loads(json.dumps(peers.ask(peer, port, 0.5))) == {"host": "gw2", "eligible": False}
    finally:
        server.shutdown()
        server.server_close()
    assert peers.eligible_peer([peer], port, 0.3) is None  # nobody listening: fail static
