"""Hypothesis strategies for claim-like documents: the corpus template, mutated field by field and byte by byte.

A document starts as the valid template claim; a few of its fields (at any depth, lines included) are replaced by
arbitrary JSON values or by nasty ones (huge numbers, look-alike codes, control characters, lone surrogates),
deleted, or joined by unknown fields; then its bytes may be cut, spliced, given a duplicate key or wrapped. Most
examples stay close enough to a claim to reach the model and the rules, which is where bugs hide.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from tests.reliability.hostile_corpus import template

# Patient data in every generated document: no error message, header or log may ever show these.
MEMBER_ID = "MBR-HYPO-5521-77"
BIRTH_DATE = "1944-06-06"


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def base_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(template()))
    document["patient"]["member_id"] = MEMBER_ID
    document["patient"]["birth_date"] = BIRTH_DATE
    return document


PATHS = _paths(base_document())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
# Stands for a JSON number too long for Python's int() (json.dumps cannot write one): replaced in the bytes.
HUGE_NUMBER = "@@huge-number@@"
HUGE_NUMBER_LITERAL = b"9" * 10_000

nasty_values = st.sampled_from(
    [
        HUGE_NUMBER,
        10**4000,
        -(10**400),
        1e308,
        -0.0,
        "",
        " ",
        "\x00",
        "J9353\x00",
        "\u0408" + "9353",  # Cyrillic Je
        "\uff2a\uff19\uff13\uff15\uff13",  # fullwidth J9353
        "J93\u200b53",
        "\ud800",
        "a\udfffb",
        "x" * 5000,
        "\u202eJ9353",  # right-to-left override
        "\U0001f600",
        "2025-02-30",
        "0000-00-00",
        "9999-12-31T23:59:60+25:00",
        [],
        {},
        [None] * 60,
    ]
)
values = st.one_of(json_values, nasty_values)


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _delete(document: Any, path: tuple[Any, ...]) -> None:
    node = document
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


@st.composite
def claim_like_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A claim.submitted document with zero to five fields changed, deleted or added."""
    document = base_document()
    for _ in range(draw(st.integers(0, 5))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        try:
            # Copies: sampled values are shared objects, and a later change may write into one.
            if action == "replace":
                _set(document, path, copy.deepcopy(draw(values)))
            elif action == "delete":
                _delete(document, path)
            else:
                _set(document, (*path[:-1], draw(st.text(min_size=1, max_size=8))), copy.deepcopy(draw(values)))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the parent: skip this one
    return document


def _encode(document: Any) -> bytes:
    # ensure_ascii keeps lone surrogates encodable (as \\ud800 escapes, which is how they arrive in real JSON).
    raw = json.dumps(document, ensure_ascii=True).encode()
    return raw.replace(json.dumps(HUGE_NUMBER).encode(), HUGE_NUMBER_LITERAL)


@st.composite
def claim_like_bytes(draw: st.DrawFn) -> bytes:
    """A claim-like document's bytes, possibly cut, spliced, given a duplicate key or wrapped."""
    raw = _encode(draw(claim_like_documents()))
    mutation = draw(st.sampled_from(["none", "none", "none", "truncate", "splice", "duplicate_key", "wrap", "bom"]))
    if mutation == "truncate":
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if mutation == "splice":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    if mutation == "duplicate_key" and raw.startswith(b"{"):
        key = draw(st.sampled_from(["claim_id", "schema_version", "lines", "patient", "x"]))
        return b"{" + json.dumps(key).encode() + b":" + _encode(draw(values)) + b"," + raw[1:]
    if mutation == "wrap":
        return b"[" + raw + b"]"
    if mutation == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw
