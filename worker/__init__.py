"""The claim validation worker: Kafka consumer loop, delivery guarantees, metrics, logs and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("claims-validation-worker")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
