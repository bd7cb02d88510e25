"""Shared guard for tests that build lab parts: root only, and never on top of a lab someone is using."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from nat_gateway_ha_lab import cli, network


@contextmanager
def exclusive_lab() -> Iterator[None]:
    """Hold the natgw-lab lock; skip if not root or if a lab is already up (it belongs to someone)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    cli.LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with cli.LOCK_FILE.open("w") as probe:  # a lab run (make lab, the bench) holds it: never wait on it
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.skip("another natgw-lab run holds the lab lock; not touching its lab")
        fcntl.flock(probe, fcntl.LOCK_UN)
    with cli._locked():
        if network.namespaces():
            pytest.skip(f"a lab is up ({', '.join(network.namespaces())}); not touching it")
        yield
