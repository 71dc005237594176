"""The full process as cron runs it: scenarios in temporary folders, as processes."""

import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests
from conftest import PROJECT_DIR, client_rows, make_project, run_script, seed_outdated_cache

from common import load_config
from scoring import load_model, score_model

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def project(tmp_path):
    """A project whose API address answers nothing (apicalls fails unless a test starts one)."""
    config_path = make_project(tmp_path, api_base_url=f"http://127.0.0.1:{closed_port()}")
    seed_outdated_cache(load_config(config_path))
    return load_config(config_path)


def fullprocess(config, **kwargs) -> subprocess.CompletedProcess:
    return run_script("fullprocess.py", config.config_path, **kwargs)


def log_text(config) -> str:
    return config.log_path.read_text()


def runs(config) -> list[dict]:
    return [
        json.loads(line)
        for line in (config.log_path.parent / "fullprocess_runs.jsonl").read_text().splitlines()
    ]


def release_of(config) -> str:
    return config.prod_deployment_path.resolve().name


def assert_consistent_deployment(config) -> None:
    """Production holds the three files of one deployment: the score is the model's test F1."""
    prod = config.prod_deployment_path.resolve()
    assert sorted(p.name for p in prod.iterdir()) == [
        "ingestedfiles.txt",
        "latestscore.txt",
        "trainedmodel.pkl",
    ]
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    assert float((prod / "latestscore.txt").read_text()) == score_model(
        load_model(prod / "trainedmodel.pkl"), testdata
    )
    assert (prod / "ingestedfiles.txt").read_text().splitlines()


def add_drifted_file(config, name="dataset9.csv", seed=7, rows=2000) -> None:
    """New data whose exits follow the opposite rule: the deployed model's F1 on it collapses."""
    df = client_rows(seed, rows)
    df["exited"] = 1 - df["exited"]
    df.to_csv(config.input_folder_path / name, index=False)


@pytest.fixture
def bootstrapped(project):
    result = fullprocess(project)
    assert result.returncode == 2, result.stderr
    return project


def test_a_fresh_checkout_bootstraps_and_says_the_api_is_unreachable(bootstrapped):
    config = bootstrapped
    assert_consistent_deployment(config)
    assert (config.output_model_path / "report.pdf").is_file()
    assert (config.output_model_path / "confusionmatrix.png").is_file()
    assert not (config.output_model_path / "apireturns.txt").exists()
    text = log_text(config)
    assert "nothing is deployed at" in text and "bootstrapping" in text
    assert "apicalls could not reach the API" in text and "the reports are written" in text
    (run,) = runs(config)
    assert run["decision"] == "bootstrap" and run["exit_code"] == 2
    assert (
        list(run["steps"]) == ["ingestion", "training", "scoring", "deployment", "reporting", "apicalls"][:5]
    )


NO_HEAVY_IMPORTS = """
import runpy, sys
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(code, sorted(m for m in ("pandas", "sklearn", "matplotlib", "numpy") if m in sys.modules))
"""


