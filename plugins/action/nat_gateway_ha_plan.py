"""Action plugin: validate the whole inventory on the controller and return every gateway's plan.

It runs on the controller whatever host the task targets and never connects anywhere: it reads the
inventory (pair groups are the children of `nat_gateways`), the hosts' variables and, when asked, their
gathered facts, and hands them to `nat_gateway_ha.inventory.plan()`, the one place that computes peers and
priorities. A wrong inventory fails the task with every error, each naming pair, host and field.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.validation import check_type_bool
from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
---
module: nat_gateway_ha_plan
short_description: Validate the NAT gateway pairs of the inventory and compute each gateway's settings
description:
  - Runs on the controller only. Finds the HA pairs (the child groups of I(parent_group)), validates
    C(nat_gateway_ha_pair) and C(nat_gateway_ha_host) of every member with the package's pydantic models
    and returns the plan (keepalived instance, NAT rules, failover-agent config) of every gateway.
  - Fails listing every error found, each naming the pair, the host and the field.
options:
  parent_group:
    description: Inventory group whose child groups are the HA pairs.
    type: str
    default: nat_gateways
  pair_groups:
    description:
      - Explicit list of pair groups, for when the inventory object is not reachable from the plugin.
        By default the children of I(parent_group) are read from the inventory.
    type: list
    elements: str
  use_facts:
    description:
      - Fill in LAN/WAN addresses and MACs from the hosts' gathered facts when the inventory does not
        give them. Off in render mode, where missing addresses are errors.
    type: bool
    default: true
  script_user:
    description:
      - Script user of gateways whose variables do not set C(nat_gateway_ha_script_user) (the role's default).
    type: str
    default: keepalived_script
  provisioning:
    description:
      - Plan what C(playbooks/provision.yml) creates instead (security groups, ENIs, EIPs, IAM role,
        instances), from C(nat_gateway_ha_provision) and the pair and host specs; returned as C(provision).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: nat-gateway-ha
"""

RETURN = r"""
plan:
  description: C(pairs) (members, VRID, priorities) and C(hosts) (C(keepalived), C(nat), C(agent) each).
  returned: success, unless I(provisioning)
  type: dict
provision:
  description:
    - Per pair group, what provisioning creates, with the controller's C(controller_endpoint_url) and
      C(controller_environment) (the first member's C(nat_gateway_ha_controller_*) variables).
  returned: success, with I(provisioning)
  type: dict
"""


def _import_plan() -> Any:
    """Import the package from the controller's Python; fall back to this checkout's src/."""
    try:
        from nat_gateway_ha import inventory
    except ImportError:
        src = Path(__file__).resolve().parents[2] / "src"
        sys.path.insert(0, str(src))
        try:
            from nat_gateway_ha import inventory
        except ImportError as err:
            raise _controller_lacks(err) from err
    return inventory


def _controller_lacks(err: ImportError) -> AnsibleActionFail:
    """A stock controller (ansible from pipx or a distro package) lacks the package's dependencies: say
    which Python and how to fix it, instead of a traceback."""
    return AnsibleActionFail(
        f"nat-gateway-ha: the Python running Ansible ({sys.executable}) cannot import "
        f"{err.name or 'the nat_gateway_ha package'} ({err}). Install the controller side into it: "
        "`make bootstrap` builds .venv with everything (then run .venv/bin/ansible-playbook), or "
        "`pipx inject ansible-core pydantic boto3` for a pipx install, or "
        f"`{sys.executable} -m pip install pydantic boto3`."
    )


