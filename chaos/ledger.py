"""Reading the topics back and matching every output to its input by Kafka coordinates.

A verdict names its input in `source` (topic, partition, offset); a dead letter in its `dlq.source.*` headers.
Outputs are read with `read_committed`, so in exactly_once aborted transactions (a killed worker's unfinished
batch) do not count; in at_least_once nothing is transactional and every output counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from worker.topic_reader import InputCoordinates as Coordinates
from worker.topic_reader import TopicReader


@dataclass
class Tally:
    """Inputs against outputs: what was lost, doubled, or came from nowhere."""

    inputs: int
    outputs: int
    lost: int
    duplicates: int  # outputs beyond the first for the same input
    unexpected: int  # outputs that answer no input of this run
    aborted: int = 0  # output records of aborted transactions (exactly_once: kills that landed mid-batch)
    lost_sample: list[Coordinates] = field(default_factory=list)
    duplicate_sample: list[Coordinates] = field(default_factory=list)

    @classmethod
    def of(cls, inputs: set[Coordinates], answered: Counter[Coordinates | None]) -> Tally:
        lost = sorted(inputs - set(answered))
        doubled = sorted(coordinates for coordinates, count in answered.items() if coordinates in inputs and count > 1)
        return cls(
            inputs=len(inputs),
            outputs=sum(answered.values()),
            lost=len(lost),
            duplicates=sum(answered[coordinates] - 1 for coordinates in doubled),
            unexpected=sum(count for coordinates, count in answered.items() if coordinates not in inputs),
            lost_sample=lost[:5],
            duplicate_sample=doubled[:5],
        )


READER = "chaos-reader"


class Progress:
    """Which inputs have an output so far, while a scenario runs (for knowing when it is done, not for the verdict)."""

    def __init__(self, bootstrap: str, input_topic: str, output_topics: Iterable[str]) -> None:
        self._inputs = TopicReader(bootstrap, [input_topic], isolation="read_uncommitted", client_id=READER)
        self._outputs = TopicReader(bootstrap, output_topics, client_id=READER)
        self.answered: set[Coordinates | None] = set()

    def input_count(self) -> int:
        return sum(self._inputs.end_offsets().values())

    def update(self, timeout_ms: int = 200) -> int:
        self.answered.update(record.answers() for record in self._outputs.poll(timeout_ms))
        return len(self.answered)

    def close(self) -> None:
        self._inputs.close()
        self._outputs.close()


def final_tally(bootstrap: str, input_topic: str, output_topics: Iterable[str], timeout_s: float = 120.0) -> Tally:
    """Read the whole input topic and every output topic (read_committed) and match them."""
    with TopicReader(bootstrap, [input_topic], isolation="read_uncommitted", client_id=READER) as reader:
        inputs = {(record.topic, record.partition, record.offset) for record in reader.read_to_end(timeout_s=timeout_s)}
    with TopicReader(bootstrap, output_topics, client_id=READER) as reader:
        answered = Counter(record.answers() for record in reader.read_to_end(timeout_s=timeout_s))
    with TopicReader(bootstrap, output_topics, isolation="read_uncommitted", client_id=READER) as reader:
        written = len(reader.read_to_end(timeout_s=timeout_s))
    tally = Tally.of(inputs, answered)
    tally.aborted = written - tally.outputs
    return tally
