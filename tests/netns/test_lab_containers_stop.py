"""Stopping a lab host ends every process it had, is idempotent, and `wipe` forgets the instance."""

from __future__ import annotations

import pytest

from nat_gateway_ha_lab import baseroot, containers, network, ssh
from nat_gateway_ha_lab import topology as topo
from support import exclusive_lab

pytestmark = [pytest.mark.lab, pytest.mark.netns]


def test_stop_leaves_no_process() -> None:
    with exclusive_lab():
        key = ssh.ensure_key()
        base = baseroot.ensure_base()
        client = topo.host("client")
        try:
            network.build()
            containers.start(client, base, key)
            ssh.wait(client)
            assert containers.netns_pids(client)
            assert containers.stop([client]) == [client]
            assert containers.netns_pids(client) == []
            assert containers.running_pid(client) is None
            assert containers.stop([client]) == []  # idempotent
        finally:
            containers.stop([client])
            containers.wipe(client)
            network.teardown()
        assert network.leftovers() == []
        assert not containers.upper_dir(client).exists()
