"""One pass over an X12 interchange with pyx12: every segment matched to its implementation-guide map node, every
error collected in pyx12's error tree (from which the 999 acknowledgement is written), without reloading maps.

This is the loop of pyx12's own `x12n_document`, driven here so that it can take the maps from an `X12Maps` (parsed
once per process) and hand each matched segment to a consumer, instead of writing HTML or XML.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyx12.error_999
import pyx12.error_handler
import pyx12.error_visitor
import pyx12.errors
import pyx12.map_walker
import pyx12.x12file
from pyx12.map_if._segment import apply_segment_errors

from adapters.errors import ConversionError, FailureCode
from adapters.records import SourceFormat
from adapters.x12 import codes
from adapters.x12.maps import SUPPORTED_INTERCHANGE_VERSION, SUPPORTED_VERSIONS, X12Maps


@dataclass(frozen=True, slots=True)
class Envelope:
    """The control numbers around a transaction set (never patient data: trading partner ids and counters)."""

    sender_id: str  # ISA06
    interchange_control_number: str  # ISA13
    group_control_number: str  # GS06
    version: str  # GS08
    transaction_control_number: str  # ST02
    source_format: SourceFormat


@dataclass(frozen=True, slots=True)
class MatchedSegment:
    """A segment the implementation guide places: its id, the loops it sits in (outermost first) and its elements."""

    segment_id: str
    loops: tuple[str, ...]  # e.g. ("2000A", "2000B", "2300", "2400") for an SV1
    segment: Any  # pyx12.segment.Segment
    envelope: Envelope | None  # None before the first ST

    def value(self, element: int, component: int = 1) -> str:
        """The text of element `element` (1-based), component `component` of a composite; '' when absent."""
        elements = self.segment.elements
        if element > len(elements):
            return ""
        composite = elements[element - 1]
        if component > len(composite.elements):
            return ""
        text: str = composite.elements[component - 1].value or ""
        return text

    def components(self, element: int) -> tuple[str, ...]:
        """Every component of element `element` (a composite such as SV101), '' for empty ones; () when absent."""
        elements = self.segment.elements
        if element > len(elements):
            return ()
        return tuple(part.value or "" for part in elements[element - 1].elements)

    @property
    def element_count(self) -> int:
        return len(self.segment.elements)


@dataclass(frozen=True, slots=True)
class X12Issue:
    """One implementation-guide error, located by segment and element; `description` is the X12 code's meaning."""

    level: str  # "interchange", "group", "transaction", "segment" or "element"
    code: str
    description: str
    segment_id: str | None = None
    segment_position: int | None = None  # position in the transaction set (ST is 1), as in the 999's IK302
    element_position: int | None = None
    component_position: int | None = None
    line: int | None = None  # segment number in the file (ISA is 1)

    def render(self) -> str:
        """One line for a person: where, code and meaning; never a value from the file."""
        if self.level in _ENVELOPE_LEVELS:
            return f"{_ENVELOPE_LEVELS[self.level]}: code {self.code}: {self.description}"
        where = f"segment {self.segment_id or '?'}"
        if self.segment_position is not None:
            where += f" at position {self.segment_position}"
        if self.element_position is not None:
            where += f", element {self.element_position:02d}"
            if self.component_position is not None:
                where += f"-{self.component_position}"
        return f"{where}: code {self.code}: {self.description}"


_ENVELOPE_LEVELS = {
    "interchange": "interchange (ISA/IEA)",
    "group": "functional group (GS/GE)",
    "transaction": "transaction set (ST/SE)",
}


@dataclass(frozen=True, slots=True)
class X12Report:
    """The errors of one interchange file and what it takes to write its 999."""

    issues: tuple[X12Issue, ...]
    _error_tree: Any
    _terminators: tuple[Any, ...]
    _segments_valid: bool = True

    @property
    def valid(self) -> bool:
        """No error anywhere: the file meets the implementation guide as pyx12 checks it."""
        return not self.issues and self._segments_valid

    def acknowledgement_999(self) -> str:
        """The 999 implementation acknowledgement pyx12 writes for this file (X12 005010X231A1 text).

        Note: pyx12 stamps it with the current date and time and a random group control number, and, as the
        999 standard asks, copies the bad value of an erroneous element into IK404.
        """
        out = io.StringIO()
        visitor = pyx12.error_999.error_999_visitor(out, self._terminators)
        self._error_tree.accept(visitor)
        return out.getvalue()


