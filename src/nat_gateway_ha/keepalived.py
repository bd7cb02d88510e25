"""keepalived as this host sees it: whether it runs, whether it holds the VIP, the FIFO it writes to.

The agent believes keepalived's FIFO for transitions, and these for the state it finds at start and for a
keepalived that died without a word (SIGKILL writes no STOP line).
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

from nat_gateway_ha import status
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.states import VrrpState


def open_fifo(path: Path) -> int:
    """Create the FIFO if missing and open it read-write, so we never see EOF when keepalived restarts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        if not stat.S_ISFIFO(path.stat().st_mode):
            raise RuntimeError(f"{path} exists and is not a FIFO") from None
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


def holds_address(addresses: list[str]) -> bool:
    """Whether any of these addresses is configured on this host (keepalived adds the VIP only as master)."""
    if not addresses:
        return False
    try:
        out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    have = {word.split("/")[0] for line in out.splitlines() for word in line.split()}
    return any(a in have for a in addresses)


def keepalived_alive(pidfile: Path | None) -> bool:
    """Whether the keepalived named by its pid file runs; True when no pid file is configured."""
    if pidfile is None:
        return True
    try:
        pid = int(pidfile.read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return False
    return comm == "keepalived"


def _boot_time() -> float:
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return time.time() - uptime


def initial_state(cfg: AgentConfig) -> VrrpState:
    """MASTER if keepalived holds a VIP here. Without the VIP: FAULT if that is the last state written since
    this boot, else BACKUP (keepalived runs and is not master). Without VIPs to tell: the last state written
    since this boot, else UNKNOWN."""
    if not keepalived_alive(cfg.keepalived_pidfile):
        return VrrpState.STOP
    if holds_address([str(v) for v in cfg.vips]):
        return VrrpState.MASTER
    last = status.read(cfg.state_dir)
    recent = (
        str(last.get("state", "UNKNOWN"))
        if last and float(last.get("updated_at_unix", 0)) > _boot_time()
        else None
    )
    if cfg.vips:
        return VrrpState.FAULT if recent == VrrpState.FAULT else VrrpState.BACKUP
    return VrrpState(recent) if recent in set(VrrpState) else VrrpState.UNKNOWN
