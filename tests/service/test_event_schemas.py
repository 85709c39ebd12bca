"""Event JSON Schemas: the documents' own examples pass, each defect fails, and they are what the API and CLI show."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from pipeline.api import create_app
from pipeline.event_schemas import EVENTS, json_schema
from pipeline.settings import Settings

VECTORS = Path(__file__).parent.parent / "vectors"
EXAMPLES = {**json.loads((VECTORS / "tectra-payloads.json").read_text()),
            **json.loads((VECTORS / "royal-payloads.json").read_text())}
EXAMPLES.pop("source")


def errors(event_type: str, body: dict) -> list[str]:
    """Every way the body breaks the event's schema."""
    validator = jsonschema.Draft202012Validator(json_schema(event_type))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def test_there_is_an_example_and_a_valid_schema_for_every_event():
    assert set(EXAMPLES) == set(EVENTS)
    for event_type in EVENTS:
        jsonschema.Draft202012Validator.check_schema(json_schema(event_type))


@pytest.mark.parametrize("event_type", list(EVENTS))
def test_the_documents_examples_are_valid(event_type):
    assert errors(event_type, EXAMPLES[event_type]) == []


def _set(body: dict, path: str, value) -> dict:
    """A copy of the body with the value at a dotted path replaced (or removed when value is ...)."""
    changed = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return changed


DEFECTS = {
    "extra_top_level_key": ("content.signed", "extra", 1),
    "missing_signer": ("content.signed", "data.signer", ...),
    "signer_with_a_key_too_many": ("content.signed", "data.signer.key_id", "ed25519:1"),
    "leaf_count_as_string": ("batch.anchored", "data.leaf_count", "247"),
    "record_ids_not_strings": ("batch.anchored", "data.record_ids", [1, 2]),
    "confidence_as_string": ("content.verified", "data.confidence", "0.75"),
    "a_check_without_details": ("content.verified", "data.checks.sha256.details", ...),
    "wrong_event_name": ("content.verified", "event", "content.signed"),
    "hashed_without_content_hash": ("provenance.registration.hashed", "data.provenance.content_hash", ...),
    "submitted_with_a_block_number": ("provenance.registration.submitted", "data.transaction.block_number", 1),
    "originator_number_as_integer": ("provenance.registration.complete", "data.provenance.originator.number", 42),
    "removed_as_string": ("provenance.registration.complete", "data.transaction.removed", "false"),
    "nft_id_as_integer": ("provenance.registration.nft_added", "data.provenance.nft.id", 1),
    "nft_missing": ("provenance.registration.nft_added", "data.provenance.nft", ...),
    "royal_type_key_renamed": ("provenance.registration.complete", "type", ...),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_is_refused(defect):
    event_type, path, value = DEFECTS[defect]
    assert errors(event_type, _set(EXAMPLES[event_type], path, value)) != []


def test_nulls_allowed_only_where_the_service_sends_them():
    verified = EXAMPLES["content.verified"]
    assert errors("content.verified", _set(_set(verified, "data.record_id", None), "data.signer", None)) == []
    assert errors("content.signed", _set(EXAMPLES["content.signed"], "data.perceptual_hash", None)) == []
    assert errors("content.signed", _set(EXAMPLES["content.signed"], "data.sha256", None)) != []


def test_the_openapi_document_carries_every_event_as_a_webhook():
    document = create_app(Settings(data_dir=Path("unused"))).openapi()
    assert document["openapi"].startswith("3.1")
    assert set(document["webhooks"]) == set(EVENTS)
    body = document["webhooks"]["provenance.registration.nft_added"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NftAdded"}


def test_provsim_schema_prints_one_event_and_refuses_unknown_ones():
    shown = subprocess.run([sys.executable, "-m", "pipeline.cli", "schema", "batch.anchored"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and json.loads(shown.stdout) == json_schema("batch.anchored")
    unknown = subprocess.run([sys.executable, "-m", "pipeline.cli", "schema", "batch.anchor"],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "unknown event 'batch.anchor'" in unknown.stderr
