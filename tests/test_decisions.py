"""Tests of risk.decisions, the policy of the full process, called as functions on a real temporary history.

A project is trained and deployed by the pipeline's own steps (conftest's `trained_project`); a new file
is ingested; then check(), challenge() and keep_champion() are called as fullprocess.py calls them. What
they must decide is worked out here from the files themselves: the deployed model's predictions and
confusion counts from scikit-learn, the reference rows read with pandas, and the statistics from
risk.drift and risk.challenger called directly with the seed (0) and settings the README gives; never
from the module under test.
"""

import hashlib
import json
import os
import pickle
import re
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, SPECIFIED, client_rows, make_project, set_config
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score

import ingestion
from risk import challenger, decisions, drift, history, monitoring
from risk.config import PipelineError, load_config
from risk.contract import read_csv

VERDICT_FIELDS = list(drift.Verdict("k", "s", "o", "d").row())
FOLDER = "../sourcedata"  # the input folder as the history names it (relative to logs/)


@pytest.fixture(autouse=True)
def actor(monkeypatch):
    monkeypatch.setenv("RISK_ACTOR", "tester@box")


@pytest.fixture
def project(trained_project):
    """The trained and deployed project's config (dataset1.csv and dataset2.csv decided by the deployment)."""
    return load_config(trained_project)


# --- what the tests know independently --------------------------------------------------------


def live_release(config):
    return config.prod_deployment_path.resolve()


def deployed_model(config) -> LogisticRegression:
    with open(live_release(config) / "trainedmodel.pkl", "rb") as handle:
        return pickle.load(handle)


def deployed_model_id(config) -> str:
    return hashlib.sha256((live_release(config) / "trainedmodel.pkl").read_bytes()).hexdigest()[:12]


def card_of(folder) -> dict:
    return json.loads((folder / "modelcard.json").read_text())


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts_of(y_true, y_pred) -> list[int]:
    """[tp, fp, fn, tn] from scikit-learn's confusion matrix."""
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return [int(tp), int(fp), int(fn), int(tn)]


def add_file(config, name: str, df: pd.DataFrame) -> None:
    """A new file in the input folder, ingested (its version recorded in the history, undecided)."""
    df.to_csv(config.input_folder_path / name, index=False)
    ingestion.ingest(config)


def start_run(conn, config) -> int:
    return history.start_run(conn, str(config.config_path), "tester@box", "new data", live_release(config).name)


def history_rows(config, sql) -> list[tuple]:
    with history.opened(config.history_path) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def recorded_verdicts(conn, run_id) -> list[dict]:
    return [{key: row[key] for key in VERDICT_FIELDS} for row in history.run_verdicts(conn, run_id)]


def files(config) -> dict[str, tuple]:
    """name -> (decision, decided_run_id) of each file version in the input folder."""
    with history.opened(config.history_path) as conn:
        rows = history.select(conn, "SELECT name, decision, decided_run_id FROM files ORDER BY id")
    return {row["name"]: (row["decision"], row["decided_run_id"]) for row in rows}


GONE = "the reference rows (the files the live model was validated on) are gone or changed -> insufficient data"


def expected_check(config, new_rows: pd.DataFrame, reference_rows, reference: dict | None = None):
    """The verdicts check() must record and the live model's assessment: the course's comparison, the
    sequential test of risk.monitoring (over the model's earlier checks, read from the history) and the
    data checks against `reference_rows` ("gone": the reference files cannot be read)."""
    model = deployed_model(config)
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv").dropna(subset=FEATURES)
    test_f1 = float((live_release(config) / "latestscore.txt").read_text())
    f1_all = f1_score(finaldata["exited"], model.predict(finaldata[FEATURES].to_numpy(float)))
    if reference is None:
        card = card_of(live_release(config))
        reference = {"f1": card["validation_f1"], "counts": card["validation_counts"]}
    y_true = new_rows["exited"].to_numpy(int)
    counts = counts_of(y_true, model.predict(new_rows[FEATURES].to_numpy(float)))
    data, exits = [], None
    if isinstance(reference_rows, str):
        data = [drift.Verdict("data drift", "reference", "insufficient data", GONE, n=len(new_rows))]
        if reference.get("counts"):
            tp, fp, fn, tn = reference["counts"]
            exits = (tp + fp + fn + tn, tp + fn)
    elif reference_rows is not None:
        for feature in FEATURES:
            reference_values, new_values = reference_rows[feature].to_numpy(float), new_rows[feature].to_numpy(float)
            data.append(drift.ks_verdict(feature, reference_values, new_values, config.drift_confidence))
            data.append(drift.psi_verdict(feature, reference_values, new_values, config.drift_confidence))
        exits = (len(reference_rows), int(reference_rows["exited"].sum()))
    with history.opened(config.history_path) as conn:
        checks = history.model_checks(conn, deployed_model_id(config))
    if reference.get("f1") is not None:
        data.append(monitoring.assess_exit_rate(checks, 0, counts, exits, config)[0])
    assessment = monitoring.assess(
        checks,
        0,
        counts,
        reference if reference.get("f1") is not None else None,
        any(v.outcome == "drift" for v in data),
        config,
        np.random.default_rng(0),
        "now",
    )
    return [drift.course_verdict(float(f1_all), test_f1, len(finaldata)), *assessment.verdicts, *data], assessment


