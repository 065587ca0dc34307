"""Passwords in the settings are secrets: typed as `SecretStr`, masked in every representation and error."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from worker.kafka_io import connection_options
from worker.settings import ConfigError, load_settings

SASL_PASSWORD = "Pw-91c2-sasl-secret"
KEY_PASSWORD = "Pw-5e07-key-secret"


@pytest.fixture
def secured_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CLAIMS_SECURITY_PROTOCOL": "SASL_SSL",
        "CLAIMS_SASL_MECHANISM": "SCRAM-SHA-256",
        "CLAIMS_SASL_USERNAME": "worker",
        "CLAIMS_SASL_PASSWORD": SASL_PASSWORD,
        "CLAIMS_SSL_KEY_PASSWORD": KEY_PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("secured_environment")
def test_passwords_from_the_environment_are_secret_strings() -> None:
    settings = load_settings()

    assert isinstance(settings.sasl_password, SecretStr)
    assert isinstance(settings.ssl_key_password, SecretStr)
    assert settings.sasl_password.get_secret_value() == SASL_PASSWORD


@pytest.mark.usefixtures("secured_environment")
def test_no_representation_of_the_settings_shows_a_password() -> None:
    settings = load_settings()

    shown = [repr(settings), str(settings), settings.model_dump_json(), str(settings.public_summary())]
    for text in shown:
        assert SASL_PASSWORD not in text
        assert KEY_PASSWORD not in text


@pytest.mark.usefixtures("secured_environment")
def test_the_kafka_client_options_carry_the_password_in_clear_only_for_the_client() -> None:
    options = connection_options(load_settings())

    # The client needs the clear value; this dict is never logged (the settings summary is what the worker logs).
    assert options["sasl_plain_password"] == SASL_PASSWORD
    assert options["ssl_password"] == KEY_PASSWORD


@pytest.mark.usefixtures("secured_environment")
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CLAIMS_SASL_USERNAME", ""),  # SASL without a user: the model-level check names the variables
        ("CLAIMS_SASL_MECHANISM", "SCRAM-SHA-1"),  # a field error next to the secret
        ("CLAIMS_SSL_CAFILE", "/nonexistent/ca.pem"),
        ("CLAIMS_MAX_OUTAGE_S", "not-a-number"),
    ],
)
def test_configuration_errors_never_echo_a_password(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    message = str(raised.value)
    assert "invalid configuration" in message
    assert SASL_PASSWORD not in message
    assert KEY_PASSWORD not in message


def test_a_password_given_where_a_number_belongs_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    # An operator pasting the secret into the wrong variable: the error names the variable, not the value.
    monkeypatch.setenv("CLAIMS_REQUEST_TIMEOUT_MS", SASL_PASSWORD)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert "CLAIMS_REQUEST_TIMEOUT_MS" in str(raised.value)
    assert SASL_PASSWORD not in str(raised.value)
