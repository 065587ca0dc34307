"""The Kafka adapter: the small consumer and producer interfaces the loop uses, and their kafka-python 3.0 code.

The loop sees only `ConsumerPort`, `ProducerPort`, `TopicPartition`, `Record` and the error classes below;
tests implement the same Protocols with in-memory fakes. kafka-python exceptions are classified once, here, into:

- `BrokerUnavailableError` (retriable: broker down or slow, leader moving, timeouts);
- `CommitRejectedError` (the group moved on, e.g. a rebalance: the commit is lost, the outputs are not);
- `ProducerFencedError` (another live producer has our transactional id: this process must stop);
- `KafkaConfigError` (authentication, authorization, TLS trust, missing topics: fix the configuration);
- `KafkaIOError` itself for anything else that is not retriable (e.g. a record over the size limit).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import errors as kafka_errors
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTopicPartition

from worker.kafka_fixes import close_sockets_of_failed_connects
from worker.settings import DeliveryMode, SecurityProtocol, WorkerSettings, env_name

T = TypeVar("T")

Headers = list[tuple[str, bytes]]


class TopicPartition(NamedTuple):
    """A topic and partition; equal to (and hashing like) kafka-python's namedtuple of the same fields."""

    topic: str
    partition: int


class Record(Protocol):
    """What the loop reads from a consumed record (kafka-python's `ConsumerRecord` has these attributes)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


# --- errors -----------------------------------------------------------------------------------------------------


class KafkaIOError(Exception):
    """A Kafka operation failed and retrying the same thing will not help."""

    retriable = False


class BrokerUnavailableError(KafkaIOError):
    """Transient: the broker is unreachable, slow or moving leaders. Retry with backoff, bounded by an outage."""

    retriable = True


class CommitRejectedError(KafkaIOError):
    """The group coordinator refused an offset commit (rebalance, stale generation). Outputs stay published."""


class ProducerFencedError(KafkaIOError):
    """A newer producer with the same transactional id exists: two replicas share CLAIMS_WORKER_ID."""


class KafkaConfigError(KafkaIOError):
    """The broker rejected our configuration: credentials, TLS trust, authorization, missing topics."""


_CONFIG_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.AuthorizationError,
    kafka_errors.SaslAuthenticationFailedError,
    kafka_errors.UnsupportedSaslMechanismError,
    kafka_errors.IllegalSaslStateError,
    kafka_errors.KafkaConfigurationError,
    kafka_errors.FencedInstanceIdError,
    kafka_errors.InvalidTransactionTimeoutError,
    kafka_errors.SecurityDisabledError,
    ssl.SSLCertVerificationError,
)
_COMMIT_REJECTED: tuple[type[BaseException], ...] = (
    kafka_errors.CommitFailedError,
    kafka_errors.RebalanceInProgressError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
)
_FENCED: tuple[type[BaseException], ...] = (
    kafka_errors.ProducerFencedError,
    kafka_errors.TransactionalIdAuthorizationFailedError,
)


def classify(error: BaseException) -> KafkaIOError:
    """Map any exception raised by kafka-python (or the network) to one of this module's error classes."""
    if isinstance(error, KafkaIOError):
        return error
    text = _describe(error)
    if isinstance(error, _FENCED):
        return ProducerFencedError(text)
    if isinstance(error, _CONFIG_ERRORS):
        return KafkaConfigError(text)
    if isinstance(error, _COMMIT_REJECTED):
        return CommitRejectedError(text)
    if isinstance(error, kafka_errors.KafkaError) and error.retriable:
        return BrokerUnavailableError(text)
    if isinstance(error, (kafka_errors.KafkaTimeoutError, kafka_errors.NodeNotReadyError, OSError, TimeoutError)):
        return BrokerUnavailableError(text)
    return KafkaIOError(text)


def _describe(error: BaseException) -> str:
    # kafka-python's messages name topics, partitions and nodes, never record contents.
    message = str(error).strip()[:300]
    name = type(error).__name__
    if not message:
        return name
    return message if message.startswith(name) else f"{name}: {message}"


