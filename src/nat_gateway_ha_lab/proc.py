"""One way the lab runs a command: text in and out, captured, and on failure an error that names the
command and ends with its stderr (the part that says why)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class CommandError(RuntimeError):
    """A lab command exited non-zero."""


def run(
    cmd: Sequence[str],
    *,
    stdin: str | None = None,
    check: bool = True,
    timeout: float | None = None,
    error: type[Exception] = CommandError,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`; with `check`, a non-zero exit raises `error` (the module's own error type)."""
    done = subprocess.run(
        list(cmd), input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip())[-400:]
        raise error(f"{' '.join(cmd)} exited {done.returncode}: {why}")
    return done


def in_netns(
    ns: str,
    *cmd: str,
    stdin: str | None = None,
    check: bool = True,
    error: type[Exception] = CommandError,
) -> subprocess.CompletedProcess[str]:
    """`run` inside a network namespace (the host's own binaries, the namespace's network)."""
    return run(["ip", "netns", "exec", ns, *cmd], stdin=stdin, check=check, error=error)
