"""The fault matrix: every fault a production pair meets, injected into the live, converged lab.

Each case breaks the master (or the pair) the way EC2 breaks it, then asserts the end state: exactly one
gateway owns the EIP and every managed route, it is the VRRP master, the client's egress works through the
EIP, and the cloud moved exactly as often as the fault deserves (a fight shows as extra EIP moves). Then
the fault is undone and the pair must stay put (nopreempt: no move back).

It needs a lab converged with site.yml, so it runs from the Molecule scenario `faults` (which sets
NATLAB_FAULT_MATRIX=1); anywhere else it skips.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from nat_gateway_ha_lab import faults, network_faults, state
from nat_gateway_ha_lab import topology as topo
from support import sample, scrape

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.environ.get("NATLAB_FAULT_MATRIX") != "1",
        reason="needs the converged lab (molecule scenario faults)",
    ),
]

SETTLE = 30.0  # seconds a fault may take to end in the right state
QUIET = 3.0  # seconds without a move that show the pair has settled


def _healthy(timeout: float = SETTLE) -> state.LabState:
    deadline = time.monotonic() + timeout
    lab = state.describe()
    while not lab.healthy and time.monotonic() < deadline:
        time.sleep(0.3)
        lab = state.describe()
    assert lab.healthy, f"the lab did not end healthy:\n{lab.render()}"
    return lab


def _settled(since: float) -> list[str]:
    """The EIP moves since `since`, once none has happened for QUIET seconds."""
    moves = state.eip_moves(since)
    while True:
        time.sleep(QUIET)
        again = state.eip_moves(since)
        if again == moves:
            return moves
        moves = again


def _peer(host: str) -> str:
    return next(g.name for g in topo.gateways() if g.name != host)


@dataclass
class Case:
    fault: str
    moves: int  # EIP moves the fault deserves
    run: Callable[[faults.Fault, str], None] | None = None  # inject-to-restore, when not the plain one
    red: bool = False  # while the fault lasts the old master cannot serve: its /healthz must say so


def _partition(fault: faults.Fault, master: str) -> None:
    """60 s without VRRP between the gateways: at most one move while split, and both see the split."""
    t0 = time.time()
    fault.inject(master)
    time.sleep(10)
    during = state.eip_moves(t0)
    assert len(during) <= 1, f"the gateways fought while split: {during}"
    views = {g.name: state.agent_status(g.name) or {} for g in topo.gateways()}
    assert any(v.get("split_brain") for v in views.values()), f"nobody reports the split brain: {views}"
    time.sleep(50)
    assert state.eip_moves(t0) == during, "a move during the partition after the first one"
    healed = time.time()
    fault.restore(master)
    _healthy()
    after = _settled(healed)
    assert len(after) <= 1, f"more than the one move to the VRRP master after the heal: {after}"


def _api_down_across_failover(fault: faults.Fault, master: str) -> None:
    """The EC2 API unreachable for 15 s while the master dies: the new master claims once it answers."""
    fault.inject(master)
    stop = faults.FAULTS["stop"]
    stop.inject(master)
    time.sleep(15)
    assert state.eip_moves(time.time() - 15) == [], "a move while the API was unreachable?"
    fault.restore(master)
    _healthy()
    stop.restore(master)


def _backup_without_api_path(fault: faults.Fault, master: str) -> None:
    """The backup's primary WAN address loses its public address: VRRP still elects it when the master
    dies, but its agent cannot call EC2 (no path AWS lacks is open in the lab: not moto over the management
    bridge either), so nothing moves until the path is back; then it claims."""
    backup = _peer(master)
    assert all(network_faults.reaches_ec2(g.name) for g in topo.gateways())
    moto = f"import socket; socket.create_connection(('{topo.MGMT_NET.ip}', {topo.MOTO_PORT}), 2)"
    with pytest.raises(faults.FaultError):
        faults.in_ns(backup, "python3", "-c", moto)
    fault.inject(backup)
    stop = faults.FAULTS["stop"]
    try:
        assert not network_faults.reaches_ec2(backup)
        # Visible before it matters: the backup's own EC2 check turns its /healthz red.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            view = state.agent_status(backup, "/healthz") or {}
            if any("EC2 API" in p for p in view.get("problems", [])):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the backup without a path to EC2 kept a green /healthz: {view}")
        t0 = time.time()
        stop.inject(master)
        deadline = time.monotonic() + 10
        while state.describe().vrrp_master != backup and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(5)
        during = state.describe()
        assert during.vrrp_master == backup and during.eip_owner == master, during.render()
        assert state.eip_moves(t0) == [], "the backup moved the cloud without a path to EC2?"
    finally:
        fault.restore(backup)
    try:
        _healthy()
    finally:
        stop.restore(master)


def _imds_down_at_agent_start(fault: faults.Fault, master: str) -> None:
    """IMDS unreachable while the backup's agent starts: it keeps trying and still takes over later."""
    backup = _peer(master)
    fault.inject(backup)
    faults.sh(backup, "systemctl restart nat-gateway-ha-agent")
    time.sleep(5)
    journal = faults.sh(backup, "journalctl -u nat-gateway-ha-agent --since=-6s --no-pager")
    assert "start_failed" in journal, journal[-2000:]
    fault.restore(backup)
    time.sleep(3)  # its next attempt (backoff at most 5 s)
    stop = faults.FAULTS["stop"]
    stop.inject(master)
    _healthy()
    stop.restore(master)


