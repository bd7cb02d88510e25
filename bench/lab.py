"""The bench's view of the lab: run commands on its hosts, read their journals, ask the cloud who owns what.

Everything the bench knows about how the lab is wired lives here (names come from
`nat_gateway_ha_lab.topology`), so a change in the lab touches one file of the bench.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from nat_gateway_ha_lab import paths, ssh, topology
from nat_gateway_ha_lab.throttle import SETUP_KEY

RUN_DIR = paths.RUN_DIR
DATAPLANE_LOG = RUN_DIR / "dataplane.log"
CLOUD_JSON = RUN_DIR / "cloud.json"
ENDPOINT = f"http://{topology.MGMT_NET.ip}:{topology.MOTO_PORT}"


@dataclass(frozen=True)
class JournalEntry:
    ts: float
    ident: str
    unit: str
    message: str


@dataclass(frozen=True)
class PlaneEvent:
    """One line of the data plane's log: `<epoch> route rtb-.. 0.0.0.0/0 -> eni-.. (gw2)` or `... eip ...`."""

    ts: float
    kind: str  # "route" or "eip"
    subject: str  # rtb id + destination, or the public IP
    target: str  # eni id or private IP
    host: str | None


class LabError(RuntimeError):
    pass


class Lab:
    """Handle on a running lab. Commands reach hosts over SSH on the mgmt network, as Ansible does."""

    def __init__(self) -> None:
        self.gateways = [h.name for h in topology.gateways()]
        self._ec2: Any = None

    # -- running things -------------------------------------------------------------------------------
    def _ssh(self, host: str) -> list[str]:
        """ssh with a shared connection per host, so each command costs a round trip, not a handshake."""
        if not paths.SSH_KEY.exists():
            raise LabError(f"no lab SSH key at {paths.SSH_KEY}: is the lab up (`natgw-lab up`)?")
        return [
            "ssh", "-i", str(paths.SSH_KEY), *ssh.SSH_OPTIONS,
            "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/natgw-bench-ssh-%h",
            "-o", "ControlPersist=300",
            f"root@{topology.host(host).mgmt}",
        ]  # fmt: skip

    def sh(
        self, host: str, script: str, *, stdin: str | None = None, timeout: float = 60, check: bool = True
    ) -> str:
        """Run a shell script on a lab host (inside its container) and return its stdout."""
        cmd = [*self._ssh(host), f"bash -c {shlex.quote(script)}"]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise LabError(f"{host}: {script[:80]!r} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        return proc.stdout

    def put(self, host: str, path: str, content: str, mode: str = "0644") -> None:
        self.sh(host, f"install -D -m {mode} /dev/stdin {path}", stdin=content)

    @staticmethod
    def netns(host: str) -> str:
        return topology.host(host).netns

    def ip(self, host: str, *args: str, check: bool = True) -> str:
        """`ip` in a host's namespace from outside its container (no SSH round trip)."""
        return subprocess.run(
            ["ip", "-n", self.netns(host), *args], capture_output=True, text=True, check=check
        ).stdout

    # -- reading state ---------------------------------------------------------------------------------
    def journal(self, host: str, since: float) -> list[JournalEntry]:
        """Journal entries of a host since an epoch; timestamps are the host's clock, which is ours."""
        out = self.sh(host, f"journalctl -o json --no-pager --since @{since - 1:.0f}", check=False)
        entries = []
        for line in out.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            msg = rec.get("MESSAGE", "")
            if isinstance(msg, list):  # journald's encoding of non-UTF-8 messages
                msg = bytes(msg).decode("utf-8", "replace")
            ts = int(rec["__REALTIME_TIMESTAMP"]) / 1e6
            if ts >= since:
                entries.append(
                    JournalEntry(ts, rec.get("SYSLOG_IDENTIFIER", ""), rec.get("_SYSTEMD_UNIT", ""), msg)
                )
        return entries

    def dataplane(self, since: float) -> list[PlaneEvent]:
        events: list[PlaneEvent] = []
        if not DATAPLANE_LOG.exists():
            return events
        for line in DATAPLANE_LOG.read_text().splitlines():
            parts = line.split()
            try:
                ts = float(parts[0])
            except (ValueError, IndexError):
                continue
            if ts < since or len(parts) < 5 or parts[1] not in ("route", "eip"):
                continue
            arrow = parts.index("->")
            host = parts[arrow + 2].strip("()") if len(parts) > arrow + 2 else None
            events.append(PlaneEvent(ts, parts[1], " ".join(parts[2:arrow]), parts[arrow + 1], host))
        return events

    def vrrp_master(self) -> str | None:
        """The gateway whose running keepalived holds the VIP (a SIGKILLed keepalived leaves it behind)."""
        holders = [
            g
            for g in self.gateways
            if f" {topology.VIP.ip}/" in self.ip(g, "-4", "addr", "show", check=False)
            and self.sh(g, "systemctl is-active keepalived", check=False).strip() == "active"
        ]
        return holders[0] if len(holders) == 1 else None

    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = boto3.client(
                "ec2",
                endpoint_url=ENDPOINT,
                region_name=topology.REGION,
                aws_access_key_id=SETUP_KEY,  # the bench's own set-up: not throttled (lab/README.md)
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                config=Config(retries={"mode": "standard"}, connect_timeout=2, read_timeout=30),
            )
        return self._ec2

    def cloud(self) -> dict[str, Any]:
        return dict(json.loads(CLOUD_JSON.read_text())) if CLOUD_JSON.exists() else {}

    def private_route_tables(self) -> list[str]:
        """Every route table tagged Network=private: what the project's lab inventory selects."""
        pages = (
            self.ec2()
            .get_paginator("describe_route_tables")
            .paginate(Filters=[{"Name": "tag:Network", "Values": ["private"]}])
        )
        return sorted(rt["RouteTableId"] for page in pages for rt in page["RouteTables"])

    def ownership(self) -> dict[str, Any]:
        """Who the cloud says owns the EIP and each private table's 0.0.0.0/0, by gateway name."""
        ec2 = self.ec2()
        by_eni: dict[str, str] = {}
        by_ip: dict[str, str] = {}
        for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]:
            for addr in eni.get("PrivateIpAddresses", []):
                name = _host_of_ip(addr["PrivateIpAddress"])
                if name:
                    by_eni[eni["NetworkInterfaceId"]] = name
                    by_ip[addr["PrivateIpAddress"]] = name
        eips = {
            a["PublicIp"]: by_ip.get(a.get("PrivateIpAddress", ""))
            for a in ec2.describe_addresses()["Addresses"]
        }
        routes: dict[str, str | None] = {}
        pages = ec2.get_paginator("describe_route_tables").paginate(
            Filters=[{"Name": "tag:Network", "Values": ["private"]}]
        )
        for page in pages:
            for rt in page["RouteTables"]:
                owner = None
                for r in rt["Routes"]:
                    if r.get("DestinationCidrBlock") == "0.0.0.0/0":
                        owner = by_eni.get(r.get("NetworkInterfaceId", ""))
                routes[rt["RouteTableId"]] = owner
        return {"eips": eips, "routes": routes}

    def lan_eni(self, host: str) -> str:
        addr = str(topology.host(host).nic("eth1").address)
        enis = self.ec2().describe_network_interfaces(
            Filters=[{"Name": "addresses.private-ip-address", "Values": [addr]}]
        )["NetworkInterfaces"]
        return str(enis[0]["NetworkInterfaceId"])

    def owner(self) -> str | None:
        """The single gateway that owns every EIP and every private default route, or None if split."""
        own = self.ownership()
        names = set(own["eips"].values()) | set(own["routes"].values())
        return names.pop() if len(names) == 1 else None

    def wait(self, what: str, check: Any, timeout: float, interval: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)


def _host_of_ip(ip: str) -> str | None:
    for h in topology.HOSTS:
        for nic in h.nics:
            if ip == str(nic.address) or ip in {str(s) for s in nic.secondary}:
                return h.name
    return None
