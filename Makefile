# traffic-glue: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
STAMP := $(VENV)/.installed
# uv installs the venvs' packages (from PyPI, as pip would) in a fraction of pip's time:
# on a fresh clone pip took 30 s of make's set-up, uv 17 s with its cache cold.
# Where uv cannot be had, pip installs them, and one line says so.
UV_VERSION := 0.13.9
# pyspark is on PyPI as source only: installing it builds a wheel of its 300 MB of jars.
# Those are zip files already, so the wheel stores them as they are instead of deflating
# them again: uv prepared pyspark in 7.8 s instead of 16.6 (2026-12-06, a fresh clone).
PYSPARK_WHEEL := --config-settings-package "pyspark:--build-option=--compression=stored"
# uv tries its cache alone first (--offline: the pinned packages, and their dependencies
# at the versions this machine fetched last), then the package index. The index answers
# uv's check of pyspark's source as changed, so uv would download it and build its wheel
# again each time: a fresh .venv took 9.0 s with the index and 1.2 s from the cache
# (2026-12-06, the same packages installed). A cache without them fails in a second.
# $(call venv_install,VENV,REQUIREMENTS[,UV_OPTIONS]): REQUIREMENTS into the venv at VENV.
venv_install = $(1)/bin/python -m pip install --quiet "uv==$(UV_VERSION)" 2>/dev/null \
	  && { $(1)/bin/uv pip install --offline --quiet --python $(1)/bin/python $(2) $(3) 2>/dev/null \
	       || $(1)/bin/uv pip install --quiet --python $(1)/bin/python $(2) $(3); } \
	  || { echo "$(1): uv $(UV_VERSION) not there or failed: pip installs instead"; \
	       $(1)/bin/python -m pip install --quiet $(2); }

# Local defaults for `make run`: a small sample, two days, the embedded catalog.
DATA ?= data
SAMPLE_START ?= 2020-04-06
SAMPLE_DAYS ?= 2
SAMPLE_LANES ?= 300
START_DATE ?= 2020-04-06
END_DATE ?= 2020-04-07
SEMANTICS ?= corrected
# The traffic centre's configuration the sample's lanes come from (tools/sample_data.py).
CONFIGURATION ?= tests/fixtures/network/miv-config-2017-05-18.xml.gz

.PHONY: help setup checkov-env browser-env class-archive java-check sample run job sql history test test-fast bench glue-docker-test package deploy clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-18s %s\n", $$1, $$2}'

java-check:
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
	  echo "error: Java 17 is required (Spark 3.5 as on AWS Glue 5.1); found: $${v:-no java on PATH}. Install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)."; exit 1; fi

# The packages' bytecode is written as they are installed (uv's --compile-bytecode; pip
# writes it by default), and the job's library's by setup (compileall: only what changed).
# A job's process reads it instead of compiling each module it imports, also where the
# environment says not to write bytecode (PYTHONDONTWRITEBYTECODE, as this machine's has
# it): without it, a daily rerun compiled 212 modules before its first line, 0.3 s
# (docs/BENCHMARKS.md). A fresh .venv takes about 7 s longer to make.
$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory java-check
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(call venv_install,$(VENV),-e ".[dev]",$(PYSPARK_WHEEL) --compile-bytecode)
	@touch $(STAMP)

setup: $(STAMP) ## Make .venv, fetch the pinned JVM jars into .jars/ and dump the class archive (quick when done already)
	@$(PY) -m compileall -q glue_jobs
	@$(PY) -m tools.jars
	@$(PY) -m tools.class_archive

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON_BOOT) -m venv $(CHECKOV_VENV)
	$(call venv_install,$(CHECKOV_VENV),"checkov==$(CHECKOV_VERSION)")

checkov-env: $(CHECKOV_VENV)/bin/checkov ## Make checkov's own venv (its pins clash with pytest's)

