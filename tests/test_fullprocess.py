"""The full process as cron runs it: scenarios in temporary folders, as processes, read from the history."""

import fcntl
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
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
    plant_pickle,
    run_script,
    seed_outdated_cache,
    set_config,
    trickle,
)

import apicalls
from risk import history, registry
from risk.config import load_config


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


@pytest.mark.slow
def test_a_fresh_checkout_bootstraps_and_records_why(bootstrapped):
    config = bootstrapped
    assert_agreement(config)
    assert (config.output_model_path / "report.pdf").is_file()
    assert not (config.output_model_path / "apireturns.txt").exists()
    text = config.log_path.read_text()
    assert "nothing is deployed at" in text and "bootstrapping" in text
    assert "apicalls could not use the API" in text and "the reports are written" in text
    (run,) = runs(config)
    assert (run["trigger"], run["decision"], run["exit_code"], run["state"], run["actor"]) == (
        "bootstrap",
        "bootstrap",
        2,
        "finished",
        "cron",
    )
    assert list(json.loads(run["steps"])) == ["ingestion", "training", "scoring", "deployment", "reporting"]
    assert query(config, "SELECT reason, actor, run_id FROM deployments") == [
        {"reason": "bootstrap", "actor": "cron", "run_id": run["id"]}
    ]
    assert verdicts(config, run["id"])[("gate", None, "f1")]["outcome"] == "better"
    stamped = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) \w+: "
    assert [line for line in log_lines(config) if not re.match(stamped, line)] == []  # every line timestamped
    for step in ("ingestion", "scoring", "deployment", "reporting"):
        assert re.search(rf"fullprocess: step {step} finished in \d+\.\d\ds$", text, flags=re.MULTILINE), step
    assert re.search(r"run finished in \d+\.\d\ds with exit code 2 \(bootstrap\)$", text, flags=re.MULTILINE)


NO_HEAVY_IMPORTS = """
import runpy, sys
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(code, sorted(m for m in ("pandas", "sklearn", "matplotlib", "numpy", "scipy") if m in sys.modules))
"""


@pytest.mark.slow
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
    assert (beat["config_path"], beat["outcome"], beat["actor"]) == (str(config.config_path), "no new data", "cron")
    assert beat["checked_at"] > runs(config)[0]["finished_at"]
    assert fullprocess(config, env={"RISK_ACTOR": "ann@box"}).returncode == 0  # a run by hand: not cron's heartbeat
    assert query(config, "SELECT actor, checked_at FROM heartbeats ORDER BY actor") == [
        {"actor": "ann@box", "checked_at": query(config, "SELECT max(checked_at) AS t FROM heartbeats")[0]["t"]},
        {"actor": "cron", "checked_at": beat["checked_at"]},
    ]


@pytest.mark.slow
def test_new_data_without_drift_keeps_the_model_and_is_not_judged_again(bootstrapped):
    config = bootstrapped
    before = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=1500)  # more clients of the same period
    path = config.input_folder_path / "dataset3.csv"
    seen = (config.input_folder_path / "dataset1.csv").read_text().splitlines()[1]  # a row judged before
    path.write_text(path.read_text() + "zzzz,,5,7,0\n" + seen + "\n")  # and a row without last month
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
    assert performance["outcome"] == "no drift" and performance["n"] == 1500  # 1502 rows: new and complete ones only
    assert performance["low"] <= performance["value"] <= performance["high"]
    assert ("exit rate", None, "rate change") in judged
    # The course's rule (F1 on all rows below latestscore.txt) says drift; it is recorded, and decides nothing.
    assert judged[("course", None, "f1")]["outcome"] == "drift" and run["decision"].startswith("no drift")
    assert {judged[("data drift", "lastmonth_activity", s)]["outcome"] for s in ("ks", "psi")} == {"no drift"}
    assert "-> no drift" in config.log_path.read_text()
    assert fullprocess(config).returncode == 0
    assert "no new data: the 3 file(s)" in log_lines(config)[-1] and len(runs(config)) == 2


