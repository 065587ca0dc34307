"""Settings: environment variables, overrides, validation messages that name the variable and hide secrets."""

from __future__ import annotations

import os

import pytest

from worker.settings import ConfigError, DeliveryMode, WorkerSettings, env_name, load_settings, unknown_env_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CLAIMS_"):
            monkeypatch.delenv(name)


def test_defaults_follow_the_issue() -> None:
    settings = load_settings()

    assert settings.group_id == "claims-validator"
    assert (settings.input_topic, settings.pass_topic, settings.fail_topic, settings.dlq_topic) == (
        "claims.submitted",
        "claims.validated.pass",
        "claims.validated.fail",
        "claims.submitted.dlq",
    )
    assert settings.delivery is DeliveryMode.AT_LEAST_ONCE
    assert settings.metrics_port == 9108
    assert settings.max_record_bytes == 1024 * 1024


def test_environment_variables_are_read_with_the_claims_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_DELIVERY", "exactly_once")
    monkeypatch.setenv("CLAIMS_MAX_OUTAGE_S", "12.5")
    monkeypatch.setenv("CLAIMS_GROUP_INSTANCE_ID", "")

    settings = load_settings()

    assert settings.delivery is DeliveryMode.EXACTLY_ONCE
    assert settings.max_outage_s == 12.5
    assert settings.group_instance_id is None


def test_flags_override_the_environment_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_GROUP_ID", "from-env")
    monkeypatch.setenv("CLAIMS_METRICS_PORT", "9200")

    settings = load_settings(group_id="from-flag", metrics_port=None)

    assert (settings.group_id, settings.metrics_port) == ("from-flag", 9200)


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.group_id = "other"  # type: ignore[misc]


def test_an_invalid_value_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_DELIVERY", "twice")
    monkeypatch.setenv("CLAIMS_BATCH_MAX_RECORDS", "0")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    message = str(raised.value)
    assert "CLAIMS_DELIVERY" in message
    assert "CLAIMS_BATCH_MAX_RECORDS" in message
    assert "twice" not in message  # values are not echoed: they could be secrets


def test_sasl_needs_mechanism_user_and_password_and_the_password_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAIMS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CLAIMS_SASL_PASSWORD", "hunter2-very-secret")

    with pytest.raises(ConfigError, match="CLAIMS_SASL_MECHANISM") as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)

    monkeypatch.setenv("CLAIMS_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("CLAIMS_SASL_USERNAME", "worker")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.public_summary())
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "hunter2-very-secret"


def test_a_tls_file_that_does_not_exist_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CLAIMS_SSL_CAFILE", "/nonexistent/ca.pem")

    with pytest.raises(ConfigError, match="CLAIMS_SSL_CAFILE"):
        load_settings()


@pytest.mark.parametrize("output", ["pass_topic", "fail_topic", "dlq_topic"])
def test_an_output_topic_equal_to_the_input_topic_is_rejected(output: str) -> None:
    with pytest.raises(ConfigError, match=env_name(output)):
        load_settings(**{output: "claims.submitted"})


def test_an_outage_bound_beyond_the_poll_interval_is_rejected() -> None:
    with pytest.raises(ConfigError, match="CLAIMS_MAX_OUTAGE_S"):
        load_settings(max_outage_s=400, max_poll_interval_ms=300_000)


def test_worker_id_must_be_safe_for_client_and_transactional_ids() -> None:
    with pytest.raises(ConfigError, match="CLAIMS_WORKER_ID"):
        load_settings(worker_id="a b/c")
    assert load_settings(worker_id="pod-7.example", group_id="g").transactional_id == "g.pod-7.example"


def test_unknown_claims_variables_are_reported_as_likely_typos() -> None:
    environ = {"CLAIMS_BOOTSTRAP_SERVER": "x", "CLAIMS_GROUP_ID": "g", "PATH": "/bin"}
    assert unknown_env_settings(environ) == ["CLAIMS_BOOTSTRAP_SERVER"]


def test_every_setting_has_an_environment_variable_name() -> None:
    assert env_name("shutdown_grace_s") == "CLAIMS_SHUTDOWN_GRACE_S"
    assert all(name == name.lower() for name in WorkerSettings.model_fields)
