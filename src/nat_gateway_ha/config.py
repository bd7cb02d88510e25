"""The failover agent's configuration: one pydantic model, rendered by the role, loaded by the agent.

The role never writes this file by hand: `inventory.plan()` builds an `AgentConfig` per gateway from the
inventory, and the template dumps it as JSON. The agent loads the same model, so a field is defined once.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from nat_gateway_ha import ec2_limits
from nat_gateway_ha.cloud_refs import EipBinding, EniRef, RouteTableSelection
from nat_gateway_ha.fields import MAC_RE, Region, StrictModel, Url, insecure_endpoint

ACTION_RE = rf"^[A-Z][A-Za-z0-9]{{1,80}}(:{ec2_limits.UNFILTERED})?$"  # an EC2 action (a bucket key)


class UpstreamTarget(StrictModel):
    """One place on the internet the master probes through its EIP's private address."""

    host: IPv4Address = Field(description="IPv4 address.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(443, description="TCP port (tcp method).")


class FlowSync(StrictModel):
    """Connection-state sync between the peers (conntrackd, FT-FW over unicast UDP on the LAN).

    Both gateways SNAT to the pair's shared addresses (`snat_addresses`, one per EIP, never on the wire)
    and translate them statelessly to their own EIP private IPs at the WAN edge, so an entry synced from
    the peer is valid here unchanged. The agent commits the peer's entries into the kernel before it moves
    the cloud, so the first packet of a flow that reaches the new master already has its state.
    """

    enabled: bool = Field(
        True, description="Run conntrackd and commit the peer's flows before each takeover."
    )
    port: Annotated[int, Field(ge=1024, le=65535)] = Field(
        3780, description="UDP port of the sync traffic between the peers (untracked, LAN only)."
    )
    snat_addresses: list[IPv4Address] = Field(
        default_factory=list,
        max_length=32,
        description="The pair's shared SNAT addresses, one per EIP, outside `vpc_cidrs`; empty: "
        "169.254.252.1 onwards.",
        json_schema_extra={"shown": "169.254.252.1 onwards"},
    )


class HealthConfig(StrictModel):
    """Data-path health: what makes a gateway give up mastership, or refuse it, while VRRP itself is fine.

    Local checks (NAT ruleset, forwarding, conntrack headroom) are run by the agent every `interval` and
    written to keepalived's track file: a failure puts the VRRP instance in FAULT at once (inotify), so the
    master hands over and a backup cannot be elected. Link state is tracked by keepalived itself
    (`track_interface`). Upstream probes run on the owning master only (only it has the EIP's path) and
    lead to a step-down only when a peer reports itself eligible (see `nat_gateway_ha.health`).
    """

    enabled: bool = Field(
        True, description="Track health at all (keepalived track_interface and track_file)."
    )
    interval: Annotated[float, Field(ge=0.1, le=10)] = Field(
        0.5, description="Seconds between local check rounds (0.1-10)."
    )
    fall: Annotated[int, Field(ge=1, le=20)] = Field(2, description="Failed local rounds before FAULT.")
    rise: Annotated[int, Field(ge=1, le=100)] = Field(
        4, description="Good local rounds before the gateway is eligible again."
    )
    nat_table: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = Field(
        "nat_gateway_ha", description="The nftables table (family ip) that must hold the SNAT rule."
    )
    conntrack_high_water: Annotated[float, Field(gt=0.5, le=1.0)] = Field(
        0.9,
        description="Share of nf_conntrack_max past which the table counts as full (over 0.5, at most 1).",
    )
    upstream_targets: list[UpstreamTarget] = Field(
        default_factory=lambda: [
            UpstreamTarget(host=IPv4Address("1.1.1.1")),
            UpstreamTarget(host=IPv4Address("8.8.8.8")),
            UpstreamTarget(host=IPv4Address("9.9.9.9")),
        ],
        max_length=16,
        description="Internet hosts the master probes from the EIP's private address; a majority must "
        "answer.",
    )
    upstream_method: Literal["tcp", "icmp"] = Field("tcp", description="How to probe upstream targets.")
    upstream_interval: Annotated[float, Field(ge=0.5, le=60)] = Field(
        2.0, description="Seconds between upstream probe rounds on the master."
    )
    upstream_timeout: Annotated[float, Field(ge=0.05, le=5)] = Field(
        0.5, description="Seconds a probe waits for its answer."
    )
    upstream_fall: Annotated[int, Field(ge=1, le=20)] = Field(
        3, description="Failed upstream rounds before the master considers stepping down."
    )
    upstream_holddown: Annotated[float, Field(ge=1, le=300)] = Field(
        5.0,
        description="Seconds an upstream step-down holds FAULT: long enough for the peer to be elected.",
    )
    upstream_memory: Annotated[float, Field(ge=10, le=86400)] = Field(
        600.0,
        description="Seconds a gateway whose upstream failed tells its peers it is ineligible, so they never "
        "hand the pair back to it during an outage that hits both.",
    )


class PeerRef(StrictModel):
    """Another member of the pair: where its agent answers, and its ENIs (to tell its claims from drift)."""

    host: str
    address: IPv4Address
    priority: Annotated[int, Field(ge=1, le=254)]
    lan_mac: Annotated[str, Field(pattern=MAC_RE.pattern)]
    wan_mac: Annotated[str, Field(pattern=MAC_RE.pattern)]


class ApiLimit(StrictModel):
    """One EC2 request token bucket: `capacity` calls at once, then `refill` calls a second."""

    capacity: Annotated[float, Field(ge=1, le=100000)] = Field(description="Calls the bucket allows at once.")
    refill: Annotated[float, Field(gt=0, le=10000)] = Field(
        description="Calls a second once the burst is spent."
    )


# The actions a takeover calls, with EC2's documented buckets (ec2_limits.TABLE); others use the table.
PACED_ACTIONS = (
    "ReplaceRoute",
    "CreateRoute",
    "AssociateAddress",
    "DescribeRouteTables",
    "DescribeAddresses",
)


def _documented_limits() -> dict[str, ApiLimit]:
    out = {}
    for action in PACED_ACTIONS:
        lim = ec2_limits.limit(action)
        out[action] = ApiLimit(capacity=lim.capacity, refill=lim.refill)
    return out


class CloudWatchConfig(StrictModel):
    """CloudWatch metrics for the pair (nat_gateway_ha.cloudwatch): off unless asked for, because they cost
    money and the instance role then needs cloudwatch:PutMetricData (for this namespace only)."""

    enabled: bool = Field(False, description="Publish the pair's metrics to CloudWatch.")
    namespace: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./#:-]{0,254}$")] = Field(
        "NatGatewayHA",
        description="The metrics' namespace; the IAM policy allows PutMetricData to this one only "
        "(it may not start with AWS/).",
    )
    interval: Annotated[float, Field(ge=10, le=300)] = Field(
        60.0, description="Seconds between puts (10-300); a takeover or health change puts within 2 s."
    )
    endpoint_url: Url | None = Field(
        None,
        description="Another CloudWatch endpoint (an interface VPC endpoint's URL, or a lab's emulator).",
    )

    @model_validator(mode="after")
    def _not_aws(self) -> CloudWatchConfig:
        if self.namespace.startswith("AWS/"):
            raise ValueError("namespace: AWS/ is reserved for AWS's own metrics")
        return self