def read_interchanges(text: str, maps: X12Maps, consume: Callable[[MatchedSegment], None]) -> X12Report:
    """Validate every interchange in `text` and pass each segment the guide places to `consume`, in file order.

    Raises ConversionError: X12_UNREADABLE (no usable ISA header: not X12, truncated before the end of the ISA,
    wrong separators in the ISA), X12_UNSUPPORTED (not 00501, or a functional group this worker cannot read).
    Errors inside the interchange (missing segments, wrong counts, bad codes, truncation) are in the report.
    """
    try:
        source = pyx12.x12file.X12Reader(io.StringIO(text))
    except pyx12.errors.X12Error:
        # pyx12's message quotes the ISA segment; name the problem without it.
        raise ConversionError(
            FailureCode.X12_UNREADABLE,
            "not a readable X12 interchange: the ISA header must be exactly 106 characters with fixed separators",
        ) from None
    if source.icvn != SUPPORTED_INTERCHANGE_VERSION:
        raise ConversionError(
            FailureCode.X12_UNSUPPORTED,
            f"interchange version {source.icvn} (ISA12) is not supported; only {SUPPORTED_INTERCHANGE_VERSION} is",
        )
    walk = _Walk(source, maps)
    try:
        for matched in walk.segments():
            consume(matched)
    except ConversionError:
        raise
    except pyx12.errors.X12Error:
        # Raised mid-file too, e.g. for an ISA whose separators do not match its fixed positions.
        raise ConversionError(
            FailureCode.X12_UNREADABLE,
            f"not a readable X12 interchange at segment {source.get_seg_count()}: wrong separators or envelope",
        ) from None
    except Exception as error:  # noqa: BLE001 - pyx12 raises assorted exceptions on malformed input
        # EngineError when it cannot place a loop, IndexError and the like on broken structures; their messages
        # may quote data, so only the type is named.
        raise ConversionError(
            FailureCode.X12_INVALID,
            f"pyx12 could not follow the structure of the file after segment {source.get_seg_count()} "
            f"({type(error).__name__})",
        ) from None
    finally:
        source.close()
    return X12Report(_issues(walk.errors), walk.errors, source.get_term(), walk.valid)


