"""The agent's status: its state file (status.json, written atomically), the live endpoint's answer, and
both rendered for a person (`natgw-ha-agent status`, `natgw-lab status`)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
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


def fetch(address: str, port: int, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """A JSON document from the live agent's endpoint (a 503 `/healthz` body too); None if it is silent."""
    url = f"http://{address}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read(1 << 20)
    except urllib.error.HTTPError as err:
        body = err.read(1 << 20)
    except OSError:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _ago(unix: float | None, now: float) -> str:
    return f"{now - unix:.0f} s ago" if unix else "never"


def render(data: Mapping[str, Any], healthz: Mapping[str, Any] | None, now: float | None = None) -> str:
    """The facts `/status` and `/healthz` serve, for a person: what it is, whether it can serve, why not."""
    now = time.time() if now is None else now
    owner = {True: "owner (verified)", False: "NOT owner", None: "not owner (not master)"}[data.get("owner")]
    lines = [
        f"{data.get('pair', '?')}/{data.get('host', '?')}: {data.get('state', '?')}, {owner}, "
        f"verified {_ago(data.get('verified_at_unix'), now)}"
    ]
    if healthz is None:  # from status.json: the checks as last written
        failing = [c for c in (data.get("health") or {}).get("checks", []) if not c.get("ok")]
        lines.append("health:        unknown (the agent's endpoint does not answer)")
        lines += [f"  - {c['name']}: {c['detail']} (when last written)" for c in failing]
    elif healthz.get("ok"):
        lines.append("health:        ok")
    else:
        lines += ["health:        NOT ok", *(f"  - {p}" for p in healthz.get("problems", []))]
    contested = ", ".join(data.get("contested", []))
    lines.append("split brain:   " + (f"YES, a peer holds {contested}" if data.get("split_brain") else "no"))
    last = data.get("last_takeover")
    if last:
        result = "converged" if last.get("converged") else "NOT converged"
        lines.append(
            f"last takeover: {last.get('started_at', '?')} ({last.get('reason', '?')}), "
            f"{last.get('duration', 0):.3f} s, {last.get('changed', 0)} change(s), {result}"
        )
    progress = data.get("progress") or {}
    if progress.get("in_progress"):
        lines.append(f"in progress:   {progress.get('moved', 0)} of {progress.get('of', 0)} changes made")
    lines.append(
        f"counts:        {data.get('takeovers_converged', 0)} takeover(s) converged, "
        f"{data.get('takeovers_failed', 0)} failed, {data.get('repairs', 0)} repair(s), "
        f"{data.get('api_throttled', 0)} EC2 call(s) throttled"
    )
    return "\n".join(lines)
