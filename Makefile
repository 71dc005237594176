# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.json
PRACTICE_CONFIG ?= practiceconfig.json

.PHONY: run pipeline serve rollback releases cron-install cron-remove bench simulate screenshots test mutation lint format clean venv

# The virtual environment, rebuilt when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The main job on the bundled data: the whole story (see demo/story.py), its API on PORT.
run: $(VENV)/.installed
	$(BIN)/python demo/story.py --port $(PORT)

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
# Every crontab line but the one ending in this checkout's tag (not a sibling's whose path extends it).
WITHOUT_OUR_LINE := TAG='$(CRON_TAG)' awk 'substr($$0, length($$0) - length(ENVIRON["TAG"]) + 1) != ENVIRON["TAG"]'
cron-install: $(VENV)/.installed
	mkdir -p logs
	(crontab -l 2>/dev/null | $(WITHOUT_OUR_LINE); grep -v '^#' cronjob.txt | sed 's|@PROJECT@|$(CURDIR)|g') | crontab -
	crontab -l | TAG='$(CRON_TAG)' awk 'substr($$0, length($$0) - length(ENVIRON["TAG"]) + 1) == ENVIRON["TAG"]'

cron-remove:
	(crontab -l 2>/dev/null | $(WITHOUT_OUR_LINE)) | crontab -

bench: $(VENV)/.installed
	$(BIN)/python benchmark/benchmark.py

# The decision simulation (about an hour on 2 cores): the tables on screen, the whole report in docs/simulation.md.
simulate: $(VENV)/.installed
	$(BIN)/python benchmark/simulate.py --report docs/simulation.md $(ARGS)

# PNGs of every page and of the report's pages after `make run`, `make rollback` and a shifted month, in
# docs/screenshots/ (the story plays in a temporary copy; needs chromium, chromium-driver, poppler-utils).
screenshots: $(VENV)/.installed
	$(BIN)/python demo/screenshots.py

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# Mutation testing of the modules that decide things ([tool.mutmut] in pyproject.toml; slow, not in CI):
# a fresh run of every mutant against those modules' tests, then the score; tests/README.md says why each survivor lives.
MUTATION_CHILDREN ?= 2
mutation: $(VENV)/.installed
	rm -rf mutants
	@start=$$(date +%s); $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) && \
	$(BIN)/python -c "$$MUTATION_SCORE" $$(( $$(date +%s) - start ))

define MUTATION_SCORE
import collections, glob, json, sys
from mutmut.stats import status_by_exit_code

modules, survivors = {}, []
for meta in sorted(glob.glob("mutants/risk/*.py.meta")):
    codes = json.load(open(meta))["exit_code_by_key"]
    modules[meta[len("mutants/") : -len(".meta")]] = collections.Counter(status_by_exit_code[c] for c in codes.values())
    survivors += [name for name, c in codes.items() if status_by_exit_code[c] not in ("killed", "timeout")]
modules["all"] = sum(modules.values(), collections.Counter())
print(f"{'module':<20}{'mutants':>8}{'killed':>8}{'timeout':>8}{'survived':>9}{'no tests':>9}{'score':>8}")
for name, count in modules.items():
    total, killed = count.total(), count["killed"] + count["timeout"]
    print(f"{name:<20}{total:>8}{count['killed']:>8}{count['timeout']:>8}{count['survived']:>9}{count['no tests']:>9}"
          f"{100 * killed / total:>7.1f}%")
seconds = int(sys.argv[1])
print(f"killed {killed} of {total} mutants ({100 * killed / total:.1f} %) in {seconds // 3600}h {seconds // 60 % 60:02d}m")
print("not killed (tests/README.md says why):", *survivors, sep="\n  ")
endef
export MUTATION_SCORE

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Everything the project generated (demo/clean.py says what): outputs, leftovers, data months generate_data.py
# --month added; the bundled data stays. Standard library only: no virtual environment needed.
clean:
	$(PYTHON) demo/clean.py