class _Walk:
    """The state of one pass: pyx12's reader, walker and error tree, and the current envelope."""

    def __init__(self, source: Any, maps: X12Maps) -> None:
        self.source = source
        self.maps = maps
        self.errors: Any = pyx12.error_handler.err_handler()
        self.control = maps.control()
        self.walker = pyx12.map_walker.walk_tree()
        self.valid = True
        self._sender_id = ""
        self._interchange = ""
        self._group = ""
        self._version = ""
        self._format: SourceFormat | None = None
        self._envelope: Envelope | None = None

    def segments(self) -> Iterator[MatchedSegment]:  # noqa: PLR0912 - one branch per envelope segment, as pyx12's own driver
        source, errors = self.source, self.errors
        node: Any = self.control.getnodebypath("/ISA_LOOP/ISA")
        transaction_map: Any = None
        for segment in source:
            segment_id = segment.get_seg_id()
            previous = node
            if segment_id == "ISA":
                node = self.control.getnodebypath("/ISA_LOOP/ISA")
                self.walker.forceWalkCounterToLoopStart("/ISA_LOOP", "/ISA_LOOP/ISA")
            elif segment_id == "GS":
                node = self.control.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
                self.walker.forceWalkCounterToLoopStart("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
            else:
                node, _, _, walk_errors = self.walker.walk_errors(
                    node, segment, source.get_seg_count(), source.get_cur_line(), source.get_ls_id()
                )
                pyx12.map_walker.apply_walk_errors(errors, walk_errors)
            if node is None:
                # Not placed by the guide: the walker recorded why; stay where we were.
                node = previous
                continue
            if segment_id == "ISA":
                errors.add_isa_loop(segment, source)
                self._sender_id = (segment.get_value("ISA06") or "").strip()
                self._interchange = segment.get_value("ISA13") or ""
                errors.handle_errors(source.pop_errors())
            elif segment_id == "IEA":
                errors.handle_errors(source.pop_errors())
                errors.close_isa_loop(node, segment, source)
            elif segment_id == "GS":
                transaction_map = self._open_group(segment)
                node = transaction_map.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
                errors.add_gs_loop(segment, source)
                errors.handle_errors(source.pop_errors())
            elif segment_id == "GE":
                errors.handle_errors(source.pop_errors())
                errors.close_gs_loop(node, segment, source)
            elif segment_id == "ST":
                errors.add_st_loop(segment, source)
                errors.handle_errors(source.pop_errors())
                self._open_transaction(segment)
            elif segment_id == "SE":
                errors.handle_errors(source.pop_errors())
                errors.close_st_loop(node, segment, source)
            else:
                errors.add_seg(node, segment, source.get_seg_count(), source.get_cur_line(), source.get_ls_id())
                errors.handle_errors(source.pop_errors())
            self.valid &= bool(apply_segment_errors(node, segment, errors))
            yield MatchedSegment(segment_id, _loops_of(node), segment, self._envelope)
            if segment_id == "SE":
                self._envelope = None
        # Trailers the file never reached (a truncated interchange) are reported here.
        source.cleanup()
        errors.handle_errors(source.pop_errors())

    def _open_group(self, segment: Any) -> Any:
        functional_id = segment.get_value("GS01")
        version = segment.get_value("GS08") or ""
        found = self.maps.transaction(functional_id, version)
        if found is None:
            shown = version if version.isalnum() and len(version) <= 12 else "(unreadable)"
            raise ConversionError(
                FailureCode.X12_UNSUPPORTED,
                f"functional group {functional_id if (functional_id or '').isalpha() else '?'} version {shown} "
                f"(GS01/GS08) is not supported; this worker reads HC {', '.join(SUPPORTED_VERSIONS)}",
            )
        transaction_map, self._format = found
        self.source.check_837_lx = True  # pyx12's LX sequence check, as in its own driver for 837 maps
        self._group = segment.get_value("GS06") or ""
        self._version = version
        return transaction_map

    def _open_transaction(self, segment: Any) -> None:
        if self._format is None:
            return
        self._envelope = Envelope(
            sender_id=self._sender_id,
            interchange_control_number=self._interchange,
            group_control_number=self._group,
            version=self._version,
            transaction_control_number=segment.get_value("ST02") or "",
            source_format=self._format,
        )


def _loops_of(node: Any) -> tuple[str, ...]:
    """The numbered loop ids (2000A, 2300, 2410...) on the path of a segment's map node."""
    return tuple(part for part in node.get_path().split("/") if part[:1].isdigit())


def _issues(error_tree: Any) -> tuple[X12Issue, ...]:
    collector = _IssueCollector()
    error_tree.accept(collector)
    return tuple(collector.issues)


class _IssueCollector(pyx12.error_visitor.error_visitor):  # type: ignore[misc]
    """Turns pyx12's error tree into `X12Issue`s; drops pyx12's message texts (they quote values)."""

    def __init__(self) -> None:
        self.issues: list[X12Issue] = []
        self._segment: Any = None

    def visit_root_pre(self, errh: Any) -> None:
        pass

    def visit_root_post(self, errh: Any) -> None:
        pass

    def visit_isa_pre(self, err_isa: Any) -> None:
        self._envelope_errors("interchange", err_isa.errors, codes.INTERCHANGE)

    def visit_isa_post(self, err_isa: Any) -> None:
        pass

    def visit_gs_pre(self, err_gs: Any) -> None:
        self._envelope_errors("group", err_gs.errors, codes.GROUP)

    def visit_gs_post(self, err_gs: Any) -> None:
        pass

    def visit_st_pre(self, err_st: Any) -> None:
        self._envelope_errors("transaction", err_st.errors, codes.TRANSACTION)

    def visit_st_post(self, err_st: Any) -> None:
        pass

    def visit_seg(self, err_seg: Any) -> None:
        self._segment = err_seg
        for code, *_ in err_seg.errors:
            self.issues.append(
                X12Issue(
                    level="segment",
                    code=str(code),
                    description=codes.SEGMENT.get(str(code), "segment error (see the 999)"),
                    segment_id=_safe_segment_id(err_seg.seg_id),
                    segment_position=err_seg.seg_count,
                    line=err_seg.cur_line,
                )
            )

    def visit_ele(self, err_ele: Any) -> None:
        segment = self._segment
        for code, *_ in err_ele.errors:
            self.issues.append(
                X12Issue(
                    level="element",
                    code=str(code),
                    description=codes.ELEMENT.get(str(code), "element error (see the 999)"),
                    segment_id=_safe_segment_id(segment.seg_id) if segment is not None else None,
                    segment_position=segment.seg_count if segment is not None else None,
                    element_position=err_ele.ele_pos,
                    component_position=err_ele.subele_pos,
                    line=segment.cur_line if segment is not None else None,
                )
            )

    def _envelope_errors(self, level: str, errors: list[Any], table: dict[str, str] | Any) -> None:
        for code, *_ in errors:
            self.issues.append(X12Issue(level=level, code=str(code), description=table.get(str(code), "see the 999")))


def _safe_segment_id(segment_id: str | None) -> str | None:
    """A segment id as read can be any text up to the first separator (e.g. `HI:BF:4019`): show ids only."""
    if segment_id and segment_id.isalnum() and len(segment_id) <= 3:
        return segment_id
    return "(unrecognised)" if segment_id else None