def _outage_for_both(fault: faults.Fault, master: str) -> None:
    """The internet unreachable for both: nothing to gain from moving, so at most one move, no ping-pong."""
    t0 = time.time()
    fault.inject(master)
    time.sleep(20)
    assert len(state.eip_moves(t0)) <= 1, state.eip_moves(t0)
    fault.restore(master)


def _healthz_shows_who_cannot_serve(fault: str, master: str) -> None:
    """The fault is visible where a probe looks: the faulted gateway's /healthz is red (or, powered off,
    silent) and the new master's is green."""
    old, new = state.agent_status(master, "/healthz"), state.agent_status(_peer(master), "/healthz")
    if fault == "power-off":
        assert old is None, f"a powered-off gateway answered: {old}"
    else:
        assert old is not None and old["ok"] is False, f"{fault}: /healthz on {master} says {old}"
    assert new is not None and new["ok"] is True, f"{fault}: /healthz on the new master says {new}"


def _stranger_is_counted(fault: faults.Fault, master: str) -> None:
    """A stranger's adverts move nothing, and the master's metrics count them as dropped."""

    def dropped() -> float:
        return sample(scrape(state.agent_text(master, "/metrics")), "natgw_ha_vrrp_foreign_dropped_packets")

    before = dropped()
    fault.inject(master)  # returns once the stranger has spoken for its seconds
    time.sleep(1.5)  # the agent reads the kernel's counter at most once a second
    assert dropped() > before, "the stranger's adverts were not counted"


CASES = [
    Case("stop", 1, red=True),
    Case("sigkill", 1, red=True),
    Case("agent-sigkill", 0),
    Case("power-off", 1, red=True),
    Case("lan-down", 1, red=True),
    Case("wan-down", 1, red=True),
    Case("nat-flushed", 1, red=True),
    Case("forwarding-off", 1, red=True),
    # A burst, not a lasting load: the old master, BACKUP now, shortens its conntrack timers and the table
    # drains, so by the time the pair settles it could serve again and /healthz rightly says so.
    Case("conntrack-full", 1),
    Case("restart-storm", 1),  # over by the time the pair settles: the old master is a healthy backup
    Case("upstream-down", 1, red=True),
    Case("vrrp-partition", -1, _partition),
    Case("api-unreachable", 1, _api_down_across_failover),
    Case("api-path-lost", 1, _backup_without_api_path),
    Case("imds-unreachable", 1, _imds_down_at_agent_start),
    Case("upstream-down-both", -1, _outage_for_both),
    Case("rogue-vrrp", 0, _stranger_is_counted),  # a stranger's adverts: no VIP move, no cloud move
]


