"""playbooks/render.yml: every gateway's files from one inventory, without touching a host.

The playbook runs for real (ansible-playbook from the venv, as a user would run it); the assertions read the
rendered keepalived.conf, agent.json and nat.nft of every peer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "render.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
INVENTORIES = {
    "example": ROOT / "inventories" / "example",
    "multi_pair": ROOT / "tests" / "inventories" / "multi_pair",
    "three_node": ROOT / "tests" / "inventories" / "three_node",
}
FIFO = "/run/nat-gateway-ha/notify.fifo"


def render(inventory: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env["PATH"] = f"{ANSIBLE_PLAYBOOK.parent}:{env.get('PATH', '')}"
    cmd = [
        str(ANSIBLE_PLAYBOOK),
        str(PLAYBOOK),
        "-i",
        str(inventory),
        "-e",
        f"nat_gateway_ha_render_dir={out}",
    ]
    return subprocess.run([*cmd, *extra], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@dataclass(frozen=True)
class Keepalived:
    """The parts of a rendered keepalived.conf that must agree between peers."""

    text: str

    def one(self, key: str) -> str:
        values = re.findall(rf"^\s*{key}\s+(\S+)\s*$", self.text, re.M)
        assert len(values) == 1, (key, values)
        return values[0]

    def instance(self) -> str:
        names = re.findall(r"^vrrp_instance\s+(\S+)\s*\{", self.text, re.M)
        assert len(names) == 1, names
        return names[0]

    def block(self, name: str) -> list[str]:
        m = re.search(rf"^\s*{name}\s*\{{\n(.*?)^\s*\}}", self.text, re.M | re.S)
        assert m, name
        return [line.strip() for line in m.group(1).splitlines() if line.strip()]


@dataclass(frozen=True)
class Rendered:
    out: Path
    stdout: str

    def hosts(self) -> list[str]:
        return sorted(p.name for p in self.out.iterdir())

    def keepalived(self, host: str) -> Keepalived:
        return Keepalived((self.out / host / "keepalived.conf").read_text())

    def agent(self, host: str) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.out / host / "agent.json").read_text())
        return data


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """Each good inventory rendered once for the whole module."""
    out: dict[str, Rendered] = {}
    for name, inventory in INVENTORIES.items():
        path = tmp_path_factory.mktemp(f"render-{name}")
        proc = render(inventory, path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[name] = Rendered(path, proc.stdout)
    return out


@pytest.fixture(params=sorted(INVENTORIES))
def rendered(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    return renders[request.param]


def _pairs(r: Rendered) -> dict[str, list[str]]:
    pairs: dict[str, list[str]] = {}
    for host in r.hosts():
        pairs.setdefault(str(r.agent(host)["pair"]), []).append(host)
    return pairs


def test_every_gateway_gets_its_files(rendered: Rendered) -> None:
    for host in rendered.hosts():
        assert {p.name for p in (rendered.out / host).iterdir()} == {
            "keepalived.conf",
            "agent.json",
            "nat.nft",
            "conntrackd.conf",  # flow sync is on by default
        }
    assert len(rendered.hosts()) >= 2


def test_each_peer_lists_exactly_the_others_as_unicast_peers(rendered: Rendered) -> None:
    for members in _pairs(rendered).values():
        src = {h: rendered.keepalived(h).one("unicast_src_ip") for h in members}
        for h in members:
            assert sorted(rendered.keepalived(h).block("unicast_peer")) == sorted(
                v for o, v in src.items() if o != h
            )
        assert len(set(src.values())) == len(members)


def test_peers_share_vrid_version_vips_and_differ_in_priority(rendered: Rendered) -> None:
    for members in _pairs(rendered).values():
        confs = [rendered.keepalived(h) for h in members]
        for key in ("virtual_router_id", "vrrp_version", "advert_int"):
            assert len({c.one(key) for c in confs}) == 1, key
        assert len({c.instance() for c in confs}) == 1
        assert len({tuple(c.block("virtual_ipaddress")) for c in confs}) == 1
        priorities = [int(c.one("priority")) for c in confs]
        assert len(set(priorities)) == len(members) and all(1 <= p <= 254 for p in priorities)
        for c in confs:
            assert c.one("state") == "BACKUP"


def test_notify_fifo_and_script_security_are_wired_to_the_agent(rendered: Rendered) -> None:
    for host in rendered.hosts():
        conf, agent = rendered.keepalived(host), rendered.agent(host)
        globals_ = conf.block("global_defs")
        assert f"notify_fifo {FIFO}" in globals_
        assert agent["fifo_path"] == FIFO
        assert "enable_script_security" in globals_
        assert conf.one("script_user") not in ("root", "")
        assert agent["vrrp_instance"] == conf.instance()
        assert agent["host"] == host


def test_agent_config_matches_the_hosts_nat_rules(rendered: Rendered) -> None:
    for host in rendered.hosts():
        agent = rendered.agent(host)
        nft = (rendered.out / host / "nat.nft").read_text()
        eips = agent["eips"]
        assert isinstance(eips, list) and eips
        for binding in eips:
            assert binding["private_ip"] in nft
        assert "0.0.0.0/0" in agent["destinations"]  # type: ignore[operator]


def test_example_matches_the_seed_topology(renders: dict[str, Rendered]) -> None:
    r = renders["example"]
    gw1, gw2 = r.keepalived("gw1"), r.keepalived("gw2")
    assert (gw1.one("unicast_src_ip"), gw1.block("unicast_peer")) == ("10.77.3.220", ["10.77.4.53"])
    assert (gw2.one("unicast_src_ip"), gw2.block("unicast_peer")) == ("10.77.4.53", ["10.77.3.220"])
    assert gw1.block("virtual_ipaddress") == ["10.240.240.240/32 dev eth1"]
    assert gw1.block("static_routes") == ["10.77.4.53/32 via 10.77.3.1 dev eth1"]
    assert gw2.block("static_routes") == ["10.77.3.220/32 via 10.77.4.1 dev eth1"]
    assert "nopreempt" in gw1.text and "nopreempt" in gw2.text
    assert r.agent("gw1")["route_tables"] == {"tags": {"Network": "private"}, "ids": [], "subnet_ids": [],
                                              "include_main": False, "first": []}  # fmt: skip
    # Rendering again changes nothing: the output is stable.
    again = render(INVENTORIES["example"], r.out)
    assert again.returncode == 0 and re.search(r"gw1\s+: ok=\d+\s+changed=0", again.stdout), again.stdout


def test_multi_pair_vrrpv2_has_authentication_and_track_script(renders: dict[str, Rendered]) -> None:
    r = renders["multi_pair"]
    b1 = r.keepalived("gw-b1")
    assert b1.one("vrrp_version") == "2" and b1.one("advert_int") == "1"
    assert b1.block("authentication") == ["auth_type PASS", "auth_pass s3cret"]
    assert b1.block("track_script") == ["chk_natgw_b"]
    assert 'script "/usr/bin/true"' in b1.block("vrrp_script chk_natgw_b")
    assert "nopreempt" not in b1.text
    assert (b1.one("priority"), r.keepalived("gw-b2").one("priority")) == ("90", "110")
    a1 = r.keepalived("gw-a1")
    assert a1.one("vrrp_version") == "3" and "authentication" not in a1.text
    assert r.agent("gw-b1")["api_connect_timeout"] == 0.5


def test_three_node_group_snats_over_both_eips(renders: dict[str, Rendered]) -> None:
    r = renders["three_node"]
    assert len(r.keepalived("gw-t1").block("unicast_peer")) == 2
    nft = (r.out / "gw-t3" / "nat.nft").read_text()
    # Both SNAT to the pair's shared addresses; the WAN edge maps each to this gateway's own EIP address.
    assert "jhash ip saddr mod 2 map { 0 : 169.254.252.1, 1 : 169.254.252.2 }" in nft
    assert "ip daddr 10.30.2.12 ip daddr set 169.254.252.2" in nft
    assert "ip saddr 169.254.252.2 ip saddr set 10.30.2.12" in nft
    assert r.agent("gw-t1")["destinations"] == ["0.0.0.0/0", "10.250.0.1/32"]  # vip_routes


def test_conntrackd_syncs_with_the_peers_over_the_lan(renders: dict[str, Rendered]) -> None:
    """Each gateway sends its flows to every peer's LAN address and never syncs its own connections."""
    r = renders["three_node"]
    for host in r.hosts():
        conf = (r.out / host / "conntrackd.conf").read_text()
        own = r.keepalived(host).one("unicast_src_ip")
        peers = r.keepalived(host).block("unicast_peer")
        assert re.findall(r"IPv4_Destination_Address (\S+)", conf) == peers
        assert set(re.findall(r"IPv4_address (\S+)\n\s+IPv4_Destination", conf)) == {own}
        assert "Mode FTFW" in conf and f"IPv4_address {own}" in conf.split("Address Ignore")[1]
        assert "udp dport 3780 notrack" in (r.out / host / "nat.nft").read_text()
    assert shutil.which("conntrackd"), "scripts/bootstrap installs conntrackd for this check"
    check = ROOT / "roles/nat_gateway_ha/files/usr/local/libexec/nat-gateway-ha/conntrackd-check"
    conf = r.out / "gw-t1" / "conntrackd.conf"
    assert subprocess.run([check, conf], capture_output=True).returncode == 0
    bad = conf.with_name("bad.conf")
    bad.write_text(conf.read_text().replace("Port 3780", "Port x"))
    assert subprocess.run([check, bad], capture_output=True).returncode == 1
    bad.unlink()


