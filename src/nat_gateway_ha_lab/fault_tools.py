"""What the faults are made of: commands in a host (over SSH or from outside, in its namespace), tables of
drop rules, and the memo that lets `restore` run in another process than `inject`."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from nat_gateway_ha_lab import paths, proc, ssh
from nat_gateway_ha_lab import topology as topo

FAULT_TABLE = "natlab_faults"  # nftables table (in the VPC router's and the root namespace) of fault rules


class FaultError(RuntimeError):
    pass


def memo(fault: str, host: str) -> Path:
    """Where a fault keeps what `restore` needs, so inject and restore may run in different processes."""
    return paths.RUN_DIR / "faults" / f"{fault}-{host}.json"


def remember(fault: str, host: str, data: object) -> None:
    path = memo(fault, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def recall(fault: str, host: str, default: object) -> object:
    path = memo(fault, host)
    try:
        data: object = json.loads(path.read_text())
    except (OSError, ValueError):
        return default
    path.unlink()
    return data


def sh(host: str, script: str, timeout: float = 60) -> str:
    """A shell script inside the host's container, over SSH; its stdout."""
    done = ssh.run(topo.host(host), f"bash -c {shlex.quote(script)}", timeout=timeout)
    if done.returncode != 0:
        raise FaultError(f"{host}: {script[:80]!r} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return done.stdout


def in_ns(host: str, *cmd: str, stdin: str | None = None) -> str:
    ns = topo.host(host).netns if host in {h.name for h in topo.HOSTS} else host
    return proc.in_netns(ns, *cmd, stdin=stdin, error=FaultError).stdout


def nft(ns: str | None, script: str) -> None:
    cmd = ["nft", "-f", "-"] if ns is None else ["ip", "netns", "exec", ns, "nft", "-f", "-"]
    proc.run(cmd, stdin=script, error=FaultError)


def drop_table(ns: str | None) -> None:
    nft(ns, f"table inet {FAULT_TABLE}\ndelete table inet {FAULT_TABLE}\n")


def drop_rules(ns: str | None, hook: str, rules: list[str]) -> None:
    """A table of its own holding `rules` (each a drop), replaced whole."""
    body = "\n".join(f"        {r} drop" for r in rules)
    nft(
        ns,
        f"table inet {FAULT_TABLE}\ndelete table inet {FAULT_TABLE}\n"
        f"table inet {FAULT_TABLE} {{\n    chain c {{\n        type filter hook {hook} priority -50;"
        f" policy accept;\n{body}\n    }}\n}}\n",
    )


@dataclass
class Fault:
    """Base: `name` is the kind on the command line, `label` what a report prints."""

    name: str = ""
    label: str = ""

    def inject(self, host: str) -> float:
        raise NotImplementedError

    def restore(self, host: str) -> None:
        raise NotImplementedError