@contextlib.contextmanager
def kafka_errors_classified() -> Iterator[None]:
    """Re-raise anything kafka-python raises inside the block as one of this module's error classes."""
    try:
        yield
    except KafkaIOError:
        raise
    except Exception as error:  # noqa: BLE001 - the adapter is the one place client errors are classified
        raise classify(error) from None


def call_with_deadline(function: Callable[[], T], timeout_s: float, *, what: str) -> T:
    """Run a blocking client call that has no timeout of its own; give up after `timeout_s` seconds.

    kafka-python's transactional calls (`commit_transaction`, `abort_transaction`, `send_offsets_to_transaction`)
    wait without a bound while the broker is away. The call runs on a daemon thread; on timeout it is left
    behind (the caller then stops using the producer) and `BrokerUnavailableError` is raised.
    """
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def target() -> None:
        try:
            outcome.set_result(function())
        except BaseException as error:  # noqa: BLE001 - handed over to the waiting thread
            outcome.set_exception(error)

    threading.Thread(target=target, name=f"kafka-{what}", daemon=True).start()
    try:
        return outcome.result(timeout=max(timeout_s, 0.0))
    except concurrent.futures.TimeoutError:
        raise BrokerUnavailableError(f"{what} did not complete within {timeout_s:.1f}s") from None


# --- ports --------------------------------------------------------------------------------------------------------


class ConsumerPort(Protocol):
    """The consumer side of the loop. Offsets are the *next* offset to read (last processed + 1)."""

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]: ...
    def commit(self, offsets: Mapping[TopicPartition, int], timeout_s: float) -> None: ...
    async def commit_during_rebalance(self, offsets: Mapping[TopicPartition, int]) -> None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    def assignment(self) -> set[TopicPartition]: ...
    def group_metadata(self) -> object: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def position(self, partition: TopicPartition, timeout_s: float) -> int | None: ...
    def end_offsets(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int]: ...
    def pause(self, partitions: Collection[TopicPartition]) -> None: ...
    def resume(self, partitions: Collection[TopicPartition]) -> None: ...
    def committed(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int | None]: ...
    def close(self, timeout_s: float) -> None: ...


class ProducerPort(Protocol):
    """The producer side of the loop. `send` buffers; `flush` waits for acks and raises on any failed record."""

    @property
    def transactional(self) -> bool: ...
    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None: ...
    def send_tracked(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Callable[[], int]: ...
    def flush(self, timeout_s: float) -> None: ...
    def begin_transaction(self) -> None: ...
    def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object, timeout_s: float
    ) -> None: ...
    def abort_transaction(self, timeout_s: float) -> None: ...
    def close(self, timeout_s: float) -> None: ...


# --- kafka-python implementation ----------------------------------------------------------------------------------