def test_no_new_data_stops_at_once_without_heavy_imports(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    result = subprocess.run(
        [sys.executable, "-c", NO_HEAVY_IMPORTS, str(PROJECT_DIR / "fullprocess.py")],
        env={**os.environ, "RISK_CONFIG": str(config.config_path)},
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "0 []"
    assert "no new data: the 2 file(s)" in log_text(config).splitlines()[-1]
    assert release_of(config) == before and len(runs(config)) == 1


def test_new_data_without_drift_keeps_the_model_and_is_not_checked_again(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    # More clients of the same period: the deployed model does as well on them as on the test data.
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    testdata.assign(corporation=testdata["corporation"] + "x").to_csv(
        config.input_folder_path / "dataset3.csv", index=False
    )
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    assert release_of(config) == before
    assert "no drift: keeping the deployed model" in log_text(config)
    run = runs(config)[-1]
    assert run["decision"] == "no drift" and run["new_data_score"] >= run["deployed_score"]
    metrics_mtime = (config.output_folder_path / "ingestionmetrics.json").stat().st_mtime_ns
    result = fullprocess(config)
    assert result.returncode == 0
    assert "no new data: the 3 file(s)" in log_text(config).splitlines()[-1]
    assert (config.output_folder_path / "ingestionmetrics.json").stat().st_mtime_ns == metrics_mtime
    # A further new file starts a new check over all the data.
    add_drifted_file(config, "dataset4.csv")
    assert fullprocess(config).returncode == 2
    assert runs(config)[-1]["new_files"] == ["dataset4.csv"] and runs(config)[-1]["decision"] == "drift"


@pytest.fixture
def server(bootstrapped, tmp_path):
    """gunicorn serving the project's API, with the project's config pointing apicalls at it."""
    config = bootstrapped
    port = closed_port()
    data = json.loads(config.config_path.read_text())
    config.config_path.write_text(json.dumps({**data, "api_base_url": f"http://127.0.0.1:{port}"}))
    log = (tmp_path / "gunicorn.log").open("w")
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=PROJECT_DIR,
        env={**os.environ, "RISK_CONFIG": str(config.config_path)},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            requests.get(f"{url}/health", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


def test_new_data_with_drift_retrains_redeploys_and_the_running_api_serves_it(bootstrapped, server):
    config = bootstrapped
    before = release_of(config)
    assert requests.get(f"{server}/health").json()["release"] == before
    report_mtime = (config.output_model_path / "report.pdf").stat().st_mtime_ns
    add_drifted_file(config)
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    after = release_of(config)
    assert after != before
    assert_consistent_deployment(config)
    assert "dataset9.csv" in (config.prod_deployment_path / "ingestedfiles.txt").read_text()
    run = runs(config)[-1]
    assert run["decision"] == "drift" and run["new_data_score"] < run["deployed_score"]
    assert list(run["steps"]) == ["ingestion", "training", "scoring", "deployment", "reporting", "apicalls"]
    assert "-> drift: re-training" in log_text(config)
    assert (config.output_model_path / "report.pdf").stat().st_mtime_ns > report_mtime
    answers = json.loads((config.output_model_path / "apireturns.txt").read_text())
    assert answers["scoring"]["release"] == after
    assert requests.get(f"{server}/health").json()["release"] == after


def test_a_failing_step_stops_the_run_and_leaves_production_untouched(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    add_drifted_file(config)
    model_folder = config.output_model_path
    model_folder.rename(model_folder.with_name("models-away"))
    model_folder.write_text("not a folder")  # training cannot write its model
    result = fullprocess(config)
    assert result.returncode == 1
    assert "step training failed" in log_text(config) and "the current deployment is untouched" in log_text(
        config
    )
    assert release_of(config) == before
    assert_consistent_deployment(config)
    model_folder.unlink()
    model_folder.with_name("models-away").rename(model_folder)
    assert fullprocess(config).returncode == 2  # the next run retries the same new data
    assert release_of(config) != before


def test_a_second_run_while_one_is_running_exits_at_once_and_changes_nothing(bootstrapped):
    config = bootstrapped
    add_drifted_file(config)
    before = release_of(config)
    with open(config.log_path.parent / "fullprocess.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = fullprocess(config)
    assert result.returncode == 75
    assert "another run is in progress" in log_text(config).splitlines()[-1]
    assert release_of(config) == before and len(runs(config)) == 1


def test_runs_killed_at_random_moments_leave_one_consistent_deployment(bootstrapped):
    config = bootstrapped
    rng = random.Random(11)
    for trial in range(8):
        add_drifted_file(config, f"dataset{10 + trial}.csv", seed=20 + trial, rows=300 * (trial + 1))
        env = {**os.environ, "RISK_CONFIG": str(config.config_path)}
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "fullprocess.py")], env=env, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 4.0))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert_consistent_deployment(config)
        result = fullprocess(config)
        assert result.returncode in (0, 2), f"trial {trial}: {result.stderr[-2000:]}"
        assert_consistent_deployment(config)
        assert (config.output_model_path / "report.pdf").is_file()
    deployed = (config.prod_deployment_path / "ingestedfiles.txt").read_text().split()
    assert set(deployed) >= {"dataset1.csv", "dataset2.csv"}


def test_a_missing_input_folder_is_one_log_line_and_exit_1(bootstrapped):
    config = bootstrapped
    config.input_folder_path.rename(config.input_folder_path.with_name("elsewhere"))
    result = fullprocess(config)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "input folder" in log_text(config).splitlines()[-1] and "does not exist" in log_text(config)


def test_a_release_deployed_without_reports_gets_them_on_the_next_run(bootstrapped):
    import deployment

    config = bootstrapped
    (config.output_model_path / "report.pdf").unlink()
    deployment.main(config.config_path)  # deployed by hand: no reports yet
    result = fullprocess(config)
    assert result.returncode == 2
    assert f"release {release_of(config)} has no reports yet: reporting" in log_text(config)
    assert (config.output_model_path / "report.pdf").is_file()
    assert runs(config)[-1]["trigger"] == "report"
    assert fullprocess(config).returncode == 0
    assert "no new data" in log_text(config).splitlines()[-1]
