"""The pure tier stays pure: running it (every test module and the conftest imported, its tests run) loads
no moto.

moto is heavy and patched by the lab; only the fixtures that start a cloud load and fix it, and conftest
marks every test that uses them `cloud`. A module-level `import moto`, an import-time
`cloud.apply_aws_fixes()` or a pure test that reaches moto would fail this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PURE = "not cloud and not ansible and not netns and not lab"
PROBE = """
import sys, pytest
rc = pytest.main(["-q", "-p", "no:cacheprovider", "-m", sys.argv[1], "--ignore", sys.argv[3], sys.argv[2]])
loaded = sorted(m for m in sys.modules if m == "moto" or m.startswith("moto."))
print("MOTO-MODULES", len(loaded), loaded[:5])
sys.exit(rc)
"""


def test_the_pure_tier_imports_no_moto() -> None:
    tests = Path(__file__).parents[1]
    src = tests.parent / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, PURE, str(tests), __file__],  # all of it but this test
        capture_output=True,
        text=True,
        env=env,
        cwd=tests.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = [line for line in done.stdout.splitlines() if line.startswith("MOTO-MODULES")]
    assert summary == ["MOTO-MODULES 0 []"], summary