def first_files(config) -> pd.DataFrame:
    """The rows the deployed model was validated on: dataset1.csv and dataset2.csv, as pandas reads them."""
    frames = [pd.read_csv(config.input_folder_path / name) for name in ("dataset1.csv", "dataset2.csv")]
    return pd.concat(frames, ignore_index=True).dropna(subset=FEATURES)


# --- check(): the live model on the new rows ----------------------------------------------------


def is_state_line(line: str, state: str) -> bool:
    """The line check() ends its log with: the live model's state and since when (a UTC time)."""
    return (
        re.fullmatch(rf"the live model is {state} \(since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\)", line)
        is not None
    )


def checks_of(config) -> list[dict]:
    with history.opened(config.history_path) as conn:
        return history.model_checks(conn, deployed_model_id(config))


def test_check_judges_only_the_new_rows_against_the_models_validation_and_keeps_it_without_drift(project):
    fresh = client_rows(4, 400)
    old = pd.read_csv(project.input_folder_path / "dataset1.csv").head(5)  # rows the model already learned
    incomplete = pd.DataFrame([["zzzz", 50, None, 10, 1]], columns=fresh.columns)
    add_file(project, "dataset3.csv", pd.concat([fresh, old, fresh.head(1), incomplete], ignore_index=True))
    expected, assessment = expected_check(project, fresh, first_files(project))
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
        recorded = recorded_verdicts(conn, run_id)
    assert [v.outcome for v in expected] == ["drift"] + ["no drift"] * 8  # the course's raw rule alone says drift
    assert (result.decision, result.challenge, result.champion) == ("no drift: the live model stays", False, None)
    assert (result.state, result.burden, result.newly_degraded, result.newly_flagged) == ("healthy", None, False, False)
    assert result.lines[:-1] == [v.detail for v in expected] and is_state_line(result.lines[-1], "healthy")
    assert recorded == [v.row() for v in expected]
    assert files(project)["dataset3.csv"] == ("decided", run_id)
    (check,) = checks_of(project)
    assert {key: check[key] for key in ("run_id", "rows", "counts", "state", "evidence", "flagged")} == {
        "run_id": run_id,
        "rows": 400,
        "counts": assessment.row["counts"],
        "state": "healthy",
        "evidence": f"healthy: {expected[1].detail}",
        "flagged": 0,
    }
    assert check["reference_f1"] == card_of(live_release(project))["validation_f1"]


def test_check_calls_a_drop_in_f1_drift_and_asks_for_a_challenger_leaving_the_files_undecided(project):
    flipped = client_rows(4, 400, "flipped")
    add_file(project, "dataset3.csv", flipped)
    expected, _ = expected_check(project, flipped, first_files(project))
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
        recorded = recorded_verdicts(conn, run_id)
    assert [v.kind for v in expected if v.outcome == "drift"] == ["course", "performance", "exit rate"]
    assert (result.decision, result.challenge) == ("exit rate and performance: challenger search", True)
    assert (result.state, result.burden, result.since_run_id) == ("degraded", "degraded", run_id)
    assert (result.newly_degraded, result.newly_flagged) == (True, True)
    assert result.lines[:-2] == [v.detail for v in expected] and is_state_line(result.lines[-2], "degraded")
    assert (
        result.lines[-1]
        == "exit rate and performance: challenger search: the gate's burden is that of a degraded champion"
    )
    assert result.verdicts == expected and recorded == [v.row() for v in expected]
    np.testing.assert_array_equal(result.champion.coef_, deployed_model(project).coef_)
    assert files(project)["dataset3.csv"] == (None, None)  # decided by the challenger search's outcome
    assert checks_of(project) == []  # the check takes effect when its run decides the files


def test_check_calls_a_shift_of_a_feature_alone_data_drift_and_searches_with_a_healthy_champions_burden(project):
    grown = client_rows(4, 400)
    grown["number_of_employees"] *= 3  # the exits still follow last month's activity: the model stays as good
    add_file(project, "dataset3.csv", grown)
    expected, _ = expected_check(project, grown, first_files(project))
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
    flagged = [(v.statistic, v.feature) for v in expected if v.outcome == "drift" and v.kind != "course"]
    assert flagged == [("ks", "number_of_employees"), ("psi", "number_of_employees")]
    assert (result.decision, result.challenge) == ("data drift: challenger search", True)
    assert (result.state, result.burden, result.since_run_id, result.newly_flagged) == (
        "healthy",
        "healthy",
        run_id,
        True,
    )
    assert result.lines[-1] == "data drift: challenger search: the gate's burden is that of a healthy champion"
    assert result.verdicts == expected


