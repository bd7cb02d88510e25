"""The lab network's teardown: complete, idempotent, and safe on a half-built lab."""

from __future__ import annotations

import subprocess

import pytest

from nat_gateway_ha_lab import network
from nat_gateway_ha_lab import topology as topo
from support import exclusive_lab

pytestmark = pytest.mark.netns


def test_teardown_leaves_nothing_and_is_idempotent() -> None:
    with exclusive_lab():
        network.build()
        removed = network.teardown()
        assert f"netns {network.VPC_NS}" in removed
        assert network.leftovers() == []
        assert network.teardown() == []
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert topo.PREFIX not in links
        assert topo.PREFIX not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout


def test_teardown_of_a_half_built_lab() -> None:
    with exclusive_lab():
        network._build_mgmt()
        network._build_vpc()  # stopped before the hosts, as an interrupted `up` would
        network.teardown()
        assert network.leftovers() == []
