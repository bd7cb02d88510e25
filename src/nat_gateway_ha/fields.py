"""Strict types for every inventory value that reaches a rendered file (keepalived.conf, nat.nft, agent.json).

A value is accepted only by a tight character set and a length bound, never by escaping it later: keepalived
has no quoting that survives every context (2.2.7 even splits a line at 1023 bytes and parses the rest as a
new line), and nft parses a quoted name again. Every bound below keeps each rendered line far under 1023
bytes. Names start with a letter or digit, so none of them is `.`/`..` or a path.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")  # as IMDS and EC2 print MAC addresses
# Ansible group names: letters, digits and `_`; keepalived names them VI_<pair> and chk_<pair>.
PairName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{0,31}$")]
# A host label or FQDN of at most 63 bytes: also a directory name under render's output directory.
HostName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
# Linux IFNAMSIZ is 16 with the NUL: 15 usable bytes.
IfName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")]
InstanceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{0,39}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")]
# http(s)://host[:port][/path]: no query, credentials, spaces or quotes.
Url = Annotated[
    str,
    StringConstraints(
        max_length=200, pattern=r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"
    ),
]
# IMDS is plain http by design, at a fixed link-local address.
IMDS_URL = "http://169.254.169.254"
LAB_FLAG = "set insecure_endpoints: true for a lab"


def insecure_endpoint(field: str, url: str | None) -> str | None:
    """Why `url` is refused outside a lab (`insecure_endpoints: true`), or None.

    The EC2 endpoint carries the instance role's signed requests: over plain http anyone on the path reads
    and replays them. The IMDS URL is only ever the instance's own link-local service.
    """
    if url is None:
        return None
    if field == "imds_url":
        if url.rstrip("/") != IMDS_URL:
            return f"{url} is not the instance metadata service ({IMDS_URL}); {LAB_FLAG}"
        return None
    if not url.startswith("https://"):
        return f"{url} is not https: the EC2 API's signed requests would cross in clear; {LAB_FLAG}"
    return None


TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9 _.:/=+@-]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9 _.:/=+@-]*$")]

# Accounts a script user must never be: the role would rewrite their shell and home.
RESERVED_USERS = frozenset(
    {
        "root", "admin", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
        "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "sshd", "messagebus",
        "keepalived", "ubuntu", "debian", "ec2-user", "centos", "ansible", "operator", "halt",
        "shutdown", "ftp", "postfix", "ntp", "chrony", "polkitd", "dbus", "systemd-network",
        "systemd-resolve", "systemd-timesync", "_apt", "tss", "uuidd", "tcpdump", "syslog",
    }
)  # fmt: skip


def _dedicated_user(name: str) -> str:
    if name in RESERVED_USERS or name.startswith("systemd-") or name.startswith("_"):
        raise ValueError(
            f"{name!r} is a system or login account; use a dedicated user such as keepalived_script"
        )
    return name


ScriptUser = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$"), AfterValidator(_dedicated_user)
]


def _under(*prefixes: str) -> AfterValidator:
    def check(path: str) -> str:
        if posixpath.normpath(path) != path or not path.startswith("/"):
            raise ValueError(f"{path!r} is not an absolute, normalised path")
        if not any(path.startswith(p) for p in prefixes):
            raise ValueError(f"{path!r} is not under {', '.join(prefixes)}")
        return path

    return AfterValidator(check)


_PATH = StringConstraints(max_length=200, pattern=r"^/[A-Za-z0-9_./-]+$")
# Where the agent may write its metrics (node-exporter's textfile collector directories).
MetricsPath = Annotated[str, _PATH, _under("/var/lib/", "/run/", "/var/run/")]
# Where a track script may live: root-owned system trees, never /tmp or a home.
ScriptPath = Annotated[str, _PATH, _under("/usr/", "/opt/", "/etc/keepalived/", "/bin/", "/sbin/")]
# One track script argument: no space, quote, `#`, `!`, `\`, `$`, nothing a shell or keepalived reads.
ScriptArg = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_./:=@%+,-]+$")
]

_FORBIDDEN_SECRET = re.compile(r"[^!-~]|[#!\"'\\]")


def _split_command(value: object) -> object:
    """A command may be written as one string; it is split on whitespace into its arguments."""
    return value.split() if isinstance(value, str) else value


MAX_COMMAND = 512  # bytes of the whole command line: keeps keepalived's `script "..."` line short


def _command_length(command: list[str]) -> list[str]:
    if len(" ".join(command)) > MAX_COMMAND:
        raise ValueError(f"the command line is longer than {MAX_COMMAND} bytes")
    return command


Command = Annotated[
    list[ScriptArg],
    BeforeValidator(_split_command),
    Field(min_length=1, max_length=16),
    AfterValidator(_command_length),
]


def check_secret(secret: str, max_bytes: int) -> str:
    """keepalived truncates a PASS secret at `max_bytes` bytes and cuts a line at `#`, `!` or a space."""
    bad = sorted(set(_FORBIDDEN_SECRET.findall(secret)))
    if bad:
        raise ValueError(f"contains {' '.join(repr(c) for c in bad)}: keepalived would cut or misread it")
    size = len(secret.encode())
    if size > max_bytes:
        raise ValueError(f"{size} bytes, more than {max_bytes}: keepalived would silently truncate it")
    return secret


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are typos, so they are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