# The browser test (tests/test_page_in_browser.py) opens the day's page in Debian's
# headless Chromium. Installed here, as root with apt-get only; elsewhere nothing is done
# and the test skips saying why (under CI=true it fails instead).
HAVE_BROWSER = [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
INSTALL_BROWSER = if $(HAVE_BROWSER); then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-env: chromium not installed (needs root and apt-get): the browser test will skip"; exit 0; fi; \
	echo "browser-env: apt-get install chromium chromium-driver"; \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	  || echo "browser-env: apt-get failed: the browser test will skip"

browser-env: ## Install Debian's chromium and chromium-driver for the browser test (root and apt-get only; quick when there)
	@$(INSTALL_BROWSER)

sample: setup ## Generate a small raw sample in data/raw (once)
	@if [ -d $(DATA)/raw ]; then echo "sample: $(DATA)/raw exists, keeping it"; else \
	  $(PY) -m tools.sample_data --out $(DATA)/raw --start-date $(SAMPLE_START) --days $(SAMPLE_DAYS) --lanes $(SAMPLE_LANES) \
	    --configuration $(CONFIGURATION); fi

# After `make run`, $(DATA)/curated is the catalog's table traffic.traffic_minutes (its
# metadata files are a catalog's, not v1.metadata.json): the job writes it by that name.
job: sample ## Run the transform job alone over the sample (START_DATE, END_DATE, SEMANTICS); after make run, on its table
	@if ls $(DATA)/curated/metadata/0*.metadata.json >/dev/null 2>&1; then \
	  echo "job: $(DATA)/curated is make run's table traffic.traffic_minutes: writing it through the local catalog"; \
	  table="--target_table traffic.traffic_minutes"; fi; \
	set -x; $(PY) glue_jobs/traffic_transform.py --JOB_NAME local-traffic-transform \
	  --source_path $(DATA)/raw --target_path $(DATA)/curated $$table \
	  --start_date $(START_DATE) --end_date $(END_DATE) --semantics $(SEMANTICS) \
	  --configuration_path $(CONFIGURATION)

run: sample ## Run the workflow locally from its template (crawler and configuration fetch, transform, summary) over the sample
	$(PY) -m workflows.local_runner --raw $(DATA)/raw --curated $(DATA)/curated \
	  --start-date $(START_DATE) --end-date $(END_DATE) --semantics $(SEMANTICS) \
	  --configuration $(CONFIGURATION)

# `make sql Q=...` and `F=...` reach the module through the environment, as typed: no
# shell parses them (backticks, $ and quotes in a query stay SQL) and make does not expand
# them ($(value ...); and Q and F are not exported, which would expand them).
sql: export TRAFFIC_GLUE_SQL_QUERY := $(value Q)
sql: export TRAFFIC_GLUE_SQL_FILE := $(value F)
unexport Q F
sql: setup ## Query the local catalog: a prompt on one Spark session, make sql F=queries.sql (or < queries.sql), or make sql Q='SELECT ...'
	$(PY) -m workflows.local_sql $(if $(TRAFFIC_GLUE_SQL_QUERY),--query-from-env TRAFFIC_GLUE_SQL_QUERY) $(if $(TRAFFIC_GLUE_SQL_FILE),--file="$$TRAFFIC_GLUE_SQL_FILE")

# Spark's history server on the event logs local sessions write (.local/spark-events/;
# tools/history.py), in the foreground until Ctrl-C.
HISTORY_PORT ?= 18080
history: $(STAMP) ## Show the Spark UI of local runs (Spark's history server on their event logs) at http://127.0.0.1:18080; HISTORY_PORT=... another port
	@$(PY) -m tools.history --port $(HISTORY_PORT)

# A worker process per core (at most 4; each runs its own Spark session), a module per
# unit of work, the longest first (tests/conftest.py). One module alone, serially:
# .venv/bin/python -m pytest tests/test_job.py
# The slowest tests are listed last: where the suite's minutes go (issue 19).
XDIST := -n auto --maxprocesses 4 --dist loadscope --no-loadscope-reorder --durations=15

# The suite's Python processes keep the bytecode of what they import (in __pycache__
# folders, which git ignores), also where the environment says not to write it
# (PYTHONDONTWRITEBYTECODE, as this machine's has it): otherwise each of them compiles
# every module it imports again, from pytest's workers (a worker's collection took 11.6 s
# every time, 4.7 s from a clone's second run on) to each job run in a process of its own.
KEEP_BYTECODE := PYTHONDONTWRITEBYTECODE=

# The suite starts once .venv, the jars and checkov's venv are there. The browser (its
# apt-get took 20-60 s of a fresh machine's set-up) installs while the suite runs, into
# .local/browser-env.log; the browser test, one of the last, waits for the file
# BROWSER_ENV_DONE that says it is done (tests/test_page_in_browser.py), and make waits
# for it too before it returns the suite's status.
BROWSER_ENV_DONE := $(CURDIR)/.local/browser-env.done

test: ## Run the test suite (all cores)
	@$(MAKE) --no-print-directory -j2 setup checkov-env
	@mkdir -p .local; rm -f $(BROWSER_ENV_DONE); \
	$(HAVE_BROWSER) || echo "browser-env: beside the suite, see .local/browser-env.log"; \
	{ ( $(INSTALL_BROWSER) ) > .local/browser-env.log 2>&1; echo $$? > $(BROWSER_ENV_DONE); } & \
	$(KEEP_BYTECODE) TRAFFIC_GLUE_BROWSER_ENV_DONE=$(BROWSER_ENV_DONE) $(PY) -m pytest -q $(XDIST); \
	suite=$$?; wait; exit $$suite

# make setup dumps the class archive (tools/class_archive.py, about 22 s once per clone):
# every local JVM then maps the classes a run loads instead of reading them from the jars.
# Measured on 2 cores (2026-12-07, docs/BENCHMARKS.md): a daily rerun of a real-sized day
# spent 1.6-2.0 s less outside its computing phase; the suite's tests took 284-295 s against
# 300-303 s, so a fresh clone's make test (CI's) takes about as long as before (the dump
# eats the gain: 315-328 s against 307-328 s), and each later one is quicker.
class-archive: $(STAMP) ## Dump the class archive again, even if it is there (tools/class_archive.py)
	@$(PY) -m tools.jars
	@$(PY) -m tools.class_archive --force

test-fast: setup ## Run every test that starts no Spark job (under a minute: the edit loop)
	$(KEEP_BYTECODE) TRAFFIC_GLUE_FAST_TESTS=1 $(PY) -m pytest -q -m "not spark" --durations=5 $(XDIST)

BENCH_ARGS ?=
bench: setup ## Benchmark the job against DuckDB at full Flanders scale (slow; BENCH_ARGS="--repeat 3" passes options)
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

package: setup ## Zip the library and the job script for Glue into build/
	$(PY) -m tools.deploy package --out build

deploy: setup ## Deploy both stacks and the artifacts to AWS (needs credentials)
	$(PY) -m tools.deploy deploy

glue-docker-test: ## Run the tests inside the AWS Glue 5 docker image (needs a docker engine)
	docker run -i --rm -v "$$PWD":/home/hadoop/workspace/ --workdir /home/hadoop/workspace \
	  -e CI=$${CI:-} --name traffic_glue_pytest public.ecr.aws/glue/aws-glue-libs:5 \
	  -c "python3 -m pip install --user --quiet chispa moto duckdb numpy cfn-lint && python3 -m pytest -p no:cacheprovider --disable-warnings"

clean: ## Remove generated data, build output and the local catalog (keeps .venv)
	@if [ -x $(PY) ]; then $(PY) -m traffic_glue.runtime.metastore stop .local/catalog; fi
	rm -rf $(DATA) build .local spark-warehouse metastore_db derby.log  # .jars stays: make setup