def connection_options(settings: WorkerSettings) -> dict[str, Any]:
    """Bootstrap servers, security and timeouts shared by consumer, producer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": [server.strip() for server in settings.bootstrap_servers.split(",") if server.strip()],
        "security_protocol": settings.security_protocol.value,
        "request_timeout_ms": settings.request_timeout_ms,
        "reconnect_backoff_max_ms": settings.reconnect_backoff_max_ms,
        "bootstrap_timeout_ms": min(settings.request_timeout_ms, 10_000),
    }
    if settings.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL):
        options["sasl_mechanism"] = settings.sasl_mechanism.value if settings.sasl_mechanism else None
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    if settings.security_protocol in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
        options["ssl_check_hostname"] = settings.ssl_check_hostname
        options["ssl_cafile"] = str(settings.ssl_cafile) if settings.ssl_cafile else None
        options["ssl_certfile"] = str(settings.ssl_certfile) if settings.ssl_certfile else None
        options["ssl_keyfile"] = str(settings.ssl_keyfile) if settings.ssl_keyfile else None
        options["ssl_password"] = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    return options


def consumer_options(settings: WorkerSettings) -> dict[str, Any]:
    """The worker's kafka-python `KafkaConsumer` options (also what the benchmark's pass-through uses)."""
    return {
        **connection_options(settings),
        "client_id": f"claims-worker.{settings.worker_id}",
        "group_id": settings.group_id,
        "group_instance_id": settings.group_instance_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed" if settings.delivery is DeliveryMode.EXACTLY_ONCE else "read_uncommitted",
        "partition_assignment_strategy": [CooperativeStickyAssignor],
        "max_poll_records": settings.batch_max_records,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_min_bytes": settings.fetch_min_bytes,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "fetch_max_bytes": settings.fetch_max_bytes,
        "max_partition_fetch_bytes": settings.max_partition_fetch_bytes,
        "allow_auto_create_topics": False,
    }


def producer_options(settings: WorkerSettings) -> dict[str, Any]:
    """The worker's kafka-python `KafkaProducer` options: idempotent, acks=all; transactional in exactly_once."""
    options: dict[str, Any] = {
        **connection_options(settings),
        "client_id": f"claims-worker.{settings.worker_id}",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.producer_linger_ms,
        "batch_size": settings.producer_batch_bytes,
        "compression_type": None if settings.producer_compression == "none" else settings.producer_compression,
        "max_request_size": settings.producer_max_request_bytes,
        "delivery_timeout_ms": settings.delivery_timeout_ms,
        "max_block_ms": min(settings.request_timeout_ms, 30_000),
        "allow_auto_create_topics": False,
    }
    if settings.delivery is DeliveryMode.EXACTLY_ONCE:
        options["transactional_id"] = settings.transactional_id
        options["transaction_timeout_ms"] = settings.transaction_timeout_ms
    return options


class _BootstrapFailures(logging.Filter):
    """Remembers why kafka-python's bootstrap attempts failed; it only logs them and finally times out.

    Without this a wrong password or an untrusted certificate would look like an unreachable broker. kafka-python
    3.0.12 logs an untrusted certificate as `KafkaConnectionError("Handshake failed: ...")` whose `__context__` is
    the `ssl.SSLCertVerificationError`, so the chain is searched, not just the logged exception. A refused SASL
    login is logged as `SaslAuthenticationFailedError` for most attempts only: when the broker's answer and its
    close arrive in one read, kafka-python drops the answer and logs "socket disconnected" (the worker's start-up
    retry then sees the real cause on a later attempt).
    """

    def __init__(self) -> None:
        super().__init__()
        self.config_error: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        for argument in args:
            if isinstance(argument, BaseException):
                cause = _config_cause(argument)
                if cause is not None:
                    self.config_error = cause
        return True


def _config_cause(error: BaseException) -> BaseException | None:
    current: BaseException | None = error
    for _ in range(4):  # kafka-python wraps at most once or twice; the bound guards against cycles
        if current is None:
            return None
        if isinstance(current, _CONFIG_ERRORS):
            return current
        current = current.__cause__ or current.__context__
    return None


def _explain_config_error(error: BaseException) -> str:
    # Names the settings to check; kafka-python's messages never contain the password.
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS: the broker's certificate is not trusted (check {env_name('ssl_cafile')} and "
            f"{env_name('ssl_check_hostname')}): {_describe(error)}"
        )
    if isinstance(error, kafka_errors.SaslAuthenticationFailedError | kafka_errors.UnsupportedSaslMechanismError):
        return (
            f"SASL authentication failed (check {env_name('sasl_username')}, {env_name('sasl_password')} and "
            f"{env_name('sasl_mechanism')}): {_describe(error)}"
        )
    return _describe(error)


def _construct(factory: Callable[[], T]) -> T:
    close_sockets_of_failed_connects()
    recorder = _BootstrapFailures()
    manager_log = logging.getLogger("kafka.net.manager")
    manager_log.addFilter(recorder)
    try:
        return factory()
    except Exception as error:  # noqa: BLE001 - classified right here
        if recorder.config_error is not None:
            raise KafkaConfigError(_explain_config_error(recorder.config_error)) from None
        raise classify(error) from None
    finally:
        manager_log.removeFilter(recorder)


