"""The role's argument_specs.yml and README key tables, rendered from the inventory models.

The pydantic models are the one source of every inventory key's type, default, choices and description:
this module writes them out (`--write`, `make docs`) or says which file is stale (`--check`, `make check`),
so Ansible's run-time argument check and the README can never drift from what `plan()` accepts.
Role variables that are not inventory models are described in `ROLE_VARS`, their defaults read from
defaults/main.yml.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from nat_gateway_ha.inventory.models import HOST_VAR, PAIR_VAR, HostSpec, PairSpec

ROLE = Path("roles/nat_gateway_ha")
SPECS = ROLE / "meta/argument_specs.yml"
README = ROLE / "README.md"
DEFAULTS = ROLE / "defaults/main.yml"
END = "<!-- END GENERATED -->"
HEADER = (
    "# Generated from the pydantic models by `python -m nat_gateway_ha.inventory.docs --write` (make docs):\n"
    "# edit the models (src/nat_gateway_ha) or ROLE_VARS there, not this file. Checked by Ansible when the\n"
    "# role starts; nat_gateway_ha.inventory.plan() then validates the pairs as a whole (peers, priorities,\n"
    "# VRIDs, subnets).\n"
)

# Role variables outside the inventory models: name -> (Ansible type, description, README default).
# A README default of None shows the value from defaults/main.yml.
ROLE_VARS: dict[str, tuple[str, str, str | None]] = {
    "nat_gateway_ha_packages": (
        "list",
        "Packages installed when missing; empty: the distribution's list (`vars/<distribution>.yml`, see "
        "[Distributions](#distributions)), a list replaces it whole.",
        "the distribution's list",
    ),
    "nat_gateway_ha_script_user": (
        "str",
        "Dedicated non-root system user keepalived runs scripts as; created by the role. 1-32 of `a-z0-9_-`, "
        "starting with a letter; never `root`, `admin`, `nobody` or another system or login account.",
        None,
    ),
    "nat_gateway_ha_conntrack_max": (
        "int",
        "`net.netfilter.nf_conntrack_max`; `0` leaves it alone (needed in containers, which cannot set it).",
        None,
    ),
    "nat_gateway_ha_sysctl_extra": ("dict", "More sysctl keys and values for the drop-in.", None),
    "nat_gateway_ha_controller_check": (
        "bool",
        "Before any host changes, check each gateway's rendered keepalived.conf (`keepalived -t`, on a copy "
        "whose interfaces are renamed to one of the controller's) and nat.nft (`nft -c`) on the controller, "
        "which then needs the keepalived and nftables packages.",
        None,
    ),
    "nat_gateway_ha_agent_source": (
        "path",
        "Controller directory holding the project (src/nat_gateway_ha, pyproject.toml, README.md), which "
        "the controller builds into the agent's wheel.",
        "the project root",
    ),
    "nat_gateway_ha_agent_build_dir": (
        "path",
        "Controller directory the agent's wheel is built into, once per run (git-ignored under the project).",
        "`<source>/build/agent-wheel`",
    ),
    "nat_gateway_ha_agent_wheelhouse": (
        "str",
        "Controller directory of wheels (boto3, pydantic and their dependencies for the gateways; setuptools "
        "and wheel for the controller's build); when set, pip installs with `--no-index` from it only.",
        None,
    ),
    "nat_gateway_ha_cloud_check": (
        "bool",
        "From each gateway, resolve the pair's ENIs, EIPs and route tables in EC2 and check IMDSv2 (module "
        "`nat_gateway_ha_cloud`); then, from the controller, turn source/dest check off on both ENIs with "
        "`amazon.aws.ec2_eni` (the instance role has no right to).",
        None,
    ),
    "nat_gateway_ha_controller_environment": (
        "dict",
        "Environment of the controller's AWS calls: `AWS_PROFILE`, or a lab's keys.",
        None,
    ),
    "nat_gateway_ha_controller_endpoint_url": (
        "str",
        "EC2 endpoint of the controller's AWS calls; empty: the pair's `endpoint_url`. Set it where the "
        "gateways reach EC2 another way than the controller does (an interface endpoint only the VPC "
        "resolves; the lab).",
        None,
    ),
    "nat_gateway_ha_use_facts": ("bool", "Fill in addresses and MACs from gathered facts.", None),
    "nat_gateway_ha_plan": (
        "dict",
        "A plan from the `nat_gateway_ha_plan` action (site.yml passes the one it validated); computed when "
        "unset.",
        "computed",
    ),
}
RENDER_VARS: dict[str, tuple[str, str, str | None]] = {
    "nat_gateway_ha_render_dir": (
        "path",
        "Render mode only: controller directory for the rendered files.",
        "none",
    ),
}
MAIN = {
    "short_description": "Converge an HA NAT gateway (keepalived, nftables SNAT, sysctl, failover agent)",
    "description": [
        "Validates the whole inventory on the controller, then installs and configures one gateway of an HA "
        "pair.",
        "Pairs are the child groups of C(nat_gateways); see the role's README for the inventory reference.",
    ],
}
RENDER = {
    "short_description": "Render each gateway's files on the controller (playbooks/render.yml)",
    "description": [
        "Writes keepalived.conf, agent.json and nat.nft under "
        "nat_gateway_ha_render_dir/<inventory_hostname>/.",
    ],
}
_STR_TYPES = (str, IPv4Address, IPv4Interface, IPv4Network, Path)


def _unwrap(annotation: Any) -> Any:
    """The type under Annotated and `| None`: Ansible states optionality with `required`, not the type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
        else:
            return annotation


