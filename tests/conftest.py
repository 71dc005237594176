"""Shared fixtures and helpers: a temporary project (config over tiny CSVs), a trained deployment,
the Flask app, scripts run as processes, and a real gunicorn server on a free loopback port."""

import contextlib
import json
import os
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from risk.config import load_config  # noqa: E402

COLUMNS = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
HEADER = ",".join(COLUMNS)
FEATURES = COLUMNS[1:4]


def write_csv(path: Path, text: str) -> Path:
    """Write a CSV from its text, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def code(number: int) -> str:
    """The `number`-th four-lowercase-letter client code (aaaa, aaab, ...)."""
    letters = string.ascii_lowercase
    return "".join(letters[(number // 26**power) % 26] for power in (3, 2, 1, 0))


def client_rows(seed: int, n: int, rule: str = "activity") -> pd.DataFrame:
    """`n` clients; under rule "activity" those whose last month was quiet leave (as in the practice
    period), under "size" small companies leave, under "flipped" the opposite of "activity"."""
    rng = np.random.default_rng(seed)
    month = rng.integers(0, 200, n)
    employees = rng.integers(1, 500, n)
    noise = rng.integers(0, 80, n)
    exits = {
        "activity": month + noise < 90,
        "flipped": month + noise >= 90,
        "size": employees + 2 * noise < 120,
    }[rule]
    return pd.DataFrame(
        {
            "corporation": [code(seed * 10_000 + i) for i in range(n)],
            "lastmonth_activity": month,
            "lastyear_activity": rng.integers(0, 3000, n),
            "number_of_employees": employees,
            "exited": exits.astype(int),
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
    client_rows(1, 400).to_csv(root / input_folder / "dataset1.csv", index=False)
    client_rows(2, 300).to_csv(root / input_folder / "dataset2.csv", index=False)
    (root / "testdata").mkdir(exist_ok=True)
    client_rows(3, 200).to_csv(root / "testdata" / "testdata.csv", index=False)
    config_path = root / "config.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return config_path


def set_config(config, **changes):
    """Rewrite a project's config file with `changes`; return the reloaded config."""
    data = json.loads(config.config_path.read_text())
    config.config_path.write_text(json.dumps({**data, **changes}))
    return load_config(config.config_path)


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
    from diagnostics import REQUIREMENTS_PATH, installed_version, requirement_names
    from risk.artifacts import OUTDATED_CACHE_FILE

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


def free_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, log_path: Path, seconds: float = 60) -> None:
    """Poll `url` until it answers; fail the test with the server's log if it dies or never answers."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with code {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:  # it answers (503 before a deployment is an answer)
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer {url} within {seconds:g} s:\n{log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def gunicorn(config_path: Path, log_path: Path, *args: str, env=None):
    """gunicorn serving wsgi:app for `config_path` on a free loopback port; yields its base URL."""
    port = free_port()
    binary = Path(sys.executable).with_name("gunicorn")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(binary), "--bind", f"127.0.0.1:{port}", *args, "wsgi:app"],
            cwd=PROJECT_DIR,
            env={**os.environ, "RISK_CONFIG": str(config_path), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(f"{url}/health", process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def history_project(tmp_path_factory):
    """A project with a real history, made by the full process as cron runs it (as processes): a bootstrap;
    a month whose exits follow another rule (drift: re-trained and re-deployed), one client of it without
    last year's activity; then a month like it (no drift). Shared by the page tests, which only read it."""
    root = tmp_path_factory.mktemp("history_project")
    config = load_config(make_project(root, api_base_url=f"http://127.0.0.1:{free_port()}"))
    seed_outdated_cache(config)
    month = client_rows(4, 400, "flipped")
    month.loc[len(month)] = ["zzzz", 50, None, 10, 1]
    for new_file in (None, ("dataset3.csv", month), ("dataset4.csv", client_rows(5, 400, "flipped"))):
        if new_file:
            new_file[1].to_csv(config.input_folder_path / new_file[0], index=False)
        result = run_script("fullprocess.py", config.config_path, env={"RISK_ACTOR": "cron"})
        assert result.returncode in (0, 2), result.stderr[-3000:]  # 2: apicalls found no API, as intended
    return config


def ranked_by_model(config) -> pd.DataFrame:
    """Every client's exit probability from its newest complete row in finaldata.csv, by the deployed
    model's own predict_proba, highest first (ties by code): what the risk list must agree with."""
    import pickle

    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv", dtype={"corporation": str})
    newest = finaldata.drop_duplicates("corporation", keep="last").dropna(subset=FEATURES)
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        model = pickle.load(handle)
    probability = model.predict_proba(newest[FEATURES].to_numpy(dtype=float))[:, 1]
    table = pd.DataFrame({"corporation": newest["corporation"].to_numpy(), "probability": probability})
    return table.sort_values(["probability", "corporation"], ascending=[False, True]).reset_index(drop=True)
