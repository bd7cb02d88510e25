"""Filter `nat_gateway_ha_word`: the templates' second wall behind the inventory's strict types.

Every value a template writes into keepalived.conf or nat.nft goes through it and must be one plain word
(names, addresses, CIDRs, paths, command arguments) or, with kind='secret', a keepalived secret. Anything else
fails the render instead of writing text that keepalived or nft would read as more configuration.
"""

from __future__ import annotations

import re
from typing import Any

from ansible.errors import AnsibleFilterError

_KINDS = {
    "word": re.compile(r"[A-Za-z0-9_.:/@%+,=-]{1,255}"),
    "secret": re.compile(r"[!-~]{1,8}"),
}
_SECRET_FORBIDDEN = set("#!\"'\\")


def nat_gateway_ha_word(value: Any, kind: str = "word") -> str:
    text = str(value)
    pattern = _KINDS.get(kind)
    if pattern is None:
        raise AnsibleFilterError(f"nat_gateway_ha_word: unknown kind {kind!r}")
    if not pattern.fullmatch(text) or (kind == "secret" and _SECRET_FORBIDDEN & set(text)):
        raise AnsibleFilterError(f"nat_gateway_ha_word: refusing to render a value that is not a plain {kind}")
    return text


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"nat_gateway_ha_word": nat_gateway_ha_word}
