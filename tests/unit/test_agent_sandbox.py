"""The agent's systemd unit is sandboxed: systemd's own exposure score stays at or below 3.0 ("OK")."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "roles/nat_gateway_ha/templates/etc/systemd/system"
UNIT = UNIT / "nat-gateway-ha-agent.service.j2"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_agent_unit_exposure_is_at_most_3(tmp_path: Path) -> None:
    unit = tmp_path / "nat-gateway-ha-agent.service"
    unit.write_text(UNIT.read_text().replace("{{ ansible_managed }}", "managed"))
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert found, out[-2000:]
    assert float(found.group(1)) <= 3.0, out[-3000:]
