"""Writing matrix YAML by hand, in the shipped files' style, so proposals read like them.

``block(value, indent)`` turns plain data (dicts in insertion order, lists, scalars) into
block-style YAML lines: mappings as ``key: value``, lists of scalars in flow style
(``[a, b]``), lists of mappings as ``- key: …`` items. Scalars are written plain when
YAML reads them back as the same value, else double-quoted (JSON quoting is valid YAML).
"""

from __future__ import annotations

import json
from typing import Any

import yaml


def scalar(value: Any, flow: bool = False) -> str:
    """One scalar as YAML text that reads back as ``value`` (``flow``: inside ``[…]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and "\n" not in text and text == text.strip() and not text.startswith(("[", "{")):
        try:
            probe = f"[{text}]" if flow else text
            back = yaml.safe_load(probe)
            if back == ([text] if flow else text) and ": " not in text and " #" not in text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple)


def block(value: dict[str, Any] | list[Any], indent: int = 0) -> list[str]:
    """Block-style YAML lines for a mapping or a list, each indented by ``indent``."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, v in value.items():
            if _is_scalar(v):
                out.append(f"{pad}{scalar(key)}: {scalar(v)}")
            elif isinstance(v, dict) and not v:
                out.append(f"{pad}{scalar(key)}: {{}}")
            elif isinstance(v, list | tuple) and all(_is_scalar(x) for x in v):
                out.append(f"{pad}{scalar(key)}: [{', '.join(scalar(x, flow=True) for x in v)}]")
            elif isinstance(v, dict):
                out.append(f"{pad}{scalar(key)}:")
                out.extend(block(v, indent + 2))
            else:
                out.append(f"{pad}{scalar(key)}:")
                out.extend(block(list(v), indent + 2))
        return out
    for item in value:
        if isinstance(item, dict) and item:
            lines = block(item, indent + 2)
            lines[0] = f"{pad}- {lines[0][indent + 2 :]}"
            out.extend(lines)
        elif _is_scalar(item):
            out.append(f"{pad}- {scalar(item)}")
        else:
            out.append(f"{pad}- {json.dumps(item)}")
    return out
