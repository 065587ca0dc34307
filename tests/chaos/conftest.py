"""The loop on in-memory fakes (`make_harness`), shared with the worker's tests, for the fault-point tests."""

from tests.worker.conftest import make_harness

__all__ = ["make_harness"]
