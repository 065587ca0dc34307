# syntax=docker/dockerfile:1
# The claim validation worker: `docker build -t claims-worker .`, then `docker run claims-worker` runs
# `claims-worker run` (configure it with CLAIMS_* environment variables, see the README). The same image runs the
# other subcommands: `docker run claims-worker topics create --partitions 6`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the project and its pinned dependencies into a virtualenv ----------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# The project's own files only (.dockerignore keeps out everything else): setuptools builds the wheel from them.
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY rules ./rules
COPY worker ./worker
COPY adapters ./adapters
# constraints.txt pins every version `make test` and CI use, so the image runs what was tested. Not editable (-e):
# the runtime stage copies only the virtualenv.
RUN /opt/venv/bin/pip install -c constraints.txt . \
    && /opt/venv/bin/claims-worker --version

# --- runtime --------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# A fixed uid/gid (also in deploy/k8s: runAsUser) so volume permissions and pod security contexts can name it.
RUN groupadd --system --gid 10001 claims \
    && useradd --system --uid 10001 --gid claims --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin claims
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLAIMS_LOG_FORMAT=json \
    CLAIMS_METRICS_PORT=9108
USER claims:claims
WORKDIR /tmp
# /metrics, /healthz and /readyz (CLAIMS_METRICS_PORT).
EXPOSE 9108
# Liveness only (/healthz): /readyz is 503 during a broker outage, and restarting the container would not help.
# The slim image has no curl, so the check is Python's stdlib; urlopen raises on 503 or a refused connection,
# which exits 1 (unhealthy). start-period: the rule engine and the Kafka clients start before the loop ticks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CLAIMS_METRICS_PORT', '9108'), timeout=4)"]
# Exec form: claims-worker is PID 1 and gets SIGTERM itself, finishes its batch, commits and exits within
# CLAIMS_SHUTDOWN_GRACE_S (the compose stop_grace_period and k8s terminationGracePeriodSeconds are longer).
ENTRYPOINT ["claims-worker"]
CMD ["run"]
