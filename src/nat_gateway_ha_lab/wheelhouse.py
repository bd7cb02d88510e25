"""The agent's wheelhouse: every wheel its venv needs, fetched on the controller for hosts with no internet.

The role installs the agent's wheel on a gateway with `pip install --no-index --find-links <wheelhouse>`,
which needs the runtime dependencies of the root pyproject.toml (the agent's distribution); the controller
builds that wheel with the same index, which needs the build requirements (setuptools, wheel). Lab hosts
run the same Debian 12 (Python 3.11, same architecture) as the controller is expected to, so the
controller's pip picks matching wheels. The download is redone only when the requirement list changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

from nat_gateway_ha_lab import paths

STAMP = ".requirements"


def requirements(pyproject: Path | None = None) -> list[str]:
    """The agent's runtime dependencies plus its build requirements, as the root pyproject.toml says."""
    data = tomllib.loads((pyproject or paths.REPO / "pyproject.toml").read_text())
    return sorted({*data["project"]["dependencies"], *data["build-system"]["requires"]})


def _fingerprint(reqs: list[str]) -> str:
    text = "\n".join([f"py{sys.version_info.major}.{sys.version_info.minor}", *reqs])
    return hashlib.sha256(text.encode()).hexdigest()


def ensure(target: Path | None = None) -> tuple[Path, bool]:
    """Download the wheels unless the cache matches; returns (wheelhouse, whether it downloaded)."""
    target = target or paths.WHEELHOUSE
    reqs = requirements()
    stamp = target / STAMP
    if stamp.exists() and stamp.read_text() == _fingerprint(reqs) and any(target.glob("*.whl")):
        return target, False
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(target)]
    proc = subprocess.run([*cmd, *reqs], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download for the agent wheelhouse failed:\n{proc.stderr.strip()}")
    stamp.write_text(_fingerprint(reqs))
    return target, True
