"""Prometheus metrics as a node_exporter textfile, rewritten atomically after every change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nat_gateway_ha import atomic
from nat_gateway_ha.states import REPORTED as STATES


def render(pair: str, host: str, status: Mapping[str, Any]) -> str:
    labels = f'pair="{pair}",host="{host}"'
    last = status.get("last_takeover") or {}
    progress = status.get("progress") or {}
    lines = [
        "# HELP natgw_ha_state VRRP state the agent acts on (1 for the current one).",
        "# TYPE natgw_ha_state gauge",
        *(f'natgw_ha_state{{{labels},state="{s}"}} {int(status.get("state") == s)}' for s in STATES),
        "# HELP natgw_ha_owner 1 when the last verification found this gateway owning the EIPs and routes.",
        "# TYPE natgw_ha_owner gauge",
        f"natgw_ha_owner{{{labels}}} {int(bool(status.get('owner')))}",
        "# HELP natgw_ha_split_brain 1 while this gateway is VRRP master and a peer holds part of the cloud.",
        "# TYPE natgw_ha_split_brain gauge",
        f"natgw_ha_split_brain{{{labels}}} {int(bool(status.get('split_brain')))}",
        "# HELP natgw_ha_health_fault 1 while the data-path checks hold this gateway in FAULT.",
        "# TYPE natgw_ha_health_fault gauge",
        f"natgw_ha_health_fault{{{labels}}} {int(bool((status.get('health') or {}).get('fault')))}",
        "# HELP natgw_ha_takeovers_total Takeovers run, by result.",
        "# TYPE natgw_ha_takeovers_total counter",
        f'natgw_ha_takeovers_total{{{labels},result="converged"}} {status.get("takeovers_converged", 0)}',
        f'natgw_ha_takeovers_total{{{labels},result="failed"}} {status.get("takeovers_failed", 0)}',
        "# HELP natgw_ha_repairs_total Reconcile passes that found drift and changed something.",
        "# TYPE natgw_ha_repairs_total counter",
        f"natgw_ha_repairs_total{{{labels}}} {status.get('repairs', 0)}",
        "# HELP natgw_ha_last_takeover_seconds Duration of the last takeover.",
        "# TYPE natgw_ha_last_takeover_seconds gauge",
        f"natgw_ha_last_takeover_seconds{{{labels}}} {last.get('duration', 0)}",
        "# HELP natgw_ha_takeover_moved Changes made so far by the current (or last) takeover or repair.",
        "# TYPE natgw_ha_takeover_moved gauge",
        f"natgw_ha_takeover_moved{{{labels}}} {progress.get('moved', 0)}",
        "# HELP natgw_ha_takeover_planned Changes that takeover or repair set out to make.",
        "# TYPE natgw_ha_takeover_planned gauge",
        f"natgw_ha_takeover_planned{{{labels}}} {progress.get('of', 0)}",
        "# HELP natgw_ha_takeover_in_progress 1 while a takeover or repair is making its changes.",
        "# TYPE natgw_ha_takeover_in_progress gauge",
        f"natgw_ha_takeover_in_progress{{{labels}}} {int(bool(progress.get('in_progress')))}",
        "# HELP natgw_ha_api_throttled_total RequestLimitExceeded answers from EC2 (retried).",
        "# TYPE natgw_ha_api_throttled_total counter",
        f"natgw_ha_api_throttled_total{{{labels}}} {status.get('api_throttled', 0)}",
        "# HELP natgw_ha_last_verified_timestamp_seconds When ownership was last verified (unix time).",
        "# TYPE natgw_ha_last_verified_timestamp_seconds gauge",
        f"natgw_ha_last_verified_timestamp_seconds{{{labels}}} {status.get('verified_at_unix', 0)}",
    ]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    atomic.write_text(path, text)
