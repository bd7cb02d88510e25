"""The cloud resources an inventory names: the gateway's ENIs, the pair's EIPs and the route tables it owns.

Each is a reference, not a resource: the agent resolves it against IMDS or EC2 once at start (`resolve.py`),
and provisioning (`inventory/provisioning.py`) creates what a `name` refers to before the agent looks.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Annotated, Any

from pydantic import Field, model_validator

from nat_gateway_ha.fields import MAC_RE, StrictModel, TagKey, TagValue


class EniRef(StrictModel):
    """How the agent finds one of its own ENIs through IMDS: by MAC address or by device index."""

    mac: str | None = None
    device_index: Annotated[int, Field(ge=0, le=31)] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> EniRef:
        if (self.mac is None) == (self.device_index is None):
            raise ValueError("give exactly one of mac or device_index")
        if self.mac is not None and not MAC_RE.match(self.mac):
            raise ValueError(f"mac {self.mac!r} is not a lower-case aa:bb:cc:dd:ee:ff address")
        return self


class EipRef(StrictModel):
    """An Elastic IP, by allocation id (preferred), public address or Name tag (resolved once at start).

    By `name` the inventory can name an EIP before it exists: `playbooks/provision.yml` allocates it with that
    Name tag, and the agent finds it by the tag, so nobody copies an allocation id by hand.
    """

    allocation_id: Annotated[str, Field(pattern=r"^eipalloc-[0-9a-f]{1,32}$")] | None = Field(
        None, description="EIP allocation id (eipalloc-...), preferred."
    )
    public_ip: IPv4Address | None = Field(None, description="EIP public address, resolved once by the agent.")
    name: Annotated[TagValue, Field(min_length=1)] | None = Field(
        None,
        description="The EIP's Name tag: `playbooks/provision.yml` allocates it, the agent resolves it once "
        "(exactly one EIP may carry it).",
    )

    @model_validator(mode="after")
    def _one_key(self) -> EipRef:
        if self.allocation_id is None and self.public_ip is None and self.name is None:
            raise ValueError("give allocation_id, public_ip or name")
        return self

    @property
    def label(self) -> str:
        """How messages name this EIP."""
        return self.allocation_id or (str(self.public_ip) if self.public_ip else f"named {self.name}")

    def query(self) -> dict[str, Any]:
        """DescribeAddresses arguments that find exactly this EIP (the most specific key first)."""
        if self.allocation_id:
            return {"AllocationIds": [self.allocation_id]}
        if self.public_ip:
            return {"PublicIps": [str(self.public_ip)]}
        return {"Filters": [{"Name": "tag:Name", "Values": [self.name]}]}

    def mismatch(self, found: Mapping[str, Any]) -> str | None:
        """Why the address EC2 returned is not the one every given key names, or None."""
        if self.public_ip and found.get("PublicIp") != str(self.public_ip):
            return f"allocation is {found.get('PublicIp')}, not {self.public_ip}"
        tags = {t["Key"]: t["Value"] for t in found.get("Tags", [])}
        if self.name and tags.get("Name") != self.name:
            return f"{found.get('AllocationId')} is named {tags.get('Name')!r}, not {self.name!r}"
        return None


class RouteTableSelection(StrictModel):
    """Which route tables the pair owns: the union of tag matches, explicit ids and subnets' tables.

    The VPC's main route table is left alone unless `include_main` is set, because repointing it moves
    every subnet without an explicit association, which is rarely what a NAT pair wants.
    """

    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        max_length=50,
        description="Select the tables carrying all these tags, e.g. `{Network: private}`.",
    )
    ids: list[Annotated[str, Field(pattern=r"^rtb-[0-9a-f]{1,32}$")]] = Field(
        default_factory=list, description="Explicit route table ids."
    )
    subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{1,32}$")]] = Field(
        default_factory=list, description="Select the tables associated with these subnets."
    )
    include_main: bool = Field(
        False, description="Also repoint the VPC's main route table (by default it is left alone)."
    )
    first: list[Annotated[str, Field(pattern=r"^rtb-[0-9a-f]{1,32}$")]] = Field(
        default_factory=list,
        description="Selected tables to move first, in this order (the subnets whose egress matters most); "
        "the others follow in id order. Only matters when a takeover is paced: beyond EC2's burst, routes go "
        "5 a second.",
    )

    @model_validator(mode="after")
    def _something(self) -> RouteTableSelection:
        if not (self.tags or self.ids or self.subnet_ids):
            raise ValueError("select route tables by tags, ids or subnet_ids")
        if len(set(self.first)) != len(self.first):
            raise ValueError("first: a route table is listed twice")
        return self


class EipBinding(StrictModel):
    """One EIP and the WAN ENI private IP it must map to on this gateway (AWS maps one EIP per private IP)."""

    eip: EipRef
    private_ip: IPv4Address
