# citeqa — two commands: `make run` (serve the sample articles) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test eval lint typecheck install ingest-samples clean help

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is a CPU wheel on local disk here; an unpinned torch
	# would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install citeqa with its test tools

ingest-samples: $(STAMP)  ## Ingest the bundled sample articles into ./data
	$(BIN)/citeqa ingest samples/articles

run: ingest-samples  ## Set up, ingest the samples and serve on http://127.0.0.1:8000
	$(BIN)/citeqa serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM)  ## Set up and run the test suite (browser tests included)
	$(BIN)/ruff check index qa server tests bench
	$(BIN)/mypy
	$(BIN)/pytest
	@echo "Screenshots of the chat page: test-artifacts/screenshots/ ($$(ls test-artifacts/screenshots 2>/dev/null | wc -l) files)"

eval: $(STAMP)  ## Benchmark answer quality on ../shared/eval and the seed set (one table)
	$(BIN)/python -m bench.evaluate

lint: $(STAMP)
	$(BIN)/ruff check index qa server tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:  ## Remove the virtualenv and the default data folder
	rm -rf $(VENV) data bench/.data
