# syntax=docker/dockerfile:1
# TinyForge platform image: every gRPC service (`tinyforge service run SERVICE`), every workflow step
# and the KServe impulse predictor run from it.
#
# Built by `make images` (images/build.sh), which first fills .cache/image-wheels with wheels of
# TinyForge and all its dependencies on the host, so the build itself needs no network
# (`--network=none`) and no CA bundle. BASE_IMAGE must provide python3.11 + venv:
#   - python:3.11-slim-bookworm where a registry is reachable, or
#   - localhost/tinyforge/debian-base:bookworm, bootstrapped locally (images/base/bootstrap.sh).
# Runs as a non-root user and with a read-only root filesystem: everything that writes goes to
# TINYFORGE_DATA_DIR or /tmp (mount emptyDirs there in Kubernetes, as the Helm chart does).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TINYFORGE_VERSION=0.1.0
LABEL org.opencontainers.image.title="tinyforge-platform" \
      org.opencontainers.image.description="TinyForge services, workflow steps and predictor" \
      org.opencontainers.image.version="${TINYFORGE_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV VIRTUAL_ENV=/opt/tinyforge \
    PATH=/opt/tinyforge/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TINYFORGE_DATA_DIR=/var/lib/tinyforge \
    TINYFORGE_GRPC_HOST=0.0.0.0 \
    TINYFORGE_GRPC_PORT=4800 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    KERAS_HOME=/tmp/keras \
    TF_CPP_MIN_LOG_LEVEL=2

# Wheels come from the build context through a bind mount, so they never land in a layer.
# Byte-code is compiled here (the root filesystem is read-only at run time).
# A bind mount is not part of the layer cache key: the wheel's hash is, so a changed TinyForge
# wheel re-runs the install instead of reusing a stale layer.
ARG TINYFORGE_WHEEL_SHA256=unknown
RUN --mount=type=bind,source=.cache/image-wheels,target=/wheels \
    echo "tinyforge wheel ${TINYFORGE_WHEEL_SHA256}" \
 && python3 -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install --no-index --find-links /wheels "tinyforge==${TINYFORGE_VERSION}" \
 && "$VIRTUAL_ENV/bin/python" -m compileall -q "$VIRTUAL_ENV/lib" >/dev/null || true

COPY images/platform/healthcheck.py /usr/local/lib/tinyforge/healthcheck.py

RUN groupadd --system --gid 10001 tinyforge \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tinyforge \
      --shell /usr/sbin/nologin tinyforge \
 && mkdir -p /var/lib/tinyforge \
 && chown 10001:10001 /var/lib/tinyforge \
 && "$VIRTUAL_ENV/bin/python" -c "import tinyforge, services, grpc_health" \
 && tinyforge --help >/dev/null

USER 10001:10001
WORKDIR /var/lib/tinyforge
EXPOSE 4800 4810
# Podman keeps HEALTHCHECK only with --format docker (images/build.sh passes it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/usr/local/lib/tinyforge/healthcheck.py"]
# The chart overrides the command per service; this default serves the API alone.
CMD ["tinyforge", "service", "run", "api", "--port", "4800"]