def test_render_without_a_directory_says_how_to_give_one() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), str(PLAYBOOK), "-i", str(INVENTORIES["example"])],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "-e nat_gateway_ha_render_dir=DIR" in proc.stdout + proc.stderr


# tests/inventories/invalid holds one pair per bad input of issue 2; one render reports them all.
INVALID_EXPECTED = {
    "fewer than two hosts": "pair bad_single, host bad-single-1, field members: ",
    "a host in two pairs": "pair bad_twice_a,bad_twice_b, host twice-2, field group membership: ",
    "duplicate VRID on a shared LAN": "pair bad_vrid_dup_a, host bad-vrid-dup-a-1,bad-vrid-dup-a-2, "
    "field nat_gateway_ha_pair.vrid: VRID 200 is also used by pair bad_vrid_dup_b",
    "equal priorities": "pair bad_prio_equal, host bad-prio-equal-1, field nat_gateway_ha_host.priority: ",
    "VRID out of range": "pair bad_vrid_range, host bad-vrid-range-1,bad-vrid-range-2, "
    "field nat_gateway_ha_pair.vrid: ",
    "priority out of range": "pair bad_prio_range, host bad-prio-range-1, "
    "field nat_gateway_ha_host.priority: ",
    "VRRPv2 fractional advert_int": "pair bad_v2_fraction, host bad-v2-fraction-1,bad-v2-fraction-2, "
    "field nat_gateway_ha_pair.advert_int: ",
    "auth_pass longer than 8 with VRRPv2": "pair bad_v2_pass, host bad-v2-pass-1,bad-v2-pass-2, "
    "field nat_gateway_ha_pair.authentication.auth_pass: ",
    "authentication with VRRPv3": "pair bad_v3_auth, host bad-v3-auth-1,bad-v3-auth-2, "
    "field nat_gateway_ha_pair.authentication: ",
    "invalid IP": "pair bad_ip, host bad-ip-1, field nat_gateway_ha_host.lan_address: ",
    "invalid CIDR": "pair bad_cidr, host bad-cidr-1,bad-cidr-2, field nat_gateway_ha_pair.destinations[0]: ",
    "unicast address outside its LAN subnet": "pair bad_unicast, host bad-unicast-2, "
    "field nat_gateway_ha_host.unicast_src_ip: ",
    "VIP equal to a host address": "pair bad_vip, host bad-vip-1, field nat_gateway_ha_pair.vips[0]: ",
    "missing EIP": "pair bad_no_eip, host bad-no-eip-1,bad-no-eip-2, field nat_gateway_ha_pair.eips: ",
    "unknown key in pair config": "pair bad_pair_key, host bad-pair-key-1,bad-pair-key-2, "
    "field nat_gateway_ha_pair.advert_interval: unknown key",
    "unknown key in host config": "pair bad_host_key, host bad-host-key-2, "
    "field nat_gateway_ha_host.lan_adress: ",
    "address neither given nor in facts": "pair bad_no_address, host bad-no-address-2, "
    "field nat_gateway_ha_host.lan_address: not set",
}


