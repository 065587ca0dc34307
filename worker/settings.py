"""The worker's configuration: one frozen, typed settings object read from `CLAIMS_*` environment variables.

Built once at the edge (the CLI, where flags may override the environment) and passed down. Units are in the
names (`poll_timeout_ms`, `shutdown_grace_s`, `max_record_bytes`); secrets are `SecretStr` and never shown.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import DirectoryPath, Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CLAIMS_"

_CLIENT_ID_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class DeliveryMode(StrEnum):
    """`at_least_once`: duplicates possible after a crash, never loss. `exactly_once`: Kafka transactions."""

    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


class HistoryMode(StrEnum):
    """Claim history (cross-claim checks on Kafka-backed state): `on` (the default) or `off` (one claim at a time)."""

    ON = "on"
    OFF = "off"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class ConfigError(Exception):
    """The configuration is invalid; the message is meant for an operator and never contains a secret."""


def _default_worker_id() -> str:
    # Stable across restarts of the same pod/host, which lets a restarted exactly-once worker fence its own
    # zombie and abort its unfinished transaction at once. Several workers on one host need distinct ids.
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:200]
    return host or "claims-worker"


def _default_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "claims-worker-state"


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class HistorySettings(BaseSettings):
    """Claim history's mode, member-key secret and retention, and the policy directory: all `validate` (and
    `policy import-*`) read of the environment (other `CLAIMS_*` variables are ignored there); `WorkerSettings`
    extends it."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True, case_sensitive=False,
        hide_input_in_errors=True,
    )  # fmt: skip

    history: HistoryMode = HistoryMode.ON
    # HMAC key of member ids: history keys, topics, logs and metrics never hold a member id. Required when history
    # is on (checked at start-up, so that `publish` and `topics` do not need it).
    history_key: SecretStr | None = Field(None, min_length=16)
    # Days an entry is kept after its service date; default: the longest timely-filing window of the payer
    # policies plus 90 days.
    history_retention_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    # CMS edit tables (MUE, PTP) written by `claims-worker policy import-mue|import-ptp` (rules/ncci.py); unset:
    # the MUE and PTP rules do not run.
    policy_dir: DirectoryPath | None = None

    @property
    def history_enabled(self) -> bool:
        return self.history is HistoryMode.ON


