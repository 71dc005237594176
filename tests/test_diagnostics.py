import importlib.metadata
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import FEATURES, PROJECT_DIR, damage_history, malform_history, run_script, seed_outdated_cache

import diagnostics
from risk import diagnosis, digest, outdated
from risk.config import PipelineError

KNOWN = pd.DataFrame(
    {
        "corporation": ["aaaa", "bbbb", "cccc", "dddd"],
        "lastmonth_activity": [1, 2, 3, None],
        "lastyear_activity": [10, 20, 30, 40],
        "number_of_employees": [5, 5, 5, 9],
        "exited": [0, 1, 0, 1],
    }
)


@pytest.fixture
def known_finaldata(config):
    config.output_folder_path.mkdir(parents=True, exist_ok=True)
    KNOWN.to_csv(config.output_folder_path / "finaldata.csv", index=False)
    return config


def test_summary_has_mean_median_and_std_of_every_numeric_column(known_finaldata):
    # By hand (std with n - 1): last month 1, 2, 3 (the missing value left out): mean 2, std 1;
    # last year 10..40: mean 25, std sqrt((225 + 25 + 25 + 225) / 3) = sqrt(166.67) = 12.909944;
    # employees 5, 5, 5, 9: mean 6, median 5, std sqrt((1 + 1 + 1 + 9) / 3) = 2; exited 0, 1, 0, 1: std sqrt(1/3).
    assert diagnostics.summary_table(known_finaldata) == {
        "lastmonth_activity": {"mean": 2.0, "median": 2.0, "std": 1.0},
        "lastyear_activity": {"mean": 25.0, "median": 25.0, "std": 12.909944},
        "number_of_employees": {"mean": 6.0, "median": 5.0, "std": 2.0},
        "exited": {"mean": 0.5, "median": 0.5, "std": 0.57735},
    }
    assert diagnostics.dataframe_summary(known_finaldata) == [
        2.0, 2.0, 1.0, 25.0, 25.0, 12.909944, 6.0, 5.0, 2.0, 0.5, 0.5, 0.57735,
    ]  # fmt: skip


def test_a_column_without_values_has_null_statistics_and_one_value_has_no_spread(config):
    # lastyear_activity is empty in every row: no mean, median or spread to give (null, not a 500).
    # number_of_employees has one value (7): its mean and median are 7, its standard deviation (n - 1) undefined.
    config.output_folder_path.mkdir(parents=True, exist_ok=True)
    (config.output_folder_path / "finaldata.csv").write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\naaaa,1,,7,0\nbbbb,3,,,1\n"
    )
    assert diagnostics.summary_table(config) == {
        "lastmonth_activity": {"mean": 2.0, "median": 2.0, "std": 1.414214},
        "lastyear_activity": {"mean": None, "median": None, "std": None},
        "number_of_employees": {"mean": 7.0, "median": 7.0, "std": None},
        "exited": {"mean": 0.5, "median": 0.5, "std": 0.707107},
    }


def test_missing_data_is_a_percentage_per_column(known_finaldata):
    # 1 of 4 values of lastmonth_activity is missing: 25 %.
    assert diagnostics.missing_data(known_finaldata) == [0.0, 25.0, 0.0, 0.0, 0.0]
    assert diagnostics.missing_data_table(known_finaldata)["lastmonth_activity"] == 25.0


def test_summary_without_finaldata_names_the_file(config):
    with pytest.raises(PipelineError, match="finaldata.csv does not exist; run ingestion.py first"):
        diagnostics.summary_table(config)


def test_model_predictions_default_to_the_test_data(trained_project, config):
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        model = pickle.load(handle)
    features = testdata[FEATURES].to_numpy(float)
    assert diagnostics.model_predictions(config) == model.predict(features).tolist()
    assert diagnostics.model_probabilities(config, testdata) == [
        round(float(p), 6) for p in model.predict_proba(features)[:, 1]
    ]


def test_model_predictions_refuse_rows_with_a_missing_feature(trained_project, config):
    with pytest.raises(
        PipelineError, match="the data: line 5: lastmonth_activity is missing; the model needs all three"
    ):
        diagnostics.model_predictions(config, KNOWN)


def test_execution_time_reports_the_last_recorded_runs(trained_project, config):
    import sqlite3

    with sqlite3.connect(config.history_path) as conn:
        recorded = dict(
            conn.execute(
                "SELECT step, seconds FROM step_runs WHERE id IN (SELECT MAX(id) FROM step_runs GROUP BY step)"
            ).fetchall()
        )
    assert diagnostics.execution_time(config) == [
        round(recorded["ingestion"], 4),
        round(recorded["training"], 4),
    ]
    details = diagnostics.execution_details(config)
    assert [(row["step"], row["source"]) for row in details] == [
        ("ingestion", "last run"),
        ("training", "last run"),
    ]


