# The two quickstart commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= smollm2-135m-instruct
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup model bench bench-compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

model: $(STAMP)
	$(BIN)/tokenmill models pull $(MODEL)

run: model
	$(BIN)/tokenmill serve --model $(MODEL) --host $(HOST) --port $(PORT)

test: model
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# serving benchmark of tokenmill alone (scripts/bench_serving.sh), and side by side with llama-server
bench: model
	scripts/bench_serving.sh

bench-compare: model
	scripts/bench_compare.sh

clean:
	rm -rf $(VENV) build src/*.egg-info
