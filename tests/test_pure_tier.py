"""The pure tier stays pure: collecting it (every test module and the conftest imported) loads no moto.

moto is heavy and patched by the lab; only the fixtures that start a cloud (conftest's `aws_fixes`) load and
fix it. A module-level `import moto`, or an import-time `cloud.apply_aws_fixes()`, would fail this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PURE = "not cloud and not ansible and not netns and not lab"
PROBE = """
import sys, pytest
rc = pytest.main(["-q", "-p", "no:cacheprovider", "--collect-only", "-m", sys.argv[1], sys.argv[2]])
loaded = sorted(m for m in sys.modules if m == "moto" or m.startswith("moto."))
print("MOTO-MODULES", len(loaded), loaded[:5])
sys.exit(rc)
"""


def test_collecting_the_pure_tier_imports_no_moto() -> None:
    tests = Path(__file__).parent
    src = tests.parent / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, PURE, str(tests)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tests.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = [line for line in done.stdout.splitlines() if line.startswith("MOTO-MODULES")]
    assert summary == ["MOTO-MODULES 0 []"], summary
