"""`claims-worker run`: consume claims from Kafka, validate them and publish verdicts (see `worker.app`).

Settings come from `CLAIMS_*` environment variables; the flags below override the most common ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from worker.commands.flags import setting_flag
from worker.exit_codes import ExitCode
from worker.settings import ConfigError, DeliveryMode, LogFormat, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-servers", help="overrides CLAIMS_BOOTSTRAP_SERVERS")
    parser.add_argument("--group-id", help="overrides CLAIMS_GROUP_ID")
    parser.add_argument("--delivery", choices=[mode.value for mode in DeliveryMode], help="overrides CLAIMS_DELIVERY")
    parser.add_argument("--worker-id", help="overrides CLAIMS_WORKER_ID (unique per replica)")
    parser.add_argument(
        "--metrics-port", type=setting_flag("metrics_port"), help="overrides CLAIMS_METRICS_PORT (0: any free port)"
    )
    parser.add_argument("--payer-policy-file", type=Path, help="overrides CLAIMS_PAYER_POLICY_FILE")
    parser.add_argument(
        "--policy-dir", type=Path, help="overrides CLAIMS_POLICY_DIR (CMS MUE/PTP tables: claims-worker policy)"
    )
    parser.add_argument("--log-format", choices=[fmt.value for fmt in LogFormat], help="overrides CLAIMS_LOG_FORMAT")
    parser.add_argument(
        "--batch-max-records", type=setting_flag("batch_max_records"), help="overrides CLAIMS_BATCH_MAX_RECORDS"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            bootstrap_servers=args.bootstrap_servers,
            group_id=args.group_id,
            delivery=args.delivery,
            worker_id=args.worker_id,
            metrics_port=args.metrics_port,
            payer_policy_file=args.payer_policy_file,
            policy_dir=args.policy_dir,
            log_format=args.log_format,
            batch_max_records=args.batch_max_records,
        )
    except ConfigError as error:
        print(f"claims-worker run: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    # Imported here: the Kafka client and the rule engine load only for the command that needs them.
    from worker.app import run_worker  # noqa: PLC0415

    return run_worker(settings)
