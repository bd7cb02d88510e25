"""The baseline: the seed's keepalived settings and primary-backup.sh, as published, on the lab's gateways.

Nothing of the seed is stored in this repository. Its keepalived.conf blocks and its script are cut out of
the blog post at run time, installed for the baseline runs and removed afterwards. The only changes are the
ones a lab needs: the post's `34.xxx.xxx.xxx` placeholder becomes the lab's EIP, and `aws` is wrapped to add
`--endpoint-url` (Debian's aws-cli ignores AWS_ENDPOINT_URL) and the lab's fake credentials, which an
instance role would provide on EC2. The script reads metadata with IMDSv1, so the baseline instances get
HttpTokens=optional through the EC2 API while it is installed.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from lab import ENDPOINT, Lab, LabError
from nat_gateway_ha_lab import topology

SEED_FILE = Path(__file__).resolve().parents[1] / ".." / "shared" / "seed" / "000_bb82e900e2f68d30.txt"
EIP_PLACEHOLDER = "34.xxx.xxx.xxx"
SCRIPT_PATH = "/etc/keepalived/primary-backup.sh"
CONF_PATH = "/etc/keepalived/keepalived.conf"
PROJECT_BACKUP = "/etc/keepalived/keepalived.conf.bench-project"
AWS_WRAPPER = "/usr/local/bin/aws"
AGENT_UNIT = "nat-gateway-ha-agent.service"


@dataclass(frozen=True)
class SeedParts:
    keepalived_confs: tuple[str, ...]
    script: str


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Markdown fenced code blocks as (language, body)."""
    blocks: list[tuple[str, str]] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                blocks.append((lang, "".join(body)))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def extract(path: Path = SEED_FILE) -> SeedParts:
    blocks = fenced_blocks(path.read_text())
    confs = tuple(b for _, b in blocks if "vrrp_instance" in b and "global_defs" in b)
    scripts = [b for lang, b in blocks if lang == "bash" and b.startswith("#!/bin/bash")]
    if len(confs) != 2 or len(scripts) != 1:
        found = f"{len(confs)} configs, {len(scripts)} scripts"
        raise LabError(f"seed {path}: expected 2 keepalived configs and 1 bash script, found {found}")
    return SeedParts(confs, scripts[0])


def conf_for(parts: SeedParts, host: str, eip: str) -> str:
    """The seed's config whose unicast_src_ip is this gateway's LAN address (the lab uses the seed's IPs).

    One line is added: `script_user root`. The seed's hosts ran its notify script as root; keepalived 2.2.7
    would otherwise run it as `keepalived_script`, a user that exists here only because the project's role
    made it.
    """
    lan = str(topology.host(host).nic("eth1").address)
    for conf in parts.keepalived_confs:
        m = re.search(r"unicast_src_ip\s+(\S+)", conf)
        if m and m.group(1) == lan:
            conf = conf.replace(EIP_PLACEHOLDER, eip)
            return conf.replace("global_defs {\n", "global_defs {\n    script_user root\n", 1)
    raise LabError(f"no seed keepalived.conf has unicast_src_ip {lan} ({host})")


def aws_wrapper(with_credentials: bool) -> str:
    """`aws` plus the lab's endpoint; credentials come from the instance role (IMDS) unless told otherwise."""
    creds = "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n" if with_credentials else ""
    return (
        "#!/bin/sh\n"
        "# natgw bench: the seed's script is unchanged; this only points aws-cli at the lab's EC2 endpoint.\n"
        f'{creds}exec /usr/bin/aws --endpoint-url {ENDPOINT} "$@"\n'
    )


