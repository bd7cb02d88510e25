"""The agent's wheelhouse: every wheel its venv needs, fetched on the controller for hosts with no internet.

The role installs the agent's wheel on a gateway with `pip install --no-index --find-links <wheelhouse>`,
which needs the runtime dependencies of the root pyproject.toml (the agent's distribution); the controller
builds that wheel with the same index, which needs the build requirements (setuptools, wheel, pure Python).
The wheels are picked for the lab hosts' Python (the base root's: 3.11 on Debian 12, 3.13 on Debian 13;
same architecture as the controller), whatever Python the controller runs. The download is redone only
when the requirement list or that Python changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from nat_gateway_ha_lab import paths

STAMP = ".requirements"


def requirements(pyproject: Path | None = None) -> list[str]:
    """The agent's runtime dependencies plus its build requirements, as the root pyproject.toml says, and
    `packaging`, which the role's ansible.builtin.pip needs in a venv without setuptools (Python 3.12+)."""
    data = tomllib.loads((pyproject or paths.REPO / "pyproject.toml").read_text())
    return sorted({*data["project"]["dependencies"], *data["build-system"]["requires"], "packaging"})


def _fingerprint(reqs: list[str], python: str) -> str:
    text = "\n".join([f"py{python}", *reqs])
    return hashlib.sha256(text.encode()).hexdigest()


def ensure(target: Path | None = None, python: str | None = None) -> tuple[Path, bool]:
    """Download the wheels for `python` ("3.13"; default: the controller's) unless the cache matches;
    returns (wheelhouse, whether it downloaded)."""
    target = target or paths.WHEELHOUSE
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    reqs = requirements()
    stamp = target / STAMP
    if stamp.exists() and stamp.read_text() == _fingerprint(reqs, python) and any(target.glob("*.whl")):
        return target, False
    shutil.rmtree(target, ignore_errors=True)  # wheels for another Python would shadow nothing but waste
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(target)]
    proc = subprocess.run(
        [*cmd, "--python-version", python, *reqs], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip download for the agent wheelhouse failed:\n{proc.stderr.strip()}")
    stamp.write_text(_fingerprint(reqs, python))
    return target, True
