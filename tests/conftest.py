"""Shared fixtures: a temporary project (config over tiny CSVs), a trained model, helpers to run scripts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from common import COLUMNS, load_config  # noqa: E402

HEADER = ",".join(COLUMNS)


def write_csv(path: Path, text: str) -> Path:
    """Write a CSV from its text, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def client_rows(seed: int, n: int) -> pd.DataFrame:
    """`n` clients whose exit depends on last month's activity, as the practice period's did."""
    rng = np.random.default_rng(seed)
    month = rng.integers(0, 200, n)
    return pd.DataFrame(
        {
            "corporation": [f"c{seed:02d}{i:04d}" for i in range(n)],
            "lastmonth_activity": month,
            "lastyear_activity": rng.integers(0, 3000, n),
            "number_of_employees": rng.integers(1, 500, n),
            "exited": (month + rng.integers(0, 80, n) < 90).astype(int),
        }
    )


def make_project(root: Path, input_folder="sourcedata", **overrides) -> Path:
    """A config over data folders inside `root`, with two small input files and test data."""
    config = {
        "input_folder_path": input_folder,
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        **overrides,
    }
    (root / input_folder).mkdir(parents=True, exist_ok=True)
    client_rows(1, 120).to_csv(root / input_folder / "dataset1.csv", index=False)
    client_rows(2, 80).to_csv(root / input_folder / "dataset2.csv", index=False)
    (root / "testdata").mkdir(exist_ok=True)
    client_rows(3, 100).to_csv(root / "testdata" / "testdata.csv", index=False)
    config_path = root / "config.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return config_path


@pytest.fixture
def config_path(tmp_path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
def config(config_path):
    return load_config(config_path)


@pytest.fixture
def trained_project(config_path):
    """The project after ingestion, training, scoring and deployment, run as functions."""
    import deployment
    import ingestion
    import scoring
    import training

    for step in (ingestion, training, scoring, deployment):
        step.main(config_path)
    return config_path


def run_script(script: str, config_path: Path, *args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run a top-level script as a process with this interpreter and RISK_CONFIG set."""
    full_env = {**os.environ, "RISK_CONFIG": str(config_path), **(env or {})}
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / script), *args],
        cwd=cwd or config_path.parent,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def seed_outdated_cache(config, latest="9.9.9") -> None:
    """A fresh outdated-packages cache, so nothing asks pip (and the network) during a test."""
    import time

    from diagnostics import OUTDATED_CACHE_FILE, REQUIREMENTS_PATH, installed_version, requirement_names

    packages = [
        {"package": name, "installed": installed_version(name), "latest": latest}
        for name in requirement_names(REQUIREMENTS_PATH)
    ]
    config.output_model_path.mkdir(parents=True, exist_ok=True)
    cache = {"checked_at": time.time(), "packages": packages}
    (config.output_model_path / OUTDATED_CACHE_FILE).write_text(json.dumps(cache))


@pytest.fixture
def app(trained_project, config):
    from app import create_app

    seed_outdated_cache(config)
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()