@pytest.mark.slow
def test_a_small_file_is_judged_and_its_rows_pool_with_the_next_ones(bootstrapped):
    config = set_config(bootstrapped, min_new_rows=200, min_new_positives=50)
    add_file(config, "dataset3.csv", seed=4, rows=80, rule="flipped")  # under 100 rows: no data-drift test either
    assert fullprocess(config).returncode == 0
    run = runs(config)[-1]
    assert run["decision"] == "insufficient data: the live model stays (unproven)"
    performance = verdicts(config, run["id"])[("performance", None, "f1")]
    assert (performance["outcome"], performance["n"]) == ("insufficient data", 80)
    assert "to confirm a drop: about " in json.loads(performance["detail"])
    assert query(config, "SELECT decision FROM files WHERE name = 'dataset3.csv'") == [{"decision": "decided"}]
    assert fullprocess(config).returncode == 0  # nothing new: judged files are not judged again
    assert "no new data" in log_lines(config)[-1] and len(runs(config)) == 2
    add_file(config, "dataset4.csv", seed=5, rows=900, rule="flipped")
    before = release_of(config)
    assert fullprocess(config).returncode == 2
    run = runs(config)[-1]
    performance = verdicts(config, run["id"])[("performance", None, "f1")]
    assert (performance["outcome"], performance["n"]) == ("drift", 980)  # the evidence of both files
    assert release_of(config) != before


@pytest.mark.slow
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
    text = config.log_path.read_text()
    assert [row["detail"] for row in judged.values() if json.loads(row["detail"]) not in text] == []


@pytest.mark.slow
def test_drift_without_a_better_model_leaves_the_champion_degraded_its_expectation_kept_and_the_search_going(
    bootstrapped,
):
    config = bootstrapped
    before = release_of(config)
    (validated,) = query(config, "SELECT * FROM model_references")
    rng = np.random.default_rng(0)
    noise = client_rows(4, 3000)
    noise["exited"] = (rng.random(3000) < 0.3).astype(int)  # exits no feature explains
    noise.to_csv(config.input_folder_path / "dataset3.csv", index=False)
    result = fullprocess(config)
    assert result.returncode == 3, result.stderr
    assert release_of(config) == before
    run = runs(config)[-1]
    assert run["decision"] == "drift, no better model: the live model stays (degraded)"
    (gate,) = [row for key, row in verdicts(config, run["id"]).items() if key[0] == "gate"]
    assert gate["outcome"] == "not better"  # a model of noise predicts one class, or no better
    (check,) = query(config, "SELECT * FROM monitoring WHERE run_id = ?", (run["id"],))
    assert (check["state"], check["drift_run_id"], check["reference_f1"]) == ("degraded", run["id"], validated["f1"])
    # The same kind of month again: still degraded against the same expectation, and searched again.
    noise = client_rows(5, 3000)
    noise["exited"] = (rng.random(3000) < 0.3).astype(int)
    noise.to_csv(config.input_folder_path / "dataset4.csv", index=False)
    assert fullprocess(config).returncode == 3
    run = runs(config)[-1]
    judged = verdicts(config, run["id"])
    assert judged[("recovery", None, "f1 drop")]["outcome"] == "degraded"
    assert judged[("performance", None, "f1")]["reference"] == validated["f1"]
    assert any(key[0] == "gate" for key in judged)
    assert query(config, "SELECT * FROM model_references") == [validated]  # never lowered
    assert [row["state"] for row in query(config, "SELECT state FROM monitoring ORDER BY id")] == ["degraded"] * 2