class AgentTunables(StrictModel):
    """The agent options a pair may tune under `agent`; the inventory gives the other AgentConfig fields."""

    imds_url: Url = Field(
        "http://169.254.169.254",
        description="Instance metadata service; another URL only with `insecure_endpoints` (a lab).",
    )
    api_connect_timeout: Annotated[float, Field(gt=0, le=30)] = Field(
        1.0, description="Seconds to connect to EC2."
    )
    api_read_timeout: Annotated[float, Field(gt=0, le=60)] = Field(
        2.0, description="Seconds to wait for an EC2 answer."
    )
    api_max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(4, description="Attempts per EC2 call.")
    max_concurrency: Annotated[int, Field(ge=1, le=50)] = Field(
        16, description="EC2 calls a takeover sends in parallel."
    )
    reconcile_interval: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="Seconds between the master's checks that the cloud still points at it."
    )
    debounce: Annotated[float, Field(ge=0, le=5)] = Field(
        0.0,
        description="Seconds keepalived's notify lines must stay quiet before the latest state is acted on; "
        "0: at once.",
    )
    api_pacing: bool = Field(
        True,
        description="Pace EC2 calls to the account's request token buckets (nat_gateway_ha.pacing): a "
        "takeover spends the burst at once, then goes at the refill rate, instead of drawing "
        "RequestLimitExceeded storms.",
    )
    api_limits: dict[Annotated[str, Field(pattern=ACTION_RE)], ApiLimit] = Field(
        default_factory=_documented_limits,
        max_length=100,
        description="Per-action buckets, each `{capacity: N, refill: N}`. Default: EC2's documented ones "
        "(ReplaceRoute, CreateRoute, AssociateAddress 50 then 5/s; DescribeRouteTables, DescribeAddresses "
        "100 then 20/s); raise them after AWS Support raised the account's.",
        json_schema_extra={"shown": "EC2's documented buckets"},
    )
    api_share: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0,
        description="The fraction of those buckets this gateway counts on: 1/N when N pairs of one account "
        "and region may fail over at the same moment (one AZ lost), so together they stay under the "
        "account's limit.",
    )
    eip_timing: Literal["after_first_wave", "with_routes", "after_all_routes"] = Field(
        "after_first_wave",
        description="When the EIP moves: once the first wave of routes (those the bucket lets go at once) "
        "has answered, with the routes (one round trip less; only with flow sync, see Cloud.apply), or "
        "once every route has.",
    )
    view_max_age: Annotated[float, Field(ge=0, le=300)] = Field(
        60.0,
        description="Seconds a claim may act on its last view of the cloud instead of looking first, saving "
        "a round trip (the verification after the changes catches what changed since). While not master the "
        "agent refreshes that view every view_max_age / 2: 1 DescribeAddresses + 1 DescribeRouteTables per "
        "100 tables each time, against the account's Describe buckets (100 then 20/s). 0: off, always look "
        "first and stay idle while BACKUP (one DescribeAddresses every `cloud_check_interval`).",
    )
    claim_settle: Annotated[float, Field(ge=0, le=30)] = Field(
        1.0,
        description="Seconds after a claim converged before the highest-priority gateway looks once more, "
        "taking back what a peer claiming at the same moment moved after its verification (EC2 has no "
        "compare-and-swap). Delays only the claim's verdict, not the data path; 0: no second look.",
    )
    cloud_check_interval: Annotated[float, Field(ge=0, le=3600)] = Field(
        60.0,
        description="Seconds without a successful EC2 call after which an idle gateway (a backup) makes one "
        "DescribeAddresses, so /healthz turns red when this gateway could not take over; 0: never.",
    )
    cloudwatch: CloudWatchConfig = Field(
        default_factory=CloudWatchConfig,
        description="CloudWatch metrics for the pair: `{enabled: true}` turns them on (see the README).",
    )
    # The inventory allows only paths under fields.MetricsPath's prefixes (rule agent_paths_are_allowed).
    metrics_textfile: Path | None = Field(
        None,
        description="File the agent writes its metrics to (node-exporter's textfile collector), under "
        "/var/lib, /run or /var/run.",
    )


