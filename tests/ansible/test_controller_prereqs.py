"""A controller without the package's dependencies gets a sentence, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.util, sys
sys.modules["pydantic"] = None  # a stock controller: ansible-core without pydantic
spec = importlib.util.spec_from_file_location("plugin", sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
from ansible.errors import AnsibleActionFail
try:
    getattr(plugin, sys.argv[2])()
except AnsibleActionFail as err:
    print("FAIL:", err.message)
else:
    print("imported")
"""


def test_missing_pydantic_is_said_with_the_fix() -> None:
    """The plan action (the first task of site.yml) imports the inventory models, which need pydantic."""
    plugin = ROOT / "plugins/action/nat_gateway_ha_plan.py"
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(plugin), "_import_plan"],
        capture_output=True,
        text=True,
        check=False,
    )
    out = done.stdout.strip()
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.startswith(f"FAIL: nat-gateway-ha: the Python running Ansible ({sys.executable})"), out
    assert "cannot import pydantic" in out and "make bootstrap" in out and "pipx inject" in out
    assert "Traceback" not in out
