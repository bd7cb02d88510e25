"""What `natgw-lab status` reports: who is VRRP master, who owns the EIP and each managed route, and whether
the client reaches the internet through the EIP. Each answer comes from where it is true: the VIP from the
gateways' interfaces, ownership from the EC2 API, egress from a real request made inside the client.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nat_gateway_ha_lab import proc
from nat_gateway_ha_lab import topology as topo
from nat_gateway_ha_lab.controlplane import ENDPOINT_URL, STATE_DIR, cloud_json, dataplane_log
from nat_gateway_ha_lab.seed import LAB_EIP, PRIVATE_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

WHOAMI = f"http://{topo.INTERNET_HOST.ip}/whoami"


@dataclass
class RouteOwner:
    route_table: str
    name: str
    destination: str
    target: str | None
    owner: str | None


@dataclass
class LabState:
    vip_holders: list[str]  # gateways with the VIP on eth1: exactly one when healthy
    eip: str
    eip_private_ip: str | None
    eip_owner: str | None
    routes: list[RouteOwner] = field(default_factory=list)
    egress_source: str | None = None  # what the internet host saw as the client's address
    egress_error: str | None = None

    @property
    def vrrp_master(self) -> str | None:
        return self.vip_holders[0] if len(self.vip_holders) == 1 else None

    @property
    def healthy(self) -> bool:
        """One master owning the EIP and every managed route, and the client's egress through the EIP."""
        master = self.vrrp_master
        return (
            master is not None
            and self.eip_owner == master
            and all(r.owner == master for r in self.routes)
            and self.egress_source == self.eip
        )

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data.update(vrrp_master=self.vrrp_master, healthy=self.healthy)
        return json.dumps(data, indent=2)

    def render(self) -> str:
        holders = ", ".join(self.vip_holders) or "none"
        lines = [f"VRRP master:   {self.vrrp_master or f'NOT exactly one (VIP held by: {holders})'}"]
        eip_where = f"{self.eip_private_ip} ({self.eip_owner})" if self.eip_owner else "not associated"
        lines.append(f"EIP {self.eip}: {eip_where}")
        for r in self.routes:
            lines.append(
                f"route {r.route_table} {r.name} {r.destination} -> {r.target or 'none'} ({r.owner or '-'})"
            )
        if self.egress_source is not None:
            via = "through the EIP" if self.egress_source == self.eip else "NOT through the EIP"
            lines.append(f"client egress: the internet sees {self.egress_source}, {via}")
        else:
            lines.append(f"client egress: FAILED ({self.egress_error})")
        lines.append("state:         " + ("healthy" if self.healthy else "NOT healthy"))
        return "\n".join(lines)


def _keepalived_runs(netns: str) -> bool:
    """A keepalived process lives in the namespace (a SIGKILLed one leaves its VIP behind, unelected)."""
    pids = proc.run(["ip", "netns", "pids", netns], check=False).stdout
    for pid in pids.split():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "keepalived":
                return True
        except OSError:
            continue
    return False


def vip_holders() -> list[str]:
    """Gateways whose running keepalived holds the VIP: the VRRP master(s)."""
    holders = []
    for gw in topo.gateways():
        out = proc.run(["ip", "-n", gw.netns, "-o", "-4", "addr", "show", "dev", "eth1"], check=False).stdout
        if f" {topo.VIP.ip}/" in out and _keepalived_runs(gw.netns):
            holders.append(gw.name)
    return holders


def client_egress(timeout: float = 2.0) -> tuple[str | None, str | None]:
    """(source address the internet host saw, error): a request from inside the client's namespace."""
    client = next(h for h in topo.HOSTS if h.role == "client")
    done = proc.in_netns(client.netns, "curl", "-sS", "-m", str(timeout), WHOAMI, check=False)
    if done.returncode != 0:
        return None, done.stderr.strip() or f"curl exited {done.returncode}"
    return done.stdout.strip(), None


def ec2_client(endpoint_url: str = ENDPOINT_URL) -> EC2Client:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        region_name=topo.REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="natlab",
        aws_secret_access_key="natlab",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
    )