def test_execution_time_without_a_recorded_run_says_so(config):
    assert diagnostics.execution_time(config) == [None, None]
    assert {row["source"] for row in diagnostics.execution_details(config)} == {"no run recorded yet"}


def test_a_fresh_timing_runs_the_steps_without_touching_the_project(trained_project, config):
    root = config.config_path.parent
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    timings = diagnostics.execution_details(config, refresh=True)
    assert [(row["step"], row["source"]) for row in timings] == [("ingestion", "fresh run"), ("training", "fresh run")]
    assert all(seconds > 0 for seconds in (row["seconds"] for row in timings))  # each ran, as a process
    lock = Path(diagnosis.timing_lock_path(config))
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p != lock}
    assert after == before and lock.read_bytes() == b""  # only its (empty) lock, beside the history


def test_a_fresh_timing_reports_a_failing_step(config):
    for path in config.input_folder_path.iterdir():
        path.write_text("")
    with pytest.raises(PipelineError, match="timing run of ingestion.py failed: .*no usable CSV file"):
        diagnostics.execution_time(config, refresh=True)


def fake_pip(script: str):
    return lambda name: [sys.executable, "-c", script, name]


@pytest.mark.parametrize(
    "script, expected",
    [
        ("import json, sys; print(json.dumps({'latest': '1.2.' + str(len(sys.argv[1]))}))", "1.2.3"),
        (
            "import sys; print('ERROR: No matching distribution found for abc', file=sys.stderr); sys.exit(1)",
            "unknown (No matching distribution found for abc)",
        ),
        ("import time; time.sleep(30)", "unknown (pip did not answer within 1 s)"),
    ],
)
def test_latest_versions_are_bounded_and_explain_unknowns(script, expected):
    started = time.monotonic()
    assert outdated.latest_versions(["abc"], 1, command=fake_pip(script)) == {"abc": expected}
    assert time.monotonic() - started < 10


def outdated_of(config, start=None) -> list[dict]:
    """diagnostics.outdated_packages_list with the background refresh replaced by `start` (default: a recorder)."""
    return diagnosis.outdated.outdated_packages(
        config.output_model_path / "outdatedpackages.json",
        PROJECT_DIR / "requirements.txt",
        config.outdated_cache_seconds,
        start=start,
    )


def expire(config) -> None:
    cache_path = config.output_model_path / "outdatedpackages.json"
    cache = json.loads(cache_path.read_text())
    cache["checked_at"] -= config.outdated_cache_seconds + 1
    cache_path.write_text(json.dumps(cache))


def test_a_fresh_cached_answer_is_given_and_nothing_started(config, monkeypatch):
    seed_outdated_cache(config, latest="100.0")
    started = []
    monkeypatch.setattr(outdated, "start_refresh", lambda *args: started.append(args))
    packages = diagnostics.outdated_packages_list(config)
    pinned = [line.split("==")[0] for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()]
    assert [item["package"] for item in packages] == pinned
    assert packages[0] == {"package": "flask", "installed": importlib.metadata.version("flask"), "latest": "100.0"}
    assert started == []


def test_an_expired_answer_is_given_at_once_and_refreshed_in_the_background(config, monkeypatch):
    seed_outdated_cache(config, latest="100.0")
    expire(config)
    started = []
    monkeypatch.setattr(outdated, "start_refresh", lambda *args: started.append(args))
    monkeypatch.setattr(
        outdated, "latest_versions", lambda *args, **kwargs: pytest.fail("pip asked on the caller's path")
    )
    assert {item["latest"] for item in diagnostics.outdated_packages_list(config)} == {"100.0"}
    assert started == [(config.output_model_path / "outdatedpackages.json", diagnostics.REQUIREMENTS_PATH)]


def test_without_an_answer_every_package_is_not_checked_yet(config, monkeypatch):
    started = []
    packages = outdated_of(config, start=lambda *args: started.append(args))
    assert {item["latest"] for item in packages} == {"not checked yet"} and len(started) == 1
    assert packages[0] == {
        "package": "flask",
        "installed": importlib.metadata.version("flask"),
        "latest": "not checked yet",
    }


def test_a_refresh_asks_every_package_at_once_and_writes_the_cache(config):
    cache_path = config.output_model_path / "outdatedpackages.json"
    script = "import json, sys; print(json.dumps({'latest': '7.' + sys.argv[1]}))"
    packages = outdated.refresh(cache_path, PROJECT_DIR / "requirements.txt", command=fake_pip(script))
    assert packages[0] == {"package": "flask", "installed": importlib.metadata.version("flask"), "latest": "7.flask"}
    assert outdated_of(config, start=lambda *args: pytest.fail("a fresh answer is refreshed")) == packages


