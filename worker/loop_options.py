"""What the validation loop needs from the settings (`worker.loop.ValidationLoop`'s `options`)."""

from __future__ import annotations

from dataclasses import dataclass

from worker.settings import WorkerSettings


@dataclass(frozen=True, slots=True)
class LoopOptions:
    """What the loop needs from the settings; durations in seconds unless the name says otherwise."""

    input_topic: str
    batch_max_records: int = 1000
    poll_timeout_ms: int = 250
    max_outage_s: float = 60.0
    retry_backoff_initial_s: float = 0.2
    retry_backoff_max_s: float = 5.0
    probe_interval_s: float = 5.0
    probe_timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> LoopOptions:
        return cls(
            input_topic=settings.input_topic,
            batch_max_records=settings.batch_max_records,
            poll_timeout_ms=settings.poll_timeout_ms,
            max_outage_s=settings.max_outage_s,
            retry_backoff_initial_s=settings.retry_backoff_initial_s,
            retry_backoff_max_s=settings.retry_backoff_max_s,
            probe_timeout_s=min(5.0, settings.request_timeout_ms / 1000),
        )