def _kind(annotation: Any) -> tuple[str, Any]:
    """Ansible type of a Python type, and what it holds: a model, an element type or a Literal's choices."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        choices = list(get_args(annotation))
        return type(choices[0]).__name__, choices
    if origin is list:
        return "list", _unwrap(get_args(annotation)[0])
    if origin is dict:
        return "dict", None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "dict", annotation
    if annotation in (bool, int, float):
        return str(annotation.__name__), None
    if annotation in _STR_TYPES:
        return "str", None
    raise TypeError(f"no Ansible type for {annotation!r}")


def _extra(info: FieldInfo) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _default(info: FieldInfo) -> Any:
    return to_jsonable_python(info.get_default(call_default_factory=True))


def _option(name: str, info: FieldInfo) -> dict[str, Any]:
    """One argument_specs option; a sub-model becomes nested `options`, a list of models too."""
    if not info.description:
        raise ValueError(f"field {name} has no description")
    kind, holds = _kind(info.annotation)
    out: dict[str, Any] = {"description": info.description, "type": _extra(info).get("ansible_type", kind)}
    model = holds if isinstance(holds, type) and issubclass(holds, BaseModel) else None
    if out["type"] == "list":
        element, model = _kind(holds)
        out["elements"] = element
        model = model if isinstance(model, type) and issubclass(model, BaseModel) else None
    elif isinstance(holds, list):
        out["choices"] = holds
    if info.is_required():
        out["required"] = True
    elif not (kind == "dict" and model) and _default(info) is not None:
        out["default"] = _default(info)
    if "shown" in _extra(info) and "default" not in out:  # a computed default: say what it is
        out["description"] += f" Default: {_extra(info)['shown']}."
    if _extra(info).get("no_log"):
        out["no_log"] = True
    if model is not None:
        out["options"] = _options(model)
    return out


def _options(model: type[BaseModel]) -> dict[str, Any]:
    return {name: _option(name, info) for name, info in model.model_fields.items()}


def _role_options(
    variables: dict[str, tuple[str, str, str | None]], defaults: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (kind, description, _) in variables.items():
        out[name] = {"description": description, "type": kind}
        if kind == "list":
            out[name]["elements"] = "str"
        if name in defaults:
            out[name]["default"] = defaults[name]
        elif name in RENDER_VARS:
            out[name]["required"] = True
    return out


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their key, as yamllint's default indentation rule wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render_specs(defaults: dict[str, Any]) -> str:
    """The whole meta/argument_specs.yml."""
    pair = "The pair's shared settings; set on the pair group."
    host = "One gateway's own settings; set in its host vars."
    main: dict[str, Any] = {
        PAIR_VAR: {"description": pair, "type": "dict", "options": _options(PairSpec)},
        HOST_VAR: {"description": host, "type": "dict", "options": _options(HostSpec)},
    }
    main.update(_role_options(ROLE_VARS, defaults))
    specs = {
        "argument_specs": {
            "main": {**MAIN, "options": main},
            "render": {**RENDER, "options": _role_options(RENDER_VARS, defaults)},
        }
    }
    body = yaml.dump(specs, Dumper=_Dumper, sort_keys=False, width=95, allow_unicode=True)
    return "---\n" + HEADER + body


def _flow(value: Any) -> str:
    """A default as a reader writes it in YAML: `[0.0.0.0/0]`, `{host: 1.1.1.1, port: 443}`, `true`."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return str(value).lower()
    return '""' if value == "" else str(value)


