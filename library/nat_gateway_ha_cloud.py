#!/usr/bin/python
"""Ansible module: discover and check a NAT gateway's AWS side, disable src/dst check, claim ownership."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nat_gateway_ha_cloud
short_description: Check a NAT gateway pair member's AWS side and make it the owner
description:
  - Runs on a gateway of an HA NAT pair, with the agent's Python (C(/opt/nat-gateway-ha/venv/bin/python)).
  - Learns the instance from IMDSv2 and resolves, against EC2, the WAN and LAN ENIs, their private IPs, the
    Elastic IP allocations and the route tables the pair manages (the agent's own resolution).
  - With O(source_dest_check=false) disables source/destination checking on both ENIs, as NAT needs.
  - With O(owner=true) makes this gateway the owner (EIPs on its WAN private IPs, every managed route on its
    LAN ENI) through the same takeover code path as the failover agent; used for planned switchovers.
  - Checks that the instance requires IMDSv2 with a hop limit of 1 (O(require_imdsv2)).
  - Check mode reports what would change; diff mode shows ownership before and after.
version_added: "0.1.0"
author: nat-gateway-ha developers
options:
  config:
    description:
      - Path of the agent's JSON config on the gateway. Ignored when O(agent_config) is given.
    type: path
    default: /etc/nat-gateway-ha/agent.json
  agent_config:
    description:
      - The agent config as a dict (same fields as the JSON file), instead of reading O(config).
    type: dict
  source_dest_check:
    description:
      - Wanted source/destination check on the WAN and LAN ENIs; V(false) for a NAT gateway.
      - Omit to only report it.
    type: bool
  owner:
    description:
      - Make this gateway the owner of the pair's EIPs and routes. V(false) only reports ownership.
    type: bool
    default: false
  require_imdsv2:
    description:
      - Fail unless the instance's metadata options require IMDSv2 tokens with a hop limit of 1, so that
        the instance role's credentials answer neither an SSRF (IMDSv1) nor a container or forwarded packet.
      - V(false) only reports them in RV(metadata_options).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Observes EC2 and reports the calls it would make; changes nothing.
  diff_mode:
    support: full
    description: Shows EIP and route ownership before and after.
requirements:
  - the nat-gateway-ha package (the agent's venv), boto3
  - O(source_dest_check) needs ec2:ModifyNetworkInterfaceAttribute, which the generated instance policy
    does not grant; the role turns the check off from the controller instead (amazon.aws.ec2_eni)
notes:
  - Needs IMDS and EC2 access from the gateway (its instance role); see C(natgw-ha-agent iam-policy).
    O(source_dest_check=false) also needs its C(provisioning_policy) (ModifyNetworkInterfaceAttribute on
    the pair's ENIs), which the agent itself never uses.
"""

EXAMPLES = r"""
- name: Disable source/dest check and report ownership
  nat_gateway_ha_cloud:
    source_dest_check: false
  vars:
    ansible_python_interpreter: /opt/nat-gateway-ha/venv/bin/python

- name: Make this gateway the owner (planned switchover)
  nat_gateway_ha_cloud:
    owner: true
  vars:
    ansible_python_interpreter: /opt/nat-gateway-ha/venv/bin/python
"""

RETURN = r"""
target:
  description: What was resolved, by id.
  returned: always
  type: dict
  contains:
    instance_id: {description: This gateway's instance., type: str}
    wan_eni_id: {description: ENI carrying the EIPs., type: str}
    lan_eni_id: {description: ENI the routes point at., type: str}
    eips: {description: Allocation id, public IP and WAN private IP of each EIP., type: list}
    route_tables: {description: Route tables the pair manages (main table only if opted in)., type: list}
    destinations: {description: Destinations repointed in each table., type: list}
source_dest_check:
  description: ENI id to source/dest check state (after the change, if any).
  returned: always
  type: dict
source_dest_check_changed:
  description: ENIs whose source/dest check was (or in check mode would be) changed.
  returned: always
  type: list
owner:
  description: Whether this gateway owns every EIP and route (after the change, or predicted in check mode).
  returned: always
  type: bool
ownership_before:
  description: Where each EIP and route pointed before.
  returned: always
  type: dict
ownership_after:
  description: Where each EIP and route points after.
  returned: always
  type: dict
region:
  description: The region of the gateway's EC2 calls (from the config, else IMDS).
  returned: always
  type: str
metadata_options:
  description: The instance's IMDS options as EC2 reports them.
  returned: always
  type: dict
  contains:
    http_tokens: {description: V(required) when only IMDSv2 answers., type: str}
    hop_limit: {description: How many hops an IMDSv2 token response may travel., type: int}
takeover:
  description: The takeover's summary (planned, pending and failed calls, duration) when O(owner=true).
  returned: when owner is true
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (after the documentation, by convention)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "path", "default": "/etc/nat-gateway-ha/agent.json"},
            "agent_config": {"type": "dict"},
            "source_dest_check": {"type": "bool"},
            "owner": {"type": "bool", "default": False},
            "require_imdsv2": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        from pathlib import Path

        from pydantic import ValidationError

        from nat_gateway_ha.config import AgentConfig
        from nat_gateway_ha.provision import ensure
    except ImportError as err:
        module.fail_json(msg=f"the nat-gateway-ha package is missing from this interpreter: {err}")
        return
    p = module.params
    try:
        if p["agent_config"] is not None:
            cfg = AgentConfig.model_validate(p["agent_config"])
        else:
            cfg = AgentConfig.load(Path(p["config"]))
        out = ensure(
            cfg,
            owner=p["owner"],
            want_source_dest_check=p["source_dest_check"],
            check_mode=module.check_mode,
            require_imdsv2=p["require_imdsv2"],
        )
    except ValidationError as err:
        given = p["agent_config"] or {}
        where = f"pair {given.get('pair', '?')} host {given.get('host', '?')}"
        fields = "; ".join(f"field {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        module.fail_json(msg=f"{where}: invalid agent config: {fields}")
        return
    except (OSError, ValueError, RuntimeError) as err:
        module.fail_json(msg=str(err))
        return
    out["diff"] = {"before": out["ownership_before"], "after": out["ownership_after"]}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
