"""The agent's state file (status.json): what `natgw-ha-agent status` prints, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE = "status.json"


def write(state_dir: Path, status: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".status-")
    with os.fdopen(fd, "w") as f:
        json.dump(status, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, state_dir / FILE)


def read(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
