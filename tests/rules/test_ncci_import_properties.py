"""Any bytes given to the CMS-file readers yield a table or `NcciFormatError`, never another exception."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.ncci import Setting
from rules.ncci_import import NcciFormatError, parse_mue, parse_ptp
from tests.rules.ncci_files import MUE_HEADER, PTP_HEADER

# Text near the layouts (a real header, then cells of digits, codes, stars, quotes and separators) finds more than
# random bytes do; random bytes cover the decoding.
_CELL = st.sampled_from(["J9353", "96413", "1", "3 Date of Service Edit: Clinical", "*", "20090101", "", '"', "x"])
_ROW = st.lists(_CELL, max_size=8).map(",".join)
_NEAR_TEXT = st.lists(_ROW, max_size=6).map("\n".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=400), _NEAR_TEXT.map(lambda text: (MUE_HEADER + text).encode())))
def test_the_mue_reader_returns_a_table_or_a_format_error(body: bytes) -> None:
    try:
        table = parse_mue(body, "mue.csv", effective_from=dt.date(2026, 1, 1))
    except NcciFormatError as error:
        problem = str(error)
        table = None
    assert table.rows if table is not None else problem.startswith("mue.csv")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=400),
        _NEAR_TEXT.map(lambda text: (PTP_HEADER + text.replace(",", "\t")).encode()),
    )
)
def test_the_ptp_reader_returns_a_table_or_a_format_error(body: bytes) -> None:
    try:
        table = parse_ptp(body, "ptp.txt", setting=Setting.PRACTITIONER)
    except NcciFormatError as error:
        problem = str(error)
        table = None
    assert table.rows if table is not None else problem.startswith("ptp.txt")
