"""`claims-worker policy import-mue FILE` and `claims-worker policy import-ptp FILE`: CMS's MUE and NCCI PTP
tables into the policy directory (`--policy-dir`, else `CLAIMS_POLICY_DIR`) that `validate` and `run` read.

The file is read whole and checked before anything is written (`rules.ncci_import`). Exit status: 0 when the
table is written; 3 (CONFIG) when the file is not in CMS's layout (the message names the line), no policy
directory is given, or the directory cannot be written: the directory is then as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from rules.ncci import NcciTableError, Setting
from rules.ncci_import import NcciFormatError, ParsedTable, import_table, merge_ptp, parse_mue, parse_ptp
from worker.exit_codes import ExitCode
from worker.settings import env_name

# CMS's largest PTP file (practitioner, one of four parts) is about 60 MB of text; refuse what is far beyond.
_MAX_FILE_BYTES = 512 * 1024 * 1024


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    mue = actions.add_parser(
        "import-mue", help="import a CMS MUE table (practitioner or facility, CSV or text) into the policy directory"
    )
    mue.add_argument("file", type=Path, help="the MUE table as CMS publishes it, CSV or tab-delimited text")
    mue.add_argument(
        "--effective-from",
        type=_date,
        default=None,
        metavar="DATE",
        help="first day the table applies, YYYY-MM-DD (default: the date or quarter in the file name)",
    )
    _add_policy_dir(mue)
    ptp = actions.add_parser(
        "import-ptp", help="import a CMS NCCI PTP (column 1/column 2) table, CSV or text, into the policy directory"
    )
    ptp.add_argument(
        "file",
        type=Path,
        nargs="+",
        help="the PTP table as CMS publishes it, CSV or tab-delimited text: every part file of the setting's quarter "
        "(f1, f2, ...) in one import, which replaces the setting's previous PTP table",
    )
    ptp.add_argument(
        "--setting",
        choices=[setting.value for setting in Setting],
        default=None,
        help="practitioner or facility (outpatient hospital) edits (default: ccipra/ccioph in the file name)",
    )
    _add_policy_dir(ptp)


def _add_policy_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy-dir", type=Path, default=None, metavar="DIR", help="overrides CLAIMS_POLICY_DIR")


def run(args: argparse.Namespace) -> int:
    command = f"claims-worker policy {args.action}"
    directory = args.policy_dir
    if directory is None:
        # Read as a plain path, not through the settings: those require the directory to exist (right for `run`
        # and `validate`), while the first import is what creates it.
        named = os.environ.get(env_name("policy_dir"), "").strip()
        directory = Path(named) if named else None
    if directory is None:
        print(f"{command}: no policy directory: pass --policy-dir or set {env_name('policy_dir')}", file=sys.stderr)
        return ExitCode.CONFIG
    if directory.exists() and not directory.is_dir():
        print(f"{command}: {directory} is not a directory", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        table = _parse(args)
    except OSError as error:
        print(f"{command}: cannot read {error.filename}: {error.strerror or error}; nothing written", file=sys.stderr)
        return ExitCode.CONFIG
    except NcciFormatError as error:
        print(f"{command}: {error}; nothing written", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        result = import_table(table, directory)
    except (NcciTableError, OSError) as error:
        print(f"{command}: cannot write {directory}: {error}; nothing written", file=sys.stderr)
        return ExitCode.CONFIG
    entry = result.entry
    when = f", effective {entry.effective_from.isoformat()}" if entry.effective_from else ""
    verb = "replaced" if result.replaced else "added"
    rows = "1 row" if entry.rows == 1 else f"{entry.rows} rows"
    print(
        f"{verb} {entry.kind.value.upper()} {entry.setting.value}{when}: {rows} from {entry.source_names} "
        f"-> {directory / entry.file}"
    )
    return ExitCode.OK


def _parse(args: argparse.Namespace) -> ParsedTable:
    if args.action == "import-mue":
        return parse_mue(_read(args.file), str(args.file), effective_from=args.effective_from)
    setting = Setting(args.setting) if args.setting else None
    return merge_ptp([parse_ptp(_read(path), str(path), setting=setting) for path in args.file])


def _read(path: Path) -> bytes:
    with path.open("rb") as handle:
        raw = handle.read(_MAX_FILE_BYTES + 1)
    if len(raw) > _MAX_FILE_BYTES:
        raise NcciFormatError(f"{path}: larger than {_MAX_FILE_BYTES} bytes")
    return raw