@pytest.mark.slow
def test_a_shift_of_the_features_alone_starts_a_challenger_check_that_keeps_the_model(bootstrapped):
    config = bootstrapped
    add_file(config, "dataset3.csv", seed=4, rows=2000, number_of_employees=5)  # bigger clients, same rule
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    run = runs(config)[-1]
    assert run["decision"] == "data drift, no better model: the live model stays (healthy)"
    judged = verdicts(config, run["id"])
    assert judged[("performance", None, "f1")]["outcome"] == "no drift"
    assert judged[("data drift", "number_of_employees", "psi")]["outcome"] == "drift"
    assert judged[("data drift", "lastmonth_activity", "psi")]["outcome"] == "no drift"
    assert (
        "data drift: challenger search: the gate's burden is that of a healthy champion" in config.log_path.read_text()
    )


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_missing_input_folder_is_one_log_line_and_exit_1(bootstrapped):
    config = bootstrapped
    config.input_folder_path.rename(config.input_folder_path.with_name("elsewhere"))
    result = fullprocess(config)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "input folder" in log_lines(config)[-1] and "does not exist" in log_lines(config)[-1]
    assert query(config, "SELECT outcome FROM heartbeats")[0]["outcome"].startswith("failed: input folder")


@pytest.mark.slow
def test_a_rejected_file_fails_the_run_and_is_read_again_once_it_changes(bootstrapped):
    config = bootstrapped
    path = config.input_folder_path / "dataset3.csv"
    complete = client_rows(4, 1500, "flipped").to_csv(index=False)
    path.write_text(complete[: len(complete) // 2].rsplit("\n", 1)[0] + "\nzzzz,1\n")  # cut short at a line end
    result = fullprocess(config)
    assert result.returncode == 1
    assert "rejected dataset3.csv: line" in config.log_path.read_text()
    assert runs(config)[-1]["decision"].startswith("rejected: dataset3.csv: line")
    assert fullprocess(config).returncode == 0 and "no new data" in log_lines(config)[-1]
    path.write_text(complete)  # the copy completed: new content, read again
    assert fullprocess(config).returncode == 2
    assert runs(config)[-1]["decision"] == "drift: re-trained and re-deployed"


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: \S")


@pytest.mark.slow
def test_the_input_folder_is_a_boundary_no_link_is_followed_and_no_name_forges_a_log_line(bootstrapped):
    config = bootstrapped
    secret = config.config_path.parent / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (config.input_folder_path / "passwd.csv").symlink_to(secret)
    os.mkfifo(config.input_folder_path / "pipe.csv")
    forged = "a\n2026-01-01 00:00:00,000 ERROR fullprocess: forged.csv"
    add_file(config, forged, 4, 400)
    before = len(log_lines(config))
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    lines = log_lines(config)[before:]
    assert [line for line in lines if not LOG_LINE.match(line)] == []
    assert "forged.csv" not in "".join(line for line in lines if "skipped" not in line)
    assert sum("skipped" in line and "WARNING" in line for line in lines) == 3
    assert "root:x" not in config.log_path.read_text()
    text = "".join(
        str(row) for table in ("runs", "files", "verdicts") for row in query(config, f"SELECT * FROM {table}")
    )
    assert "root:x" not in text and "forged" not in text and "passwd" not in text
    assert lines[-1].endswith("no new data: the 2 file(s) in sourcedata are judged")


@pytest.mark.slow
def test_a_live_model_replaced_on_disk_is_refused_by_the_next_run_that_would_load_it(bootstrapped, webhook, tmp_path):
    webhook.start()
    config = set_config(bootstrapped, alert_webhook_url=webhook.url)
    release = config.prod_deployment_path.resolve()
    marker = tmp_path / "the planted pickle ran"
    plant_pickle(release / "trainedmodel.pkl", marker)
    add_file(config, "dataset3.csv", 4, 2000, "flipped")
    assert fullprocess(config).returncode == 1
    assert not marker.exists() and release_of(config) == release.name
    refusal = f"release {release.name} is refused: its trainedmodel.pkl is not the model "
    assert refusal in log_lines(config)[-3] and " ERROR " in log_lines(config)[-3]
    assert refusal in runs(config)[-1]["decision"]
    assert [(body["event"], refusal in body["summary"]) for body in webhook.bodies] == [("failed run", True)]
    assert [fullprocess(config).returncode for _ in range(2)] == [1, 1]  # the same failure, every 10 minutes
    assert (
        len(webhook.bodies) == 1 and "the same failure as run 3 before it: told when it began" in log_lines(config)[-1]
    )


@pytest.mark.slow
def test_a_file_written_over_with_next_months_export_is_judged_as_new_data_whatever_its_name(bootstrapped):
    config = bootstrapped
    add_file(config, "dataset2.csv", 4, 2000, "flipped")  # the same name, new content
    result = fullprocess(config)
    assert result.returncode == 2, result.stderr
    text = config.log_path.read_text()
    assert "dataset2.csv changed since the live model learned from it: new data" in text
    assert "not new data" not in text and runs(config)[-1]["decision"] == "drift: re-trained and re-deployed"


@pytest.mark.slow
def test_a_release_deployed_without_reports_gets_them_on_the_next_run(bootstrapped):
    import deployment

    config = bootstrapped
    (config.output_model_path / "report.pdf").unlink()
    deployment.deploy(config)  # deployed by hand: no reports yet
    result = fullprocess(config)
    assert result.returncode == 2
    assert f"release {release_of(config)} has no reports yet: reporting" in config.log_path.read_text()
    assert (config.output_model_path / "report.pdf").is_file()
    assert runs(config)[-1]["trigger"] == "report"
    assert fullprocess(config).returncode == 0
    assert "no new data" in log_lines(config)[-1]


@pytest.mark.slow
def test_a_rollback_is_reported_on_the_next_run_and_kept(bootstrapped):
    import deployment

    config = bootstrapped
    first = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    assert fullprocess(config).returncode == 2
    deployment.rollback(config)
    assert release_of(config) == first
    assert fullprocess(config).returncode == 2 and runs(config)[-1]["trigger"] == "report"
    assert fullprocess(config).returncode == 0 and release_of(config) == first
    add_file(config, "dataset4.csv", seed=5, rows=400)  # the first period again
    # The rolled-back model was measured poor: it stays degraded until the rows since show it recovered,
    # and a challenger must beat it on the rows since it came back, where it holds its own: it is kept.
    assert fullprocess(config).returncode == 3 and release_of(config) == first
    run = runs(config)[-1]
    assert run["decision"] == "drift, no better model: the live model stays (degraded)"
    assert "the degraded champion scores F1 " in config.log_path.read_text()
    (reference,) = query(
        config,
        "SELECT f1 FROM model_references WHERE kind = 'validation' AND model_id = "
        "(SELECT model_id FROM releases WHERE name = ?)",
        (first,),
    )
    performance = verdicts(config, run["id"])[("performance", None, "f1")]
    assert (run["release_before"], performance["reference"]) == (first, reference["f1"])


@pytest.mark.slow
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
    (adoption,) = [run for run in runs(config) if run["trigger"] == "adoption"]  # decided inside the run
    (judged,) = [run for run in runs(config) if run["trigger"] == "new data"]
    assert (adoption["trigger"], json.loads(adoption["new_files"])) == ("adoption", [])
    assert query(config, "SELECT name, decided_run_id FROM files ORDER BY name") == [
        {"name": "dataset1.csv", "decided_run_id": adoption["id"]},  # learned by the live release
        {"name": "dataset2.csv", "decided_run_id": adoption["id"]},
        {"name": "dataset3.csv", "decided_run_id": judged["id"]},
    ]
    assert verdicts(config, judged["id"])[("performance", None, "f1")]["n"] == 1500  # dataset3.csv alone


@pytest.mark.slow
def test_a_drift_run_alerts_and_an_unreachable_webhook_fails_nothing(bootstrapped, webhook):
    config = set_config(bootstrapped, alert_webhook_url=webhook.url)  # not started: the webhook is down
    add_file(config, "dataset3.csv", seed=4, rows=2000, rule="flipped")
    started = time.monotonic()
    assert fullprocess(config).returncode == 2  # the webhook is down: the run still deploys
    assert time.monotonic() - started < 60
    pending = query(config, "SELECT event, delivered_at, attempts FROM alerts ORDER BY id")
    assert [(row["event"], row["delivered_at"]) for row in pending] == [("drift", None)]  # one message a run
    assert pending[0]["attempts"] >= 1 and "alert(s) wait for the webhook" in config.log_path.read_text()
    webhook.start()
    assert fullprocess(config).returncode == 0  # nothing new: the idle run sends what waited
    (drift,) = webhook.bodies
    found = re.fullmatch(
        r"(.+), (\d+ \w{3} \d{4} \d\d:\d\d UTC): Run 2 found drift"
        r" \(F1 (0\.\d\d) on 2,000 rows vs (0\.\d\d) expected.*\) and deployed a better model\."
        r" Live now: release (\S+)\. The risk list comes from a model not measured on"
        r" new data yet \(its validation promises F1 0\.\d\d\)\.",
        drift["summary"],
    )
    assert found and found[1] == config.system_name and found[5] == release_of(config), drift["summary"]
    assert drift["text"].startswith("[WARNING] ") and drift["text"].endswith(f" — {config.api_base_url}/")
    assert len(drift["text"]) <= 400 and drift["details"]["decision"] == "drift: re-trained and re-deployed"
    assert query(config, "SELECT COUNT(*) AS n FROM alerts WHERE delivered_at IS NULL") == [{"n": 0}]
    import deployment

    deployment.rollback(config)  # back to the model this run measured poor: the alert says so, once
    (rollback,) = webhook.bodies[1:]
    assert rollback["event"] == "rollback"
    assert rollback["summary"].endswith(
        f"Live now: release {release_of(config)}. The risk list comes from a model that scored F1 {found[3]} on the"
        f" latest data (2,000 clients), below its expected {found[4]}: treat it with care."
    )
    assert fullprocess(config).returncode in (0, 2)  # the next run reports on the model now live: no alert
    assert len(webhook.bodies) == 2


@pytest.mark.slow
def test_a_webhook_trickling_its_answer_holds_the_run_no_longer_than_the_delivery_deadline(bootstrapped, misbehaving):
    server = misbehaving(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100, 1.0))
    config = set_config(bootstrapped, alert_webhook_url=server.url)
    (config.input_folder_path / "dataset3.csv").write_text("corporation,exited\nabcd,1\n")  # rejected: a failed run
    started = time.monotonic()
    assert fullprocess(config).returncode == 1
    assert time.monotonic() - started < 15  # the delivery's 2 s, not the 2 minutes the webhook takes
    assert server.requests == 1  # the request went out whole: not sent again in the same run
    (alert,) = query(config, "SELECT event, attempts, delivered_at, given_up_at FROM alerts")
    assert (alert["event"], alert["attempts"], alert["delivered_at"], alert["given_up_at"]) == (
        "failed run",
        1,
        None,
        None,
    )
    assert log_lines(config)[-1].endswith(
        "WARNING fullprocess: 1 alert(s) wait for the webhook, for the next run (last error: no answer within 2 s"
        " (timed out waiting for its answer))"
    )


# --- the log under cron, and failures in-process -----------------------------------------------------


@pytest.mark.parametrize("stderr_is_the_log", [True, False])
def test_when_stderr_is_the_log_each_line_is_written_once(tmp_path, monkeypatch, root_logging, stderr_is_the_log):
    import logging

    from risk.logs import setup_logging

    log_path = tmp_path / "fullprocess.log"
    elsewhere = tmp_path / "stderr.txt"
    with open(log_path if stderr_is_the_log else elsewhere, "a", encoding="utf-8", buffering=1) as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)  # as cron's `>> logs/fullprocess.log 2>&1` makes it
        setup_logging(tmp_path, log_path)
        logging.getLogger("fullprocess").info("a line of the run")
        logging.getLogger("ingestion").info("a line of a step")
    lines = log_path.read_text().splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "fullprocess: a line of the run",
        "ingestion: a line of a step",
    ]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ", line) for line in lines)  # timestamped
    if not stderr_is_the_log:  # a terminal, or the tests: the lines are shown there too
        assert elsewhere.read_text().splitlines() == lines


