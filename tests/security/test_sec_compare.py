"""Signatures, secrets and key hashes are compared in constant time (hmac.compare_digest), never with ==."""
from __future__ import annotations

import ast
import inspect
import re
import textwrap

import pytest
from sec_support import ROOT

from emitter.dialects import royal, tectra
from pipeline import api_auth

# Identifiers naming secret material or a value derived from it.
SECRETISH = re.compile(r"signature|secret|hmac|api_?key|key_hash|credential", re.IGNORECASE)
EQUALITY = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def _names(node: ast.AST) -> set[str]:
    """Every variable and attribute name used inside a node."""
    return {sub.id if isinstance(sub, ast.Name) else sub.attr
            for sub in ast.walk(node) if isinstance(sub, (ast.Name, ast.Attribute))}


def _tree(function) -> ast.AST:
    """The syntax tree of one function."""
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def _calls_compare_digest(tree: ast.AST) -> bool:
    """Whether the code calls hmac.compare_digest."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == "compare_digest" for node in ast.walk(tree))


@pytest.mark.parametrize("function", [tectra.verify, royal.verify_request, api_auth.tenant_for_key])
def test_verifiers_compare_with_compare_digest_and_never_with_equality(function):
    tree = _tree(function)
    assert _calls_compare_digest(tree), function.__qualname__
    equalities = [ast.unparse(node) for node in ast.walk(tree)
                  if isinstance(node, ast.Compare) and any(isinstance(op, EQUALITY) for op in node.ops)]
    assert equalities == [], function.__qualname__


def test_tectra_verify_request_leaves_the_comparison_to_verify():
    tree = _tree(tectra.verify_request)
    assert "verify" in {node.func.id for node in ast.walk(tree)
                        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not any(isinstance(node, ast.Compare) for node in ast.walk(tree))


def test_no_equality_anywhere_touches_a_signature_secret_or_key():
    found = []
    for path in sorted([*(ROOT / "emitter").rglob("*.py"), *(ROOT / "pipeline").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(op, EQUALITY) for op in node.ops):
                if any(SECRETISH.search(name) for name in _names(node)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


@pytest.mark.parametrize("near_miss", ["flip-first", "flip-last", "truncate", "extend", "uppercase"])
def test_near_miss_signatures_fail_at_any_position(near_miss):
    secret, body = "whsec_compare", b'{"event":"content.signed"}'
    good = tectra.sign(secret, body)
    bad = {"flip-first": ("0" if good[0] != "0" else "1") + good[1:],
           "flip-last": good[:-1] + ("0" if good[-1] != "0" else "1"),
           "truncate": good[:-1], "extend": good + "0", "uppercase": good.upper()}[near_miss]
    assert tectra.verify(secret, body, good) and not tectra.verify(secret, body, bad)