@pytest.mark.parametrize(
    "rows, min_new_rows, min_new_positives",
    [(100, 200, 50), (400, 401, 10), (400, 10, 400)],
    ids=["few rows", "one row short", "few exits"],
)
def test_too_few_rows_judged_since_the_model_went_live_leave_it_unproven_naming_both_minimums(
    project, rows, min_new_rows, min_new_positives
):
    config = set_config(project, min_new_rows=min_new_rows, min_new_positives=min_new_positives)
    new = client_rows(4, rows)
    add_file(config, "dataset3.csv", new)
    expected, _ = expected_check(config, new, first_files(config))
    exits = int(new["exited"].sum())
    with history.opened(config.history_path) as conn:
        run_id = start_run(conn, config)
        result = decisions.check(conn, config, run_id)
        recorded = recorded_verdicts(conn, run_id)
    assert expected[1].outcome == "insufficient data"
    assert f"{rows} rows with {exits} exits judged since it went live, a verdict needs {min_new_rows} and " in (
        expected[1].detail
    )
    assert (result.decision, result.challenge, result.state) == (
        "insufficient data: the live model stays (unproven)",
        False,
        "unproven",
    )
    assert result.lines[:-1] == [v.detail for v in expected] and is_state_line(result.lines[-1], "unproven")
    assert recorded == [v.row() for v in expected]
    assert files(config)["dataset3.csv"] == ("decided", run_id)  # judged: its rows count toward the next verdict


def test_the_rows_of_an_unproven_check_count_toward_the_next_verdict(project):
    config = set_config(project, min_new_rows=300)
    first, second = client_rows(4, 200), client_rows(5, 200)
    add_file(config, "dataset3.csv", first)
    with history.opened(config.history_path) as conn:
        assert decisions.check(conn, config, start_run(conn, config)).state == "unproven"
    add_file(config, "dataset4.csv", second)
    expected, _ = expected_check(config, second, first_files(config))
    with history.opened(config.history_path) as conn:
        run_id = start_run(conn, config)
        result = decisions.check(conn, config, run_id)
    assert (result.decision, result.state) == ("no drift: the live model stays", "healthy")
    assert result.lines[1] == expected[1].detail and expected[1].outcome == "no drift"
    assert [check["rows"] for check in checks_of(config)] == [200, 200]
    assert files(config) == {
        "dataset1.csv": ("decided", 1),
        "dataset2.csv": ("decided", 1),
        "dataset3.csv": ("decided", run_id - 1),
        "dataset4.csv": ("decided", run_id),
    }


def test_a_second_check_judges_only_the_file_new_since_the_first(project):
    first, second = client_rows(4, 400), client_rows(5, 400)
    add_file(project, "dataset3.csv", first)
    with history.opened(project.history_path) as conn:
        assert decisions.check(conn, project, start_run(conn, project)).decision == "no drift: the live model stays"
    add_file(project, "dataset4.csv", second)
    expected, _ = expected_check(project, second, first_files(project))
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
    assert result.lines[1] == expected[1].detail and expected[1].n == 400
    assert files(project)["dataset4.csv"] == ("decided", run_id)


def start_run_with(conn, config, names: list[str]) -> int:
    """A run of the full process that found `names` new (as fullprocess.work records them)."""
    run_id = start_run(conn, config)
    with conn:
        history.update(conn, "runs", "id", run_id, {"new_files": names})
    return run_id


def test_check_with_nothing_new_decides_nothing(project):
    (project.input_folder_path / "bad.csv").write_text("corporation\n")  # rejected by ingestion
    ingestion.ingest(project)
    with history.opened(project.history_path) as conn:
        run_id = start_run_with(conn, project, ["bad.csv"])
        result = decisions.check(conn, project, run_id)
        assert recorded_verdicts(conn, run_id) == []
    assert result == decisions.Check("no new rows: the new file(s) were rejected", False, [])


def test_a_file_touched_without_a_change_is_not_said_to_be_rejected(project):
    path = project.input_folder_path / "dataset1.csv"
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 60))  # new to the idle run's size-and-time look
    ingestion.ingest(project)
    with history.opened(project.history_path) as conn:
        result = decisions.check(conn, project, start_run_with(conn, project, ["dataset1.csv"]))
    assert result.decision == "no new rows: their content was judged before (a file touched, copied or renamed)"


