#!/usr/bin/python
"""Ansible module: build the failover agent's wheel on the controller, the same bytes for the same source."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nat_gateway_ha_agent_wheel
short_description: Build the nat-gateway-ha agent's wheel on the controller
description:
  - Runs on the controller (C(delegate_to: localhost), once per play). Builds the wheel of the root
    distribution (C(pyproject.toml), package C(src/nat_gateway_ha)) with the controller's
    C(pip wheel --no-deps) into O(build_dir), which then holds exactly one agent wheel.
  - Builds from a fresh copy of C(pyproject.toml), C(README.md) and C(src/nat_gateway_ha) (no stale
    C(build/) tree, no C(__pycache__), never the lab's package) with a fixed C(SOURCE_DATE_EPOCH), so the same
    source gives the same bytes: the wheel's sha256 tells the gateways whether to reinstall.
  - Reports a change only when the wheel in O(build_dir) was missing or differed.
version_added: "0.1.0"
author: nat-gateway-ha developers
options:
  source:
    description: The project on the controller (holds pyproject.toml, README.md, src/nat_gateway_ha).
    type: path
    required: true
  build_dir:
    description: Controller directory for the wheel (created; its other agent wheels are removed).
    type: path
    required: true
  wheelhouse:
    description:
      - Controller directory of wheels to build from instead of an index (C(--no-index --find-links)); it must
        hold the build requirements of pyproject.toml (setuptools, wheel). Empty uses pip's configured index.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Builds anyway, into the controller's O(build_dir) only, so a check can compare hashes.
requirements:
  - pip in the controller's Python; setuptools and wheel from the index or O(wheelhouse) (build isolation)
"""

EXAMPLES = r"""
- name: Build the agent's wheel
  nat_gateway_ha_agent_wheel:
    source: "{{ playbook_dir }}"
    build_dir: "{{ playbook_dir }}/build/agent-wheel"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The wheel on the controller.
  returned: always
  type: str
filename:
  description: The wheel's file name (name, version and tags, as pip requires them).
  returned: always
  type: str
sha256:
  description: The wheel's sha256, hex.
  returned: always
  type: str
version:
  description: The agent's version, from the wheel's name.
  returned: always
  type: str
"""

import hashlib  # noqa: E402  (after the documentation, by convention)
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

PACKAGE = "nat_gateway_ha"
# A fixed date for every file in the wheel (zip keeps mtimes; 1980 is the earliest it can store).
SOURCE_DATE_EPOCH = "315532800"


class BuildError(Exception):
    """pip could not build the wheel; the message carries its output."""


def _stage(source: Path, stage: Path) -> Path:
    """Copy what the agent's distribution is made of, and nothing that could leak into the wheel."""
    stage.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(source / name, stage / name)
    shutil.copytree(
        source / "src" / PACKAGE,
        stage / "src" / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return stage


def _pip_wheel(stage: Path, out: Path, wheelhouse: str) -> Path:
    """`pip wheel --no-deps` of the staged tree; returns the one wheel it wrote."""
    index = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    proc = subprocess.run(
        [*cmd, *index, "--wheel-dir", str(out), str(stage)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wheels = sorted(out.glob(f"{PACKAGE}-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise BuildError(f"pip wheel failed (rc {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return wheels[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(source: Path, build_dir: Path, wheelhouse: str = "") -> tuple[dict[str, str], bool]:
    """Build the wheel into build_dir; returns its facts and whether build_dir's wheel changed."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agent-wheel-", dir=build_dir) as tmp:
        built = _pip_wheel(_stage(source, Path(tmp) / "src"), Path(tmp) / "out", wheelhouse)
        target = build_dir / built.name
        digest = sha256(built)
        changed = not target.exists() or sha256(target) != digest
        if changed:
            os.replace(built, target)
    for stale in build_dir.glob(f"{PACKAGE}-*.whl"):
        if stale != target:
            stale.unlink()
            changed = True
    facts = {
        "path": str(target),
        "filename": target.name,
        "sha256": digest,
        "version": target.name.split("-")[1],
    }
    return facts, changed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "path", "required": True},
            "build_dir": {"type": "path", "required": True},
            "wheelhouse": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params: dict[str, Any] = module.params
    try:
        facts, changed = build(Path(params["source"]), Path(params["build_dir"]), params["wheelhouse"])
    except (BuildError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, **facts)


if __name__ == "__main__":
    main()
