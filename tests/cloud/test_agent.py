"""The agent daemon end to end: a real FIFO, the lab's cloud, the IMDS emulator."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from nat_gateway_ha import status
from nat_gateway_ha.cli import main
from nat_gateway_ha.daemon import Agent
from nat_gateway_ha.endpoint import Endpoint
from nat_gateway_ha.keepalived import initial_state
from nat_gateway_ha_lab import cloud, topology
from support import cloudwatch_stat, eip_target, peers_of, route_targets, sample, scrape


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def running(connect_as) -> Iterator[Callable[..., tuple[Agent, Callable[[str], None]]]]:
    """Start an agent for a host in a thread; returns it and a `write(line)` that feeds its FIFO."""
    started: list[tuple[Agent, threading.Thread]] = []

    def start(world, host: str, state: str = "BACKUP", **overrides) -> tuple[Agent, Callable[[str], None]]:
        c = connect_as(world, host, **overrides)
        agent = Agent(c.cfg, c, state=state)
        t = threading.Thread(target=agent.run, daemon=True)
        t.start()
        _wait(lambda: c.cfg.fifo_path.exists())
        fd = os.open(c.cfg.fifo_path, os.O_WRONLY)

        def write(line: str) -> None:
            os.write(fd, (line + "\n").encode())

        started.append((agent, t))
        return agent, write

    yield start
    for agent, t in started:
        agent.stop()
        t.join(timeout=5)


def test_master_line_takes_over_and_status_says_so(cloud_world, running) -> None:
    agent, write = running(cloud_world, "gw2", metrics_textfile=None)
    write('INSTANCE "VI_2" MASTER 150')  # another instance: ignored
    write("rubbish")
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: (status.read(agent.cfg.state_dir) or {}).get("owner") is True)
    assert set(route_targets(cloud_world.ec2, cloud_world.private_tables).values()) == {
        cloud_world.eni("gw2", "eth1")
    }
    assert eip_target(cloud_world.ec2)[0] == cloud_world.eni("gw2", "eth0")
    saved = status.read(agent.cfg.state_dir)
    assert saved and saved["state"] == "MASTER" and saved["last_takeover"]["converged"] is True
    assert saved["progress"] == {"moved": 6, "of": 6, "failed": 0, "in_progress": False, "converged": True}
    assert agent.takeovers == 1


def test_a_long_takeover_reports_its_progress(cloud_world, running, monkeypatch) -> None:
    """Paced to one route at a time, the takeover's status says how many of N moved before it ends."""
    written: list[dict[str, Any]] = []
    original = status.write

    def record(state_dir, data) -> None:
        written.append(json.loads(json.dumps(data)))
        original(state_dir, data)

    monkeypatch.setattr(status, "write", record)
    slow = {"ReplaceRoute": {"capacity": 1, "refill": 8}}
    agent, write = running(cloud_world, "gw2", api_limits=slow)
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: (status.read(agent.cfg.state_dir) or {}).get("owner") is True)
    during = [w["progress"] for w in written if (w.get("progress") or {}).get("in_progress")]
    assert during and 0 < during[0]["moved"] < during[0]["of"] == 6
    assert all(w["owner"] is not True for w in written if (w.get("progress") or {}).get("in_progress"))
    assert written[-1]["progress"]["moved"] == 6 and written[-1]["owner"] is True


def test_fast_transitions_end_master_and_owner_one_takeover_at_a_time(cloud_world, running) -> None:
    agent, write = running(cloud_world, "gw2")
    inflight, peak = [0], [0]
    original = agent.cloud.takeover

    def counted(*a, **kw):
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        try:
            return original(*a, **kw)
        finally:
            inflight[0] -= 1

    agent.cloud.takeover = counted
    for state in ("MASTER", "BACKUP", "MASTER", "BACKUP", "MASTER"):
        write(f'INSTANCE "VI_1" {state} 150')
    _wait(lambda: agent.state == "MASTER" and agent.status["owner"] is True and inflight[0] == 0)
    time.sleep(0.3)
    assert agent.state == "MASTER" and peak[0] == 1
    assert set(route_targets(cloud_world.ec2, cloud_world.private_tables).values()) == {
        cloud_world.eni("gw2", "eth1")
    }


