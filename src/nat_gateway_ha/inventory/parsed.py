"""The parsed inventory every rule reads: pair groups, parsed pair specs and resolved hosts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface

from nat_gateway_ha.inventory.errors import Errors
from nat_gateway_ha.inventory.facts import Resolved
from nat_gateway_ha.inventory.models import PairSpec


@dataclass(frozen=True)
class Inventory:
    """The parsed inventory the rules read: pair groups, parsed pair specs and resolved hosts."""

    pairs: Mapping[str, Sequence[str]]
    member_of: Mapping[str, Sequence[str]]
    specs: Mapping[str, PairSpec]
    hosts: Mapping[str, Resolved]

    def complete(self) -> Iterator[tuple[str, Sequence[str], PairSpec, dict[str, Resolved]]]:
        """Pairs whose spec parsed and whose members all resolved and serve this pair only."""
        for pair, members in self.pairs.items():
            spec = self.specs.get(pair)
            if spec is None or not members:
                continue
            if all(h in self.hosts and len(self.member_of[h]) == 1 for h in members):
                yield pair, members, spec, {h: self.hosts[h] for h in members}

    def gateways(self) -> Iterator[tuple[str, str, PairSpec, Resolved, IPv4Interface, IPv4Interface]]:
        """Each member of a complete pair with its LAN and WAN address (a resolved host has both)."""
        for pair, members, spec, hosts in self.complete():
            for h in members:
                r = hosts[h]
                assert r.lan.address is not None and r.wan.address is not None
                yield pair, h, spec, r, r.lan.address, r.wan.address


Rule = Callable[[Inventory, Errors], None]
