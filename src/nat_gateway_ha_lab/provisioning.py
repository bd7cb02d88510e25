"""The lab's gateways, made by `playbooks/provision.yml` against the lab's EC2, as a user makes them on AWS.

`natgw-lab up` seeds only what a user brings (seed.py, `gateways=False`), then runs the playbook with
inventories/lab from the controller (moto over the management bridge), so every `make lab` and `make test`
proves the provisioning; cloud.json then records the gateways EC2 now knows (`seed.adopt`). What moto cannot
do stays the lab's: the ENIs take the containers' MACs (`moto_model.pin_macs`, in the control plane).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nat_gateway_ha_lab import paths, seed, state
from nat_gateway_ha_lab import topology as topo
from nat_gateway_ha_lab.controlplane import STATE_DIR, cloud_json

INVENTORY = paths.REPO / "inventories" / "lab"
PLAYBOOK = paths.REPO / "playbooks" / "provision.yml"


class ProvisionError(RuntimeError):
    pass


def log_file(state_dir: Path = STATE_DIR) -> Path:
    return state_dir / "provision.log"


def missing_gateways() -> list[str]:
    """The topology's gateways without a live instance of their name in the lab's EC2."""
    ec2 = state.ec2_client()
    live = {
        tag["Value"]
        for r in ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )["Reservations"]
        for i in r["Instances"]
        for tag in i.get("Tags", [])
        if tag["Key"] == "Name"
    }
    return [h.name for h in topo.gateways() if h.name not in live]


def ensure(state_dir: Path = STATE_DIR) -> float | None:
    """Provision the gateways unless they exist: the seconds the playbook took, or None when not run."""
    if not missing_gateways():
        return None
    started = time.monotonic()
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(paths.REPO / "ansible.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }
    cmd = [str(bindir / "ansible-playbook"), "-i", str(INVENTORY), str(PLAYBOOK)]
    with log_file(state_dir).open("w") as out:
        proc = subprocess.run(cmd, cwd=paths.REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "".join(log_file(state_dir).read_text().splitlines(keepends=True)[-30:])
        raise ProvisionError(f"provision.yml failed (rc {proc.returncode}); {log_file(state_dir)}:\n{tail}")
    still = missing_gateways()
    if still:
        raise ProvisionError(f"provision.yml ran, yet no instance is named {', '.join(still)}")
    path = cloud_json(state_dir)
    seed.adopt(state.ec2_client(), seed.CloudState.read(path)).write(path)
    return time.monotonic() - started