def test_debounce_coalesces_to_the_latest_state(inprocess_world, running) -> None:
    agent, write = running(inprocess_world, "gw2", debounce=0.3)
    for state in ("MASTER", "BACKUP", "MASTER", "BACKUP"):
        write(f'INSTANCE "VI_1" {state} 150')
    _wait(lambda: agent.state == "BACKUP" and agent.status["last_event"] is not None)
    time.sleep(0.2)
    assert agent.takeovers == 0  # only the final BACKUP was acted on
    assert set(route_targets(inprocess_world.ec2, inprocess_world.private_tables).values()) == {
        inprocess_world.eni("gw1", "eth1")
    }


def test_reconcile_repairs_drift_while_master_only(inprocess_world, running) -> None:
    ec2 = inprocess_world.ec2
    agent, write = running(inprocess_world, "gw2", reconcile_interval=0.2)
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: agent.status["owner"] is True)
    rtb = inprocess_world.private_tables[3]
    ec2.replace_route(
        RouteTableId=rtb,
        DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=inprocess_world.eni("gw1", "eth1"),
    )
    _wait(lambda: agent.status["repairs"] >= 1)
    assert route_targets(ec2, [rtb])[rtb] == inprocess_world.eni("gw2", "eth1")
    write('INSTANCE "VI_1" BACKUP 100')
    _wait(lambda: agent.state == "BACKUP")
    ec2.replace_route(
        RouteTableId=rtb,
        DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=inprocess_world.eni("gw1", "eth1"),
    )
    time.sleep(0.6)
    assert route_targets(ec2, [rtb])[rtb] == inprocess_world.eni(
        "gw1", "eth1"
    )  # a backup leaves the cloud alone


def test_master_rx_lower_pri_reclaims_after_split_brain(inprocess_world, running, connect_as) -> None:
    agent, write = running(inprocess_world, "gw2", reconcile_interval=60)
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: agent.status["owner"] is True)
    assert connect_as(inprocess_world, "gw1").takeover().converged  # the peer claimed during a split brain
    cloud.reset_calls()
    write('INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150')
    _wait(lambda: agent.takeovers == 2 and agent.status["owner"] is True)
    assert eip_target(inprocess_world.ec2)[0] == inprocess_world.eni("gw2", "eth0")
    assert "AssociateAddress" in cloud.mutating_calls()


def test_restart_while_master_keeps_reconciling(inprocess_world, connect_as, tmp_path) -> None:
    c = connect_as(inprocess_world, "gw2")
    cfg = c.cfg
    assert initial_state(cfg) == "UNKNOWN"
    status.write(cfg.state_dir, {"state": "MASTER", "updated_at_unix": time.time()})
    assert initial_state(cfg) == "MASTER"
    status.write(cfg.state_dir, {"state": "MASTER", "updated_at_unix": 1.0})  # before this boot
    assert initial_state(cfg) == "UNKNOWN"
    assert initial_state(cfg.model_copy(update={"vips": ["127.0.0.1"]})) == "MASTER"
    not_held = cfg.model_copy(update={"vips": ["192.0.2.77"]})
    assert initial_state(not_held) == "BACKUP"  # keepalived runs, the VIP is elsewhere
    status.write(cfg.state_dir, {"state": "FAULT", "updated_at_unix": time.time()})
    assert initial_state(not_held) == "FAULT"
    status.write(cfg.state_dir, {"state": "MASTER", "updated_at_unix": 1.0})
    agent = Agent(cfg, c, state="MASTER")
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        _wait(lambda: agent.status["owner"] is True)
    finally:
        agent.stop()
        t.join(timeout=5)
    assert agent.status["last_takeover"]["reason"] == "agent_start"


