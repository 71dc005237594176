"""The full process as cron runs it: scenarios in temporary folders, as processes, read from the history."""

import fcntl
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from conftest import (
    PROJECT_DIR,
    client_rows,
    free_port,
    gunicorn,
    make_project,
    run_script,
    seed_outdated_cache,
    set_config,
)

from risk import history, registry
from risk.config import load_config

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project whose API address answers nothing (apicalls fails unless a test starts one)."""
    monkeypatch.setenv("RISK_ACTOR", "cron")
    config = load_config(make_project(tmp_path, api_base_url=f"http://127.0.0.1:{free_port()}"))
    seed_outdated_cache(config)
    return config


def fullprocess(config, **kwargs) -> subprocess.CompletedProcess:
    return run_script("fullprocess.py", config.config_path, **kwargs)


def log_lines(config) -> list[str]:
    return config.log_path.read_text().splitlines()


def query(config, sql, params=()) -> list[dict]:
    with sqlite3.connect(config.history_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, params)]


def runs(config) -> list[dict]:
    return query(config, "SELECT * FROM runs ORDER BY id")


def verdicts(config, run_id) -> dict[tuple, dict]:
    rows = query(config, "SELECT * FROM verdicts WHERE run_id = ? ORDER BY id", (run_id,))
    return {(row["kind"], row["feature"], row["statistic"]): row for row in rows}


def release_of(config) -> str:
    return config.prod_deployment_path.resolve().name


def assert_agreement(config) -> None:
    """Production holds one complete release, and the history says it is live."""
    prod = config.prod_deployment_path.resolve()
    assert sorted(p.name for p in prod.iterdir()) == [
        "ingestedfiles.txt",
        "latestscore.txt",
        "modelcard.json",
        "trainedmodel.pkl",
    ]
    (last,) = query(config, "SELECT to_release FROM deployments WHERE state = 'done' ORDER BY id DESC LIMIT 1")
    assert last["to_release"] == prod.name
    assert query(config, "SELECT * FROM deployments WHERE state = 'pending'") == []


def add_file(config, name, seed, rows, rule="activity", **changes):
    df = client_rows(seed, rows, rule)
    for column, factor in changes.items():
        df[column] = (df[column] * factor).astype(int)
    df.to_csv(config.input_folder_path / name, index=False)


@pytest.fixture
def bootstrapped(project):
    result = fullprocess(project)
    assert result.returncode == 2, result.stderr
    return project


def test_a_fresh_checkout_bootstraps_and_records_why(bootstrapped):
    config = bootstrapped
    assert_agreement(config)
    assert (config.output_model_path / "report.pdf").is_file()
    assert not (config.output_model_path / "apireturns.txt").exists()
    text = config.log_path.read_text()
    assert "nothing is deployed at" in text and "bootstrapping" in text
    assert "apicalls could not reach the API" in text and "the reports are written" in text
    (run,) = runs(config)
    assert (run["trigger"], run["decision"], run["exit_code"], run["state"], run["actor"]) == (
        "bootstrap",
        "bootstrap",
        2,
        "finished",
        "cron",
    )
    assert list(run["steps"]) if isinstance(run["steps"], dict) else True
    assert query(config, "SELECT reason, actor, run_id FROM deployments") == [
        {"reason": "bootstrap", "actor": "cron", "run_id": run["id"]}
    ]
    assert verdicts(config, run["id"])[("gate", None, "f1")]["outcome"] == "better"


NO_HEAVY_IMPORTS = """
import runpy, sys
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(code, sorted(m for m in ("pandas", "sklearn", "matplotlib", "numpy", "scipy") if m in sys.modules))
"""


def test_no_new_data_stops_at_once_without_heavy_imports_and_leaves_a_heartbeat(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    result = subprocess.run(
        [sys.executable, "-c", NO_HEAVY_IMPORTS, str(PROJECT_DIR / "fullprocess.py")],
        env={**os.environ, "RISK_CONFIG": str(config.config_path)},
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "0 []", result.stderr
    assert "no new data: the 2 file(s)" in log_lines(config)[-1]
    assert release_of(config) == before and len(runs(config)) == 1
    (beat,) = query(config, "SELECT * FROM heartbeats")
    assert (beat["config_path"], beat["outcome"]) == (str(config.config_path), "no new data")
    assert beat["checked_at"] > runs(config)[0]["finished_at"]


def test_new_data_without_drift_keeps_the_model_and_is_not_judged_again(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=1500)  # more clients of the same period
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    assert release_of(config) == before
    run = runs(config)[-1]
    assert (run["trigger"], run["decision"], run["new_files"]) == (
        "new data",
        "no drift: the live model stays",
        '["dataset3.csv"]',
    )
    judged = verdicts(config, run["id"])
    performance = judged[("performance", None, "f1")]
    assert performance["outcome"] == "no drift" and performance["n"] == 1500
    assert performance["low"] <= performance["value"] <= performance["high"]
    assert ("course", None, "f1") in judged and ("exit rate", None, "rate change") in judged
    assert {judged[("data drift", "lastmonth_activity", s)]["outcome"] for s in ("ks", "psi")} == {"no drift"}
    assert "-> no drift" in config.log_path.read_text()
    assert fullprocess(config).returncode == 0
    assert "no new data: the 3 file(s)" in log_lines(config)[-1] and len(runs(config)) == 2


def test_too_few_new_rows_wait_and_count_with_the_next_file(bootstrapped):
    config = bootstrapped
    add_file(config, "dataset3.csv", seed=4, rows=120, rule="flipped")
    assert fullprocess(config).returncode == 0
    run = runs(config)[-1]
    assert run["decision"] == "insufficient data: dataset3.csv wait for more rows"
    performance = verdicts(config, run["id"])[("performance", None, "f1")]
    assert (performance["outcome"], performance["n"]) == ("insufficient data", 120)
    assert query(config, "SELECT decision FROM files WHERE name = 'dataset3.csv'") == [{"decision": "waiting"}]
    assert fullprocess(config).returncode == 0  # nothing new: waiting files alone are not re-judged
    assert "no new data" in log_lines(config)[-1] and len(runs(config)) == 2
    add_file(config, "dataset4.csv", seed=5, rows=900, rule="flipped")
    before = release_of(config)
    assert fullprocess(config).returncode == 2
    run = runs(config)[-1]
    performance = verdicts(config, run["id"])[("performance", None, "f1")]
    assert (performance["outcome"], performance["n"]) == ("drift", 1020)
    assert release_of(config) != before
    assert query(config, "SELECT DISTINCT decision FROM files WHERE name IN ('dataset3.csv', 'dataset4.csv')") == [
        {"decision": "decided"}
    ]


def test_drift_retrains_on_the_newest_window_and_redeploys(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    result = fullprocess(config)
    assert result.returncode == 2, result.stderr
    assert_agreement(config)
    run = runs(config)[-1]
    assert (
        run["decision"] == "drift: re-trained and re-deployed" and run["release_after"] == release_of(config) != before
    )
    judged = verdicts(config, run["id"])
    assert judged[("performance", None, "f1")]["outcome"] == "drift"
    assert judged[("candidate", "newest batch", "f1")]["outcome"] == "chosen"
    assert judged[("gate", None, "f1 gain")]["outcome"] == "better"
    (deployed,) = query(config, "SELECT * FROM deployments WHERE reason = 'drift'")
    assert (deployed["from_release"], deployed["to_release"], deployed["actor"]) == (
        before,
        release_of(config),
        "cron",
    )
    (model,) = query(config, "SELECT * FROM models WHERE window = 'newest batch'")
    assert model["rows"] == 2000 and model["validation_f1"] > 0.7


def test_drift_without_a_better_model_keeps_the_champion_and_exits_3(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    rng = np.random.default_rng(0)
    noise = client_rows(4, 3000)
    noise["exited"] = (rng.random(3000) < 0.3).astype(int)  # exits no feature explains
    noise.to_csv(config.input_folder_path / "dataset3.csv", index=False)
    result = fullprocess(config)
    assert result.returncode == 3, result.stderr
    assert release_of(config) == before
    run = runs(config)[-1]
    assert run["decision"] == "drift, no better model: the live model stays"
    (gate,) = [row for key, row in verdicts(config, run["id"]).items() if key[0] == "gate"]
    assert gate["outcome"] == "not better"  # a model of noise predicts one class, or no better
    reference = query(config, "SELECT * FROM model_references ORDER BY id DESC LIMIT 1")[0]
    assert (reference["kind"], reference["run_id"], reference["rows"]) == ("revalidation", run["id"], 3000)
    # The same kind of month again is not a new drift: the live model was re-baselined on it.
    noise = client_rows(5, 3000)
    noise["exited"] = (rng.random(3000) < 0.3).astype(int)
    noise.to_csv(config.input_folder_path / "dataset4.csv", index=False)
    assert fullprocess(config).returncode == 0
    assert runs(config)[-1]["decision"] == "no drift: the live model stays"


def test_a_shift_of_the_features_alone_starts_a_challenger_check_that_keeps_the_model(bootstrapped):
    config = bootstrapped
    add_file(config, "dataset3.csv", seed=4, rows=2000, number_of_employees=5)  # bigger clients, same rule
    result = fullprocess(config)
    assert result.returncode == 3, result.stderr
    run = runs(config)[-1]
    judged = verdicts(config, run["id"])
    assert judged[("performance", None, "f1")]["outcome"] == "no drift"
    assert judged[("data drift", "number_of_employees", "psi")]["outcome"] == "drift"
    assert judged[("data drift", "lastmonth_activity", "psi")]["outcome"] == "no drift"
    assert "data drift flagged: searching for a challenger" in config.log_path.read_text()


def test_a_running_api_serves_the_new_model_after_a_drift_run(bootstrapped, tmp_path):
    config = set_config(bootstrapped, api_base_url="http://127.0.0.1:1")
    with gunicorn(config.config_path, tmp_path / "gunicorn.log", "--workers", "2") as url:
        config = set_config(config, api_base_url=url)
        before = release_of(config)
        assert requests.get(f"{url}/health", timeout=10).json()["release"] == before
        add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
        result = fullprocess(config)
        assert result.returncode == 0, result.stderr
        after = release_of(config)
        assert after != before and requests.get(f"{url}/health", timeout=10).json()["release"] == after
        assert runs(config)[-1]["steps"].count("apicalls") == 1


def test_a_failing_step_stops_the_run_and_leaves_production_untouched(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    scores = config.output_model_path / "latestscore.txt"
    scores.unlink()
    scores.mkdir()  # scoring cannot write its score
    seen = len(log_lines(config))
    result = fullprocess(config)
    assert result.returncode == 1
    errors = [line for line in log_lines(config)[seen:] if " ERROR " in line]
    assert (
        len(errors) == 1 and "step scoring failed" in errors[0] and "the current deployment is untouched" in errors[0]
    )
    assert release_of(config) == before
    assert_agreement(config)
    assert runs(config)[-1]["exit_code"] == 1 and runs(config)[-1]["decision"].startswith("failed: step scoring failed")
    scores.rmdir()
    assert fullprocess(config).returncode == 2  # the next run judges the same new data again
    assert release_of(config) != before


def test_a_second_run_while_one_is_running_exits_at_once_and_changes_nothing(bootstrapped):
    config = bootstrapped
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    before = release_of(config)
    with open(config.log_path.parent / "fullprocess.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = fullprocess(config)
    assert result.returncode == 75
    assert "another run is in progress" in log_lines(config)[-1]
    assert release_of(config) == before and len(runs(config)) == 1


def test_runs_killed_at_random_moments_leave_history_and_production_in_agreement(bootstrapped):
    config = bootstrapped
    rng = random.Random(11)
    for trial in range(10):
        add_file(
            config,
            f"dataset{10 + trial}.csv",
            seed=20 + trial,
            rows=1500,
            rule="flipped" if trial % 2 else "activity",
        )
        env = {**os.environ, "RISK_CONFIG": str(config.config_path)}
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "fullprocess.py")], env=env, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 3.0))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        result = fullprocess(config)
        assert result.returncode in (0, 2, 3), f"trial {trial}: {result.stderr[-3000:]}"
        assert_agreement(config)
        states = {row["state"] for row in runs(config)}
        assert "running" not in states, f"trial {trial}"
    assert query(config, "SELECT COUNT(*) AS n FROM files WHERE decision IS NULL") == [{"n": 0}]


def test_a_missing_input_folder_is_one_log_line_and_exit_1(bootstrapped):
    config = bootstrapped
    config.input_folder_path.rename(config.input_folder_path.with_name("elsewhere"))
    result = fullprocess(config)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "input folder" in log_lines(config)[-1] and "does not exist" in log_lines(config)[-1]
    assert query(config, "SELECT outcome FROM heartbeats")[0]["outcome"].startswith("failed: input folder")


def test_a_rejected_file_fails_the_run_and_is_read_again_once_it_changes(bootstrapped):
    config = bootstrapped
    path = config.input_folder_path / "dataset3.csv"
    complete = client_rows(4, 1500, "flipped").to_csv(index=False)
    path.write_text(complete[: len(complete) // 2].rsplit("\n", 1)[0] + "\nzzzz,1")  # still being copied
    result = fullprocess(config)
    assert result.returncode == 1
    assert "rejected dataset3.csv: line" in config.log_path.read_text()
    assert runs(config)[-1]["decision"].startswith("rejected: dataset3.csv: line")
    assert fullprocess(config).returncode == 0 and "no new data" in log_lines(config)[-1]
    path.write_text(complete)  # the copy completed: new content, read again
    assert fullprocess(config).returncode == 2
    assert runs(config)[-1]["decision"] == "drift: re-trained and re-deployed"


def test_a_release_deployed_without_reports_gets_them_on_the_next_run(bootstrapped):
    import deployment

    config = bootstrapped
    (config.output_model_path / "report.pdf").unlink()
    deployment.main(config.config_path)  # deployed by hand: no reports yet
    result = fullprocess(config)
    assert result.returncode == 2
    assert f"release {release_of(config)} has no reports yet: reporting" in config.log_path.read_text()
    assert (config.output_model_path / "report.pdf").is_file()
    assert runs(config)[-1]["trigger"] == "report"
    assert fullprocess(config).returncode == 0
    assert "no new data" in log_lines(config)[-1]


def test_a_rollback_is_reported_on_the_next_run_and_kept(bootstrapped):
    import deployment

    config = bootstrapped
    first = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    assert fullprocess(config).returncode == 2
    deployment.rollback(config.config_path)
    assert release_of(config) == first
    assert fullprocess(config).returncode == 2 and runs(config)[-1]["trigger"] == "report"
    assert fullprocess(config).returncode == 0 and release_of(config) == first


def test_a_release_unknown_to_the_history_is_adopted_by_the_next_run(bootstrapped):
    config = bootstrapped
    for path in config.history_path.parent.glob("history.db*"):
        path.unlink()
    add_file(config, "dataset3.csv", seed=4, rows=1500)
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    assert f"adopted release {release_of(config)}" in config.log_path.read_text()
    with history.opened(config.history_path) as conn:
        assert registry.reconcile(conn, config, "x") == []


def test_a_drift_run_alerts_and_an_unreachable_webhook_fails_nothing(bootstrapped, webhook):
    config = set_config(bootstrapped, alert_webhook_url=webhook.url)  # not started: the webhook is down
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    started = time.monotonic()
    assert fullprocess(config).returncode == 2  # the webhook is down: the run still deploys
    assert time.monotonic() - started < 60
    pending = query(config, "SELECT event, delivered_at, attempts FROM alerts ORDER BY id")
    assert [(row["event"], row["delivered_at"]) for row in pending] == [("drift", None), ("deployment", None)]
    assert pending[0]["attempts"] >= 1 and "waiting for the webhook" in config.log_path.read_text()
    webhook.start()
    assert fullprocess(config).returncode == 0  # nothing new: the idle run sends what waited
    assert [body["event"] for body in webhook.bodies] == ["drift", "deployment"]
    assert webhook.bodies[0]["text"].startswith("[WARNING] drift: F1 ")
    assert webhook.bodies[1]["severity"] == "info" and webhook.bodies[1]["link"].endswith("/")
    assert query(config, "SELECT COUNT(*) AS n FROM alerts WHERE delivered_at IS NULL") == [{"n": 0}]
    import deployment

    deployment.rollback(config.config_path)
    assert webhook.bodies[-1]["event"] == "rollback" and "rolled back to release" in webhook.bodies[-1]["summary"]
