"""Shared fixtures: the lab's cloud (moto in-process or as a server, AWS fixes applied) seeded with the lab's
VPC from topology.py, and the IMDS emulator answering for one gateway. Generic on purpose: any test that
needs "a VPC with a gateway pair" can use `cloud_world`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from nat_gateway_ha_lab import cloud, imds, moto_model, topology
from support import World, agent_config, seed_world, test_client

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", topology.REGION)


@pytest.fixture(scope="session")
def aws_fixes() -> None:
    """moto patched to behave like AWS (cloud.apply_aws_fixes), once, by the fixtures that start moto: a
    fixture rather than an import-time call, so that tests without a cloud never import moto."""
    cloud.apply_aws_fixes()


@pytest.fixture(scope="session")
def moto_server(aws_fixes: None) -> Iterator[cloud.ServerHandle]:
    """One moto server for the session (the lab's cloud in server mode, on a free local port)."""
    handle = cloud.serve("127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture(params=["inprocess", "server"])
def cloud_mode(request: pytest.FixtureRequest, aws_fixes: None) -> Iterator[str | None]:
    """Yield the endpoint URL to use: None for moto in-process (mock_aws), the server's URL otherwise.

    Both modes start from an empty cloud and leave no faults armed.
    """
    cloud.clear_faults()
    if request.param == "inprocess":
        with moto_model.mock():
            yield None
    else:
        server: cloud.ServerHandle = request.getfixturevalue("moto_server")
        server.reset()
        yield server.url
        server.reset()
    cloud.clear_faults()
    cloud.reset_calls()


@pytest.fixture
def cloud_world(cloud_mode: str | None) -> World:
    """The lab VPC with 5 private route tables, in either mode."""
    return seed_world(test_client(cloud_mode), cloud_mode, private_tables=5)


@pytest.fixture(scope="session")
def _imds_session(aws_fixes: None) -> Iterator[imds.ImdsHandle]:
    target: dict[str, str | None] = {"id": None}
    handle = imds.serve("127.0.0.1", 0, resolver=lambda ip: target["id"] if ip == "127.0.0.1" else None)
    handle.target = target  # type: ignore[attr-defined]
    yield handle
    handle.stop()


@pytest.fixture
def imds_server(_imds_session: imds.ImdsHandle) -> Iterator[imds.ImdsHandle]:
    """The IMDS emulator (one per session); `handle.target["id"] = instance_id` says who 127.0.0.1 is."""
    yield _imds_session
    _imds_session.target["id"] = None  # type: ignore[attr-defined]
    _imds_session.emulator.delay = 0.0
    _imds_session.emulator._fail.clear()


@pytest.fixture
def inprocess_cloud(aws_fixes: None) -> Iterator[None]:
    """moto in-process only, for tests about the agent rather than about the two ways of reaching moto."""
    cloud.clear_faults()
    with moto_model.mock():
        yield None
    cloud.clear_faults()
    cloud.reset_calls()


@pytest.fixture
def inprocess_world(inprocess_cloud: None) -> World:
    return seed_world(test_client(None), None, private_tables=5)


@pytest.fixture
def connect_as(imds_server: imds.ImdsHandle, tmp_path: Any) -> Iterator[Any]:
    """`connect_as(world, host, **config_overrides) -> Cloud`: the agent's start-up (IMDS, resolve)."""
    from nat_gateway_ha.startup import connect

    made: list[Any] = []

    def make(world: World, host: str, **overrides: Any) -> Any:
        imds_server.target["id"] = world.instances[host]  # type: ignore[attr-defined]
        cfg = agent_config(world, host, imds_server.url, tmp_path / host, **overrides)
        c = connect(cfg)
        c.cfg = cfg
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# The tiers are folders: tests/unit (pure Python: no root, no moto, no Ansible; what `make check` runs),
# tests/cloud (moto and the IMDS emulator), tests/ansible (ansible-playbook), tests/netns (root: network
# namespaces, containers) and tests/lab (the converged lab). A folder's tier marks its tests, and any test
# that starts moto (through `aws_fixes`) is `cloud` wherever it is.
TIERS = ("cloud", "ansible", "netns", "lab")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "aws_fixes" in getattr(item, "fixturenames", ()):
            item.add_marker("cloud")
        if item.path.parent.name in TIERS:
            item.add_marker(item.path.parent.name)