@pytest.mark.parametrize("how", ["copied", "renamed"])
def test_a_copy_or_a_renamed_file_is_the_same_content_and_not_new_data(project, how):
    folder = project.input_folder_path
    add_file(project, "dataset3.csv", client_rows(4, 300))
    with history.opened(project.history_path) as conn:
        first = start_run_with(conn, project, ["dataset3.csv"])
        decisions.check(conn, project, first)
    (folder / "month03.csv").write_bytes((folder / "dataset3.csv").read_bytes())
    if how == "renamed":
        (folder / "dataset3.csv").unlink()
    ingestion.ingest(project)
    with history.opened(project.history_path) as conn:
        run_id = start_run_with(conn, project, ["month03.csv"])
        result = decisions.check(conn, project, run_id)
        assert recorded_verdicts(conn, run_id) == []
    assert result.lines == ["month03.csv: the same content as dataset3.csv, judged before: not new data"]
    assert result.decision == "no new rows: their content was judged before (a file touched, copied or renamed)"
    assert files(project)["month03.csv"] == ("decided", run_id)


def test_check_without_a_deployed_model_names_the_production_path(config):
    ingestion.ingest(config)
    with history.opened(config.history_path) as conn:
        with pytest.raises(PipelineError) as raised:
            decisions.check(conn, config, start_run_without_release(conn, config))
    assert str(raised.value) == f"nothing is deployed at {config.prod_deployment_path}"


def start_run_without_release(conn, config) -> int:
    return history.start_run(conn, str(config.config_path), "tester@box", "bootstrap", None)


def forget_history(config) -> None:
    """The history database is lost (or the release was deployed before it existed)."""
    for path in config.history_path.parent.glob("history.db*"):
        path.unlink()


def test_files_the_live_release_learned_from_are_adopted_not_judged(project):
    release = live_release(project)
    forget_history(project)
    ingestion.ingest(project)  # dataset1.csv and dataset2.csv: unknown to the new history, undecided
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
        runs = history.select(conn, "SELECT * FROM runs ORDER BY id")
        assert recorded_verdicts(conn, run_id) == []
    note = f"dataset1.csv, dataset2.csv: learned by the live release {release.name}, not new data"
    assert result == decisions.Check("no new rows: the live release learned from them", False, [note])
    adoption = runs[-1]
    assert (adoption["config_path"], adoption["actor"], adoption["trigger"], adoption["release_before"]) == (
        str(project.config_path),
        "tester@box",
        "adoption",
        release.name,
    )
    assert (adoption["decision"], adoption["exit_code"], adoption["state"]) == (
        "files the live release learned from, adopted",
        0,
        "finished",
    )
    assert files(project) == {"dataset1.csv": ("decided", adoption["id"]), "dataset2.csv": ("decided", adoption["id"])}


def test_a_file_the_live_model_learned_from_that_comes_back_with_other_content_is_new_data(project):
    flipped = client_rows(4, 400, "flipped")
    add_file(project, "dataset2.csv", flipped)  # next month's export written over a file the model learned from
    (course, performance, *_), _ = expected_check(project, flipped, "gone")  # the reference file was written over
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
    assert result.lines[:3] == [
        "dataset2.csv changed since the live model learned from it: new data",
        course.detail,
        performance.detail,
    ]
    assert (performance.outcome, result.challenge) == ("drift", True)
    assert result.verdicts[:2] == [course, performance]
    versions = history_rows(project, "SELECT name, decision FROM files ORDER BY id")
    assert versions == [("dataset1.csv", "decided"), ("dataset2.csv", "decided"), ("dataset2.csv", None)]


def test_a_release_known_by_names_only_adopts_the_first_content_seen_under_a_name_and_judges_any_other(project):
    release = live_release(project)
    (release / "modelcard.json").unlink()  # no card: ingestedfiles.txt names the files, without their content
    forget_history(project)
    ingestion.ingest(project)
    with history.opened(project.history_path) as conn:
        first = decisions.check(conn, project, start_run(conn, project))
    assert first.lines == [f"dataset1.csv, dataset2.csv: learned by the live release {release.name}, not new data"]
    add_file(project, "dataset2.csv", client_rows(4, 400, "flipped"))
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        second = decisions.check(conn, project, run_id)
    assert second.lines[0] == "dataset2.csv changed since the live model learned from it: new data"
    assert second.verdicts[1].kind == "performance" and second.verdicts[1].n == 400


def test_an_adopted_release_without_card_is_judged_by_its_test_f1_with_the_new_files_noted(project):
    release = live_release(project)
    (release / "modelcard.json").unlink()
    forget_history(project)
    flipped = client_rows(4, 400, "flipped")
    flipped.to_csv(project.input_folder_path / "dataset3.csv", index=False)
    ingestion.ingest(project)
    test_f1 = float((release / "latestscore.txt").read_text())
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
    expected, _ = expected_check(project, flipped, "gone", reference={"f1": test_f1, "counts": None})
    note = f"dataset1.csv, dataset2.csv: learned by the live release {release.name}, not new data"
    assert result.verdicts[1:] == expected[1:]
    assert result.verdicts[1].reference == test_f1 and result.verdicts[1].outcome == "drift"
    assert result.lines[0] == note and result.lines[2] == expected[1].detail and result.lines[3] == GONE
    assert result.decision == "performance: challenger search"
    assert files(project)["dataset3.csv"] == (None, None)


def test_a_release_without_reference_or_test_score_is_unproven_and_never_searched(project):
    release = live_release(project)
    (release / "modelcard.json").unlink()
    (release / "latestscore.txt").unlink()
    forget_history(project)
    add_file(project, "dataset3.csv", client_rows(4, 400))
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        result = decisions.check(conn, project, run_id)
        recorded = recorded_verdicts(conn, run_id)
    no_reference = "the live model has no reference F1"
    assert [(v["kind"], v["outcome"], v["detail"]) for v in recorded] == [
        ("course", "insufficient data", "course rule: the release has no latestscore.txt"),
        ("performance", "insufficient data", no_reference),
    ]
    note = f"dataset1.csv, dataset2.csv: learned by the live release {release.name}, not new data"
    assert (result.decision, result.challenge, result.state) == (
        "insufficient data: the live model stays (unproven)",
        False,
        "unproven",
    )
    assert result.lines[:-1] == [note, recorded[0]["detail"], no_reference] and is_state_line(
        result.lines[-1], "unproven"
    )
    assert files(project)["dataset3.csv"] == ("decided", run_id)


def test_a_reference_file_gone_makes_the_data_checks_insufficient_but_not_the_performance_verdict(project):
    (project.input_folder_path / "dataset1.csv").unlink()
    fresh = client_rows(4, 400)
    add_file(project, "dataset3.csv", fresh)
    expected, _ = expected_check(project, fresh, "gone")
    with history.opened(project.history_path) as conn:
        result = decisions.check(conn, project, start_run(conn, project))
    assert expected[1].outcome == "no drift" and expected[-2].detail == GONE and expected[-1].kind == "exit rate"
    assert result.lines[:-1] == [v.detail for v in expected] and is_state_line(result.lines[-1], "healthy")


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_a_new_file_that_changes_during_the_run_stops_it_naming_the_file(project, change):
    add_file(project, "dataset3.csv", client_rows(4, 400))
    path = project.input_folder_path / "dataset3.csv"
    if change == "edited":
        path.write_text(path.read_text() + "zzzz,1,1,1,1\n")
    else:
        path.unlink()
    with history.opened(project.history_path) as conn:
        with pytest.raises(PipelineError) as raised:
            decisions.check(conn, project, start_run(conn, project))
    assert str(raised.value) == "input file(s) dataset3.csv changed or vanished during the run; the next run retries"


# --- read_recorded(): a recorded file version, only as it was ---------------------------------


def test_read_recorded_reads_the_recorded_versions_in_order(config):
    history_path = config.history_path
    history_path.parent.mkdir()  # the folder names are relative to the database's folder
    folder = config.input_folder_path
    recorded = [
        {"folder": FOLDER, "name": name, "sha256": sha256_of(folder / name)}
        for name in ("dataset2.csv", "dataset1.csv")
    ]
    df = decisions.read_recorded(history_path, recorded)
    expected = pd.concat([client_rows(2, 300), client_rows(1, 400)], ignore_index=True)
    pd.testing.assert_frame_equal(df, expected, check_dtype=False)
    assert list(df.index) == list(range(700))


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "dataset1.csv", "sha256": "SHA"},
        {"folder": "", "name": "dataset1.csv", "sha256": "SHA"},
        {"folder": FOLDER, "name": "dataset1.csv"},
        {"folder": FOLDER, "name": "dataset1.csv", "sha256": ""},
        {"folder": FOLDER, "name": "missing.csv", "sha256": "SHA"},
        {"folder": FOLDER, "name": "dataset1.csv", "sha256": "0" * 64},
        {"folder": FOLDER, "name": "bad.csv", "sha256": "SHA"},
    ],
    ids=["no folder", "empty folder", "no sha256", "empty sha256", "gone", "changed", "breaks the contract"],
)
def test_read_recorded_is_none_when_a_version_cannot_be_read_as_recorded(config, entry):
    folder = config.input_folder_path
    config.history_path.parent.mkdir()
    (folder / "bad.csv").write_text("corporation,lastmonth_activity\nabcd,1\n")
    sha = sha256_of(folder / entry["name"]) if (folder / entry["name"]).is_file() else "f" * 64
    entry = {key: (sha if value == "SHA" else value) for key, value in entry.items()}
    good = {"folder": FOLDER, "name": "dataset2.csv", "sha256": sha256_of(folder / "dataset2.csv")}
    assert decisions.read_recorded(config.history_path, [good]) is not None
    assert decisions.read_recorded(config.history_path, [good, entry]) is None


def test_read_recorded_of_no_file_is_none(config):
    config.history_path.parent.mkdir()
    assert decisions.read_recorded(config.history_path, []) is None


# --- challenge(): candidates, the gate, the model to deploy ---------------------------------------


def expected_search(config, frames: list[pd.DataFrame], champion):
    """What the search and the gate decide on these batches, with the seed and settings the README gives."""
    rng = np.random.default_rng(0)
    result = challenger.search(frames, champion, config.drift_confidence, rng)
    window = challenger.window_data(frames, result.best.batches)
    model = LogisticRegression(**SPECIFIED).fit(window[FEATURES].to_numpy(float), window["exited"].to_numpy(int))
    final_pred = model.predict(challenger.prepare_batches(frames)[-1][FEATURES].to_numpy(float))
    gate = challenger.gate(result, final_pred, config.drift_margin, config.drift_confidence, rng)
    return result, model, challenger.describe_candidates(result) + [gate]


def contract_frame(config, *names) -> pd.DataFrame:
    frames = [read_csv(config.input_folder_path / name) for name in names]
    return pd.concat(frames, ignore_index=True)


def test_challenge_after_a_change_trains_the_newest_batch_and_writes_it_with_its_card(project):
    add_file(project, "dataset3.csv", client_rows(4, 400, "flipped"))
    champion = deployed_model(project)
    frames = [contract_frame(project, "dataset1.csv", "dataset2.csv"), contract_frame(project, "dataset3.csv")]
    result, model, verdicts = expected_search(project, frames, champion)
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        before = history.utc_now()
        started = time.perf_counter()
        choice = decisions.challenge(conn, project, run_id, champion)
        elapsed = time.perf_counter() - started
        recorded = recorded_verdicts(conn, run_id)
        step = history.select(conn, "SELECT * FROM step_runs WHERE step = 'training' ORDER BY id DESC")[0]
        card = card_of(project.output_model_path)
        model_record = history.get_model(conn, card["id"])
        reference = history.latest_reference(conn, card["id"])
    window_files = [
        {"folder": FOLDER, "name": "dataset3.csv", "sha256": sha256_of(project.input_folder_path / "dataset3.csv")}
    ]
    assert [v.outcome for v in verdicts] == ["chosen", "candidate", "better"]
    assert choice.deploy is True and choice.result.best.label == "newest batch"
    assert choice.lines == [v.detail for v in verdicts] + [
        f"model {card['id']} trained on newest batch (400 rows) is the challenger to deploy"
    ]
    assert recorded == [v.row() for v in verdicts]
    with open(project.output_model_path / "trainedmodel.pkl", "rb") as handle:
        written = pickle.load(handle)
    np.testing.assert_array_equal(written.coef_, model.coef_)
    assert card["id"] == hashlib.sha256((project.output_model_path / "trainedmodel.pkl").read_bytes()).hexdigest()[:12]
    assert (card["window"], card["rows"], card["run_id"]) == ("newest batch", 400, run_id)
    assert card["training_files"] == card["reference_files"] == window_files
    assert card["validation_method"] == (
        "out of time, rolling origin over 1 batch (400 rows): each cut into folds, each fold predicted by the "
        "window's model trained on the window's batches before it and the other folds"
    )
    best = result.best
    assert (card["validation_f1"], card["validation_low"], card["validation_high"]) == (
        round(best.f1, 6),
        round(best.low, 6),
        round(best.high, 6),
    )
    assert model_record["run_id"] == run_id and model_record["window"] == "newest batch"
    assert (reference["kind"], reference["files"], reference["run_id"]) == ("validation", window_files, run_id)
    assert (step["config_path"], step["ok"], step["detail"]) == (
        str(project.config_path),
        1,
        {"kind": "challenger search", "candidates": 2, "rows": 400},
    )
    assert 0 <= step["seconds"] <= elapsed and step["started_at"] >= before


def test_challenge_that_finds_no_better_model_writes_nothing(project):
    add_file(project, "dataset3.csv", client_rows(4, 400))
    champion = deployed_model(project)
    model_before = (project.output_model_path / "trainedmodel.pkl").read_bytes()
    frames = [contract_frame(project, "dataset1.csv", "dataset2.csv"), contract_frame(project, "dataset3.csv")]
    result, _, verdicts = expected_search(project, frames, champion)
    with history.opened(project.history_path) as conn:
        models_before = history.select(conn, "SELECT id FROM models")
        run_id = start_run(conn, project)
        choice = decisions.challenge(conn, project, run_id, champion)
        assert history.select(conn, "SELECT id FROM models") == models_before
        assert recorded_verdicts(conn, run_id) == [v.row() for v in verdicts]
    assert [v.outcome for v in verdicts] == ["candidate", "chosen", "not better"]
    assert (choice.deploy, choice.lines) == (False, [v.detail for v in verdicts])
    assert choice.result.best.label == result.best.label == "all data (2 batches)"
    assert (project.output_model_path / "trainedmodel.pkl").read_bytes() == model_before