class WorkerSettings(HistorySettings):
    """Everything `claims-worker run` (and `publish`, `topics`) needs; see the README's configuration table.

    Raises `pydantic.ValidationError` when a value is invalid; use `load_settings()` to get a `ConfigError`
    with a readable message instead.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        env_ignore_empty=True,
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # --- Kafka connection -------------------------------------------------------------------------------------
    bootstrap_servers: str = Field("localhost:9092", min_length=1, description="Comma-separated host:port list.")
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: FilePath | None = Field(None, description="PEM CA bundle that signed the broker certificates.")
    ssl_certfile: FilePath | None = Field(None, description="PEM client certificate (mutual TLS).")
    ssl_keyfile: FilePath | None = Field(None, description="PEM client private key (mutual TLS).")
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    request_timeout_ms: PositiveInt = 30_000
    # kafka-python's default (30 s) makes a worker wait up to half a minute after a broker restart; the Java
    # client's default is 1 s.
    reconnect_backoff_max_ms: PositiveInt = 1_000

    # --- Topics and group -------------------------------------------------------------------------------------
    group_id: str = Field("claims-validator", min_length=1)
    input_topic: str = Field("claims.submitted", min_length=1)
    pass_topic: str = Field("claims.validated.pass", min_length=1)
    fail_topic: str = Field("claims.validated.fail", min_length=1)
    dlq_topic: str = Field("claims.submitted.dlq", min_length=1)
    worker_id: str = Field(default_factory=_default_worker_id, description="Unique per replica.")
    group_instance_id: str | None = Field(None, description="Static group membership (KIP-345).")

    # --- Delivery ---------------------------------------------------------------------------------------------
    delivery: DeliveryMode = DeliveryMode.AT_LEAST_ONCE
    transaction_timeout_ms: PositiveInt = 60_000

    # --- Processing -------------------------------------------------------------------------------------------
    payer_policy_file: FilePath | None = None
    max_record_bytes: PositiveInt = 1024 * 1024
    # Bigger batches amortise the per-batch flush, commit and (exactly_once) transaction round trips; at modest
    # load a poll returns what has arrived, so this bounds catch-up batches, not latency.
    batch_max_records: Annotated[int, Field(ge=1, le=100_000)] = 2000
    poll_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 250
    # Child processes that run the rules beside the Kafka IO (worker/evaluator.py); 0 runs them in the loop's
    # thread. One child lets the rules use a second core: on a single-core pod set 0.
    evaluator_processes: Annotated[int, Field(ge=0, le=16)] = 1

    # --- Claim history (worker/history/; the mode, key and retention are declared in HistorySettings) -----------
    repartition_topic: str = Field("claims.by-member", min_length=1)
    changelog_topic: str = Field("claims.history.changelog", min_length=1)
    # Local stores, one per owned partition, under <state_dir>/<group_id>/<worker_id>/; rebuilt from the changelog
    # when missing, so an ephemeral directory only makes restarts slower.
    state_dir: Path = Field(default_factory=_default_state_dir)

    # --- Consumer tuning --------------------------------------------------------------------------------------
    max_poll_interval_ms: PositiveInt = 300_000
    session_timeout_ms: PositiveInt = 45_000
    heartbeat_interval_ms: PositiveInt = 3_000
    fetch_min_bytes: PositiveInt = 1
    fetch_max_wait_ms: Annotated[int, Field(ge=0)] = 500
    fetch_max_bytes: PositiveInt = 16 * 1024 * 1024
    max_partition_fetch_bytes: PositiveInt = 1024 * 1024

    # --- Producer tuning --------------------------------------------------------------------------------------
    # Every batch ends with a flush (or a transaction commit, which flushes), so lingering adds no latency; it
    # keeps kafka-python from waking its sender thread (a GIL hand-off) every few records mid-batch.
    producer_linger_ms: Annotated[int, Field(ge=0)] = 100
    producer_batch_bytes: PositiveInt = 256 * 1024
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    producer_max_request_bytes: PositiveInt = 10 * 1024 * 1024
    delivery_timeout_ms: PositiveInt = 60_000

    # --- Lifecycle --------------------------------------------------------------------------------------------
    shutdown_grace_s: PositiveFloat = 25.0
    max_outage_s: PositiveFloat = 60.0
    retry_backoff_initial_s: PositiveFloat = 0.2
    retry_backoff_max_s: PositiveFloat = 5.0

    # --- Observability ----------------------------------------------------------------------------------------
    metrics_host: str = "0.0.0.0"  # noqa: S104 - probes and scrapers reach the pod on its own address
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9108
    log_format: LogFormat | None = Field(None, description="Default: console on a TTY, else json.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("worker_id", "group_instance_id")
    @classmethod
    def _client_id_safe(cls, value: str | None) -> str | None:
        if value is not None and not _CLIENT_ID_SAFE.match(value):
            raise ValueError("use 1-200 characters among letters, digits, '.', '_' and '-'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        outputs = {"pass_topic": self.pass_topic, "fail_topic": self.fail_topic, "dlq_topic": self.dlq_topic}
        for name, topic in outputs.items():
            if topic == self.input_topic:
                raise ValueError(f"{env_name(name)} must differ from {env_name('input_topic')} ({topic})")
        if self.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL) and (
            self.sasl_mechanism is None or not self.sasl_username or self.sasl_password is None
        ):
            raise ValueError(
                f"security protocol {self.security_protocol} needs {env_name('sasl_mechanism')}, "
                f"{env_name('sasl_username')} and {env_name('sasl_password')}"
            )
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(f"{env_name('heartbeat_interval_ms')} must be below {env_name('session_timeout_ms')}")
        if self.fetch_max_wait_ms >= self.request_timeout_ms:
            raise ValueError(f"{env_name('fetch_max_wait_ms')} must be below {env_name('request_timeout_ms')}")
        if self.delivery_timeout_ms < self.producer_linger_ms + self.request_timeout_ms:
            raise ValueError(
                f"{env_name('delivery_timeout_ms')} must be at least "
                f"{env_name('producer_linger_ms')} + {env_name('request_timeout_ms')}"
            )
        if self.retry_backoff_initial_s > self.retry_backoff_max_s:
            raise ValueError(f"{env_name('retry_backoff_initial_s')} must not exceed {env_name('retry_backoff_max_s')}")
        if self.history is HistoryMode.ON:
            named = {"repartition_topic": self.repartition_topic, "changelog_topic": self.changelog_topic}
            taken = {"input_topic": self.input_topic, **outputs}
            for name, topic in named.items():
                clash = next((other for other, used in taken.items() if used == topic), None)
                if clash is not None:
                    raise ValueError(f"{env_name(name)} must differ from {env_name(clash)} ({topic})")
            if self.repartition_topic == self.changelog_topic:
                raise ValueError(f"{env_name('changelog_topic')} must differ from {env_name('repartition_topic')}")
        if self.max_outage_s * 1000 >= self.max_poll_interval_ms:
            # Retrying a batch for longer than this would get the worker evicted from its group mid-retry.
            raise ValueError(f"{env_name('max_outage_s')} must be below {env_name('max_poll_interval_ms')}")
        return self

    @property
    def transactional_id(self) -> str:
        """Stable per replica, so a restarted worker fences its predecessor and aborts its open transaction."""
        return f"{self.group_id}.{self.worker_id}"

    @property
    def output_topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.pass_topic, self.fail_topic, self.dlq_topic)))

    @property
    def history_topics(self) -> tuple[str, ...]:
        """The repartition and changelog topics, when claim history is on."""
        return (self.repartition_topic, self.changelog_topic) if self.history_enabled else ()

    @property
    def worker_state_dir(self) -> Path:
        """This replica's local stores: `<state_dir>/<group_id>/<worker_id>`."""
        return self.state_dir / self.group_id / self.worker_id

    def public_summary(self) -> dict[str, Any]:
        """The settings as loggable values: secrets masked, paths as strings."""
        summary: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                summary[name] = "**********"
            elif isinstance(value, Path):
                summary[name] = str(value)
            elif isinstance(value, StrEnum):
                summary[name] = value.value
            else:
                summary[name] = value
        return summary


def env_name(field: str) -> str:
    """The environment variable that sets a settings field, e.g. `CLAIMS_MAX_OUTAGE_S`."""
    return ENV_PREFIX + field.upper()


def unknown_env_settings(environ: dict[str, str] | None = None) -> list[str]:
    """`CLAIMS_*` variables that match no setting (likely typos); other tools may own some, so only warn."""
    known = {env_name(name) for name in WorkerSettings.model_fields}
    source = os.environ if environ is None else environ
    return sorted(name for name in source if name.upper().startswith(ENV_PREFIX) and name.upper() not in known)


def load_history_settings(**overrides: Any) -> HistorySettings:
    """Claim history's settings (and the policy directory) from the environment, non-None `overrides` (flags) on
    top. Raises `ConfigError` (naming the variable)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return HistorySettings(**given)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def load_settings(**overrides: Any) -> WorkerSettings:
    """Read the environment, apply non-None `overrides` (command-line flags) on top, validate.

    Raises `ConfigError` with one line per problem, naming the environment variable; values are never echoed.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return WorkerSettings(**given)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        location = ".".join(str(part) for part in detail["loc"])
        where = env_name(location) if location else "settings"
        lines.append(f"  {where}: {detail['msg']}")
    return "\n".join(lines)
