"""The role on each distribution it supports, from recorded facts (no host of those distributions needed).

tests/ansible/facts/distributions.yml holds, per distribution, the facts `setup` records on its stock cloud
image and what the role must make of them. One ansible-playbook run (JSON callback) gives every recorded
distribution its own inventory host on this machine (connection local), sets its facts as gathered facts
and runs the role's tasks/distribution.yml: the resolved package list and the agent's venv interpreter are
compared with the fixture, an unknown distribution must fail with a sentence naming the host, and a user's
nat_gateway_ha_packages replaces the distribution's list. tasks/agent_python.yml runs against stand-in
interpreters: one older than 3.11 and a missing one are refused with a sentence, the real one passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "nat_gateway_ha"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
FIXTURE = Path(__file__).parent / "facts" / "distributions.yml"
RECORDED: dict[str, dict[str, Any]] = yaml.safe_load(FIXTURE.read_text())
FACT_KEYS = (
    "distribution",
    "distribution_release",
    "distribution_version",
    "distribution_major_version",
    "os_family",
    "pkg_mgr",
)
# Distributions the role must refuse: another family, and Amazon Linux 2 (python3 3.7, yum).
UNSUPPORTED = {
    "centos9": {
        "distribution": "CentOS",
        "distribution_release": "Stream",
        "distribution_version": "9",
        "distribution_major_version": "9",
        "os_family": "RedHat",
        "pkg_mgr": "dnf",
    },
    "amzn2": {
        "distribution": "Amazon",
        "distribution_release": "NA",
        "distribution_version": "2",
        "distribution_major_version": "2",
        "os_family": "RedHat",
        "pkg_mgr": "yum",
    },
}
OVERRIDE = ["keepalived", "nftables", "conntrack-tools", "python3.12"]

# Facts set as gathered facts (cacheable: the fact cache is what fills ansible_facts), then the role's
# distribution step, then what it resolved.
RESOLVE = [
    {
        "name": "Resolve the role's distribution variables from recorded facts",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Set the recorded facts",
                "ansible.builtin.set_fact": {
                    **{f"ansible_{key}": f"{{{{ recorded.{key} }}}}" for key in FACT_KEYS},
                    "cacheable": True,
                },
            },
            {
                "name": "Load the distribution's variables",
                "ansible.builtin.include_role": {
                    "name": "nat_gateway_ha",
                    "tasks_from": "distribution",
                    "public": True,
                },
            },
            {
                "name": "Show what the role resolved",
                "ansible.builtin.debug": {
                    "msg": {
                        "packages": "{{ __nat_gateway_ha_packages }}",
                        "agent_python": "{{ __nat_gateway_ha_agent_python }}",
                        "pkg_mgr": "{{ ansible_facts.pkg_mgr }}",
                    }
                },
            },
        ],
    }
]

CHECK_PYTHON = [
    {
        "name": "Check the agent's Python",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Check",
                "ansible.builtin.include_role": {"name": "nat_gateway_ha", "tasks_from": "agent_python"},
            }
        ],
    }
]


def _playbook(tmp: Path, play: list[dict[str, Any]], inventory: dict[str, Any]) -> dict[str, Any]:
    """Run `play` against `inventory` (every host local) and return the JSON callback's document."""
    (tmp / "play.yml").write_text(json.dumps(play))
    (tmp / "inventory.yml").write_text(json.dumps(inventory))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_NOCOLOR": "1",
    }
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)
    start = proc.stdout.find("{")
    assert start >= 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document: dict[str, Any] = json.loads(proc.stdout[start:])
    return document


def _hosts(**hostvars: dict[str, Any]) -> dict[str, Any]:
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"vars": common, "hosts": hostvars}}


