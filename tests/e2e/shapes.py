"""Compares an event with the Tectra documentation's example (same keys, nesting and JSON types) and its JSON Schema."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

from pipeline.event_schemas import json_schema

SEED = json.loads((Path(__file__).parent.parent / "vectors" / "tectra-payloads.json").read_text())
# Fields the payload may carry as null: no perceptual hash for non-images; no match on verification.
NULLABLE = {"data.perceptual_hash", "data.record_id", "data.signer"}


def json_type(value) -> str:
    """The JSON type name of a value (int and float both 'number'; bool apart)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def shape_errors(event: dict, example: dict | None = None, path: str = "") -> list[str]:
    """Every difference of keys or types between an event and the seed example of its type."""
    if example is None:
        example = SEED[event["event"]]
    errors = []
    if set(event) != set(example):
        errors.append(f"{path or '<root>'}: keys {sorted(event)} != seed {sorted(example)}")
    for key in set(event) & set(example):
        p = f"{path}.{key}" if path else key
        ours, theirs = event[key], example[key]
        if ours is None and p in NULLABLE:
            continue
        if json_type(ours) != json_type(theirs):
            errors.append(f"{p}: {json_type(ours)} != seed {json_type(theirs)}")
        elif isinstance(theirs, dict):
            errors.extend(shape_errors(ours, theirs, p))
        elif isinstance(theirs, list):
            errors.extend(f"{p}[]: {json_type(v)} != seed string" for v in ours if json_type(v) != json_type(theirs[0]))
    return errors


@cache
def _validator(event_type: str) -> jsonschema.Draft202012Validator:
    """A validator for one event's JSON Schema."""
    return jsonschema.Draft202012Validator(json_schema(event_type))


def schema_errors(event: dict) -> list[str]:
    """Every way a delivered body (Tectra or Royal) breaks its event's JSON Schema."""
    event_type = event.get("event") or event.get("type")
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(event_type).iter_errors(event)]
