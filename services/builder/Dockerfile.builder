# syntax=docker/dockerfile:1
# TinyForge builder image: the platform (every service, the builder's child build process)
# plus the toolchains and emulators that build and verify deployment formats on the target:
#   - arm-none-eabi-gcc + newlib, qemu-system-arm          cortex-m-firmware, arduino, c-library
#                                                          for Cortex-M4F/M7 (QEMU mps2-an386/an500)
#   - riscv64-unknown-elf-gcc + picolibc, qemu-system-riscv32 (qemu-system-misc)
#                                                          esp-idf / c-library for ESP32-C3/C6
#   - gcc, make, cmake (+ gcc-aarch64-linux-gnu)           c-library, linux (x86_64, aarch64)
#   - clang + lld + wasi-libc + libclang-rt-dev-wasm32, node   wasm (run with node:wasi)
#   - esptool                                              esp-idf: elf2image check of the image
# The packages are the ones `make install` installs (scripts/install-system-deps.sh), from
# Debian bookworm, the release the platform image is built on.
#
# Build (from the repository root; images/build.sh does it with IMAGES=builder):
#   python -m pip wheel --wheel-dir .cache/image-wheels . esptool
#   podman build -f services/builder/Dockerfile.builder \
#     --build-arg BASE_IMAGE=localhost/tinyforge/debian-base:bookworm \
#     --build-arg TINYFORGE_VERSION=0.1.0 -t localhost/tinyforge/builder:0.1.0 .
# BASE_IMAGE must provide python3.11 + venv on Debian bookworm, like the root Dockerfile's:
#   - docker.io/library/python:3.11-slim-bookworm where a registry is reachable, or
#   - localhost/tinyforge/debian-base:bookworm, bootstrapped locally (images/base/bootstrap.sh).
# The Python packages come from the host-built wheelhouse (no PyPI access in the build); the
# Debian packages need an APT source: deb.debian.org, or a mirror/proxy given as APT_MIRROR
# (e.g. http://apt-cache.internal/debian).
# Runs as user 10001 with a read-only root filesystem: builds write to /tmp (an emptyDir in the
# Helm chart) and TINYFORGE_DATA_DIR.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TINYFORGE_VERSION=0.1.0
ARG APT_MIRROR=""
LABEL org.opencontainers.image.title="tinyforge-builder" \
      org.opencontainers.image.description="TinyForge builder: platform + embedded toolchains + QEMU" \
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

# Toolchains and emulators (no recommends: no docs, no X11 front-ends of QEMU); then every
# program a deployment format calls (tinyforge.deploy.targets) must be on PATH.
RUN set -eux; \
    if [ -n "${APT_MIRROR}" ]; then \
      printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "${APT_MIRROR}" "${APT_MIRROR}" \
        > /etc/apt/sources.list; rm -f /etc/apt/sources.list.d/debian.sources; \
    fi; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates make cmake binutils gcc libc6-dev \
      gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm \
      gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf binutils-riscv64-unknown-elf \
      qemu-system-misc \
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
      clang lld wasi-libc libclang-rt-dev-wasm32 \
      nodejs; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    for p in gcc make cmake size arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-objcopy \
             arm-none-eabi-nm qemu-system-arm riscv64-unknown-elf-gcc \
             riscv64-unknown-elf-objcopy qemu-system-riscv32 aarch64-linux-gnu-gcc clang node; do \
      command -v "$p" >/dev/null || { echo "missing $p" >&2; exit 1; }; \
    done

# TinyForge + dependencies + esptool from the host-built wheelhouse (bind mount: not a layer).
ARG TINYFORGE_WHEEL_SHA256=unknown
RUN --mount=type=bind,source=.cache/image-wheels,target=/wheels \
    echo "tinyforge wheel ${TINYFORGE_WHEEL_SHA256}" \
 && python3 -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install --no-index --find-links /wheels \
      "tinyforge==${TINYFORGE_VERSION}" esptool \
 && ("$VIRTUAL_ENV/bin/python" -m compileall -q "$VIRTUAL_ENV/lib" >/dev/null || true)

COPY images/platform/healthcheck.py /usr/local/lib/tinyforge/healthcheck.py

RUN groupadd --system --gid 10001 tinyforge \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tinyforge \
      --shell /usr/sbin/nologin tinyforge \
 && mkdir -p /var/lib/tinyforge \
 && chown 10001:10001 /var/lib/tinyforge \
 && "$VIRTUAL_ENV/bin/python" -c "import tinyforge.deploy.registry, services.builder, esptool" \
 && tinyforge build --help >/dev/null

USER 10001:10001
WORKDIR /var/lib/tinyforge
EXPOSE 4800
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/usr/local/lib/tinyforge/healthcheck.py"]
# The chart runs `tinyforge service run builder --port 4800` in this image.
CMD ["tinyforge", "service", "run", "builder", "--port", "4800"]