def test_a_bad_config_exits_1_with_one_line_naming_file_and_key(tmp_path, capsys, monkeypatch):
    import fullprocess as fullprocess_module

    path = tmp_path / "config.json"
    path.write_text('{"input_folder_path": "x"}')
    monkeypatch.setenv("RISK_CONFIG", str(path))
    assert fullprocess_module.main([]) == 1
    assert capsys.readouterr().err == "fullprocess: config file config.json has no key 'output_folder_path'\n"


def test_an_unexpected_error_ends_in_one_log_line_a_run_record_and_exit_1(
    trained_project, config, monkeypatch, root_logging
):
    import fullprocess as fullprocess_module
    from risk import decisions

    def a_bug(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(decisions, "check", a_bug)
    monkeypatch.setenv("RISK_CONFIG", str(config.config_path))
    before = release_of(config)
    add_file(config, "dataset3.csv", seed=4, rows=300)
    assert fullprocess_module.main([]) == 1
    errors = [line for line in log_lines(config) if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(
        "fullprocess: unexpected ZeroDivisionError: division by zero; the run stopped"
    )
    assert "Traceback (most recent call last)" in config.log_path.read_text()  # kept in the log for whoever fixes it
    run = runs(config)[-1]
    assert (run["trigger"], run["state"], run["exit_code"]) == ("new data", "finished", 1)
    assert run["decision"] == "failed: unexpected ZeroDivisionError: division by zero"
    assert release_of(config) == before


# --- `make run`: demo/story.py on a copy of the bundled data, and the two months after it ------------------


def load_story(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, PROJECT_DIR / "demo" / "story.py")
    story = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(story)
    return story


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """demo/story.py's main(), run as `make run PORT=<a free port>` runs it, on a copy of the repository's
    bundled data and configs, whose API address a decoy server holds (every URL the story uses must be
    PORT's: the decoy must hear nothing); returns (root, what it printed, its exit code)."""
    import contextlib
    import io
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from risk import sandbox

    heard = []

    class Decoy(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            heard.append(self.path)
            self.send_error(500)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    decoy = ThreadingHTTPServer(("127.0.0.1", 0), Decoy)
    threading.Thread(target=decoy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{decoy.server_address[1]}"
    root = tmp_path_factory.mktemp("story")
    for name in ("config.json", "practiceconfig.json"):
        shipped = json.loads((PROJECT_DIR / name).read_text())
        (root / name).write_text(json.dumps({**shipped, "api_port": int(url.rsplit(":", 1)[1]), "api_base_url": url}))
    sandbox.copy_bundled_data(root)
    (root / "fullprocess.py").symlink_to(PROJECT_DIR / "fullprocess.py")  # runs from the repository's code
    (root / "models").mkdir()
    (root / "models" / "stale.txt").write_text("from an earlier run")  # reset_outputs must remove it
    module = load_story("story_under_test")
    reset_outputs = module.reset_outputs

    def reset_then_seed():  # the reports must not ask pip (the network) for the latest versions
        reset_outputs()
        for folder in ("models", "practicemodels"):
            sandbox.seed_outdated_cache(root / folder)

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "PROJECT_DIR", root)
        patch.setattr(module, "PRACTICE_CONFIG", root / "practiceconfig.json")
        patch.setattr(module, "PRODUCTION_CONFIG", root / "config.json")
        patch.setattr(module, "reset_outputs", reset_then_seed)
        patch.delenv("API_TOKEN", raising=False)
        port = free_port()
        with contextlib.redirect_stdout(printed):
            code = module.main(port=port)
    decoy.shutdown()
    decoy.server_close()
    assert not (root / "models" / "stale.txt").exists()
    assert heard == []  # nothing the story ran called the configs' address
    return root, printed.getvalue(), code, f"http://127.0.0.1:{port}"


def test_make_run_refuses_to_start_when_its_port_is_taken_and_says_how_to_choose_another(tmp_path, monkeypatch):
    module = load_story("story_port_taken")
    (tmp_path / "config.json").write_text((PROJECT_DIR / "config.json").read_text())
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "earlier.txt").write_text("an earlier run's output")
    monkeypatch.setattr(module, "PROJECT_DIR", tmp_path)
    monkeypatch.setattr(module, "PRODUCTION_CONFIG", tmp_path / "config.json")
    with socket.create_server(("127.0.0.1", 0)) as taken:  # another process's server
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as raised:
            module.main(port=port)
    assert str(raised.value) == (
        f"port {port} on 127.0.0.1 is in use by another process: stop it, or choose another port, e.g. make run"
        " PORT=8010"
    )
    assert (tmp_path / "models" / "earlier.txt").exists()  # refused before anything was reset


def story_query(root, sql, params=()) -> list[dict]:
    with sqlite3.connect(root / "logs" / "history.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute(sql, params)]
    return [{**row, "detail": json.loads(row["detail"])} if "detail" in row else row for row in rows]


def releases_by_reason(root) -> dict[str, str]:
    moves = story_query(root, "SELECT reason, to_release FROM deployments WHERE reason IN ('bootstrap', 'drift')")
    return {move["reason"]: move["to_release"] for move in moves}


@pytest.mark.slow
def test_make_run_tells_the_readmes_story_in_numbers(story):
    root, printed, code, url = story
    assert code == 0  # both runs deployed, reported and reached the API
    releases = releases_by_reason(root)
    expected = [
        f"API: gunicorn serving on {url} (log: logs/gunicorn.log)",
        "$ RISK_CONFIG=practiceconfig.json python fullprocess.py",
        "$ RISK_CONFIG=config.json python fullprocess.py",
        "API stopped.",
        "Decisions (from the history database):",
        "- practiceconfig.json: bootstrap; steps ingestion, training, scoring, deployment, reporting, apicalls; "
        f"release {releases['bootstrap']}; exit code 0",
        "    gate: nothing is deployed: the best candidate (all data (1 batch), F1 0.79) goes live -> better",
        "- config.json: drift: re-trained and re-deployed; steps ingestion, drift check, training, scoring, "
        f"deployment, reporting, apicalls; release {releases['drift']}; exit code 0",
        "    course: course rule: F1 0.3909 on all 10000 ingested rows < 0.6173 on the test data -> drift "
        "(recorded only)",
        "    performance: F1 0.39 [0.37, 0.41] on 10000 new rows vs 0.79 expected: drop 0.40 (at least 0.34 with 99 % "
        "confidence) > margin 0.05 (p < 0.001), over the 0.05 the sequential test needs here -> drift",
        "    gate: challenger F1 0.81 vs degraded champion 0.39 on the same 10000 newest rows: gain +0.42 "
        "[+0.40, +0.43] > margin 0.00 (p < 0.001, needs < 0.1) -> better",
        "Deployed model: F1 0.5966 on the test data",
        "Outputs:",
    ]
    outputs = [line.strip() for line in printed.splitlines() if re.match(r"  \S", line)]
    assert [line for line in printed.splitlines() if line and not re.match(r"  \S", line)] == expected
    assert len(outputs) == 14 and [line for line in outputs if line.endswith("(missing)")] == []
    # The practice model: 5-fold validation F1 0.79 [0.73, 0.85] on the 650 rows, 0.6173 on the test data.
    practice = story_query(
        root, "SELECT m.*, r.test_f1 AS release_f1 FROM models m JOIN releases r ON r.model_id = m.id"
    )
    first = next(model for model in practice if model["validation_rows"] == 650)
    assert [round(first[key], 2) for key in ("validation_f1", "validation_low", "validation_high")] == [
        0.79,
        0.73,
        0.85,
    ]
    assert round(first["release_f1"], 4) == 0.6173
    # The features did not move: the largest PSI 0.023.
    psi = story_query(root, "SELECT MAX(value) AS largest FROM verdicts WHERE statistic = 'psi'")
    assert round(psi[0]["largest"], 3) == 0.023
    (candidate,) = story_query(root, "SELECT detail FROM verdicts WHERE kind = 'candidate' AND n = 10000")
    assert "F1 0.81 [0.79, 0.82] on 10000 newest rows -> chosen" in candidate["detail"]
    # Served by the running API at once: apicalls' answer names the new release; then the API stopped.
    answers = apicalls.read_answers(root / "models" / "apireturns.txt")
    assert answers["prediction"]["release"] == releases["drift"]
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=5)


@pytest.mark.slow
def test_make_rollback_after_the_story_returns_to_the_practice_release_and_again_forward(story, monkeypatch):
    import deployment

    root = story[0]
    releases = releases_by_reason(root)
    monkeypatch.delenv("RISK_CONFIG", raising=False)
    live = root / "production_deployment"
    assert deployment.rollback(load_config(root / "config.json")) == (releases["drift"], releases["bootstrap"])
    assert live.resolve().name == releases["bootstrap"]
    assert deployment.rollback(load_config(root / "config.json")) == (releases["bootstrap"], releases["drift"])
    assert live.resolve().name == releases["drift"]


@pytest.mark.slow
def test_two_more_months_after_the_story_are_judged_as_the_readme_measured(story):
    from datagen import generate_data

    root = story[0]
    config = load_config(root / "config.json")
    generate_data.main(["--month", str(config.input_folder_path)])  # dataset5.csv: the same business
    result = fullprocess(config)
    assert result.returncode == 0, result.stderr
    run = runs(config)[-1]
    judged = verdicts(config, run["id"])
    assert json.loads(judged[("performance", None, "f1")]["detail"]) == (
        "F1 0.79 [0.77, 0.81] on 10000 new rows vs 0.81 expected: drop 0.02, within margin 0.05: no evidence of a "
        "drop is left -> no drift"
    )
    assert round(max(row["value"] for key, row in judged.items() if key[2] == "psi"), 3) == 0.002
    rate = judged[("exit rate", None, "rate change")]
    assert round((rate["value"] - rate["reference"]) * 100, 1) == -1.0  # 22.9 % - 23.9 %: -1.0 points

    generate_data.main(["--month", str(config.input_folder_path), "--regime", "shifted", "--seed", "99"])
    result = fullprocess(config)  # dataset6.csv: the rule changed
    assert result.returncode == 2, result.stderr  # deployed; the API of the story is stopped
    run = runs(config)[-1]
    details = [
        json.loads(row["detail"])
        for row in query(config, "SELECT detail FROM verdicts WHERE run_id = ? ORDER BY id", (run["id"],))
    ]
    for sentence in (
        "course rule: F1 0.5301 on all 30000 ingested rows < 0.5966 on the test data -> drift (recorded only)",
        "F1 0.00 [0.00, 0.00] on 10000 new rows vs 0.81 expected: drop 0.81 (at least 0.79 with 99 % confidence) "
        "> margin 0.05 (p < 0.001), over the 0.05 the sequential test needs here -> drift",
        "candidate newest batch (10000 rows): F1 0.75 [0.73, 0.77] on 10000 newest rows -> chosen",
        "candidate newest 2 batches (20000 rows): F1 0.04 [0.03, 0.06] on 10000 newest rows",
        "candidate all data (3 batches) (30000 rows): F1 0.00 [0.00, 0.00] on 10000 newest rows",
        "challenger F1 0.75 vs degraded champion 0.00 on the same 10000 newest rows: gain +0.75 [+0.74, +0.76] > "
        "margin 0.00 (p < 0.001, needs < 0.1) -> better",
    ):
        assert sentence in details, sentence
    assert run["decision"] == "drift: re-trained and re-deployed"
    (model,) = query(config, "SELECT * FROM models WHERE run_id = ?", (run["id"],))
    assert [round(model[key], 3) for key in ("validation_f1", "validation_low", "validation_high")] == [
        0.754,
        0.735,
        0.772,
    ]
    # Its F1 on the stale test data: 0.0448, which is why that number decides nothing any more.
    assert round(float((config.prod_deployment_path / "latestscore.txt").read_text()), 4) == 0.0448