def test_metrics_textfile(inprocess_world, running, tmp_path) -> None:
    prom = tmp_path / "natgw.prom"
    _agent, write = running(inprocess_world, "gw2", metrics_textfile=str(prom))
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: prom.exists() and sample(scrape(prom.read_text()), "natgw_ha_owner") == 1)
    got = scrape(prom.read_text())
    assert sample(got, "natgw_ha_state", pair="lab", host="gw2", state="MASTER") == 1
    assert sample(got, "natgw_ha_takeovers_total", reason="MASTER", result="converged") == 1
    assert sample(got, "natgw_ha_takeovers_total", reason="MASTER", result="failed") == 0
    assert sample(got, "natgw_ha_takeover_duration_seconds_count") == 1
    assert sample(got, "natgw_ha_takeover_moved") == 6 and sample(got, "natgw_ha_takeover_planned") == 6
    assert sample(got, "natgw_ha_takeover_in_progress") == 0
    assert sample(got, "natgw_ha_cloud_calls_total", api="ReplaceRoute", code="ok") == 5
    assert sample(got, "natgw_ha_cloud_calls_total", api="AssociateAddress", code="ok") == 1
    assert 0 <= sample(got, "natgw_ha_last_verified_age_seconds") < 60


def test_cli_status_and_claim(inprocess_world, connect_as, capsys) -> None:
    c = connect_as(inprocess_world, "gw2")
    path = c.cfg.state_dir.parent / "agent.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(c.cfg.model_dump_json())
    assert main(["claim", "--config", str(path), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["planned"]
    assert main(["claim", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["converged"] is True
    assert main(["status", "--json", "--config", str(path)]) == 1  # no agent has written a status yet
    assert json.loads(capsys.readouterr().out)["state"] == "UNKNOWN"
    status.write(c.cfg.state_dir, {"pair": "lab", "host": "gw2", "state": "BACKUP"})
    assert main(["status", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "BACKUP"
    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lab/gw2: BACKUP, not owner (not master)") and "does not answer" in out


def test_cli_status_prints_what_the_live_endpoint_serves(inprocess_world, running, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent, write = running(inprocess_world, "gw2", listen_address="127.0.0.1", listen_port=port)
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: agent.status["owner"] is True)
    path = agent.cfg.state_dir.parent / "agent.json"
    path.write_text(agent.cfg.model_dump_json())
    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lab/gw2: MASTER, owner (verified), verified 0 s ago"), out
    # The test machine is no gateway: the data-path checks fail, and the endpoint's /healthz says which.
    assert "health:        NOT ok\n  - link_eth1: no interface eth1" in out, out
    assert "last takeover: " in out and "(MASTER)" in out and "converged" in out
    assert "does not answer" not in out
    assert main(["status", "--json", "--config", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["owner"] is True and data["healthz"]["ok"] is False


def test_half_moved_cloud_is_repaired_by_the_agent_without_a_new_event(
    inprocess_world, running, monkeypatch
) -> None:
    from nat_gateway_ha import takeover

    monkeypatch.setattr(takeover, "REPAIR_BACKOFF", (0.01,))
    stuck = inprocess_world.private_tables[1]
    cloud.inject(
        cloud.Fault(
            "ReplaceRoute", "InternalError", 500, times=None, when=lambda q: q.get("RouteTableId") == [stuck]
        )
    )
    agent, write = running(inprocess_world, "gw2", reconcile_interval=60, api_max_attempts=1)
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: agent.takeovers == 1)
    assert agent.status["owner"] is False and agent.status["takeovers_failed"] == 1
    assert route_targets(inprocess_world.ec2, [stuck])[stuck] == inprocess_world.eni("gw1", "eth1")
    cloud.clear_faults()  # the API recovers; the agent retries within a second, not after reconcile_interval
    _wait(lambda: agent.status["owner"] is True, timeout=5)
    assert set(route_targets(inprocess_world.ec2, inprocess_world.private_tables).values()) == {
        inprocess_world.eni("gw2", "eth1")
    }


def test_sigkilled_keepalived_stops_reconciling_so_the_dead_master_does_not_fight(
    inprocess_world, running, connect_as, tmp_path
) -> None:
    """SIGKILL leaves no STOP line on the FIFO: the agent must notice keepalived is gone by itself."""
    import shutil
    import signal
    import subprocess

    fake = tmp_path / "keepalived"  # a real process whose /proc/PID/comm reads "keepalived"
    shutil.copy("/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "600"])
    pidfile = tmp_path / "keepalived.pid"
    pidfile.write_text(f"{proc.pid}\n")
    agent, write = running(inprocess_world, "gw2", reconcile_interval=0.2, keepalived_pidfile=str(pidfile))
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: agent.status["owner"] is True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert connect_as(inprocess_world, "gw1").takeover().converged  # the peer becomes master
    _wait(lambda: agent.state == "STOP")
    time.sleep(0.6)  # three reconcile intervals: a fighting agent would have moved the routes back
    assert set(route_targets(inprocess_world.ec2, inprocess_world.private_tables).values()) == {
        inprocess_world.eni("gw1", "eth1")
    }
    assert eip_target(inprocess_world.ec2)[0] == inprocess_world.eni("gw1", "eth0")


def test_a_peer_claim_is_not_fought_but_reported_as_split_brain(
    inprocess_world, running, connect_as, tmp_path
) -> None:
    """Both MASTER (VRRP lost between them): the cloud moves once, to the later claimant, and stays; once
    the peer says it is no longer master (the split healed), the VRRP master claims."""
    peer_says = {"state": "MASTER"}
    stub = Endpoint("127.0.0.1", 0, {"/peer": lambda: (200, dict(peer_says))})  # gw1's agent, as gw2 sees it
    stub.serve_in_background()
    keys = peers_of("gw2")
    keys["peers"][0]["address"] = "127.0.0.1"
    agent, write = running(
        inprocess_world,
        "gw2",
        reconcile_interval=0.2,
        metrics_textfile=str(tmp_path / "natgw.prom"),
        listen_port=stub.server_address[1],
        **keys,
    )
    try:
        write('INSTANCE "VI_1" MASTER 140')
        _wait(lambda: agent.status["owner"] is True)
        assert connect_as(inprocess_world, "gw1", **peers_of("gw1")).takeover(claim=True).converged
        cloud.reset_calls()
        _wait(lambda: agent.status["split_brain"] is True)
        time.sleep(2.5)  # reconcile passes, each asking the peer
        assert cloud.mutating_calls() == [], "the earlier master took the cloud back: a fight"
        assert eip_target(inprocess_world.ec2)[0] == inprocess_world.eni("gw1", "eth0")
        assert agent.status["owner"] is False and agent.status["contested"]
        got = scrape(agent.cfg.metrics_textfile.read_text())
        assert sample(got, "natgw_ha_split_brain", pair="lab", host="gw2") == 1
        assert sample(got, "natgw_ha_healthy") == 0, "a split brain turns /healthz red"
        peer_says["state"] = "BACKUP"  # the heal, with no MASTER_RX_LOWER_PRI line (the peer yielded first)
        _wait(lambda: agent.status["owner"] is True and agent.status["split_brain"] is False, timeout=5)
        assert eip_target(inprocess_world.ec2)[0] == inprocess_world.eni("gw2", "eth0")
    finally:
        stub.shutdown()
        stub.server_close()


def test_drift_to_anything_but_a_peer_is_still_repaired(inprocess_world, running) -> None:
    ec2 = inprocess_world.ec2
    agent, write = running(inprocess_world, "gw2", reconcile_interval=0.2, **peers_of("gw2"))
    write('INSTANCE "VI_1" MASTER 140')
    _wait(lambda: agent.status["owner"] is True)
    rtb = inprocess_world.private_tables[2]
    client_eni = inprocess_world.eni("client", "eth0")
    ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=client_eni)
    _wait(lambda: agent.status["repairs"] >= 1)
    assert route_targets(ec2, [rtb])[rtb] == inprocess_world.eni("gw2", "eth1")
    assert agent.status["split_brain"] is False


def test_two_claimants_at_once_leave_the_cloud_whole(inprocess_world, connect_as) -> None:
    """EC2 has no compare-and-swap: two claims racing must still end with every resource on one gateway.

    Every call takes a random few milliseconds, as on a network, so the two claims' calls interleave
    differently each time (an interleaving once left a route and the EIP behind: the loser's last calls
    landed after the winner's verification)."""
    gw1 = connect_as(inprocess_world, "gw1", **peers_of("gw1"))
    gw2 = connect_as(inprocess_world, "gw2", **peers_of("gw2"))
    jitter = random.Random(7)
    for c in (gw1, gw2):
        c.ec2.meta.events.register("before-sign.ec2.*", lambda **_: time.sleep(jitter.uniform(0, 0.05)))
    assert gw1.target.wins_conflicts and not gw2.target.wins_conflicts
    host_of = {inprocess_world.eni(g, nic): g for g in ("gw1", "gw2") for nic in ("eth0", "eth1")}
    for lag in (0.0, 0.005, -0.005, 0.015, -0.015, 0.03, -0.03, 0.06) * 2:
        results: dict[str, Any] = {}

        def claim(name: str, c: Any, delay: float, out: dict[str, Any] = results) -> None:
            time.sleep(delay)
            out[name] = c.takeover(claim=True)

        starts = (("gw1", gw1, max(0.0, -lag)), ("gw2", gw2, max(0.0, lag)))
        threads = [threading.Thread(target=claim, args=a) for a in starts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        holders = [*route_targets(inprocess_world.ec2, inprocess_world.private_tables).values()]
        holders.append(eip_target(inprocess_world.ec2)[0])
        hosts = {host_of.get(h or "") for h in holders}
        assert len(hosts) == 1, f"half-moved: {holders}"
        winner = hosts.pop()
        assert winner is not None and results[winner].converged


@pytest.mark.parametrize(("settle", "elected"), [(0.2, True), (0.0, True), (0.2, False)])
def test_a_winning_claim_looks_again_and_takes_back_a_late_peer_call(
    inprocess_world, connect_as, settle: float, elected: bool
) -> None:
    """The loser of two racing claims lands a call just after the winner's verification: only the winner's
    second look (claim_settle) brings that route back; without it the cloud stays half-moved. Once VRRP has
    elected the peer meanwhile (`elected` false), its move is a claim, and the second look leaves it."""
    assert connect_as(inprocess_world, "gw2").takeover().converged  # gw1 claims it all back below
    gw1 = connect_as(inprocess_world, "gw1", claim_settle=settle, **peers_of("gw1"))
    rtb = inprocess_world.private_tables[0]
    describes: list[str] = []

    def peer_lands_late(model: Any, **_: Any) -> None:
        if model.name == "DescribeRouteTables":
            describes.append(model.name)
            if len(describes) == 2:  # the claim's verification has just answered
                inprocess_world.ec2.replace_route(
                    RouteTableId=rtb,
                    DestinationCidrBlock="0.0.0.0/0",
                    NetworkInterfaceId=inprocess_world.eni("gw2", "eth1"),
                )

    gw1.ec2.meta.events.register("after-call.ec2.DescribeRouteTables", peer_lands_late)
    result = gw1.takeover(claim=True, elected=lambda: elected)
    holder = route_targets(inprocess_world.ec2, [rtb])[rtb]
    if settle and elected:
        assert result.converged and result.conflict and result.settle_checks >= 1
        assert holder == inprocess_world.eni("gw1", "eth1")
    else:
        assert result.settle_checks == 0 and holder == inprocess_world.eni("gw2", "eth1")


def test_a_watching_backup_keeps_a_view_and_claims_on_it(inprocess_world, running) -> None:
    cloud.reset_calls()
    agent, write = running(inprocess_world, "gw2", view_max_age=10)
    _wait(lambda: agent.cloud.view is not None)  # BACKUP, and looking
    assert agent.state == "BACKUP" and cloud.mutating_calls() == []
    cloud.reset_calls()
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: (status.read(agent.cfg.state_dir) or {}).get("owner") is True)
    assert cloud.calls()[0] == "ReplaceRoute"


def test_history_keeps_the_transition_the_takeover_and_a_repair(inprocess_world, running, capsys) -> None:
    """After a failover and a drift repair the history says, in order, what happened and how it ended,
    and `natgw-ha-agent history` prints it as a table and as JSON."""
    from nat_gateway_ha import history

    agent, write = running(inprocess_world, "gw2", reconcile_interval=0.2)
    write('INSTANCE "VI_1" MASTER 140')
    _wait(lambda: agent.status["owner"] is True)
    rtb = inprocess_world.private_tables[0]
    inprocess_world.ec2.replace_route(
        RouteTableId=rtb,
        DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=inprocess_world.eni("client", "eth0"),
    )
    _wait(lambda: agent.status["repairs"] >= 1)
    events = history.read(agent.cfg.state_dir)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["transition", "takeover"] and "repair" in kinds, kinds
    transition, takeover = events[0], events[1]
    assert transition["state"] == "MASTER" and transition["priority"] == 140
    assert takeover["reason"] == "MASTER" and takeover["converged"] is True
    assert takeover["planned"] == takeover["changed"] == len(inprocess_world.private_tables) + 1
    repair = next(e for e in events if e["event"] == "repair")
    assert repair["changed"] == 1 and repair["converged"] is True

    config = agent.cfg.state_dir.parent / "agent.json"
    config.write_text(agent.cfg.model_dump_json())
    assert main(["history", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["time", "(UTC)", "event", "reason/state"]
    assert "takeover" in lines[2] and "converged" in lines[2] and f"{takeover['changed']}/" in lines[2]
    assert main(["history", "--config", str(config), "--json", "--last", "1"]) == 0
    assert [e["event"] for e in json.loads(capsys.readouterr().out)] == [kinds[-1]]


def _cloudwatch_stat(metric: str, stat: str, **dims: str) -> float | None:
    return cloudwatch_stat(boto3.client("cloudwatch", region_name=topology.REGION), metric, stat, **dims)


def test_cloudwatch_gets_the_pairs_metrics_after_a_takeover(inprocess_world, running) -> None:
    agent, write = running(inprocess_world, "gw2", cloudwatch={"enabled": True, "interval": 10})
    publisher = agent.reports.cloudwatch
    assert publisher is not None
    write('INSTANCE "VI_1" MASTER 150')
    _wait(lambda: agent.status["owner"] is True)
    _wait(lambda: _cloudwatch_stat("Owner", "Maximum", Pair="lab") == 1.0, timeout=10)
    assert _cloudwatch_stat("Takeovers", "Sum", Pair="lab") == 1.0
    assert _cloudwatch_stat("TakeoverFailures", "Sum", Pair="lab") == 0.0
    assert _cloudwatch_stat("SplitBrain", "Maximum", Pair="lab") == 0.0
    assert _cloudwatch_stat("Owner", "Maximum", Pair="lab", Host="gw2") == 1.0
    assert _cloudwatch_stat("Healthy", "Minimum", Pair="lab", Host="gw2") is not None
    assert (_cloudwatch_stat("TakeoverSeconds", "Maximum", Pair="lab") or 0) > 0
    assert publisher.failures == 0


def test_a_hanging_cloudwatch_never_holds_a_takeover_up(inprocess_world, running) -> None:
    """CloudWatch accepts the connection and never answers: the takeover converges while the put waits."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # never accepted: connects succeed, answers never come
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        agent, write = running(
            inprocess_world, "gw2", cloudwatch={"enabled": True, "interval": 10, "endpoint_url": url}
        )
        publisher = agent.reports.cloudwatch
        assert publisher is not None
        write('INSTANCE "VI_1" MASTER 150')
        _wait(lambda: agent.status["owner"] is True)
        assert publisher.puts == 0 and publisher.failures == 0, "the put was meant to be still waiting"
        _wait(lambda: publisher.failures >= 1, timeout=15)
    assert agent.status["owner"] is True and agent.status["takeovers_converged"] == 1


def test_an_idle_backup_that_ec2_refuses_is_red_until_ec2_serves_it_again(inprocess_world, running) -> None:
    """/healthz covers the cloud too: a backup whose credentials or path to EC2 broke could not take over,
    and its own cheap check (cloud_check_interval) says so before a failover would."""
    agent, _ = running(inprocess_world, "gw2", cloud_check_interval=1)
    reports = agent.reports

    def cloud_problems() -> list[str]:
        return [p for p in reports.healthz()[1]["problems"] if "EC2 API" in p]

    time.sleep(1.5)
    assert cloud_problems() == []
    denied = cloud.Fault("DescribeAddresses", "UnauthorizedOperation", 403, times=None)
    with cloud.faults(denied):
        _wait(lambda: bool(cloud_problems()), timeout=5)
        assert "DescribeAddresses: UnauthorizedOperation" in cloud_problems()[0]
        assert reports.healthz()[0] == 503
        assert sample(scrape(reports.metrics_text()[1]), "natgw_ha_cloud_reachable") == 0
    _wait(lambda: not cloud_problems(), timeout=5)
    assert sample(scrape(reports.metrics_text()[1]), "natgw_ha_cloud_reachable") == 1
