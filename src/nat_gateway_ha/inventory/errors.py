"""Errors that name the pair, the host(s) and the field, collected rather than raised one at a time."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class PlanError(ValueError):
    """The inventory is wrong; `errors` holds every message, each naming pair, host and field."""

    def __init__(self, errors: Sequence[str], by: Sequence[str] = ()) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)
        self.by = list(by)  # which stage or rule refused each error: "names", "models" or a rule's name


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class Errors:
    """Every refusal of one plan() call, in the order found."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.by: list[str] = []  # the stage or rule that refused each item, for the tests' table
        self.stage = "models"

    def add(self, pair: str, hosts: str | Sequence[str], field: str, msg: str) -> None:
        host = hosts if isinstance(hosts, str) else ",".join(hosts)
        self.items.append(f"pair {pair}, host {host}, field {field}: {msg}")
        self.by.append(self.stage)

    def pydantic(self, pair: str, hosts: str | Sequence[str], var: str, exc: ValidationError) -> None:
        for err in exc.errors(include_url=False):
            if err["type"] == "extra_forbidden":
                msg = "unknown key (a typo?)"
            elif err["type"] == "missing":
                msg = "required, not set"
            else:
                msg = err["msg"]
            # A value that failed is never echoed whole: it may be long or hold a payload.
            self.add(pair, hosts, f"{var}{_loc(tuple(err['loc']))}", msg[:300])
