"""The controller's check of rendered files: keepalived -t on an adapted copy, nft -c, the line limit."""

from __future__ import annotations

import os
import shutil

import pytest

from nat_gateway_ha.rendercheck import (
    MAX_LINE,
    CheckError,
    check_keepalived,
    check_nft,
    keepalived_copy,
    plain_lines,
)
from support import base, pair, render, run

CONF = """global_defs {
    script_user keepalived_script
}
  vrrp_script chk {
      script "/usr/bin/true"
  }
static_routes {
    10.0.4.1/32 via 10.0.3.1 dev ens6
}
vrrp_instance VI_a {
    interface ens6
    virtual_ipaddress {
        10.240.0.1/32 dev ens6
    }
        track_script {
            chk
        }
    priority 150
}
"""


def test_copy_renames_only_interfaces_sets_a_known_user_and_drops_script_blocks() -> None:
    copy = keepalived_copy(
        CONF.replace("priority 150", "priority 150\n    ens6_note ens6"), ["ens6"], ["eth9"]
    )
    assert "interface eth9" in copy and "10.0.4.1/32 via 10.0.3.1 dev eth9" in copy
    assert "10.240.0.1/32 dev eth9" in copy
    assert "ens6_note ens6" in copy  # not an interface position: left alone
    assert "script_user nobody" in copy
    assert "vrrp_script" not in copy and "track_script" not in copy and "chk" not in copy
    assert "priority 150" in copy and copy.count("{") == copy.count("}")


def test_each_gateway_interface_gets_its_own_controller_interface_or_tracking_is_dropped() -> None:
    conf = "vrrp_instance V {\n    interface ens6\n    track_interface {\n        ens5 weight 0\n    }\n}"
    assert keepalived_copy(conf, ["ens6", "ens5"], ["a0", "b0"]).split("\n") == [
        "vrrp_instance V {", "    interface b0", "    track_interface {", "        a0 weight 0", "    }", "}",
    ]  # fmt: skip
    assert keepalived_copy(conf, ["ens6", "ens5"], ["a0"]).split("\n") == [
        "vrrp_instance V {",
        "    interface a0",
        "}",
    ]


def test_lines_over_keepalived_limit_or_with_control_characters_are_refused() -> None:
    plain_lines("ok", "a" * MAX_LINE + "\n\tb")
    with pytest.raises(CheckError, match="over 1022"):
        plain_lines("keepalived.conf", "x\n" + "a" * (MAX_LINE + 1))
    with pytest.raises(CheckError, match="control character"):
        plain_lines("nat.nft", "a\rb")


needs_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("keepalived") or not shutil.which("nft"),
    reason="keepalived -t and nft -c need root and both packages",
)


def _files(**over: object) -> tuple[str, str, list[str]]:
    inv = base()
    pair("natgw_a", **over)(inv)
    host_vars = run(inv).to_vars()["hosts"]["gw-a1"]
    interfaces = [host_vars["keepalived"]["interface"], host_vars["nat"]["wan_interface"]]
    conf = render("keepalived/keepalived.conf.j2", host_vars)
    return conf, render("nat-gateway-ha/nat.nft.j2", host_vars), interfaces


@needs_tools
def test_real_tools_accept_rendered_files_with_and_without_a_track_script() -> None:
    for over in ({}, {"track_script": {"script": "/usr/bin/true"}, "vrrp_version": 2, "advert_int": 1}):
        conf, nft, interfaces = _files(**over)
        check_keepalived(conf, interfaces)
        check_nft(nft)


@needs_tools
def test_real_tools_refuse_what_a_gateway_would_refuse() -> None:
    """Files as a template or model bug could produce them: the controller stops before any host changes."""
    conf, nft, interfaces = _files()
    with pytest.raises(CheckError, match="keepalived -t refused it"):
        check_keepalived(conf.replace("advert_int 0.1", "advert_int 41"), interfaces)
    with pytest.raises(CheckError, match="nft -c refused it"):
        check_nft(nft.replace("snat ip to 169.254.252.1", "snat ip to 169.254.252.300"))
