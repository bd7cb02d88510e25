"""The conntrackd steps of each transition, in order, around the takeover (pure tier: a stand-in binary).

The lab proves that the steps keep a download alive (tests/lab/test_fault_matrix.py); here: that the agent
commits the peer's flows *before* it moves the cloud, resyncs after, and that a missing conntrackd costs a
log line, not the takeover.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import Agent
from nat_gateway_ha.fifo import Event
from nat_gateway_ha.flows import Flows
from nat_gateway_ha.ownership import Result
from support import plain_agent_config


def _stand_in(tmp_path: Path) -> tuple[str, Path]:
    """A conntrackd that appends its action flag to a log."""
    log = tmp_path / "calls"
    binary = tmp_path / "conntrackd"
    binary.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$3\" >> {log}\n")
    binary.chmod(0o755)
    return str(binary), log


def test_each_transition_runs_its_steps_in_order(tmp_path: Path) -> None:
    binary, log = _stand_in(tmp_path)
    flows = Flows(True, binary=binary)
    flows.before_takeover()
    flows.after_takeover()
    flows.stood_down("BACKUP")
    flows.stood_down("FAULT")
    assert log.read_text().split() == ["-c", "-f", "-R", "-B", "-t", "-n", "-t"]
    Flows(False, binary=binary).before_takeover()
    assert log.read_text().split()[-1] == "-t"  # off: nothing ran


def test_a_missing_conntrackd_is_reported_not_raised(tmp_path: Path) -> None:
    flows = Flows(True, binary=str(tmp_path / "absent"))
    flows.before_takeover()
    assert str(flows.last["commit"]).startswith("failed:")


class _Cloud:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.target = SimpleNamespace(wins_conflicts=True)
        self.pacer = None
        self.ec2 = boto3.client(
            "ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
        )

    def takeover(self, dry_run: bool = False, claim: bool = False, **_: Any) -> Result:
        with self.log.open("a") as f:
            f.write("takeover\n")
        return Result(rounds=1)


def test_the_agent_commits_before_the_cloud_moves_and_resyncs_after(tmp_path: Path) -> None:
    binary, log = _stand_in(tmp_path)
    cfg = plain_agent_config(state_dir=str(tmp_path / "state"), flow_sync=True)
    agent = Agent(AgentConfig.model_validate(cfg), _Cloud(log), state="BACKUP")  # type: ignore[arg-type]
    agent.flows.binary = binary
    agent.handle(Event("INSTANCE", "VI_p", "MASTER", 150))
    assert log.read_text().split() == ["-c", "takeover", "-f", "-R", "-B"]
    agent.handle(Event("INSTANCE", "VI_p", "MASTER_RX_LOWER_PRI", 150))  # already master: no commit
    assert log.read_text().split()[5:] == ["takeover"]
    agent.handle(Event("INSTANCE", "VI_p", "BACKUP", 150))
    assert log.read_text().split()[6:] == ["-t", "-n"]
    assert agent.status["flows"]["request_resync"] != ""
