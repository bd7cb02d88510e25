"""Shared guard for tests that build lab parts: root only, and never on top of a lab someone is using."""

from __future__ import annotations

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
    with cli._locked():
        if network.namespaces():
            pytest.skip(f"a lab is up ({', '.join(network.namespaces())}); not touching it")
        yield