def test_challenge_with_nothing_deployed_trains_on_all_files_as_one_batch(config):
    ingestion.ingest(config)
    frames = [contract_frame(config, "dataset1.csv", "dataset2.csv")]
    _, model, verdicts = expected_search(config, frames, None)
    with history.opened(config.history_path) as conn:
        run_id = start_run_without_release(conn, config)
        choice = decisions.challenge(conn, config, run_id, None)
    card = card_of(config.output_model_path)
    assert verdicts[-1].detail == (
        f"nothing is deployed: the best candidate (all data (1 batch), F1 {verdicts[0].value:.2f}) goes live -> better"
    )
    assert choice.deploy is True
    assert choice.lines == [v.detail for v in verdicts] + [
        f"model {card['id']} trained on all data (1 batch) (700 rows) is the challenger to deploy"
    ]
    assert card["training_files"] == [
        {"folder": FOLDER, "name": name, "sha256": sha256_of(config.input_folder_path / name)}
        for name in ("dataset1.csv", "dataset2.csv")
    ]
    assert card["validation_method"] == (
        "out of time, rolling origin over 1 batch (700 rows): each cut into folds, each fold predicted by the "
        "window's model trained on the window's batches before it and the other folds"
    )


def test_challenge_without_any_accepted_file_names_the_input_folder(tmp_path):
    config = load_config(make_project(tmp_path))
    with history.opened(config.history_path) as conn:
        with pytest.raises(PipelineError) as raised:
            decisions.challenge(conn, config, start_run_without_release(conn, config), None)
    assert str(raised.value) == f"no accepted data file in {config.input_folder_path} to train on"


def test_challenge_names_every_file_of_a_batch_that_vanished(config):
    ingestion.ingest(config)
    (config.input_folder_path / "dataset2.csv").unlink()
    with history.opened(config.history_path) as conn:
        with pytest.raises(PipelineError) as raised:
            decisions.challenge(conn, config, start_run_without_release(conn, config), None)
    assert str(raised.value) == (
        "input file(s) dataset1.csv, dataset2.csv changed or vanished during the run; the next run retries"
    )


@pytest.mark.parametrize(
    "k, names",
    [(1, ["c.csv", "d.csv"]), (2, ["b.csv", "c.csv", "d.csv"]), (3, ["a.csv", "b.csv", "c.csv", "d.csv"])],
)
def test_window_files_are_the_newest_k_batches_files_as_the_card_names_them(k, names):
    def file(name):
        return {"id": 7, "folder": "in", "name": name, "sha256": name * 2, "rows": 10, "decision": "decided"}

    groups = [[file("a.csv")], [file("b.csv")], [file("c.csv"), file("d.csv")]]
    assert decisions.window_files(groups, k) == [{"folder": "in", "name": name, "sha256": name * 2} for name in names]


def decide_with_check(config, name: str, df: pd.DataFrame) -> int:
    """A new file, judged by check() and decided (as a run that found no drift does); the run's id."""
    add_file(config, name, df)
    with history.opened(config.history_path) as conn:
        run_id = start_run(conn, config)
        decisions.check(conn, config, run_id)
        decisions.keep_champion(conn, config, run_id)
    return run_id


def test_challenge_after_a_change_judges_every_batch_since_the_change_by_rolling_origin(project):
    # Three monthly files after the change; the degraded champion's search judges all three, each
    # batch predicted from the window's batches before it (never from rows it trained on).
    champion = deployed_model(project)
    since = decide_with_check(project, "dataset3.csv", client_rows(4, 300, "flipped"))
    decide_with_check(project, "dataset4.csv", client_rows(5, 300, "flipped"))
    add_file(project, "dataset5.csv", client_rows(6, 300, "flipped"))
    frames = [contract_frame(project, "dataset1.csv", "dataset2.csv")] + [
        contract_frame(project, name) for name in ("dataset3.csv", "dataset4.csv", "dataset5.csv")
    ]
    rng = np.random.default_rng(0)
    result = challenger.search(frames, champion, project.drift_confidence, rng, [1, 2, 3], 1)
    window = challenger.window_data(frames, result.best.batches)
    model = LogisticRegression(**SPECIFIED).fit(window[FEATURES].to_numpy(float), window["exited"].to_numpy(int))
    final_pred = model.predict(challenger.prepare_batches(frames)[-1][FEATURES].to_numpy(float))
    gate = challenger.gate(result, final_pred, project.drift_margin, project.drift_confidence, rng, 0.9)
    with history.opened(project.history_path) as conn:
        run_id = start_run(conn, project)
        choice = decisions.challenge(conn, project, run_id, champion, "degraded", since)
    assert [c.label for c in result.candidates] == [
        "newest batch",
        "newest 2 batches",
        "since the change (3 batches)",
        "all data (4 batches)",
    ]
    assert choice.lines[:-1] == [v.detail for v in challenger.describe_candidates(result) + [gate]]
    assert gate.outcome == "better" and "vs degraded champion" in gate.detail and "needs < 0.1" in gate.detail
    assert "on the same 900 rows of the 3 batches since the change" in gate.detail
    card = card_of(project.output_model_path)
    assert card["reference_files"] == [
        {"folder": FOLDER, "name": name, "sha256": sha256_of(project.input_folder_path / name)}
        for name in ("dataset3.csv", "dataset4.csv", "dataset5.csv")
    ]
    assert card["validation_rows"] == 900 and card["window"] == result.best.label


