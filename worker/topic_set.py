"""The worker's topics by role, and how each is created (`claims-worker topics create`, the demo, tests, chaos).

- input, pass, fail, dead letters: ordinary topics (delete policy, the broker's retention).
- claim history's repartition topic (`claims.by-member`): deferred claims keyed by member key; ordinary retention.
- claim history's changelog (`claims.history.changelog`): `cleanup.policy=compact`, so that the latest entry per
  key (and a tombstone's deletion) survives while older versions are cleaned; never time-based deletion.

The repartition topic and the changelog must have the same partition count, and it must never change: entry keys
are placed by their member key's hash, and partition n's store is changelog partition n.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import NewTopic

from worker.settings import WorkerSettings

CHANGELOG_CONFIGS = {"cleanup.policy": "compact"}


@dataclass(frozen=True, slots=True)
class TopicSet:
    """Topic names by role."""

    input: str
    passed: str
    failed: str
    dlq: str
    repartition: str
    changelog: str

    @classmethod
    def prefixed(cls, prefix: str) -> TopicSet:
        """`<prefix>.in`, `<prefix>.pass`, ... (tests, chaos, the demo: fresh topics per run)."""
        return cls(
            f"{prefix}.in",
            f"{prefix}.pass",
            f"{prefix}.fail",
            f"{prefix}.dlq",
            f"{prefix}.by-member",
            f"{prefix}.changelog",
        )

    @classmethod
    def of(cls, settings: WorkerSettings) -> TopicSet:
        return cls(
            settings.input_topic,
            settings.pass_topic,
            settings.fail_topic,
            settings.dlq_topic,
            settings.repartition_topic,
            settings.changelog_topic,
        )

    @property
    def outputs(self) -> tuple[str, str, str]:
        return (self.passed, self.failed, self.dlq)

    def env(self) -> dict[str, str]:
        """The `CLAIMS_*_TOPIC` variables that point a worker at these topics."""
        return {
            "CLAIMS_INPUT_TOPIC": self.input,
            "CLAIMS_PASS_TOPIC": self.passed,
            "CLAIMS_FAIL_TOPIC": self.failed,
            "CLAIMS_DLQ_TOPIC": self.dlq,
            "CLAIMS_REPARTITION_TOPIC": self.repartition,
            "CLAIMS_CHANGELOG_TOPIC": self.changelog,
        }

    def new_topics(
        self,
        *,
        partitions: int,
        output_partitions: int | None = None,
        history: bool = True,
        replication_factor: int = 1,
    ) -> list[NewTopic]:
        """The topics to create: input and claim history's with `partitions`, outputs with `output_partitions`
        (default: the same), claim history's only when `history`."""
        outputs = partitions if output_partitions is None else output_partitions
        topics = [NewTopic(self.input, partitions, replication_factor)]
        topics += [NewTopic(name, outputs, replication_factor) for name in dict.fromkeys(self.outputs)]
        if history:
            topics.append(NewTopic(self.repartition, partitions, replication_factor))
            topics.append(
                NewTopic(self.changelog, partitions, replication_factor, topic_configs=dict(CHANGELOG_CONFIGS))
            )
        return topics
