"""Where the lab keeps things: the machine-wide cache (base root, SSH key), /run (pids, logs), /var (disks).

The lab key sits at a fixed path, so inventories/lab names it wherever Ansible or Molecule copies the
inventory. The agent wheelhouse sits in the checkout (`.lab/wheelhouse`), next to the source the role
builds the agent's wheel from. `NATLAB_REPO` overrides the checkout when the package is installed elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def _repo() -> Path:
    if "NATLAB_REPO" in os.environ:
        return Path(os.environ["NATLAB_REPO"]).resolve()
    here = Path(__file__).resolve().parents[2]  # src/nat_gateway_ha_lab/paths.py -> checkout
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


REPO = _repo()
LAB_DIR = REPO / ".lab"
CACHE_DIR = Path(os.environ.get("NATLAB_CACHE_DIR", "/var/cache/nat-gateway-ha-lab"))  # kept across `down`
SSH_KEY = CACHE_DIR / "ssh" / "id_ed25519"
WHEELHOUSE = LAB_DIR / "wheelhouse"
RUN_DIR = Path("/run/natlab")  # pid files, console logs, the lock
HOSTS_DIR = Path("/var/lib/nat-gateway-ha-lab")  # per host overlay upper dirs, wiped by `down`
