#!/usr/bin/python
"""Ansible module: the least-privilege IAM policy of a pair's instance role, from provisioning's ids."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nat_gateway_ha_instance_policy
short_description: Write the IAM policy document of a NAT gateway pair's instance role
description:
  - Runs on the controller (C(playbooks/provision.yml)), after the pair's ENIs and Elastic IPs exist.
  - Selects the route tables the pair manages with the agent's own selection code (tags, ids, subnets'
    tables), learns the account from STS and returns the policy C(natgw-ha-agent iam-policy) would write
    for the same ids; it never grants a resource it does not name.
  - Read-only: it changes nothing, so check mode runs it in full.
version_added: "0.2.0"
author: nat-gateway-ha developers
options:
  pair:
    description: The pair group's name, for the error messages.
    type: str
    required: true
  region:
    description: The pair's region.
    type: str
    required: true
  vpc_id:
    description:
      - The pair's VPC; route tables outside it are refused, and the policy's ec2:Vpc conditions name it.
    type: str
    required: true
  route_tables:
    description:
      - The pair's C(route_tables) selection (C(tags), C(ids), C(subnet_ids), C(include_main), C(first)).
    type: dict
    required: true
  allocation_ids:
    description: The pair's Elastic IP allocations.
    type: list
    elements: str
    required: true
  eni_ids:
    description: Every gateway's WAN ENI (AssociateAddress is authorised against the ENI too).
    type: list
    elements: str
    required: true
  metrics_namespace:
    description: The CloudWatch namespace the agents publish to, when they do.
    type: str
  endpoint_url:
    description: EC2 and STS endpoint override (a lab's moto); AWS's own endpoints otherwise.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - the nat-gateway-ha package and boto3 in the controller's Python
"""

EXAMPLES = r"""
- name: The instance role's policy
  nat_gateway_ha_instance_policy:
    pair: natgw_prod
    region: eu-west-1
    vpc_id: vpc-0123456789abcdef0
    route_tables: {tags: {Network: private}}
    allocation_ids: [eipalloc-0123456789abcdef0]
    eni_ids: [eni-0123456789abcdef0, eni-0fedcba9876543210]
  register: policy
"""

RETURN = r"""
policy:
  description: The IAM policy document.
  returned: success
  type: dict
route_table_ids:
  description: The route tables the selection matched, which the policy names.
  returned: success
  type: list
  elements: str
account:
  description: The account every ARN names.
  returned: success
  type: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (after the documentation, by convention)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "pair": {"type": "str", "required": True},
            "region": {"type": "str", "required": True},
            "vpc_id": {"type": "str", "required": True},
            "route_tables": {"type": "dict", "required": True},
            "allocation_ids": {"type": "list", "elements": "str", "required": True},
            "eni_ids": {"type": "list", "elements": "str", "required": True},
            "metrics_namespace": {"type": "str"},
            "endpoint_url": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p: dict[str, Any] = module.params
    try:
        import boto3
        from pydantic import ValidationError

        from nat_gateway_ha import iam
        from nat_gateway_ha.cloud_refs import RouteTableSelection
        from nat_gateway_ha.resolve import ResolveError, select_tables
    except ImportError as err:
        module.fail_json(msg=f"the controller's Python lacks {err.name}: run it from the venv `make` builds")
    who = f"pair {p['pair']}"
    try:
        selection = RouteTableSelection.model_validate(p["route_tables"])
    except ValidationError as err:
        module.fail_json(msg=f"{who} field nat_gateway_ha_pair.route_tables: {err}")
    kw = {"region_name": p["region"], "endpoint_url": p["endpoint_url"]}
    try:
        account = boto3.client("sts", **kw).get_caller_identity()["Account"]
        tables = select_tables(selection, boto3.client("ec2", **kw), p["vpc_id"], who)
        where = iam.scope(account, p["region"], p["vpc_id"])
        policy = iam.document(
            where,
            tables=tables,
            allocation_ids=p["allocation_ids"],
            eni_ids=p["eni_ids"],
            metrics_namespace=p["metrics_namespace"],
        )
    except (iam.PolicyError, ResolveError) as err:
        module.fail_json(msg=f"{who}: {err}")
    module.exit_json(changed=False, policy=policy, route_table_ids=list(tables), account=account)


if __name__ == "__main__":
    main()