class Baseline:
    """Installs the seed on both gateways and takes it away again, leaving the project's setup as it was."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.parts = extract()
        self.eip = lab.ec2().describe_addresses()["Addresses"][0]["PublicIp"]
        self.vip = str(topology.VIP.ip)
        self.with_credentials = False
        self.notes: list[str] = []

    def instance_ids(self) -> dict[str, str]:
        ids = {}
        for res in self.lab.ec2().describe_instances()["Reservations"]:
            for inst in res["Instances"]:
                for g in self.lab.gateways:
                    if inst.get("PrivateIpAddress") == str(topology.host(g).nic("eth0").address):
                        ids[g] = inst["InstanceId"]
        return ids

    def peer_route(self, host: str) -> list[str]:
        """`ip route` args for a host route to the peer's LAN address via the own LAN subnet's router.

        The gateways' LAN interfaces are in different subnets; the project's keepalived.conf holds this
        route itself (static_routes), the seed's does not, so the host's network config must (as a seed
        host at AWS needs it too). Without it the adverts are ARPed for on eth1 and both become master.
        """
        peer = next(g for g in self.lab.gateways if g != host)
        own = topology.host(host).nic("eth1")
        router = topology.subnet(own.subnet).router
        return [f"{topology.host(peer).nic('eth1').address}/32", "via", str(router), "dev", "eth1"]

    def _http_tokens(self, value: str) -> None:
        for iid in self.instance_ids().values():
            self.lab.ec2().modify_instance_metadata_options(InstanceId=iid, HttpTokens=value)

    def install(self, first_master: str) -> None:
        for g in self.lab.gateways:
            if "aws-cli" not in self.lab.sh(g, "/usr/bin/aws --version 2>&1 || true"):
                raise LabError(f"{g} has no /usr/bin/aws (Debian's awscli): the seed's script needs it")
        self._http_tokens("optional")
        for g in self.lab.gateways:
            # keepalived's unit Wants the agent: mask it, or starting keepalived would start it again.
            self.lab.sh(g, f"systemctl stop keepalived {AGENT_UNIT}; systemctl mask --runtime {AGENT_UNIT}")
            self.lab.ip(g, "route", "replace", *self.peer_route(g))
            self.lab.sh(g, f"test -e {PROJECT_BACKUP} || cp -a {CONF_PATH} {PROJECT_BACKUP}")
            self.lab.put(g, CONF_PATH, conf_for(self.parts, g, self.eip))
            self.lab.put(g, SCRIPT_PATH, self.parts.script, mode="0755")
            self.lab.put(g, AWS_WRAPPER, aws_wrapper(self.with_credentials), mode="0755")
        probe = f"{AWS_WRAPPER} ec2 describe-addresses --region {topology.REGION} --output text 2>&1"
        if "credentials" in self.lab.sh(first_master, probe, check=False).lower():
            self.with_credentials = True  # the lab's IMDS serves no role credentials: give aws-cli fake ones
            self.notes.append(
                "aws-cli found no instance-role credentials in the lab's IMDS; fake ones were set"
            )
            for g in self.lab.gateways:
                self.lab.put(g, AWS_WRAPPER, aws_wrapper(True), mode="0755")
        # Start the intended master first: both are BACKUP with nopreempt, the first to time out wins.
        started = time.time()
        self.start_keepalived(first_master)
        self.wait_finished(first_master, started, timeout=90)
        for g in self.lab.gateways:
            if g != first_master:
                self.start_keepalived(g)

    def start_keepalived(self, host: str) -> None:
        script = "systemctl start keepalived 2>&1; systemctl is-active keepalived"
        out = self.lab.sh(host, script, check=False)
        if out.strip().splitlines()[-1:] != ["active"]:
            log = self.lab.sh(host, "journalctl -u keepalived --no-pager -n 25 -o cat", check=False)
            raise LabError(f"{host}: keepalived with the seed's config did not start: {out}\n{log}")

    def wait_finished(self, host: str, since: float, timeout: float) -> float:
        """Epoch at which the seed's script on `host` logged the end of a takeover (or its failure)."""

        def done() -> float | None:
            for e in self.lab.journal(host, since):
                if e.ident != "vpc":
                    continue
                if "failed!" in e.message:
                    raise LabError(f"seed script on {host} failed: see its journal (tag vpc)")
                if "Primary VIP config finished" in e.message:
                    return e.ts
            return None

        return float(self.lab.wait(f"seed script to finish on {host}", done, timeout, interval=0.5))

    def run_script(self, host: str) -> tuple[float, float]:
        """Run primary-backup.sh by hand as keepalived's notify_master would; returns (start, end) epochs."""
        out = self.lab.sh(
            host,
            f"date +%s.%N; {SCRIPT_PATH} primary {self.eip} {self.vip}; echo rc=$?; date +%s.%N",
            timeout=1800,
        )
        lines = out.split()
        if "rc=0" not in lines:
            raise LabError(f"seed script on {host} failed: {out[-300:]}")
        return float(lines[0]), float(lines[-1])

    def remove(self) -> None:
        """Put the project's keepalived.conf back, restart the project's agent, drop the seed's /32 routes."""
        for g in self.lab.gateways:
            self.lab.sh(
                g,
                f"systemctl stop keepalived; rm -f {SCRIPT_PATH} {AWS_WRAPPER};"
                f" test -e {PROJECT_BACKUP} && mv {PROJECT_BACKUP} {CONF_PATH}",
                check=False,
            )
        self._http_tokens("required")
        for g in self.lab.gateways:
            self.lab.ip(g, "route", "del", self.peer_route(g)[0], check=False)  # keepalived's static_routes
        ec2 = self.lab.ec2()
        for rtb in self.lab.private_route_tables():
            with contextlib.suppress(ClientError):  # absent is what we want
                ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock=f"{self.vip}/32")
        for g in self.lab.gateways:
            self.lab.sh(g, f"systemctl unmask --runtime {AGENT_UNIT}")
            self.lab.sh(g, f"systemctl start {AGENT_UNIT} keepalived")
