"""Turn the raw bytes of a Kafka record into exactly one of three results.

- `ParsedClaim`: a valid claim.submitted v1 event.
- `SchemaFailure`: an identifiable claim (a string `claim_id` and `schema_version` 1) that breaks the model;
  it becomes a `fail` verdict with `schema` findings and goes to the billing work queue.
- `DeadLetter`: input that cannot be read as a claim at all; it goes to operations with a coded reason.

The common case (a valid claim) is validated straight from bytes into the model. Its keys are then counted in the
raw bytes (`_key_count_bound`, about a microsecond): when they are no more than the fields the models took
(`schemas.unknown_fields.known_field_count`), no key repeats and none is unknown. Otherwise the document is read
once more (`_read_checked`, ten times the cost) to find a duplicate key (which the model's parser silently
resolves) and to count the keys exactly: when there are more than the fields the models took, the document is
searched for the unknown ones (`ParsedClaim.unknown_fields`). Input that fails the model is decoded again with the
standard library, to tell a schema failure from a dead letter (whose unknown fields are always searched).

Any input gives one of the three results (property-tested on arbitrary bytes and JSON); an exception can only
be a bug, which the worker's one guard (`worker.evaluator.evaluate_claim_bytes`) turns into `internal_error`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

from pydantic import ValidationError

from schemas.claim import SCHEMA_VERSION, ClaimSubmitted
from schemas.unknown_fields import UnknownField, find_unknown_fields, known_field_count

DEFAULT_MAX_BYTES = 1024 * 1024
_MAX_CLAIM_ID_CHARS = 64  # the model's limit (schemas.claim.ClaimSubmitted.claim_id)


class DeadLetterReason(StrEnum):
    """Why a record went to the dead-letter topic (the `reason` header)."""

    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    MISSING_CLAIM_ID = "missing_claim_id"
    TOO_LARGE = "too_large"
    # Given by the worker, not the parser: the evaluation of one claim raised (a bug).
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ParsedClaim:
    claim: ClaimSubmitted
    # Keys the contract does not define (tolerated; reported as warnings), in document order.
    unknown_fields: tuple[UnknownField, ...] = ()


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One validation error of an identifiable claim."""

    field: str
    line_number: int | None
    error_type: str
    message: str


