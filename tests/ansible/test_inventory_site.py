"""site.yml validates the whole inventory, with gathered facts, before its converge play touches any host.

The example inventory is run against this machine (connection local, check mode, so nothing could change even
if validation wrongly passed): its facts contradict the inventory (no eth1, another eth0 address), so the
validation play must fail with errors naming pair, host and field, and the converge play must never start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def test_site_refuses_an_inventory_that_contradicts_the_facts_before_converging() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    cmd = [str(ANSIBLE_PLAYBOOK), str(ROOT / "site.yml"), "-i", str(ROOT / "inventories/example"), "--check"]
    cmd += ["-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}"]
    cmd += ["-e", "ansible_become=false"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "pair natgw_prod, host gw1, field nat_gateway_ha_host." in out, out
    assert "pair natgw_prod, host gw2, field nat_gateway_ha_host." in out, out
    assert "PLAY [Validate the NAT gateway inventory]" in out
    assert "PLAY [Converge the NAT gateways]" not in out


def test_site_with_a_misspelt_parent_group_fails_instead_of_converging_nothing(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    nat_gateway:\n      hosts:\n        gw-x1: {}\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    cmd = [str(ANSIBLE_PLAYBOOK), str(ROOT / "site.yml"), "-i", str(inventory), "--check"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "no host in group nat_gateways" in proc.stdout, proc.stdout
    assert "PLAY [Converge the NAT gateways]" not in proc.stdout


def test_a_run_limited_by_tags_still_validates_first() -> None:
    """`--tags nat` must not skip validation: the role's tasks need the plan it registers."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    for tags in ("nat", "flows", "keepalived"):
        cmd = [str(ANSIBLE_PLAYBOOK), str(ROOT / "site.yml"), "-i", str(ROOT / "inventories/example")]
        proc = subprocess.run(
            [*cmd, "--tags", tags, "--list-tasks"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert "Validate every pair and plan every gateway" in proc.stdout, (tags, proc.stdout)
