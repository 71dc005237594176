# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.json
PRACTICE_CONFIG ?= practiceconfig.json

.PHONY: run pipeline serve rollback releases cron-install cron-remove bench simulate test lint format clean venv

# The virtual environment, rebuilt when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The main job on the bundled data: the whole story (see demo/story.py).
run: $(VENV)/.installed
	$(BIN)/python demo/story.py

# The four steps and the reports with one configuration, without the full process.
pipeline: $(VENV)/.installed
	RISK_CONFIG=$(CONFIG) $(BIN)/python ingestion.py
	RISK_CONFIG=$(CONFIG) $(BIN)/python training.py
	RISK_CONFIG=$(CONFIG) $(BIN)/python scoring.py
	RISK_CONFIG=$(CONFIG) $(BIN)/python deployment.py
	RISK_CONFIG=$(CONFIG) $(BIN)/python reporting.py

# Production back to the release live before (python deployment.py --rollback); the releases.
rollback: $(VENV)/.installed
	RISK_CONFIG=$(CONFIG) $(BIN)/python deployment.py --rollback

releases: $(VENV)/.installed
	RISK_CONFIG=$(CONFIG) $(BIN)/python deployment.py --list

# The API under gunicorn (settings in gunicorn.conf.py), in the foreground (Ctrl-C stops it).
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
serve: $(VENV)/.installed
	RISK_CONFIG=$(CONFIG) $(BIN)/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT) wsgi:app

# Install or remove this checkout's cron line (cronjob.txt); other crontab lines stay as they were.
CRON_TAG := \# dynamic-risk-assessment $(CURDIR)
cron-install: $(VENV)/.installed
	mkdir -p logs
	(crontab -l 2>/dev/null | grep -vF '$(CRON_TAG)'; grep -v '^#' cronjob.txt | sed 's|@PROJECT@|$(CURDIR)|g') | crontab -
	crontab -l | grep -F '$(CRON_TAG)'

cron-remove:
	(crontab -l 2>/dev/null | grep -vF '$(CRON_TAG)') | crontab -

bench: $(VENV)/.installed
	$(BIN)/python benchmark/benchmark.py

simulate: $(VENV)/.installed
	$(BIN)/python benchmark/simulate.py $(ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf ingesteddata models practicemodels production_deployment production_deployment.releases logs