@dataclass(frozen=True, slots=True)
class SchemaFailure:
    claim_id: str
    event_id: str
    problems: tuple[SchemaProblem, ...]
    unknown_fields: tuple[UnknownField, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: DeadLetterReason
    error: str


ParseResult = ParsedClaim | SchemaFailure | DeadLetter

# Model-level errors carry no location; their error type names the field they are about.
_MODEL_ERROR_FIELDS = {
    "place_of_service_required": "place_of_service",
    "original_claim_id_required": "original_claim_id",
}


def parse_claim_event(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParseResult:
    """Classify one record value; `max_bytes` is the size limit in bytes (default 1 MiB)."""
    if len(raw) > max_bytes:
        return DeadLetter(DeadLetterReason.TOO_LARGE, f"value is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        claim = ClaimSubmitted.model_validate_json(raw)
    except ValidationError as error:
        return _classify_invalid(raw, error)
    known = known_field_count(claim)
    if _key_count_bound(raw) == known:
        return ParsedClaim(claim)
    return _checked_claim(raw, claim, known)


def _checked_claim(raw: bytes, claim: ClaimSubmitted, known: int) -> ParseResult:
    """The result for a claim the model accepted, from a second full read of its bytes (`_read_checked`)."""
    checked = _read_checked(raw)
    if checked is _DUPLICATE:
        return DeadLetter(DeadLetterReason.NOT_JSON, _DUPLICATE_KEYS)
    if checked is None or checked.keys == known:
        return ParsedClaim(claim)
    return ParsedClaim(claim, find_unknown_fields(checked.document))


# A quote, JSON whitespace, a colon: the end of an object key.
_KEY_END = re.compile(rb'"[ \t\n\r]*:')
_QUOTE_THEN_WHITESPACE = re.compile(rb'"[ \t\n\r]')


def _key_count_bound(raw: bytes) -> int:
    """At least the number of object keys in `raw` (a document the model's parser read).

    Each key's closing quote is followed by optional JSON whitespace and a colon, and each match of `_KEY_END`
    holds exactly one quote, so every key is counted once; a string value that starts with a colon, or an escaped
    quote followed by one, is counted too (hence a bound, never fewer). The model took at most one field per key,
    so a bound equal to `known_field_count` proves there is no duplicate and no unknown key. Without a quote followed
    by whitespace, counting `":` gives the same bound at C speed.
    """
    if _QUOTE_THEN_WHITESPACE.search(raw) is None:
        return raw.count(b'":')
    return len(_KEY_END.findall(raw))


def source_event_id_of(document: dict[str, Any], raw: bytes) -> str:
    """The input's event id, or a digest of its bytes when it has no usable one (still deterministic)."""
    event_id = document.get("event_id")
    if _usable_identifier(event_id, max_chars=128):
        return event_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _usable_identifier(value: object, *, max_chars: int) -> TypeGuard[str]:
    """A string an output can carry and be keyed by: 1 to `max_chars` characters, no control characters, and
    valid Unicode (JSON can escape lone surrogates, which no UTF-8 encoder accepts)."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars or _CONTROL_CHARACTER.search(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Duplicate keys are legal JSON syntax, but parsers disagree on which value wins (the model's parser and json.loads
# keep the last, others the first), so a claim with them does not say one thing: it goes to operations. The key is
# not named: it could be anything a producer wrote, patient data included.
_DUPLICATE_KEYS = "a JSON object has the same key twice"


class _DuplicateKeyError(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKeyError(_DUPLICATE_KEYS)
    return document


class _KeyCounter:
    """An object_pairs_hook that refuses duplicate keys and counts every key of the document."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) != len(pairs):
            raise _DuplicateKeyError(_DUPLICATE_KEYS)
        self.keys += len(pairs)
        return document


@dataclass(frozen=True, slots=True)
class _Checked:
    document: Any
    keys: int  # every key of every object in `document`


_DUPLICATE = _Checked(None, -1)


def _read_checked(raw: bytes) -> _Checked | None:
    """A document the model accepted, read again: `_DUPLICATE` when a key repeats anywhere (the model's parser keeps
    the last), else the document and its key count; None when json.loads cannot read what the model's parser did."""
    counter = _KeyCounter()
    try:
        try:
            # Integers parsed in C (a Python parse_int call per number costs 15% of this check on a claim);
            # only a document with an integer too long for int() is read again with the stand-in for those.
            document = json.loads(raw, object_pairs_hook=counter)
        except _DuplicateKeyError:
            raise
        except ValueError:
            counter = _KeyCounter()
            document = json.loads(raw, object_pairs_hook=counter, parse_int=_parse_int)
    except _DuplicateKeyError:
        return _DUPLICATE
    except (ValueError, RecursionError):
        # The model's parser read it; what json.loads cannot read is no duplicate. Nesting too deep for json.loads
        # can only be in an unknown field, which then goes unreported.
        return None
    return _Checked(document, counter.keys)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _HugeInteger:
    """Stands for an integer literal too long for int(): valid JSON, but never a valid claim value."""


_MAX_INT_DIGITS = 4000  # below CPython's default limit of 4300 digits for int(str)


def _parse_int(literal: str) -> int | _HugeInteger:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else _HugeInteger()


def _encode_huge_integer(value: object) -> str:
    if isinstance(value, _HugeInteger):
        return "<integer too long>"
    raise TypeError(type(value).__name__)


def _classify_invalid(raw: bytes, error: ValidationError) -> ParseResult:
    try:
        document = json.loads(
            raw.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            object_pairs_hook=_reject_duplicate_keys,
        )
    except UnicodeDecodeError as decode_error:
        return DeadLetter(DeadLetterReason.NOT_JSON, f"not UTF-8: invalid byte at position {decode_error.start}")
    except RecursionError:
        return DeadLetter(DeadLetterReason.NOT_JSON, "JSON nested too deeply")
    except ValueError as json_error:
        # json.JSONDecodeError, NaN and Infinity.
        return DeadLetter(DeadLetterReason.NOT_JSON, _first_line(str(json_error)))
    if not isinstance(document, dict):
        return DeadLetter(DeadLetterReason.NOT_AN_OBJECT, f"JSON value is {_json_kind(document)}, not an object")
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
        if "schema_version" not in document:
            shown = "missing"
        elif isinstance(version, int) and not isinstance(version, bool) and abs(version) < 10**6:
            shown = str(version)
        else:
            shown = _json_kind(version)
        return DeadLetter(DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION, f"schema_version is {shown}; expected 1")
    claim_id = document.get("claim_id")
    if not _usable_identifier(claim_id, max_chars=_MAX_CLAIM_ID_CHARS):
        # A verdict echoes its claim id and is keyed by it: an id that cannot be carried is no id.
        return DeadLetter(
            DeadLetterReason.MISSING_CLAIM_ID,
            f"claim_id is absent, empty, not a string, over {_MAX_CLAIM_ID_CHARS} characters, "
            "or has control characters or invalid Unicode",
        )
    if any(detail["type"] == "json_invalid" for detail in error.errors(include_url=False)):
        # The model's JSON parser refused what the standard library read (e.g. a 10,000-digit number, even in
        # an unknown field). Validate the re-encoded document so errors point at fields, or the claim passes.
        try:
            reencoded = json.dumps(document, default=_encode_huge_integer).encode()
            return ParsedClaim(ClaimSubmitted.model_validate_json(reencoded), find_unknown_fields(document))
        except ValidationError as field_error:
            error = field_error
    return SchemaFailure(
        claim_id=claim_id,
        event_id=source_event_id_of(document, raw),
        problems=tuple(_problems(error, document)),
        unknown_fields=find_unknown_fields(document),
    )


def _problems(error: ValidationError, document: dict[str, Any]) -> list[SchemaProblem]:
    problems = []
    # include_input=False: inputs may be patient data, and findings must not echo them.
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        loc = detail["loc"]
        field = _path(loc) or _MODEL_ERROR_FIELDS.get(detail["type"], "")
        problems.append(
            SchemaProblem(
                field=field,
                line_number=_line_number_at(loc, document),
                error_type=detail["type"],
                message=detail["msg"],
            )
        )
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _line_number_at(loc: tuple[int | str, ...], document: dict[str, Any]) -> int | None:
    if len(loc) < 2 or loc[0] != "lines" or not isinstance(loc[1], int):
        return None
    lines = document.get("lines")
    if not isinstance(lines, list) or not 0 <= loc[1] < len(lines) or not isinstance(lines[loc[1]], dict):
        return None
    number = lines[loc[1]].get("line_number")
    return number if isinstance(number, int) and not isinstance(number, bool) and number >= 1 else None


def _json_kind(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    ]
    if value is None:
        return "null"
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "invalid JSON"
