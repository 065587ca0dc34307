"""Keys of claim history: the member key (an HMAC of the member id) and the store/changelog key of an entry.

Member ids never appear in keys, topic names, logs or metrics. The member key is `m1.` + HMAC-SHA256(member id)
under the secret `CLAIMS_HISTORY_KEY`, in hex; `m1` is the scheme's version. The secret cannot be rotated in
place (history holds no member ids to re-key): a new secret needs a new version and a rebuilt history (see the
README's claim-history section).

An entry key is `member key \\0 code \\0 service date \\0 claim id \\0 line number` (UTF-8; NUL cannot occur in
any part: claim ids refuse control characters). A member's entries, and a member's entries of one code in a date
window, are one range scan.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import NamedTuple

from pydantic import SecretStr

from schemas.history import HistoryLine

MEMBER_KEY_VERSION = "m1"
_SEPARATOR = b"\x00"


class MemberKeyer:
    """Member id -> member key, under the history secret (`CLAIMS_HISTORY_KEY`)."""

    def __init__(self, secret: SecretStr) -> None:
        self._secret = secret.get_secret_value().encode("utf-8")

    def __call__(self, member_id: str) -> str:
        digest = hmac.new(self._secret, member_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{MEMBER_KEY_VERSION}.{digest}"

    def __repr__(self) -> str:
        return f"<MemberKeyer version={MEMBER_KEY_VERSION}>"  # never the secret


class EntryKey(NamedTuple):
    member_key: str
    code: str
    service_date: dt.date
    claim_id: str
    line_number: int


def entry_key(member_key: str, line: HistoryLine) -> bytes:
    """The store and changelog key of `line`, a drug line of `member_key`'s claim."""
    return _SEPARATOR.join(
        (
            member_key.encode(),
            line.code.encode(),
            line.service_date.isoformat().encode(),
            line.claim_id.encode("utf-8"),
            b"%05d" % line.line_number,
        )
    )


def member_prefix(member_key: str) -> bytes:
    """The prefix every entry key of `member_key` starts with."""
    return member_key.encode() + _SEPARATOR


def parse_entry_key(key: bytes) -> EntryKey:
    """Raises ValueError for a key that is not an entry key."""
    parts = key.split(_SEPARATOR)
    if len(parts) != 5:
        raise ValueError(f"not a history entry key ({len(parts)} parts)")
    member, code, day, claim_id, line = parts
    return EntryKey(member.decode(), code.decode(), dt.date.fromisoformat(day.decode()), claim_id.decode(), int(line))