@pytest.fixture(scope="module")
def invalid_render(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("render-invalid")
    return render(ROOT / "tests" / "inventories" / "invalid", out), out


@pytest.mark.parametrize("case", sorted(INVALID_EXPECTED))
def test_render_refuses_bad_input_naming_pair_host_and_field(
    invalid_render: tuple[subprocess.CompletedProcess[str], Path], case: str
) -> None:
    proc, _ = invalid_render
    assert proc.returncode != 0
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert any(line.startswith(INVALID_EXPECTED[case]) for line in lines), proc.stdout


def test_invalid_inventory_renders_nothing(
    invalid_render: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = invalid_render
    assert list(out.iterdir()) == []


def _play(tmp_path: Path, task_args: str, inventory: Path) -> subprocess.CompletedProcess[str]:
    """Run the plan action alone, as a playbook in tmp_path, and print the planned host names."""
    playbook = tmp_path / "plan.yml"
    playbook.write_text(
        "---\n- hosts: nat_gateways\n  gather_facts: false\n  vars: {ansible_connection: local}\n  tasks:\n"
        f"    - nat_gateway_ha_plan: {task_args}\n      run_once: true\n      register: planned\n"
        "    - ansible.builtin.debug: {msg: \"PLANNED {{ planned.plan.hosts | sort | join(',') }}\"}\n"
        "      run_once: true\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), str(playbook), "-i", str(inventory)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_plan_action_finds_pairs_from_the_inventory_or_an_explicit_list(tmp_path: Path) -> None:
    found = _play(tmp_path, "{use_facts: false}", INVENTORIES["multi_pair"])
    assert "PLANNED gw-a1,gw-a2,gw-b1,gw-b2" in found.stdout, found.stdout
    explicit = _play(tmp_path, "{use_facts: false, pair_groups: [natgw_b]}", INVENTORIES["multi_pair"])
    assert "PLANNED gw-b1,gw-b2" in explicit.stdout, explicit.stdout
    unknown = _play(tmp_path, "{use_facts: false, pair_groups: [natgw_x]}", INVENTORIES["multi_pair"])
    assert unknown.returncode != 0 and "pair group(s) not in the inventory: natgw_x" in unknown.stdout


def _inventory_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    return path


_ONE_PAIR = """
all:
  children:
    {parent}:
      children:
        natgw_x:
          vars:
            nat_gateway_ha_pair:
              vrid: 9
              vips: [10.249.0.1/32]
              eips: [{{allocation_id: eipalloc-09}}]
              route_tables: {{ids: [rtb-09]}}
          hosts:
            {first}:
              nat_gateway_ha_host: {{wan_address: 10.9.1.10/24, wan_mac: "02:09:00:00:01:00",
                lan_address: 10.9.5.10/24, lan_mac: "02:09:00:00:01:01", eip_private_ips: [10.9.1.11]}}
            gw-x2:
              nat_gateway_ha_host: {{wan_address: 10.9.2.10/24, wan_mac: "02:09:00:00:02:00",
                lan_address: 10.9.6.10/24, lan_mac: "02:09:00:00:02:01", eip_private_ips: [10.9.2.11]}}
"""


def test_render_refuses_a_host_name_that_would_leave_the_directory(tmp_path: Path) -> None:
    inventory = _inventory_file(tmp_path, _ONE_PAIR.format(parent="nat_gateways", first='"../x"'))
    out = tmp_path / "out"
    out.mkdir()
    proc = render(inventory, out)
    assert proc.returncode != 0
    assert "pair natgw_x, host '../x', field inventory_hostname" in proc.stdout, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts.yml", "out"] and list(out.iterdir()) == []


def test_render_with_a_misspelt_parent_group_fails_instead_of_rendering_nothing(tmp_path: Path) -> None:
    inventory = _inventory_file(tmp_path, _ONE_PAIR.format(parent="nat_gateway", first="gw-x1"))
    proc = render(inventory, tmp_path / "out")
    assert proc.returncode != 0
    assert "no host in group nat_gateways" in proc.stdout, proc.stdout


def test_render_refuses_a_gateway_outside_every_pair_group(tmp_path: Path) -> None:
    text = _ONE_PAIR.format(parent="nat_gateways", first="gw-x1") + "      hosts:\n        gw-stray: {}\n"
    proc = render(_inventory_file(tmp_path, text), tmp_path / "out")
    assert proc.returncode != 0
    assert "host(s) in nat_gateways but in no pair group: gw-stray" in proc.stdout, proc.stdout


def test_the_vrrp_password_reaches_the_file_and_no_output(tmp_path: Path) -> None:
    """-vvv --diff shows plans, facts and diffs: none may carry auth_pass; the file is its owner's only."""
    proc = render(INVENTORIES["multi_pair"], tmp_path, "-vvv", "--diff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    conf = tmp_path / "gw-b1" / "keepalived.conf"
    assert "auth_pass s3cret" in conf.read_text()
    assert conf.stat().st_mode & 0o777 == 0o600