def _plain(value: Any) -> Any:
    """Strip Ansible's tagged/lazy containers down to plain Python data for pydantic."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _children(task: Any, task_vars: Mapping[str, Any], parent: str) -> list[str] | None:
    """The names of `parent`'s child groups, read from the inventory object; None when unreachable."""
    candidates = [task_vars.get("hostvars"), getattr(task, "get_variable_manager", lambda: None)()]
    for holder in candidates:
        inventory = getattr(holder, "_inventory", None)
        groups = getattr(inventory, "groups", None)
        if isinstance(groups, Mapping):
            group = groups.get(parent)
            if group is None:
                return []
            return [child.name for child in group.child_groups]
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset({"parent_group", "pair_groups", "use_facts", "script_user", "provisioning"})

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        parent = str(args.get("parent_group", "nat_gateways"))
        use_facts = check_type_bool(args.get("use_facts", True))

        group_hosts: Mapping[str, Sequence[str]] = task_vars.get("groups", {})
        pair_groups = args.get("pair_groups")
        if pair_groups is None:
            pair_groups = _children(self._task, task_vars, parent)
            if pair_groups is None:
                raise AnsibleActionFail(
                    f"cannot read the inventory's groups: pass pair_groups (the child groups of {parent})"
                )
        missing = [g for g in pair_groups if g not in group_hosts]
        if missing:
            raise AnsibleActionFail(f"pair group(s) not in the inventory: {', '.join(missing)}")
        if not pair_groups:
            raise AnsibleActionFail(f"group {parent} has no child groups: each pair is a child group of it")

        pairs = {g: [str(h) for h in group_hosts[g]] for g in pair_groups}
        hostvars = task_vars["hostvars"]
        unpaired = sorted(set(group_hosts.get(parent, [])) - {h for m in pairs.values() for h in m})
        if unpaired and args.get("pair_groups") is None:
            raise AnsibleActionFail(
                f"host(s) in {parent} but in no pair group: {', '.join(unpaired)} (put each in a child group)"
            )
        wanted: tuple[str, ...] = ("nat_gateway_ha_pair", "nat_gateway_ha_host", "nat_gateway_ha_script_user")
        wanted += ("ansible_facts",) if use_facts else ()
        hosts: dict[str, dict[str, Any]] = {}
        for members in pairs.values():
            for host in members:
                hv = hostvars[host]
                hosts[host] = {k: _plain(hv[k]) for k in wanted if k in hv}

        inventory = _import_plan()
        if check_type_bool(args.get("provisioning", False)):
            return self._provisioning(result, inventory, pairs, hostvars)
        try:
            script_user = str(args.get("script_user", "keepalived_script"))
            planned = inventory.plan(pairs, hosts, use_facts=use_facts, script_user=script_user)
        except inventory.PlanError as exc:
            result.update(
                failed=True, plan_errors=exc.errors, msg="invalid inventory:\n" + "\n".join(exc.errors)
            )
            return result
        except Exception as exc:  # a bug, not a bad inventory: say where, since Ansible hides the traceback
            tb = traceback.format_exc()
            result.update(failed=True, msg=f"nat_gateway_ha.inventory.plan() crashed: {exc!r}", traceback=tb)
            return result
        result.update(changed=False, plan=planned.to_vars())
        if any(
            h["nat_gateway_ha_pair"].get("authentication")
            for h in hosts.values()
            if "nat_gateway_ha_pair" in h
        ):
            # The plan carries the VRRPv2 auth_pass: keep it out of every callback's output (facts still set).
            result["_ansible_no_log"] = True
        return result

    @staticmethod
    def _provisioning(
        result: dict[str, Any], inventory: Any, pairs: Mapping[str, Sequence[str]], hostvars: Any
    ) -> dict[str, Any]:
        from nat_gateway_ha.inventory.provisioning import PROVISION_VAR, plan_provisioning

        wanted = ("nat_gateway_ha_pair", "nat_gateway_ha_host", PROVISION_VAR)
        hosts = {
            h: {k: _plain(hostvars[h][k]) for k in wanted if k in hostvars[h]}
            for m in pairs.values()
            for h in m
        }
        try:
            planned = plan_provisioning(pairs, hosts)
        except inventory.PlanError as exc:
            result.update(
                failed=True, plan_errors=exc.errors, msg="invalid inventory:\n" + "\n".join(exc.errors)
            )
            return result
        for pair, members in pairs.items():
            if pair in planned:
                first = hostvars[members[0]]
                planned[pair]["controller_endpoint_url"] = _plain(
                    first.get("nat_gateway_ha_controller_endpoint_url")
                )
                planned[pair]["controller_environment"] = _plain(
                    first.get("nat_gateway_ha_controller_environment", {})
                )
        result.update(changed=False, provision=planned)
        return result
