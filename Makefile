# Tonehub: `make run` serves on the embedded defaults, `make test` runs every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test check model model-commercial evaluate eval bench bench-metering demo-slack demo-salesforce demo-jobs loadtest clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test: requirements.txt requirements-test.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.runtime

$(VENV)/.train: requirements.txt requirements-train.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-train.txt
	touch $@

## run: migrations, embedded Redis, one RQ worker, gunicorn on 127.0.0.1:$${TONEHUB_PORT:-8000}
run: $(VENV)/.runtime
	$(PY) scripts/run_dev.py

## test: the whole pytest suite, then ruff, import-linter and mypy
test: $(VENV)/.test
	$(PY) -m pytest
	VENV_BIN=$(VENV)/bin scripts/check

check: $(VENV)/.test
	VENV_BIN=$(VENV)/bin scripts/check

TRAIN := $(PY) -m core.scoring.training
MODEL_VERSION ?= 1.3.0

## model: train the shipped 1.3.0 (resumable), export to int8 ONNX, gate and
## evaluate into models/ (other runs tried, with their commands, are in docs/model-runs.md)
model: $(VENV)/.train
	$(TRAIN) all --version 1.3.0 --profile tweets --epochs 3 --lr 6e-5

## model-commercial: the profile trained only on data licensed for commercial use
model-commercial: $(VENV)/.train
	$(TRAIN) all --name tonehub-sentiment-commercial --version 1.1.0 \
	  --profile commercial --epochs 3

## eval: re-measure the exported model (needs the fp32 graph from `make model`)
eval evaluate: $(VENV)/.train
	$(TRAIN) evaluate --version $(MODEL_VERSION)

## bench: texts/s and latency of our engine vs PyTorch eager, pipeline, ORT fp32, VADER
bench: $(VENV)/.train
	$(PY) -m core.scoring.training.bench

## bench-metering: auth + admission + metering overhead, exactness, SIGKILL mid-flush
bench-metering: $(VENV)/.runtime
	$(PY) scripts/bench_metering.py

## demo-slack: fake Slack + the service + an install + a signed event sent twice
demo-slack: $(VENV)/.test
	$(PY) scripts/demo_slack.py

## loadtest: wrk at rising rates against make-run-style gunicorn, 4 worker/thread settings
loadtest: $(VENV)/.runtime
	$(PY) scripts/loadtest.py --out docs/loadtest.md

## demo-jobs: a 10,000-text batch job with progress, results checked, signed job.succeeded
demo-jobs: $(VENV)/.test
	$(PY) scripts/demo_jobs.py

## demo-salesforce: fake org (300 Cases) + the service + OAuth connect + three syncs
demo-salesforce: $(VENV)/.test
	$(PY) scripts/demo_salesforce.py

clean:
	rm -rf var/redis var/tonehub.db* var/dev_api_key.json
