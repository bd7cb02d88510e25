"""The three ways the bench kills a master, and how each is undone.

`inject` returns the epoch of the fault, read on the gateway itself right before the action (containers
share the host's clock), so SSH latency never counts as detection time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lab import Lab


@dataclass
class Fault:
    """Base: subclasses say what breaks; `restore` brings the host back so it rejoins as BACKUP."""

    name: str = ""
    label: str = ""

    def inject(self, lab: Lab, host: str) -> float:
        raise NotImplementedError

    def restore(self, lab: Lab, host: str) -> None:
        raise NotImplementedError


@dataclass
class StopKeepalived(Fault):
    """What the seed does: a clean stop, so keepalived sends priority 0 and the peer takes over at once."""

    name: str = "stop"
    label: str = "systemctl stop keepalived"

    def inject(self, lab: Lab, host: str) -> float:
        return float(lab.sh(host, "date +%s.%N; systemctl stop keepalived").split()[0])

    def restore(self, lab: Lab, host: str) -> None:
        lab.sh(host, "systemctl start keepalived")


@dataclass
class KillKeepalived(Fault):
    """A crash: SIGKILL to every process of keepalived's unit; the peer must notice missing adverts.

    The processes are read from the unit's cgroup and killed in one `kill` (`systemctl kill` fails inside
    the lab's containers on a cgroup v1 host: it kills the processes but exits non-zero).
    """

    name: str = "sigkill"
    label: str = "SIGKILL every keepalived process"

    def inject(self, lab: Lab, host: str) -> float:
        script = (
            "f=/sys/fs/cgroup/systemd/system.slice/keepalived.service/cgroup.procs;"
            " [ -e $f ] || f=/sys/fs/cgroup/system.slice/keepalived.service/cgroup.procs;"
            ' pids=$(cat $f); [ -n "$pids" ] || exit 3; date +%s.%N; kill -KILL $pids'
        )
        return float(lab.sh(host, script).split()[0])

    def restore(self, lab: Lab, host: str) -> None:
        lab.sh(host, "systemctl reset-failed keepalived.service; systemctl start keepalived.service")


@dataclass
class LanLinkDown(Fault):
    """The master's LAN link goes down: VRRP and the data path through it die together.

    Setting a link administratively down makes the kernel drop the routes through it, so the routes seen
    before the fault are put back after the link returns, as the host's network manager would.
    """

    name: str = "linkdown"
    label: str = "LAN link (eth1) down"
    interface: str = "eth1"
    _routes: dict[str, list[str]] = field(default_factory=dict)

    def inject(self, lab: Lab, host: str) -> float:
        self._routes[host] = lab.ip(host, "-4", "route", "show").splitlines()
        at = time.time()
        lab.ip(host, "link", "set", self.interface, "down")
        return at

    def restore(self, lab: Lab, host: str) -> None:
        lab.ip(host, "link", "set", self.interface, "up")
        time.sleep(0.2)
        now = set(lab.ip(host, "-4", "route", "show").splitlines())
        for line in self._routes.pop(host, []):
            clean = line.replace(" linkdown", "").strip()
            if clean in now or " proto kernel " in f" {clean} ":
                continue
            lab.ip(host, "route", "replace", *clean.split())


FAULTS: dict[str, Fault] = {f.name: f for f in (StopKeepalived(), KillKeepalived(), LanLinkDown())}