def _shown(info: FieldInfo) -> str:
    if "shown" in _extra(info):
        return str(_extra(info)["shown"])
    if info.is_required():
        return "required"
    kind, holds = _kind(info.annotation)
    if kind == "dict" and isinstance(holds, type):
        return "`{}`"  # a sub-model: each of its keys has its own row and default
    default = _default(info)
    return "none" if default is None else f"`{_flow(default)}`"


def _rows(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Table rows of a model's fields, then (dotted) of its sub-models' fields."""
    for name, info in model.model_fields.items():
        kind, holds = _kind(info.annotation)
        choices = f" One of {', '.join(f'`{c}`' for c in holds)}." if isinstance(holds, list) else ""
        yield f"| `{prefix}{name}` | {_shown(info)} | {info.description}{choices} |"
        if kind == "list":
            holds, suffix = _kind(holds)[1], "[]."
        else:
            suffix = "."
        if isinstance(holds, type) and issubclass(holds, BaseModel):
            yield from _rows(holds, f"{prefix}{name}{suffix}")


def _var_rows(variables: dict[str, tuple[str, str, str | None]], defaults: dict[str, Any]) -> Iterator[str]:
    for name, (_, description, shown) in variables.items():
        if shown is None:
            value = defaults[name]
            shown = ", ".join(value) if isinstance(value, list) else f"`{_flow(value)}`"
        yield f"| `{name}` | {shown} | {description} |"


def tables(defaults: dict[str, Any]) -> dict[str, list[str]]:
    """The README's generated blocks, by marker name."""
    return {
        "pair-vars": ["| Key | Default | Meaning |", "|---|---|---|", *_rows(PairSpec)],
        "host-vars": ["| Key | Default | Meaning |", "|---|---|---|", *_rows(HostSpec)],
        "role-vars": [
            "| Variable | Default | Meaning |",
            "|---|---|---|",
            *_var_rows(ROLE_VARS, defaults),
            *_var_rows(RENDER_VARS, defaults),
        ],
    }


def render_readme(text: str, blocks: dict[str, list[str]]) -> str:
    """`text` with each `<!-- BEGIN GENERATED: name -->` ... END block replaced; the prose stays."""
    lines = text.splitlines()
    out: list[str] = []
    seen = set()
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].startswith("<!-- BEGIN GENERATED: "):
            name = lines[i].removeprefix("<!-- BEGIN GENERATED: ").removesuffix(" -->")
            if name not in blocks:
                raise ValueError(f"{README}: no generated block named {name!r}")
            end = lines.index(END, i)
            out.extend(blocks[name])
            out.append(END)
            seen.add(name)
            i = end
        i += 1
    if missing := set(blocks) - seen:
        raise ValueError(f"{README}: no marker for {', '.join(sorted(missing))}")
    return "\n".join(out) + "\n"


def render(root: Path) -> dict[Path, str]:
    """Every generated file's wanted content, by path under `root`."""
    defaults = yaml.safe_load((root / DEFAULTS).read_text())
    readme = render_readme((root / README).read_text(), tables(defaults))
    return {SPECS: render_specs(defaults), README: readme}


def stale(root: Path) -> list[Path]:
    """The generated files whose content differs from what the models say."""
    return [path for path, text in render(root).items() if (root / path).read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nat_gateway_ha.inventory.docs", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the generated files")
    mode.add_argument("--check", action="store_true", help="fail naming each stale file")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    if args.check:
        paths = stale(args.root)
        for path in paths:
            print(f"{path} is stale: run make docs (python -m nat_gateway_ha.inventory.docs --write)")
        return 1 if paths else 0
    for path, text in render(args.root).items():
        (args.root / path).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
