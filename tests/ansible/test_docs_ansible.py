"""Ansible accepts the generated argument_specs.yml: site.yml still passes its syntax check, and every
variable the example, lab and test inventories set passes Ansible's own role argument validation against it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nat_gateway_ha.inventory import docs

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
INVENTORIES = [
    "inventories/example",
    "inventories/lab",
    "tests/inventories/multi_pair",
    "tests/inventories/three_node",
]
VALIDATE = """---
- name: Validate every gateway's variables against the role's main argument spec
  hosts: nat_gateways
  gather_facts: false
  connection: local
  tasks:
    - name: Validate
      ansible.builtin.validate_argument_spec:
        argument_spec: "{{ (lookup('ansible.builtin.file', specs) | from_yaml).argument_specs.main.options }}"
"""


def _ansible(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    cmd = [str(ANSIBLE_PLAYBOOK), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_site_still_passes_the_syntax_check() -> None:
    proc = _ansible("--syntax-check", "-i", "inventories/example", "playbooks/site.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _validate(tmp_path: Path, inventory: str, *extra: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "validate.yml"
    playbook.write_text(VALIDATE)
    specs = f"specs={ROOT / docs.SPECS}"
    # The lab inventory refers to a role default, undefined outside the role.
    source = f"nat_gateway_ha_agent_source={ROOT}"
    return _ansible("-i", inventory, str(playbook), "-e", specs, "-e", source, *extra)


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_every_inventory_passes_ansibles_argument_validation(tmp_path: Path, inventory: str) -> None:
    proc = _validate(tmp_path, inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed=0" in proc.stdout


def test_ansible_refuses_an_agent_tunable_of_the_wrong_type(tmp_path: Path) -> None:
    bad = '{"nat_gateway_ha_pair": {"vrid": 1, "agent": {"api_share": "lots"}}}'
    proc = _validate(tmp_path, "tests/inventories/multi_pair", "-e", bad)
    assert proc.returncode != 0
    assert "argument 'api_share' is of type str found in 'nat_gateway_ha_pair -> agent'" in proc.stdout
