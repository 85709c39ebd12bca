"""JSON parsing that refuses deep nesting before the parser sees it (a deep body can crash the process)."""
from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 64
# A JSON string, or an unterminated one up to the end (the parser stops there, so nothing after it nests).
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _as_text(text: bytes | str) -> str | None:
    """The text json.loads parses: bytes decoded as it decodes them (UTF-8, -16 or -32); None if they do not decode."""
    # Scanning the raw bytes would misread UTF-16 or UTF-32, where a character's bytes can look like a quote or a
    # backslash: a body could then hide deep nesting from the scan that the parser still descends into.
    if isinstance(text, str):
        return text
    try:
        return text.decode(json.detect_encoding(text), "surrogatepass")
    except UnicodeDecodeError:  # json.loads fails the same way before it parses anything
        return None


def too_deep(text: bytes | str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in a JSON text open deeper than max_depth (brackets in strings aside)."""
    decoded = _as_text(text)
    if decoded is None or decoded.count("[") + decoded.count("{") <= max_depth:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", decoded)):
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            return True
    return False


def loads(text: bytes | str, max_depth: int = MAX_DEPTH):
    """json.loads, raising ValueError for a text nested deeper than max_depth."""
    if too_deep(text, max_depth):
        raise ValueError(f"JSON nests deeper than {max_depth} levels")
    return json.loads(text)


def _no_constant(name: str) -> float:
    """json.loads hook: refuse NaN, Infinity and -Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """json.loads hook: a float, refused when past a double's range (it would come back as Infinity)."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def strict_loads(text: bytes | str):
    """json.loads for client input: only JSON's own numbers, each one a finite double or an integer."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def unpaired_surrogate_at(value, path: str = "") -> str | None:
    """The path ("context.a[2]") of the first key or string holding a lone surrogate, or None."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    if isinstance(value, list):
        children = [(f"{path}[{index}]", False, item) for index, item in enumerate(value)]
    elif isinstance(value, dict):
        children = [(f"{path}.{_shown(key)}" if path else _shown(key), _has_surrogate(key), item)
                    for key, item in value.items()]
    else:
        return None
    for child, bad_key, item in children:
        where = child if bad_key else unpaired_surrogate_at(item, child)
        if where is not None:
            return where
    return None


def _shown(key: str) -> str:
    """A key as an error message can carry it: lone surrogates written as their escapes."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _has_surrogate(text: str) -> bool:
    """Whether a string holds a lone surrogate (from an unpaired \\ud800-\\udfff escape): it is not Unicode text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