def _results(document: dict[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """Each host's result of the task named `task` (the last one of that name)."""
    out: dict[str, dict[str, Any]] = {}
    for play in document["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"].endswith(task):
                out.update(entry["hosts"])
    return out


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    hosts: dict[str, Any] = {name: {"recorded": d["facts"]} for name, d in RECORDED.items()}
    hosts |= {name: {"recorded": facts} for name, facts in UNSUPPORTED.items()}
    own = {"recorded": RECORDED["ubuntu2204"]["facts"], "nat_gateway_ha_packages": OVERRIDE}
    hosts["ubuntu2204_own_list"] = own
    return _playbook(tmp_path_factory.mktemp("distributions"), RESOLVE, _hosts(**hosts))


def test_the_fixture_records_every_supported_distribution() -> None:
    assert sorted(RECORDED) == ["al2023", "debian12", "debian13", "ubuntu2204", "ubuntu2404"]
    for name, recorded in RECORDED.items():
        missing = {*FACT_KEYS, "python"} - set(recorded["facts"])
        assert not missing, (name, missing)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_each_distribution_resolves_its_packages_and_agent_python(
    resolved: dict[str, Any], name: str
) -> None:
    result = _results(resolved, "Show what the role resolved")[name]
    assert not result.get("failed"), result
    assert result["msg"]["packages"] == RECORDED[name]["packages"]
    assert result["msg"]["agent_python"] == RECORDED[name]["agent_python"]
    assert result["msg"]["pkg_mgr"] == RECORDED[name]["facts"]["pkg_mgr"]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_venv_python_is_the_system_one_only_where_that_is_311_or_later(name: str) -> None:
    """The recorded system python3 decides: older than 3.11 needs the distribution's python3.11 package."""
    version = RECORDED[name]["facts"]["python"]["version"]
    expected = RECORDED[name]["agent_python"]
    if (version["major"], version["minor"]) >= (3, 11):
        assert expected == "/usr/bin/python3"
    else:
        assert expected == "/usr/bin/python3.11"
        assert "python3.11" in RECORDED[name]["packages"]


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_an_unsupported_distribution_is_refused_with_a_sentence(resolved: dict[str, Any], name: str) -> None:
    result = _results(resolved, "Refuse a distribution the role does not know")[name]
    assert result.get("failed") is True, result
    facts = UNSUPPORTED[name]
    assert f"host {name} runs {facts['distribution']} {facts['distribution_version']}" in result["msg"]
    assert "Debian 12 and 13, Ubuntu 22.04 and 24.04 and Amazon Linux 2023" in result["msg"]
    assert name not in _results(resolved, "Show what the role resolved")


def test_a_users_package_list_replaces_the_distributions(resolved: dict[str, Any]) -> None:
    result = _results(resolved, "Show what the role resolved")["ubuntu2204_own_list"]
    assert result["msg"]["packages"] == OVERRIDE
    assert result["msg"]["agent_python"] == "/usr/bin/python3.11"  # the interpreter stays the distribution's


def test_every_vars_file_belongs_to_a_recorded_distribution() -> None:
    facts = [d["facts"] for d in RECORDED.values()]
    names = {f"{f['distribution']}-{f['distribution_major_version']}.yml" for f in facts}
    names |= {f"{f['distribution']}.yml" for f in facts}
    files = {p.name for p in (ROLE / "vars").glob("*.yml")} - {"main.yml"}
    assert files and files <= names, files - names


def test_meta_lists_the_supported_platforms() -> None:
    meta = yaml.safe_load((ROLE / "meta/main.yml").read_text())
    platforms = {(p["name"], str(v)) for p in meta["galaxy_info"]["platforms"] for v in p["versions"]}
    assert platforms == {
        ("Debian", "bookworm"),
        ("Debian", "trixie"),
        ("Ubuntu", "jammy"),
        ("Ubuntu", "noble"),
        ("Amazon Linux", "2023"),
    }


def _stand_in(tmp: Path, name: str, version: str) -> Path:
    path = tmp / name
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_the_agents_python_must_be_311_or_later(tmp_path: Path) -> None:
    old = _stand_in(tmp_path, "python3.10", "3.10")
    new = _stand_in(tmp_path, "python3.11", "3.11")
    hosts = _hosts(
        gw_old={"__nat_gateway_ha_distribution_python": str(old)},
        gw_missing={"__nat_gateway_ha_distribution_python": str(tmp_path / "absent/python3.11")},
        gw_new={"__nat_gateway_ha_distribution_python": str(new)},
        gw_real={"__nat_gateway_ha_distribution_python": sys.executable},
    )
    document = _playbook(tmp_path, CHECK_PYTHON, hosts)
    results = _results(document, "Refuse a Python older than 3.11 for the agent")
    assert results["gw_old"].get("failed") is True, results["gw_old"]
    assert results["gw_old"]["msg"].startswith("host gw_old (")
    assert f"needs Python 3.11 or later, and {old} is Python 3.10" in results["gw_old"]["msg"]
    assert results["gw_missing"].get("failed") is True, results["gw_missing"]
    assert "absent/python3.11 does not run (" in results["gw_missing"]["msg"]
    assert "is its package installed?" in results["gw_missing"]["msg"]
    assert not results["gw_new"].get("failed"), results["gw_new"]
    assert not results["gw_real"].get("failed"), results["gw_real"]
