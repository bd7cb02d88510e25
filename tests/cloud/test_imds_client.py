"""The agent's IMDSv2 client against the emulator: identity, and clear errors when IMDS misbehaves."""

from __future__ import annotations

import socket
import time

import pytest

from nat_gateway_ha.imds import ImdsClient, ImdsError
from nat_gateway_ha_lab import topology


def test_identity(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    ident = ImdsClient(imds_server.url).identity()
    assert ident.instance_id == inprocess_world.instances["gw1"]
    assert (ident.region, ident.availability_zone) == (topology.REGION, f"{topology.REGION}a")
    wan = ident.eni(mac=topology.host("gw1").nic("eth0").mac)
    assert (
        wan
        and wan.eni_id == inprocess_world.eni("gw1", "eth0")
        and wan.private_ips == ("10.77.0.233", "10.77.0.234")
    )
    lan = ident.eni(device_index=1)
    assert lan and lan.eni_id == inprocess_world.eni("gw1", "eth1") and lan.vpc_id == inprocess_world.vpc_id


def test_transient_5xx_is_retried(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    imds_server.emulator.fail_next(2, 503)
    assert (
        ImdsClient(imds_server.url, attempts=3).get("/latest/meta-data/instance-id")
        == inprocess_world.instances["gw1"]
    )


def test_persistent_5xx_is_a_clear_error(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    imds_server.emulator.fail_next(10, 500)
    with pytest.raises(ImdsError, match=r"failed after 2 attempts: HTTP 500"):
        ImdsClient(imds_server.url, attempts=2).identity()


def test_refused_token_is_a_clear_error(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = None  # IMDS does not know the caller: 403, not retried
    with pytest.raises(ImdsError, match=r"PUT /latest/api/token: HTTP 403"):
        ImdsClient(imds_server.url).identity()


def test_expired_token_is_refused(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    client = ImdsClient(imds_server.url)
    client._token, client._token_expiry = "stale", time.monotonic() + 60
    with pytest.raises(ImdsError, match=r"HTTP 401 \(token missing, expired or refused\)"):
        client.get("/latest/meta-data/instance-id")


def test_timeout_is_a_clear_error(inprocess_world, imds_server) -> None:
    imds_server.target["id"] = inprocess_world.instances["gw1"]
    imds_server.emulator.delay = 0.5
    started = time.monotonic()
    with pytest.raises(ImdsError, match=r"failed after 2 attempts: .*timed out"):
        ImdsClient(imds_server.url, timeout=0.1, attempts=2).identity()
    assert time.monotonic() - started < 2


def test_nothing_listening_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ImdsError, match=r"failed after 2 attempts: ConnectionRefusedError"):
        ImdsClient(f"http://127.0.0.1:{port}", timeout=0.2, attempts=2).identity()
