"""Real keepalived (unicast VRRPv3, two network namespaces) drives two agents through its notify FIFO.

The master's keepalived is stopped: the backup's keepalived writes MASTER into its agent's FIFO and that
agent moves the EIP and every route (lab cloud in-process, IMDS emulator). Proves the FIFO wiring and the
line format against the real writer, not a hand-written line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nat_gateway_ha.daemon import Agent
from support import eip_target, route_targets

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating network namespaces needs root"),
    pytest.mark.skipif(
        shutil.which("keepalived") is None, reason="keepalived is not installed (scripts/bootstrap)"
    ),
]
TAG = f"nka{os.getpid() % 100000}"
PEERS = {"gw1": ("192.0.2.1", 150), "gw2": ("192.0.2.2", 100)}


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"ip {' '.join(args)}: {proc.stderr}"


@pytest.fixture
def vrrp_link() -> Iterator[dict[str, str]]:
    """Two namespaces joined by a veth pair, one per gateway; deleted afterwards."""
    names = {h: f"{TAG}-{h}" for h in PEERS}
    for ns in names.values():
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        _ip("netns", "add", ns)
    try:
        _ip(
            "link",
            "add",
            f"{TAG}a",
            "netns",
            names["gw1"],
            "type",
            "veth",
            "peer",
            "name",
            f"{TAG}b",
            "netns",
            names["gw2"],
        )
        for host, dev in (("gw1", f"{TAG}a"), ("gw2", f"{TAG}b")):
            _ip("-n", names[host], "addr", "add", f"{PEERS[host][0]}/24", "dev", dev)
            _ip("-n", names[host], "link", "set", dev, "up")
            _ip("-n", names[host], "link", "set", "lo", "up")
        yield names
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _keepalived_conf(host: str, dev: str, fifo: Path) -> str:
    me, prio = PEERS[host]
    peer = next(a for h, (a, _) in PEERS.items() if h != host)
    return f"""global_defs {{
    router_id {host}
    notify_fifo {fifo}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {dev}
    virtual_router_id 77
    version 3
    priority {prio}
    advert_int 0.1
    nopreempt
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        10.240.240.240/32
    }}
}}
"""


def _start_keepalived(ns: str, host: str, dev: str, fifo: Path, tmp: Path) -> subprocess.Popen[bytes]:
    conf = tmp / f"keepalived-{host}.conf"
    conf.write_text(_keepalived_conf(host, dev, fifo))
    pids = [str(tmp / f"{host}-{kind}.pid") for kind in ("main", "vrrp", "checkers")]
    cmd = ["ip", "netns", "exec", ns, "keepalived", "-n", "-G", "-P", "-f", str(conf)]
    cmd += ["-p", pids[0], "-r", pids[1], "-c", pids[2]]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(cond, timeout: float = 15.0) -> float:
    started = time.monotonic()
    while not cond():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - started


def test_keepalived_failover_moves_the_cloud(inprocess_world, connect_as, vrrp_link, tmp_path) -> None:
    world = inprocess_world
    agents: dict[str, Agent] = {}
    threads: list[threading.Thread] = []
    daemons: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for host in PEERS:
            c = connect_as(world, host, reconcile_interval=60)
            agents[host] = Agent(c.cfg, c, state="UNKNOWN")
            t = threading.Thread(target=agents[host].run, daemon=True)
            t.start()
            threads.append(t)
            _wait(lambda c=c: c.cfg.fifo_path.exists())
        for host, dev in (("gw1", f"{TAG}a"), ("gw2", f"{TAG}b")):
            daemons[host] = _start_keepalived(
                vrrp_link[host], host, dev, agents[host].cfg.fifo_path, tmp_path
            )
            if host == "gw1":  # gw1 first, so it wins the first election
                _wait(lambda: agents["gw1"].state == "MASTER" and agents["gw1"].status["owner"] is True)
        _wait(lambda: agents["gw2"].state == "BACKUP")
        assert eip_target(world.ec2)[0] == world.eni("gw1", "eth0")

        daemons["gw1"].send_signal(signal.SIGTERM)  # planned stop: keepalived resigns with priority 0
        took = _wait(lambda: agents["gw2"].status["owner"] is True)
        print(f"keepalived stop on gw1 -> gw2 owns EIP and routes: {took:.3f} s")
        assert agents["gw2"].state == "MASTER"
        assert set(route_targets(world.ec2, world.private_tables).values()) == {world.eni("gw2", "eth1")}
        assert eip_target(world.ec2) == (world.eni("gw2", "eth0"), "10.77.1.54")
        _wait(lambda: agents["gw1"].state in ("BACKUP", "STOP", "FAULT"))
    finally:
        for proc in daemons.values():
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
        for agent in agents.values():
            agent.stop()
        for t in threads:
            t.join(timeout=5)