@pytest.fixture
def healthy_lab() -> Iterator[state.LabState]:
    yield _healthy()
    faults.clear()  # whatever a failed case left: the next one starts from a whole pair
    for g in topo.gateways():
        faults.sh(g.name, "systemctl start keepalived nat-gateway-ha-agent")


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
def test_fault_ends_with_one_owner_and_working_egress(case: Case, healthy_lab: state.LabState) -> None:
    master = healthy_lab.vrrp_master
    assert master is not None
    fault = faults.FAULTS[case.fault]
    t0 = time.time()
    if case.run is not None:
        case.run(fault, master)
        _healthy()
        moves = _settled(t0)
        end = _healthy()
        if case.moves >= 0:
            assert len(moves) == case.moves, f"{case.fault}: expected {case.moves} move(s), saw {moves}"
        else:  # the case asserted its own bounds; never a fight
            assert len(moves) <= 2, moves
    else:
        fault.inject(master)
        try:
            _healthy()
            moves = _settled(t0)
            end = _healthy()
            assert len(moves) == case.moves, f"{case.fault}: expected {case.moves} move(s), saw {moves}"
            assert end.vrrp_master == (_peer(master) if case.moves else master)
            if case.red:
                _healthz_shows_who_cannot_serve(case.fault, master)
        finally:
            restored = time.time()
            fault.restore(master)
        end = _healthy()
        assert _settled(restored) == [], "the pair moved again when the fault was undone"
    assert end.eip_owner == end.vrrp_master
    assert all(r.owner == end.vrrp_master for r in end.routes)
    assert end.egress_source == end.eip


# --- flows: a running download is carried by the new master (conntrackd), never rescued by a failback ---

DOWNLOAD = 12_000_000  # bytes, at 1 MB/s: the fault lands 4 s into a 12 s download
FLOW_FAULTS = ["power-off", "lan-down", "wan-down", "stop", "sigkill"]


@pytest.mark.parametrize("kind", FLOW_FAULTS)
def test_running_download_survives_on_the_new_master(kind: str, healthy_lab: state.LabState) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from nat_gateway_ha_lab import internet

    master = healthy_lab.vrrp_master
    assert master is not None
    url = f"http://{topo.UPSTREAM_TARGETS[0]}/bytes?size={DOWNLOAD}&rate=1000000"
    fault = faults.FAULTS[kind]
    with ThreadPoolExecutor(1) as pool:
        download = pool.submit(faults.sh, "client", f"curl -sS --max-time 60 '{url}' | sha256sum", 90)
        time.sleep(4)
        fault.inject(master)
        try:
            digest = download.result().split()[0]
            during = state.describe()  # before the fault is undone: no failback can have helped
        finally:
            fault.restore(master)
    assert digest == internet.sha256(DOWNLOAD), f"{kind}: the download broke or was corrupted"
    assert during.vrrp_master == _peer(master) and during.eip_owner == _peer(master), during.render()


def test_planned_switchover_keeps_a_running_download(healthy_lab: state.LabState) -> None:
    """playbooks/failover.yml, make before break: the target takes the flows and the cloud, then the
    master steps down; the download goes on, once, to the end."""
    from concurrent.futures import ThreadPoolExecutor

    from nat_gateway_ha_lab import internet

    master = healthy_lab.vrrp_master
    assert master is not None
    target = _peer(master)
    url = f"http://{topo.UPSTREAM_TARGETS[0]}/bytes?size={DOWNLOAD}&rate=1000000"
    with ThreadPoolExecutor(1) as pool:
        download = pool.submit(faults.sh, "client", f"curl -sS --max-time 60 '{url}' | sha256sum", 90)
        time.sleep(3)
        t0 = faults.FAULTS["planned-switchover"].inject(master)
        digest = download.result().split()[0]
    assert digest == internet.sha256(DOWNLOAD), "the download broke or was corrupted"
    end = _healthy()
    assert end.vrrp_master == target and end.eip_owner == target
    assert len(_settled(t0)) == 1, "one move, to the target"
