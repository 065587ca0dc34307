"""`claims-worker topics create`: create the worker's topics (input, pass, fail, dead letters, and claim
history's repartition topic and compacted changelog unless `CLAIMS_HISTORY=off`).

Topic names come from the `CLAIMS_*_TOPIC` settings; configurations from `worker.topic_set`. Topics that already
exist are reported and left alone (a changelog whose partition count differs from the repartition topic's is
refused by the worker at start-up).
"""

from __future__ import annotations

import argparse
import sys

from kafka.errors import TopicAlreadyExistsError

from worker.commands.flags import number_flag
from worker.exit_codes import ExitCode
from worker.kafka_io import KafkaConfigError, KafkaIOError, admin_client, classify
from worker.settings import ConfigError, load_settings
from worker.topic_set import TopicSet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create the input, pass, fail and dead-letter topics, and claim history's two"
    )
    create.add_argument(
        "--partitions", type=number_flag(int, ge=1), default=6, help="partitions per topic (default: %(default)s)"
    )
    create.add_argument(
        "--replication-factor",
        type=number_flag(int, ge=1),
        default=1,
        help="replicas per partition (default: %(default)s)",
    )
    create.add_argument("--bootstrap-servers", help="overrides CLAIMS_BOOTSTRAP_SERVERS")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(bootstrap_servers=args.bootstrap_servers)
    except ConfigError as error:
        print(f"claims-worker topics: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    topics = TopicSet.of(settings).new_topics(
        partitions=args.partitions, history=settings.history_enabled, replication_factor=args.replication_factor
    )
    try:
        admin = admin_client(settings, client_id=f"claims-worker-topics.{settings.worker_id}")
    except KafkaIOError as error:
        print(f"claims-worker topics: cannot reach Kafka at {settings.bootstrap_servers}: {error}", file=sys.stderr)
        return ExitCode.CONFIG if isinstance(error, KafkaConfigError) else ExitCode.BROKER_OUTAGE
    try:
        existing = set(admin.list_topics())
        for topic in topics:
            if topic.name in existing:
                print(f"exists   {topic.name}")
                continue
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                print(f"exists   {topic.name}")
                continue
            configs = "".join(f", {key}={value}" for key, value in (topic.topic_configs or {}).items())
            print(
                f"created  {topic.name} (partitions={topic.num_partitions}, "
                f"replication_factor={topic.replication_factor}{configs})"
            )
    except Exception as error:  # noqa: BLE001 - report any broker refusal as one readable line
        problem = classify(error)
        print(f"claims-worker topics: {problem}", file=sys.stderr)
        return ExitCode.CONFIG if isinstance(problem, KafkaConfigError) else ExitCode.FAILURE
    finally:
        admin.close()
    return ExitCode.OK
