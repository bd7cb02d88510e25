"""Every rendered keepalived.conf passes the real `keepalived -t`, and every nat.nft the real `nft -c`.

keepalived 2.2.7 refuses a config naming an interface that does not exist where it runs, so each gateway's
files are checked inside a network namespace holding that gateway's interfaces (veths), created and deleted
here. The script user is `nobody` for the check (the role creates its own user on the gateway, and the
inventory refuses `nobody`), so each config is checked as a copy with that one line changed. The check is
the role's own `validate:` command, keepalived-check: `keepalived -t`, plus the workaround for 2.2.7 killing
itself on any config with a vrrp_script.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_render import INVENTORIES, render

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating network namespaces needs root"),
    pytest.mark.skipif(
        shutil.which("keepalived") is None, reason="keepalived is not installed (scripts/bootstrap)"
    ),
]
NETNS = f"natgwkt-{os.getpid()}"
CHECK = (
    Path(__file__).resolve().parents[2]
    / "roles/nat_gateway_ha/files/usr/local/libexec/nat-gateway-ha/keepalived-check"
)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _gateways(group: dict[str, Any]) -> set[str]:
    hosts = set((group.get("hosts") or {}).keys())
    for child in (group.get("children") or {}).values():
        hosts |= _gateways(child or {})
    return hosts


GATEWAYS = sorted(
    h
    for inv in INVENTORIES.values()
    for h in _gateways(yaml.safe_load((inv / "hosts.yml").read_text())["all"]["children"]["nat_gateways"])
)


@contextmanager
def _namespace(interfaces: list[str]) -> Iterator[str]:
    """A fresh namespace holding the given interfaces (veths, both ends inside), deleted afterwards."""
    _run("ip", "netns", "del", NETNS)
    assert _run("ip", "netns", "add", NETNS).returncode == 0
    try:
        for i, ifname in enumerate(interfaces):
            add = _run("ip", "-n", NETNS, "link", "add", ifname, "type", "veth", "peer", "name", f"kt-p{i}")
            assert add.returncode == 0, add.stderr
            for dev in (ifname, f"kt-p{i}"):
                assert _run("ip", "-n", NETNS, "link", "set", dev, "up").returncode == 0
        yield NETNS
    finally:
        _run("ip", "netns", "del", NETNS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All good inventories rendered together (one plan across them, so VRIDs are checked across them too)."""
    out = tmp_path_factory.mktemp("render-all")
    extra = [arg for name, inv in INVENTORIES.items() if name != "example" for arg in ("-i", str(inv))]
    proc = render(INVENTORIES["example"], out, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for conf in out.glob("*/keepalived.conf"):
        text = conf.read_text()
        assert "    script_user keepalived_script\n" in text
        conf.write_text(text.replace("    script_user keepalived_script\n", "    script_user nobody\n"))
    return out


def _interfaces(host_dir: Path) -> list[str]:
    conf = (host_dir / "keepalived.conf").read_text()
    nft = (host_dir / "nat.nft").read_text()
    names = set(re.findall(r"^\s*interface\s+(\S+)", conf, re.M)) | set(re.findall(r'oifname "([^"]+)"', nft))
    return sorted(names)


def test_every_gateway_was_rendered(rendered: Path) -> None:
    assert sorted(p.name for p in rendered.iterdir()) == GATEWAYS


@pytest.mark.parametrize("host", GATEWAYS)
def test_keepalived_and_nft_accept_the_rendered_files(rendered: Path, host: str) -> None:
    host_dir = rendered / host
    with _namespace(_interfaces(host_dir)) as ns:
        check = _run("ip", "netns", "exec", ns, str(CHECK), str(host_dir / "keepalived.conf"))
        assert check.returncode == 0, check.stdout + check.stderr
        nft = _run("ip", "netns", "exec", ns, "nft", "-c", "-f", str(host_dir / "nat.nft"))
        assert nft.returncode == 0, nft.stdout + nft.stderr


@pytest.mark.parametrize("host", ["gw1", "gw-b1"])  # without and with a track script
def test_keepalived_check_fails_without_the_lan_interface(rendered: Path, host: str) -> None:
    """The check above can fail: the same config is refused where its LAN interface is missing."""
    with _namespace(["eth0", "ens5"]) as ns:
        check = _run("ip", "netns", "exec", ns, str(CHECK), str(rendered / host / "keepalived.conf"))
        assert check.returncode != 0
        assert "Non-existent interface" in check.stdout + check.stderr


def test_keepalived_check_refuses_a_missing_or_unsafe_track_script(rendered: Path, tmp_path: Path) -> None:
    conf = (rendered / "gw-b1" / "keepalived.conf").read_text()
    unsafe = tmp_path / "check.sh"
    unsafe.write_text("#!/bin/sh\nexit 0\n")
    unsafe.chmod(0o777)
    for script, reason in (
        ("/nonexistent/check", "not an executable file"),
        (str(unsafe), "writable by others"),
    ):
        bad = tmp_path / "keepalived.conf"
        bad.write_text(conf.replace('script "/usr/bin/true"', f'script "{script}"'))
        with _namespace(_interfaces(rendered / "gw-b1")) as ns:
            check = _run("ip", "netns", "exec", ns, str(CHECK), str(bad))
        assert check.returncode != 0 and reason in check.stderr, check.stderr
