# TinyForge verbs. `make run` installs everything and starts the embedded platform;
# `make test` installs everything and runs the test suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PROTO_SRC := $(wildcard protos/tinyforge/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: install install-system install-python protos run test test-slow bench lint fmt workflows chart images clean

install: install-system install-python protos

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

bench: install
	@for b in bench/*/run.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install-python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

clean:
	rm -rf $(VENV) .stamp-* tinyforge/v1/*_pb2*.py*
