"""`natgw-lab up` twice is safe and `down` leaves nothing: no namespace, link, rule, process, file or disk."""

from __future__ import annotations

import subprocess

import pytest

from nat_gateway_ha_lab import cli, containers, controlplane, network, paths, ssh
from nat_gateway_ha_lab import topology as topo
from support import exclusive_lab

pytestmark = [pytest.mark.lab, pytest.mark.netns]


def _lab_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    markers = (
        f"--network-namespace-path=/run/netns/{topo.PREFIX}-",  # a host's systemd-nspawn
        f"nat_gateway_ha_lab.controlplane run --state-dir {paths.RUN_DIR}",
        "nat_gateway_ha_lab.internet",
    )
    return [line for line in out.splitlines() if any(m in line for m in markers)]


def test_up_twice_then_down_leaves_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with exclusive_lab():
        try:
            cli.up()
            first = {h.name: containers.running_pid(h) for h in topo.HOSTS}
            cli.up()  # idempotent: the same containers and cloud keep running
            assert {h.name: containers.running_pid(h) for h in topo.HOSTS} == first
            assert None not in first.values()
            assert None not in controlplane.running().values()
            assert all(ssh.run(h, "true").returncode == 0 for h in topo.HOSTS)
            assert paths.WHEELHOUSE.is_dir() and any(paths.WHEELHOUSE.glob("boto3-*.whl"))
        finally:
            cli.down()
    assert network.leftovers() == []
    assert _lab_processes() == []
    assert not paths.RUN_DIR.exists()
    assert not paths.HOSTS_DIR.exists()
    assert "nothing left" in capsys.readouterr().out