def test_without_a_package_index_every_package_is_not_checked_at_once(config):
    asked = []

    def offline(name):
        asked.append(name)
        return [
            sys.executable,
            "-c",
            "import sys; print('ERROR: No matching distribution found for pip', file=sys.stderr); sys.exit(1)",
        ]

    cache_path = config.output_model_path / "outdatedpackages.json"
    packages = outdated.refresh(cache_path, PROJECT_DIR / "requirements.txt", command=offline)
    assert asked == ["pip"]  # the probe alone: no package is asked about
    assert {item["latest"] for item in packages} == {"not checked (no package index reachable)"}
    assert json.loads(cache_path.read_text())["packages"] == packages


def test_a_refresh_while_another_runs_does_nothing(config):
    from risk import artifacts

    cache_path = config.output_model_path / "outdatedpackages.json"
    fd = artifacts.acquire_lock(outdated.lock_path(cache_path))
    try:
        assert outdated.refresh(cache_path, PROJECT_DIR / "requirements.txt", command=fake_pip("")) is None
    finally:
        os.close(fd)
    assert not cache_path.exists()


def test_a_refresh_is_started_detached_and_once_a_minute_at_most(config, monkeypatch):
    monkeypatch.setattr(outdated, "_started_at", {})
    started = []

    class Recorder:
        def __init__(self, args, **kwargs):
            started.append((args, kwargs))

        def poll(self):
            return None  # still running

    monkeypatch.setattr(outdated.subprocess, "Popen", Recorder)
    monkeypatch.setattr(outdated, "_children", [])
    cache_path = config.output_model_path / "outdatedpackages.json"
    for _ in range(3):
        outdated.start_refresh(cache_path, PROJECT_DIR / "requirements.txt")
    ((args, kwargs),) = started
    assert args == [sys.executable, "-m", "risk.outdated", str(cache_path), str(PROJECT_DIR / "requirements.txt")]
    assert kwargs["start_new_session"] is True and kwargs["cwd"] == str(PROJECT_DIR)
    assert {kwargs[stream] for stream in ("stdin", "stdout", "stderr")} == {subprocess.DEVNULL}


def test_the_detached_refresh_says_at_once_when_no_package_index_is_reachable(config, monkeypatch):
    # The test session's pip knows no index (conftest's PIP_NO_INDEX): the real refresh, started as
    # diagnostics, the API and reporting start it, finds none with its first question.
    assert os.environ["PIP_NO_INDEX"] == "1"
    monkeypatch.setattr(outdated, "_started_at", {})
    children = []
    monkeypatch.setattr(outdated, "_children", children)
    cache_path = config.output_model_path / "outdatedpackages.json"
    config.output_model_path.mkdir(parents=True, exist_ok=True)
    assert outdated.start_refresh(cache_path, PROJECT_DIR / "requirements.txt") is True
    deadline = time.monotonic() + 30
    while not cache_path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    (child,) = children
    assert child.wait(timeout=30) == 0
    packages = json.loads(cache_path.read_text())["packages"]
    assert {item["latest"] for item in packages} == {"not checked (no package index reachable)"}
    assert len(packages) == len((PROJECT_DIR / "requirements.txt").read_text().splitlines())


@pytest.mark.parametrize("how", ["damaged", "malformed"])
def test_diagnostics_over_a_history_that_cannot_be_read_end_in_one_line_without_a_traceback(
    trained_project, config, how
):
    seed_outdated_cache(config)
    (damage_history if how == "damaged" else malform_history)(config)
    result = run_script("diagnostics.py", config.config_path)
    problem = "file is not a database" if how == "damaged" else "database disk image is malformed"
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].endswith(
        f"ERROR risk: history database logs/history.db is damaged ({problem}): restore it from a backup, or move"
        " it aside"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        (digest.predictions_text([0, 1, 1, 0]), "2 of 4 predicted to exit (50.0 %)"),
        (digest.predictions_text([]), "0 of 0 predicted to exit"),
        (
            digest.column_lines({"a": {"mean": 1234.5, "median": None, "std": None}}),
            ["a  mean 1,234.50, median -, std -"],
        ),
        (digest.missing_text({"a": 0.0, "b": 12.5}), "b 12.5 %"),
        (digest.missing_text({"a": 0.0}), "none"),
        (
            digest.timings_text({"ingestion_seconds": 0.0772, "training_seconds": None}),
            "ingestion 0.08 s, training not run yet",
        ),
        (digest.timings_text({}), "none recorded"),
        (
            digest.packages_text(
                [
                    {"package": "flask", "installed": "3.1.2", "latest": "3.1.3"},
                    {"package": "numpy", "installed": "2.4.6", "latest": "2.4.6"},
                    {"package": "pandas", "installed": "3.1.1", "latest": "not checked yet"},
                ]
            ),
            "1 of 3 behind their latest release, 1 not checked (flask)",
        ),
    ],
)
def test_the_digest_says_each_diagnostic_in_a_few_words(text, expected):
    assert text == expected
