"""The fix for kafka-python 3.0.12 leaving the socket of a failed connect open (worker/kafka_fixes.py)."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import warnings

import pytest
from kafka import KafkaAdminClient
from kafka.net.inet import KafkaNetSocket

from tests.ports import free_port
from tests.worker.conftest import REPO_ROOT
from worker.kafka_fixes import close_sockets_of_failed_connects

pytestmark = pytest.mark.timeout(60)

# Connects to a port where nothing listens, collects garbage, prints how many sockets were found unclosed.
_CONNECT_TO_NOTHING = textwrap.dedent(
    """
    import gc, sys, warnings
    from kafka import KafkaAdminClient
    from worker.kafka_fixes import close_sockets_of_failed_connects

    if sys.argv[2] == "fixed":
        close_sockets_of_failed_connects()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            KafkaAdminClient(bootstrap_servers="127.0.0.1:" + sys.argv[1], bootstrap_timeout_ms=1500)
        except Exception:
            pass
        gc.collect()
    print(sum("unclosed <socket" in str(warning.message) for warning in caught))
    """
)


def _unclosed_sockets(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _CONNECT_TO_NOTHING, str(free_port()), mode],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


def test_unfixed_kafka_python_leaves_the_sockets_of_refused_connects_open() -> None:
    # The defect itself: if a kafka-python upgrade fixes it, this fails and the fix can go.
    assert _unclosed_sockets("unfixed") > 0


def test_with_the_fix_refused_connects_leave_no_socket_open() -> None:
    assert _unclosed_sockets("fixed") == 0


def test_the_fix_is_applied_once() -> None:
    close_sockets_of_failed_connects()
    patched = KafkaNetSocket.sock_connect

    close_sockets_of_failed_connects()

    assert KafkaNetSocket.sock_connect is patched


def test_in_this_process_a_refused_connect_leaves_no_socket_open() -> None:
    # The test session applies the fix (tests/conftest.py), as the worker does before creating clients.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception):  # noqa: B017, PT011 - kafka-python's timeout or connection error
            KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{free_port()}", bootstrap_timeout_ms=1500)
        gc.collect()
    assert not [warning for warning in caught if "unclosed <socket" in str(warning.message)]