def _bounded_bootstrap(options: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    """`options` with the bootstrap wait cut to `timeout_s` (at least half a second), so that a client created during
    an outage gives up before the outage bound passes."""
    if timeout_s is None:
        return options
    return {
        **options,
        "bootstrap_timeout_ms": max(500, min(int(options["bootstrap_timeout_ms"]), int(timeout_s * 1000))),
    }


def _to_kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[Any, Any]:
    return {
        KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()
    }


class KafkaConsumerAdapter:
    """`ConsumerPort` on a kafka-python `KafkaConsumer` (auto-commit off, cooperative-sticky assignment)."""

    def __init__(self, settings: WorkerSettings, *, bootstrap_timeout_s: float | None = None) -> None:
        """Connect and bootstrap, within `bootstrap_timeout_s` (default: the settings' bound). Raises
        `BrokerUnavailableError` or `KafkaConfigError`."""
        self._settings = settings
        options = _bounded_bootstrap(consumer_options(settings), bootstrap_timeout_s)
        self._consumer: Any = _construct(lambda: KafkaConsumer(**options))

    def topics(self) -> set[str]:
        with kafka_errors_classified():
            found: set[str] = self._consumer.topics()
        return found

    def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of `topic` (empty when it does not exist)."""
        with kafka_errors_classified():
            found = self._consumer.partitions_for_topic(topic)
        return set(found or ())

    def subscribe(self, topics: Sequence[str], listener: object) -> None:
        self._consumer.subscribe(list(topics), listener=listener)

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        with kafka_errors_classified():
            batch: Mapping[TopicPartition, Sequence[Record]] = self._consumer.poll(
                timeout_ms=timeout_ms, max_records=max_records
            )
        return batch

    def commit(self, offsets: Mapping[TopicPartition, int], timeout_s: float) -> None:
        with kafka_errors_classified():
            self._consumer.commit(_to_kafka_offsets(offsets), timeout_ms=int(timeout_s * 1000))

    async def commit_during_rebalance(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit from inside a rebalance callback (on kafka-python's IO loop, where `commit` would block it)."""
        try:
            await self._consumer.commit_async(_to_kafka_offsets(offsets))
        except Exception as error:  # noqa: BLE001 - classified right here
            raise classify(error) from None

    def seek(self, partition: TopicPartition, offset: int) -> None:
        # ValueError: no longer assigned; its new owner starts from the committed offset anyway.
        with contextlib.suppress(ValueError):
            self._consumer.seek(KafkaTopicPartition(partition.topic, partition.partition), offset)

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def group_metadata(self) -> object:
        return self._consumer.group_metadata()

    def highwater(self, partition: TopicPartition) -> int | None:
        try:
            mark: int | None = self._consumer.highwater(KafkaTopicPartition(partition.topic, partition.partition))
        except kafka_errors.IllegalStateError:
            return None
        return mark

    def position(self, partition: TopicPartition, timeout_s: float) -> int | None:
        try:
            with kafka_errors_classified():
                offset: int | None = self._consumer.position(
                    KafkaTopicPartition(partition.topic, partition.partition), timeout_ms=int(timeout_s * 1000)
                )
        except KafkaIOError:
            if not self._consumer_assigned(partition):
                return None
            raise
        return offset

    def _consumer_assigned(self, partition: TopicPartition) -> bool:
        return partition in self.assignment()

    def end_offsets(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int]:
        with kafka_errors_classified():
            found = self._consumer.end_offsets(
                [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions], timeout_ms=int(timeout_s * 1000)
            )
        return {TopicPartition(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}

    def pause(self, partitions: Collection[TopicPartition]) -> None:
        self._consumer.pause(*(KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions))

    def resume(self, partitions: Collection[TopicPartition]) -> None:
        self._consumer.resume(*(KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions))

    def committed(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int | None]:
        found: dict[TopicPartition, int | None] = {}
        with kafka_errors_classified():
            for tp in partitions:
                offset = self._consumer.committed(
                    KafkaTopicPartition(tp.topic, tp.partition), timeout_ms=int(timeout_s * 1000)
                )
                found[tp] = None if offset is None else int(offset)
        return found

    def close(self, timeout_s: float) -> None:
        with kafka_errors_classified():
            self._consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))

    def __repr__(self) -> str:
        return f"<KafkaConsumerAdapter group={self._settings.group_id} assigned={len(self.assignment())}>"


