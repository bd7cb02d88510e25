"""Asking the other members of the pair, over the LAN, what they are and whether they could carry the pair.

Used only where a wrong answer costs a move, never on the fast VRRP path: the upstream step-down, and the
end of a split brain. Every failure to get an answer (timeout, refusal, garbage) counts as "not eligible"
and "state unknown", so a lost message keeps the pair where it is rather than moving it.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nat_gateway_ha.config import PeerRef

PATH = "/peer"
TIMEOUT = 0.5  # seconds to wait for a peer's answer before counting it as not eligible


def ask(peer: PeerRef, port: int, timeout: float) -> dict[str, Any] | None:
    """The peer's own view of itself (its `/peer` document), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{peer.address}:{port}{PATH}", timeout=timeout) as resp:
            data = json.loads(resp.read(65536))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def eligible_peer(peers: list[PeerRef], port: int, timeout: float) -> str | None:
    """The first peer (by priority) that says it could take over, asked in parallel; None if none does."""
    if not peers or not port:
        return None
    ordered = sorted(peers, key=lambda p: -p.priority)
    with ThreadPoolExecutor(max_workers=len(ordered)) as pool:
        answers = list(pool.map(lambda p: ask(p, port, timeout), ordered))
    for peer, answer in zip(ordered, answers, strict=True):
        if answer is not None and answer.get("eligible") is True:
            return peer.host
    return None


def states(peers: list[PeerRef], port: int, timeout: float) -> dict[str, str | None]:
    """Each peer's VRRP state as its agent reports it, asked in parallel; None where it did not answer."""
    if not peers or not port:
        return {}
    with ThreadPoolExecutor(max_workers=len(peers)) as pool:
        answers = list(pool.map(lambda p: ask(p, port, timeout), peers))
    return {
        p.host: (str(a["state"]) if a is not None and "state" in a else None)
        for p, a in zip(peers, answers, strict=True)
    }
