"""The worker's loop on in-memory fakes (`make_harness`), shared with tests/worker."""

from tests.worker.conftest import make_harness

__all__ = ["make_harness"]