class KafkaProducerAdapter:
    """`ProducerPort` on a kafka-python `KafkaProducer`: idempotent, acks=all; transactional in exactly_once."""

    def __init__(self, settings: WorkerSettings, *, bootstrap_timeout_s: float | None = None) -> None:
        """Connect (and in exactly_once, `init_transactions()`, which aborts our predecessor's open transaction),
        within about `bootstrap_timeout_s` (default: the settings' bounds).

        Raises `BrokerUnavailableError`, `KafkaConfigError` or `ProducerFencedError`.
        """
        self._settings = settings
        self._transactional = settings.delivery is DeliveryMode.EXACTLY_ONCE
        self._pending: list[Any] = []
        self._sent = 0
        options = _bounded_bootstrap(producer_options(settings), bootstrap_timeout_s)
        self._producer: Any = _construct(lambda: KafkaProducer(**options))
        if self._transactional:
            try:
                with kafka_errors_classified():
                    call_with_deadline(
                        self._producer.init_transactions,
                        min(settings.request_timeout_ms / 1000 * 2, bootstrap_timeout_s or float("inf")),
                        what="init-transactions",
                    )
            except KafkaIOError:
                self._producer.close(timeout=0)
                raise

    @property
    def transactional(self) -> bool:
        return self._transactional

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        # Inline try (not the context manager): this runs once per claim.
        try:
            future = self._producer.send(
                topic, value=value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
            )
        except Exception as error:  # noqa: BLE001 - classified right here
            raise classify(error) from None
        self._pending.append(future)
        self._sent += 1

    def send_tracked(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Callable[[], int]:
        """`send`, returning what gives the record's offset once it is acknowledged (after `flush` or the commit)."""
        self.send(topic, key=key, value=value, headers=headers, partition=partition, timestamp_ms=timestamp_ms)
        future = self._pending[-1]

        def offset() -> int:
            found: int = future.value.offset
            return found

        return offset

    def flush(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        with kafka_errors_classified():
            self._producer.flush(timeout=timeout_s)
        for future in pending:
            if future.failed():
                raise classify(future.exception)

    def begin_transaction(self) -> None:
        self._pending = []
        with kafka_errors_classified():
            self._producer.begin_transaction()

    def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object, timeout_s: float
    ) -> None:
        kafka_offsets = _to_kafka_offsets(offsets)

        def commit() -> None:
            self._producer.send_offsets_to_transaction(kafka_offsets, group_metadata)
            self._producer.commit_transaction()

        self._pending = []
        with kafka_errors_classified():
            call_with_deadline(commit, timeout_s, what="commit-transaction")

    def abort_transaction(self, timeout_s: float) -> None:
        self._pending = []
        with kafka_errors_classified():
            call_with_deadline(self._producer.abort_transaction, timeout_s, what="abort-transaction")

    def close(self, timeout_s: float) -> None:
        with kafka_errors_classified():
            self._producer.close(timeout=timeout_s)

    def __repr__(self) -> str:
        return (
            f"<KafkaProducerAdapter transactional={self._transactional} sent={self._sent} "
            f"unacknowledged={len(self._pending)}>"
        )


class KafkaChangelogReader:
    """`ChangelogReader` (worker.history.partitions) on kafka-python consumers without a group.

    Reads as the worker does (read_committed in exactly_once: aborted changelog writes are never applied); the
    high watermarks come from a second, read_uncommitted consumer (created on first use in exactly_once), because a
    read_committed consumer reports the last stable offset, which stops at an open transaction.
    """

    def __init__(self, settings: WorkerSettings, *, bootstrap_timeout_s: float | None = None) -> None:
        """Raises `BrokerUnavailableError` or `KafkaConfigError`."""
        self._topic = settings.changelog_topic
        self._settings = settings
        options = {
            **connection_options(settings),
            "client_id": f"claims-worker.{settings.worker_id}.restore",
            "group_id": None,
            "enable_auto_commit": False,
            "isolation_level": "read_committed"
            if settings.delivery is DeliveryMode.EXACTLY_ONCE
            else "read_uncommitted",
            "max_partition_fetch_bytes": settings.max_partition_fetch_bytes,
            "fetch_max_bytes": settings.fetch_max_bytes,
        }
        options = _bounded_bootstrap(options, bootstrap_timeout_s)
        self._consumer: Any = _construct(lambda: KafkaConsumer(**options))
        self._probe: Any = None if settings.delivery is DeliveryMode.EXACTLY_ONCE else self._consumer

    def _tp(self, partition: int) -> Any:
        return KafkaTopicPartition(self._topic, partition)

    def high_watermarks(self, partitions: Sequence[int], timeout_s: float) -> dict[int, int]:
        if self._probe is None:
            options = {
                **connection_options(self._settings),
                "client_id": f"claims-worker.{self._settings.worker_id}.restore-probe",
                "group_id": None,
                "enable_auto_commit": False,
                "isolation_level": "read_uncommitted",
            }
            self._probe = _construct(lambda: KafkaConsumer(**options))
        with kafka_errors_classified():
            ends = self._probe.end_offsets([self._tp(p) for p in partitions], timeout_ms=int(timeout_s * 1000))
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    def assign(self, starts: Mapping[int, int]) -> None:
        with kafka_errors_classified():
            self._consumer.assign([self._tp(p) for p in starts])
            for partition, offset in starts.items():
                self._consumer.seek(self._tp(partition), offset)

    def poll(self, timeout_ms: int, max_records: int) -> Sequence[Record]:
        if not self._consumer.assignment():
            return []
        with kafka_errors_classified():
            batch = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [record for records in batch.values() for record in records]

    def position(self, partition: int, timeout_s: float) -> int:
        with kafka_errors_classified():
            offset: int = self._consumer.position(self._tp(partition), timeout_ms=int(timeout_s * 1000))
        return offset

    def close(self, timeout_s: float) -> None:
        with kafka_errors_classified():
            self._consumer.close(timeout_ms=int(timeout_s * 1000))
            if self._probe is not None and self._probe is not self._consumer:
                self._probe.close(timeout_ms=int(timeout_s * 1000))

    def __repr__(self) -> str:
        return f"<KafkaChangelogReader topic={self._topic} assigned={len(self._consumer.assignment())}>"


def missing_topics(existing: Iterable[str], settings: WorkerSettings) -> list[str]:
    """The worker's topics (input, outputs, and claim history's when on) that the broker does not have."""
    present = set(existing)
    wanted = (settings.input_topic, *settings.output_topics, *settings.history_topics)
    return [topic for topic in dict.fromkeys(wanted) if topic not in present]


def admin_client(settings: WorkerSettings, *, client_id: str) -> Any:
    """A kafka-python admin client with the worker's connection settings. Raises like the adapters."""
    options = {**connection_options(settings), "client_id": client_id}
    return _construct(lambda: KafkaAdminClient(**options))


def plain_producer(settings: WorkerSettings, *, client_id: str) -> Any:
    """An idempotent kafka-python producer with the worker's connection settings (for `publish`)."""
    options = {
        **connection_options(settings),
        "client_id": client_id,
        "acks": "all",
        "linger_ms": settings.producer_linger_ms,
        "batch_size": settings.producer_batch_bytes,
        "max_request_size": settings.producer_max_request_bytes,
        "allow_auto_create_topics": False,
    }
    return _construct(lambda: KafkaProducer(**options))
