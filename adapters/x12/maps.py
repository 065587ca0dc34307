"""pyx12's implementation-guide maps, loaded once per process and shared by every document.

pyx12 parses its XML maps again for every document it validates (about 250 ms for an 837 map with its code lists,
measured in `bench/conversion.py`); `X12Maps` parses each map the first time a document needs it and keeps it. The
parsed maps hold no per-document state (pyx12's walker keeps its counts in its own `NodeCounter`), which the tests
check by validating the same documents twice with one `X12Maps`.

Version aliases: pyx12 4.0.0 ships no map for 005010X222A2 (837P addendum A2, the version most senders use) or
005010X223A3 (837I addendum A3). The addenda changed code lists and notes, not the loop and segment structure pyx12
checks, so the A1 (837P) and A2 (837I) maps are used for them, with the version code added to the map's list of
valid GS08/ST03 values so that a correct A2/A3 header is not reported as an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import defusedxml.ElementTree as SafeElementTree
import pyx12.map_if
import pyx12.params

from adapters.records import SourceFormat

# ISA12 interchange control version this worker reads; 4010 837s have been obsolete since 2012.
SUPPORTED_INTERCHANGE_VERSION = "00501"
_CONTROL_MAP = "x12.control.00501.xml"


@dataclass(frozen=True, slots=True)
class TransactionMap:
    """An implementation guide: the GS08 versions it reads, the pyx12 map file, and the claim type it yields."""

    map_file: str
    base_version: str  # the GS08 value the map file itself lists
    aliases: tuple[str, ...]  # other GS08 values read with the same map
    source_format: SourceFormat


# GS01 functional identifier "HC" (health care claim) only: other transactions are not claims.
TRANSACTION_MAPS: tuple[TransactionMap, ...] = (
    TransactionMap("837.5010.X222.A1.xml", "005010X222A1", ("005010X222A2",), SourceFormat.X12_837P),
    TransactionMap("837Q3.I.5010.X223.A1.xml", "005010X223A2", ("005010X223A3",), SourceFormat.X12_837I),
)
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(
    version for entry in TRANSACTION_MAPS for version in (entry.base_version, *entry.aliases)
)


def silence_pyx12_logging() -> None:
    """Keep pyx12's log records off stderr (idempotent).

    pyx12 logs every validation error at ERROR level with the offending value (a member id, a name, a birth date)
    in the message; with no handler configured, Python's last-resort handler would print them. The worker reports
    pyx12's errors itself, by segment, element and code.
    """
    logger = logging.getLogger("pyx12")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())


class X12Maps:
    """The pyx12 maps of the supported 837 versions, each parsed on first use and kept. Not thread-safe.

    Creating one silences pyx12's logger (see `silence_pyx12_logging`).
    """

    __slots__ = ("_control", "_params", "_transactions")

    def __init__(self) -> None:
        silence_pyx12_logging()
        self._params = pyx12.params.params()
        self._control: Any = None
        self._transactions: dict[str, Any] = {}

    def __repr__(self) -> str:
        loaded = ",".join(sorted(self._transactions)) or "none"
        return f"<X12Maps control={'loaded' if self._control is not None else 'not loaded'} maps={loaded}>"

    @property
    def params(self) -> Any:
        """The pyx12 run-time parameters the maps were built with."""
        return self._params

    def control(self) -> Any:
        """The 00501 control map (ISA, GS, GE, IEA envelope)."""
        if self._control is None:
            self._control = pyx12.map_if.map_if(_parse_map(_CONTROL_MAP, ()), self._params, None)
        return self._control

    def transaction(self, functional_id: str | None, version: str | None) -> tuple[Any, SourceFormat] | None:
        """The map for a GS01 functional id and GS08 version, or None when this worker cannot read it."""
        entry = _entry_for(functional_id, version)
        if entry is None:
            return None
        loaded = self._transactions.get(entry.map_file)
        if loaded is None:
            root = _parse_map(entry.map_file, (entry.base_version, entry.aliases))
            loaded = pyx12.map_if.map_if(root, self._params, None)
            self._transactions[entry.map_file] = loaded
        return loaded, entry.source_format


def _entry_for(functional_id: str | None, version: str | None) -> TransactionMap | None:
    if functional_id != "HC":
        return None
    for entry in TRANSACTION_MAPS:
        if version == entry.base_version or version in entry.aliases:
            return entry
    return None


def _parse_map(map_file: str, alias: tuple[str, tuple[str, ...]] | tuple[()]) -> Any:
    """The map's XML root, with the alias versions added wherever the base version is a valid code."""
    with files("pyx12").joinpath("map", map_file).open("rb") as stream:
        root = SafeElementTree.parse(stream).getroot()
    if alias:
        base_version, aliases = alias
        for valid_codes in root.iter("valid_codes"):
            if any(code.text == base_version for code in valid_codes.iterfind("code")):
                for extra in aliases:
                    valid_codes.append(_code_element(valid_codes, extra))
    return root


def _code_element(parent: Any, text: str) -> Any:
    element = parent.makeelement("code", {})
    element.text = text
    return element
