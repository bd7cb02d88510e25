"""Check rendered gateway files on the controller, before any host changes: keepalived -t and nft -c.

keepalived 2.2.7 refuses a config naming an interface that does not exist where it runs, and terminates
itself while checking any config with a vrrp_script (issue 2587, fixed in 2.2.8). So the copy it checks has
its interfaces renamed to one that exists on the controller, its script user set to `nobody` and its script
blocks removed; the scripts themselves are checked on the gateway by the role's keepalived-check. nft needs
no interface to exist for `iifname`/`oifname`. Both files also keep every line under keepalived's 1023 bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

MAX_LINE = 1022  # keepalived 2.2.7 reads 1023-byte chunks including the newline
CHECK_USER = "nobody"
_SCRIPT_BLOCK = re.compile(r"^\s*(vrrp_script\s+\S+|track_script)\s*\{\s*$")
_SCRIPT_OR_TRACK_BLOCK = re.compile(r"^\s*(vrrp_script\s+\S+|track_script|track_interface)\s*\{\s*$")


class CheckError(Exception):
    """A rendered file that a gateway would refuse; the message says which check and why."""


def plain_lines(name: str, text: str) -> None:
    """No control character but newline and tab, no line that keepalived would split."""
    for number, line in enumerate(text.split("\n"), 1):
        if len(line.encode()) > MAX_LINE:
            raise CheckError(f"{name} line {number}: {len(line.encode())} bytes, over {MAX_LINE}")
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in line):
            raise CheckError(f"{name} line {number}: a control character")


def spare_interfaces() -> list[str]:
    """Interfaces of this machine keepalived accepts for VRRP (not loopback)."""
    names = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo")
    if not names:
        raise CheckError("the controller has no network interface but lo to check keepalived.conf against")
    return names


def keepalived_copy(text: str, interfaces: Sequence[str], spares: Sequence[str]) -> str:
    """The config as keepalived -t can check it on the controller (see the module docstring).

    Each gateway interface becomes a distinct controller interface; with too few of them, track_interface
    blocks (which may not name the VRRP interface) are dropped too.
    """
    wanted = sorted(set(interfaces), key=len, reverse=True)
    rename = dict(zip(sorted(set(interfaces)), [*spares, *[spares[0]] * len(interfaces)], strict=False))
    blocks = _SCRIPT_BLOCK if len(spares) >= len(rename) else _SCRIPT_OR_TRACK_BLOCK
    names = "|".join(re.escape(i) for i in wanted)

    def to_spare(m: re.Match[str]) -> str:
        return m.group(1) + rename[m.group(2)] + (m.group(3) or "")

    out: list[str] = []
    depth = 0
    for line in text.split("\n"):
        if depth == 0 and blocks.match(line):
            depth = 1
            continue
        if depth:
            depth += line.count("{") - line.count("}")
            continue
        if names:
            line = re.sub(rf"^(\s*interface\s+)({names})()\s*$", to_spare, line)
            line = re.sub(rf"(\sdev\s+)({names})((?=\s|$))", to_spare, line)
            line = re.sub(rf"^(\s+)({names})(\s+weight\s+-?[0-9]+)?\s*$", to_spare, line)
        line = re.sub(r"^(\s*script_user\s+)\S+\s*$", rf"\g<1>{CHECK_USER}", line)
        out.append(line)
    return "\n".join(out)


def _run(label: str, cmd: list[str], text: str, suffix: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=suffix) as f:
        f.write(text)
        f.flush()
        try:
            proc = subprocess.run([*cmd, f.name], capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CheckError(f"{label} did not finish in 60 s") from exc
    if proc.returncode != 0:
        said = (proc.stdout + proc.stderr).replace(f.name, suffix.lstrip(".")).strip()
        raise CheckError(f"{label} refused it (exit {proc.returncode}): {said[-2000:]}")


def _tool(name: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )
    if path is None:
        raise CheckError(f"{name} is not installed on the controller (apt-get install {name})")
    return path


def check_keepalived(text: str, interfaces: Sequence[str]) -> None:
    plain_lines("keepalived.conf", text)
    _run(
        "keepalived -t",
        [_tool("keepalived"), "-t", "-f"],
        keepalived_copy(text, interfaces, spare_interfaces()),
        ".conf",
    )


def check_nft(text: str) -> None:
    """nft -c parses and checks the ruleset against the kernel without loading it (needs CAP_NET_ADMIN)."""
    plain_lines("nat.nft", text)
    prefix = [] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
    _run("nft -c", [*prefix, _tool("nft"), "-c", "-f"], text, ".nft")