def ownership(ec2: EC2Client, eip: str = str(LAB_EIP)) -> tuple[str | None, str | None, list[RouteOwner]]:
    """(EIP's private IP, its owner, the managed routes): instances are named by their Name tag."""
    names = {
        i["InstanceId"]: next((t["Value"] for t in i.get("Tags", []) if t["Key"] == "Name"), i["InstanceId"])
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    owner_of = {
        n["NetworkInterfaceId"]: names.get(n.get("Attachment", {}).get("InstanceId", ""))
        for n in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    address = ec2.describe_addresses(PublicIps=[eip])["Addresses"][0]
    eni = address.get("NetworkInterfaceId") or None
    tables = ec2.describe_route_tables(
        Filters=[{"Name": f"tag:{PRIVATE_TAG[0]}", "Values": [PRIVATE_TAG[1]]}]
    )
    routes = []
    for t in sorted(tables["RouteTables"], key=lambda t: t["RouteTableId"]):
        name = next((tag["Value"] for tag in t.get("Tags", []) if tag["Key"] == "Name"), "")
        for r in t["Routes"]:
            if r.get("GatewayId") == "local" or "DestinationCidrBlock" not in r:
                continue
            target = r.get("NetworkInterfaceId") or r.get("GatewayId") or r.get("InstanceId")
            routes.append(
                RouteOwner(
                    t["RouteTableId"], name, r["DestinationCidrBlock"], target, owner_of.get(target or "")
                )
            )
    return address.get("PrivateIpAddress"), owner_of.get(eni) if eni else None, routes


def eip_moves(since: float, state_dir: Path = STATE_DIR) -> list[str]:
    """The pair's EIP re-associations the data plane applied after `since` (epoch), as
    "<epoch> <eip> -> <ip> (<host>)": every cloud move ends with one, and a fight shows as many. (The
    gateways' own public addresses, their path to EC2, are not the pair's.)"""
    try:
        lines = dataplane_log(state_dir).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split(maxsplit=2)
        pair_eip = len(parts) == 3 and parts[2].startswith(f"{LAB_EIP} ")
        if pair_eip and parts[1] == "eip" and float(parts[0]) > since:
            out.append(f"{parts[0]} {parts[2]}")
    return out


def agent_text(host: str, path: str) -> str:
    """A gateway agent's endpoint, asked from inside its own namespace (the LAN address it listens on);
    empty when it does not answer."""
    h = topo.host(host)
    url = f"http://{h.nic('eth1').address}:9587{path}"
    return proc.in_netns(h.netns, "curl", "-sS", "-m", "2", url, check=False).stdout


def agent_status(host: str, path: str = "/status") -> dict[str, Any] | None:
    """A JSON document of a gateway agent's endpoint (a red /healthz's too); None when it does not answer."""
    try:
        data = json.loads(agent_text(host, path))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def describe(state_dir: Path = STATE_DIR) -> LabState:
    """The lab's state now. The endpoint comes from cloud.json when the control plane wrote one."""
    endpoint = ENDPOINT_URL
    if cloud_json(state_dir).exists():
        endpoint = json.loads(cloud_json(state_dir).read_text()).get("endpoint_url", ENDPOINT_URL)
    private_ip, owner, routes = ownership(ec2_client(endpoint))
    source, error = client_egress()
    return LabState(vip_holders(), str(LAB_EIP), private_ip, owner, routes, source, error)


def main(argv: list[str] | None = None) -> int:
    """`python -m nat_gateway_ha_lab.state [--json]`: exit 0 only when the lab is healthy."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nat_gateway_ha_lab.state", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON (for verifiers and scripts)")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    parser.add_argument("--wait", type=float, default=0.0, help="poll up to this many seconds for healthy")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    state = describe(args.state_dir)
    while not state.healthy and time.monotonic() < deadline:
        time.sleep(0.5)
        state = describe(args.state_dir)
    print(state.to_json() if args.json else state.render())
    return 0 if state.healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
