"""Named process exit codes, documented in the README, so orchestrators and operators can tell them apart."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # Something failed that is not one of the cases below (a bug): let the orchestrator restart us.
    FAILURE = 1
    # Wrong command-line usage (argparse's own code).
    USAGE = 2
    # Configuration is invalid or rejected by the broker (bad settings, wrong password, untrusted certificate).
    CONFIG = 3
    # The broker stayed unreachable for longer than CLAIMS_MAX_OUTAGE_S.
    BROKER_OUTAGE = 4
    # A second SIGTERM/SIGINT arrived during the graceful shutdown, or the shutdown outran CLAIMS_SHUTDOWN_GRACE_S
    # (what was not committed is processed again after the restart).
    FORCED_EXIT = 5
    # `claims-worker validate`: every record was processed, and at least one got a `fail` verdict or could not be
    # read as a claim (a dead letter); like a linter's "problems found". `--exit-zero` keeps 0.
    RECORDS_FAILED = 6
