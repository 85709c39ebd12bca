"""JSON parsing that refuses deep nesting before the parser sees it (a deep body can crash the process)."""
from __future__ import annotations

import json
import re

MAX_DEPTH = 64
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def too_deep(text: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in a JSON text open deeper than max_depth (brackets in strings aside)."""
    if text.count(b"[") + text.count(b"{") <= max_depth:
        return False
    depth = 0
    for bracket in _STRINGS.sub(b"", text).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        if depth > max_depth:
            return True
    return False


def loads(text: bytes | str, max_depth: int = MAX_DEPTH):
    """json.loads, raising ValueError for a text nested deeper than max_depth."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if too_deep(raw, max_depth):
        raise ValueError(f"JSON nests deeper than {max_depth} levels")
    return json.loads(raw)