class AgentConfig(AgentTunables):
    """Everything one gateway's agent needs; resolved against EC2 once at start, not per takeover."""

    pair: str
    host: str
    vrrp_instance: str
    region: Region | None = None
    endpoint_url: Url | None = None
    # Plain-http EC2 endpoint and an IMDS elsewhere than 169.254.169.254: for a lab's emulators only.
    insecure_endpoints: bool = False
    wan_eni: EniRef
    lan_eni: EniRef
    eips: list[EipBinding] = Field(min_length=1)
    route_tables: RouteTableSelection
    destinations: list[IPv4Network] = Field(default_factory=lambda: [IPv4Network("0.0.0.0/0")])
    fifo_path: Path = Path("/run/nat-gateway-ha/notify.fifo")
    state_dir: Path = Path("/var/lib/nat-gateway-ha")
    # Addresses keepalived adds only while MASTER (the pair's VIPs): at start the agent finds out whether it
    # is master from them, so an agent restart on the master keeps reconciling.
    vips: list[IPv4Address] = Field(default_factory=list)
    # keepalived's pid file. When set, the agent acts as MASTER only while that keepalived is alive: a
    # SIGKILLed keepalived writes no STOP line and leaves its VIP behind, and without this check the dead
    # master's agent would keep "repairing" the cloud back to itself, fighting the new master.
    keepalived_pidfile: Path | None = None
    health: HealthConfig = Field(default_factory=HealthConfig)
    # conntrackd is driven by the agent on every transition (see nat_gateway_ha.flows) when enabled.
    flow_sync: bool = False
    # Where upstream probes leave from: the pair's shared SNAT address (on lo; the WAN edge translates it to
    # this gateway's EIP private IP, as for the clients' flows). Default: the first EIP's private IP.
    probe_source: IPv4Address | None = None
    # keepalived's track_file for this gateway: 0 healthy, 1 FAULT; the agent is its only writer.
    health_file: Path | None = None
    wan_interface: str = "eth0"
    lan_interface: str = "eth1"
    # This gateway's VRRP priority and its address on the LAN: the agent's endpoint listens there
    # (`listen_port`, 0 = off) and the peers' agents ask it whether it could take the pair over.
    priority: Annotated[int, Field(ge=1, le=254)] = 100
    listen_address: IPv4Address | None = None
    listen_port: Annotated[int, Field(ge=0, le=65535)] = 9587
    peers: list[PeerRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _secure_endpoints(self) -> AgentConfig:
        if not self.insecure_endpoints:
            urls = {"endpoint_url": self.endpoint_url, "imds_url": self.imds_url}
            urls["cloudwatch.endpoint_url"] = self.cloudwatch.endpoint_url
            for field, url in urls.items():
                if why := insecure_endpoint(field, url):
                    raise ValueError(f"{field}: {why}")
        return self

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        return cls.model_validate_json(path.read_text())