def test_rolling_origin_never_predicts_a_batch_with_a_model_that_learned_it():
    # The newest batch's labels are the opposite rule of the older ones': a window's out-of-time F1 on an
    # older batch would be near 1 if that batch's own rows had leaked into its training set.
    older = client_rows(1, 300)
    middle = client_rows(2, 300, "flipped")
    newest = client_rows(3, 300)
    result = challenger.search([older, middle, newest], None, 0.95, np.random.default_rng(0), [1, 2], 1)
    by_label = {candidate.label: candidate for candidate in result.candidates}
    # all data at batch 1 learns batch 0 (the opposite rule) and four fifths of batch 1
    expected = []
    for index, batch in ((1, middle), (2, newest)):
        earlier = pd.concat([older, middle][:index], ignore_index=True)
        expected.append(challenger.out_of_time_predictions(earlier, batch, 5))
    np.testing.assert_array_equal(by_label["all data (3 batches)"].y_pred, np.concatenate(expected))


def test_the_search_judges_the_champion_only_on_batches_it_was_live_for(project):
    first = decide_with_check(project, "dataset3.csv", client_rows(4, 300, "flipped"))
    decide_with_check(project, "dataset4.csv", client_rows(5, 300, "flipped"))
    add_file(project, "dataset5.csv", client_rows(6, 300, "flipped"))
    with history.opened(project.history_path) as conn:
        groups, _ = decisions.batches(conn, project)
        live = decisions.evaluation_batches(conn, groups, deployed_model_id(project), first)
        later = decisions.evaluation_batches(conn, groups, deployed_model_id(project), first + 1)
        other = decisions.evaluation_batches(conn, groups, "another-model", first)  # e.g. rolled back to
    assert (live, later, other) == ([1, 2, 3], [2, 3], [3])  # batch 0 is what the live model learned


@pytest.mark.parametrize(
    "champion_counts, expected",
    [([70, 30, 30, 270], "healthy"), ([40, 60, 60, 240], "degraded")],  # F1 0.70 and 0.40 vs 0.75 expected
    ids=["holding", "failing"],
)
def test_a_degraded_champion_keeps_the_margins_protection_where_it_still_holds_its_own(champion_counts, expected):
    result = challenger.SearchResult([], None, np.zeros(400), np.zeros(400), np.array(champion_counts), 400, 5)
    settings = SimpleNamespace(drift_margin=0.05)
    burden, note = decisions.gate_burden("degraded", result, {"f1": 0.75}, settings)
    assert burden == expected
    assert (note is None) == (expected == "degraded")
    assert decisions.gate_burden("healthy", result, {"f1": 0.75}, settings) == ("healthy", None)


# --- keep_champion(): the live model stays, its reference as validated ---------------------------


def test_keep_champion_decides_the_files_and_never_lowers_the_reference(project):
    add_file(project, "dataset3.csv", client_rows(4, 400, "flipped"))
    with history.opened(project.history_path) as conn:
        before = history.latest_reference(conn, deployed_model_id(project))
        run_id = start_run(conn, project)
        decisions.keep_champion(conn, project, run_id)
        after = history.latest_reference(conn, deployed_model_id(project))
        kinds = [row["kind"] for row in history.select(conn, "SELECT kind FROM model_references")]
    assert after == before and kinds == ["validation"]
    assert files(project)["dataset3.csv"] == ("decided", run_id)


def test_an_old_revalidation_does_not_lower_what_a_model_is_expected_to_score(project):
    # An earlier version re-baselined a model after "no better model"; its reference stays what it was validated at.
    model_id = deployed_model_id(project)
    with history.opened(project.history_path) as conn:
        validated = history.latest_reference(conn, model_id)
        with conn:
            history.add_reference(conn, {"model_id": model_id, "kind": "revalidation", "f1": 0.2})
        assert history.latest_reference(conn, model_id) == validated


def test_a_file_whose_every_row_was_judged_before_makes_no_check(project):
    rows = client_rows(4, 300)
    add_file(project, "dataset3.csv", rows)
    with history.opened(project.history_path) as conn:
        decisions.check(conn, project, start_run_with(conn, project, ["dataset3.csv"]))
    add_file(project, "dataset4.csv", rows.head(120))  # a part of it, in another file
    with history.opened(project.history_path) as conn:
        run_id = start_run_with(conn, project, ["dataset4.csv"])
        result = decisions.check(conn, project, run_id)
        assert recorded_verdicts(conn, run_id) == []
    assert (result.decision, result.challenge) == ("no new rows: every row of dataset4.csv was judged before", False)
    assert [check["run_id"] for check in checks_of(project)] == [run_id - 1]  # no check on 0 rows
    assert files(project)["dataset4.csv"] == ("decided", run_id)
