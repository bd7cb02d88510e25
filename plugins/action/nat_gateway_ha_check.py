"""Action plugin: check one gateway's rendered keepalived.conf and nat.nft on the controller.

Runs before any host changes (the role's plan stage, and render.yml before it writes), so a config that the
gateway's keepalived or nft would refuse never leaves a half-converged host. The checks themselves are
`nat_gateway_ha.rendercheck`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
---
module: nat_gateway_ha_check
short_description: Check a gateway's rendered keepalived.conf and nat.nft on the controller
description:
  - Runs on the controller only. Runs C(keepalived -t) on a copy of I(keepalived_conf) whose interfaces are
    renamed to one of the controller's (the gateway's do not exist here) and whose script blocks are removed
    (keepalived 2.2.7 terminates itself on them), and C(nft -c) on I(nat_nft).
  - Fails if either tool refuses its file, or if any line is longer than keepalived reads as one line.
options:
  keepalived_conf:
    description: The rendered keepalived.conf text.
    type: str
    required: true
  nat_nft:
    description: The rendered nat.nft text.
    type: str
    required: true
  interfaces:
    description: The gateway's interface names that the keepalived config names.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: nat-gateway-ha
"""


def _import_check() -> Any:
    """Import the package from the controller's Python; fall back to this checkout's src/."""
    try:
        from nat_gateway_ha import rendercheck
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
        from nat_gateway_ha import rendercheck
    return rendercheck


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset({"keepalived_conf", "nat_nft", "interfaces"})

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        missing = sorted(self._VALID_ARGS - set(args))
        if missing:
            raise AnsibleActionFail(f"missing argument(s): {', '.join(missing)}")
        check = _import_check()
        try:
            check.check_keepalived(str(args["keepalived_conf"]), [str(i) for i in args["interfaces"]])
            check.check_nft(str(args["nat_nft"]))
        except check.CheckError as exc:
            result.update(failed=True, msg=f"rendered config refused on the controller: {exc}")
            return result
        result.update(changed=False, msg="keepalived.conf and nat.nft pass keepalived -t and nft -c")
        return result
