"""The agent's state file (status.json): what `natgw-ha-agent status` prints, written atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from nat_gateway_ha import atomic
from nat_gateway_ha.states import VrrpState

FILE = "status.json"


class AgentStatus(TypedDict):
    """What the agent knows of itself: status.json, `/status`, the metrics and the playbooks read it."""

    pair: str
    host: str
    state: VrrpState
    owner: bool | None  # verified owner of every EIP and route; None when not master
    dry_run: bool
    last_event: dict[str, Any] | None  # the last FIFO line: state, priority, at
    last_takeover: dict[str, Any] | None  # Result.summary() with reason and start
    verified_at: str | None
    verified_at_unix: float
    takeovers_converged: int
    takeovers_failed: int
    repairs: int
    split_brain: bool
    contested: list[str]
    flows: dict[str, float | str]  # the last conntrackd steps: seconds taken, or why they failed
    progress: dict[str, Any] | None  # moved of planned while a takeover runs
    api_throttled: int
    pid: int
    updated_at_unix: float
    health: dict[str, Any]


def write(state_dir: Path, status: Mapping[str, Any]) -> None:
    atomic.write_text(state_dir / FILE, json.dumps(status, indent=2, sort_keys=True) + "\n", mode=0o600)


def read(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
