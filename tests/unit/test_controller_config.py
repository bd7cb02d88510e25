"""The controller's ansible.cfg checks host keys; only the lab's inventory, whose hosts are new on every
`natgw-lab up`, turns that off for itself."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_ansible_cfg_checks_host_keys() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    assert cfg.getboolean("defaults", "host_key_checking", fallback=True)
    ssh_args = cfg.get("ssh_connection", "ssh_args", fallback="")
    assert "StrictHostKeyChecking" not in ssh_args and "UserKnownHostsFile" not in ssh_args


def test_only_the_lab_inventory_skips_host_keys() -> None:
    for inventory in (ROOT / "inventories").iterdir():
        texts = [p.read_text() for p in inventory.rglob("*.yml")]
        skips = any("StrictHostKeyChecking=no" in t or "host_key_checking: false" in t for t in texts)
        assert skips == (inventory.name == "lab"), inventory
    lab = yaml.safe_load((ROOT / "inventories/lab/group_vars/all.yml").read_text())
    assert lab["ansible_host_key_checking"] is False
