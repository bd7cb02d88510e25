"""keepalived-check's fallback for keepalived 2.2.7 (which kills itself checking any vrrp_script): the
script blocks are removed whatever their indentation or brace placement, and nothing else is."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "roles/nat_gateway_ha/files/usr/local/libexec/nat-gateway-ha/keepalived-check"

CONF = """global_defs {
  enable_script_security
}
  vrrp_script chk_a
  {
      script "/usr/bin/true"
      interval 1
  }
vrrp_script chk_b {
    script "/usr/bin/false"
}
vrrp_instance VI_a {
\tstate BACKUP
\ttrack_script { chk_a }
\tvirtual_ipaddress {
\t\t10.0.0.1/32
\t}
\ttrack_script
\t{
\t\tchk_b
\t}
\tpriority 100
}
"""


def test_script_blocks_go_whatever_their_layout(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    out = subprocess.run(["sh", str(CHECK), "--strip", str(conf)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "global_defs {",
        "  enable_script_security",
        "}",
        "vrrp_instance VI_a {",
        "\tstate BACKUP",
        "\tvirtual_ipaddress {",
        "\t\t10.0.0.1/32",
        "\t}",
        "\tpriority 100",
        "}",
    ]
