"""A lab host boots as an EC2-like instance: systemd clean, sshd with the lab key, and the kernel features
the role needs (sysctl, nftables, iptables NAT, keepalived adding its VIP) work inside; stopping it leaves
no process behind. One gateway only: the Molecule scenarios run the whole lab.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from nat_gateway_ha_lab import baseroot, containers, network, ssh
from nat_gateway_ha_lab import topology as topo
from support import exclusive_lab

pytestmark = [pytest.mark.lab, pytest.mark.netns]

GW = topo.host("gw1")

KEEPALIVED_CONF = f"""
global_defs {{
    enable_script_security
    vrrp_version 3
}}
vrrp_instance T1 {{
    state BACKUP
    interface eth1
    virtual_router_id 201
    priority 100
    advert_int 0.1
    unicast_src_ip {GW.nic("eth1").address}
    unicast_peer {{
        {topo.host("gw2").nic("eth1").address}
    }}
    virtual_ipaddress {{
        {topo.VIP} dev eth1
    }}
}}
"""


@pytest.fixture(scope="module")
def host() -> Iterator[topo.Host]:
    with exclusive_lab():
        try:
            key = ssh.ensure_key()
            base = baseroot.ensure_base()
            network.build()
            containers.start(GW, base, key)
            ssh.wait(GW)
            yield GW
        finally:
            containers.stop([GW])
            containers.wipe(GW)
            network.teardown()


def sh(host: topo.Host, cmd: str) -> str:
    proc = ssh.run(host, cmd)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
    return proc.stdout.strip()


def test_boots_clean_with_its_own_identity(host: topo.Host) -> None:
    assert sh(host, "systemctl is-system-running --wait") == "running"
    assert sh(host, "hostname") == host.name
    assert re.fullmatch(r"[0-9a-f]{32}", sh(host, "cat /etc/machine-id"))
    assert sh(host, "ls /etc/ssh/ssh_host_ed25519_key.pub")


def test_kernel_features_the_role_uses(host: topo.Host) -> None:
    assert sh(host, "sysctl -w net.ipv4.ip_forward=1 && sysctl -n net.ipv4.ip_forward").endswith("1")
    sh(host, "nft add table ip t && nft add chain ip t c '{ type nat hook postrouting priority 100; }'")
    assert "table ip t" in sh(host, "nft list tables")
    sh(host, "iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE")
    sh(host, "conntrack -L >/dev/null")


def test_keepalived_adds_the_vip(host: topo.Host) -> None:
    sh(host, f"cat > /etc/keepalived/keepalived.conf <<'EOF'\n{KEEPALIVED_CONF}\nEOF")
    sh(host, "keepalived -t -f /etc/keepalived/keepalived.conf")
    sh(host, "systemctl restart keepalived")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # alone, it becomes master after 3 adverts and adds the VIP
        out = network.ip("-o", "-4", "addr", "show", "dev", "eth1", ns=host.netns).stdout
        if f" {topo.VIP.ip}/" in out:
            break
        time.sleep(0.1)
    else:
        pytest.fail(
            f"keepalived did not add {topo.VIP} on eth1: {sh(host, 'journalctl -u keepalived -n 20')}"
        )
