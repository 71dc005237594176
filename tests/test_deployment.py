"""Deployment and the registry: releases, the audit, rollback, adoption, pruning, kills."""

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, malform_history, refuse_to_delete, run_script

import deployment
import training
from risk import artifacts, history, registry
from risk.config import PipelineError

RELEASE_FILES = ["ingestedfiles.txt", "latestscore.txt", "modelcard.json", "trainedmodel.pkl"]


@pytest.fixture(autouse=True)
def actor(monkeypatch):
    monkeypatch.setenv("RISK_ACTOR", "tester@box")


def live(config) -> str:
    return config.prod_deployment_path.resolve().name


def audit(config) -> list[tuple]:
    with sqlite3.connect(config.history_path) as conn:
        return conn.execute(
            "SELECT from_release, to_release, reason, actor, state FROM deployments ORDER BY id"
        ).fetchall()


def retrain_and_deploy(config, flip: bool = False):
    """A second model (trained on flipped labels when `flip`) deployed by hand; returns the release name."""
    import pandas as pd

    if flip:
        finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
        finaldata["exited"] = 1 - finaldata["exited"]
        finaldata.to_csv(config.output_folder_path / "finaldata.csv", index=False)
    training.train(config)
    return deployment.deploy(config).name


def test_deployment_publishes_the_files_and_records_who_and_why(trained_project, config):
    prod = config.prod_deployment_path
    assert prod.is_symlink() and sorted(p.name for p in prod.iterdir()) == RELEASE_FILES
    for name in ["trainedmodel.pkl", "latestscore.txt", "modelcard.json"]:
        assert (prod / name).read_bytes() == (config.output_model_path / name).read_bytes()
    assert (prod / "ingestedfiles.txt").read_bytes() == (config.output_folder_path / "ingestedfiles.txt").read_bytes()
    assert audit(config) == [(None, live(config), "manual", "tester@box", "done")]
    model_id = hashlib.sha256((prod / "trainedmodel.pkl").read_bytes()).hexdigest()[:12]
    with sqlite3.connect(config.history_path) as conn:
        assert conn.execute("SELECT model_id FROM releases").fetchall() == [(model_id,)]
        # A deployment by hand decides the files it learned from: they are not new data afterwards.
        assert conn.execute("SELECT name, decision FROM files ORDER BY name").fetchall() == [
            ("dataset1.csv", "decided"),
            ("dataset2.csv", "decided"),
        ]


def test_a_deployment_decides_the_file_versions_its_model_learned_from_not_later_ones_of_the_same_name(config):
    import ingestion
    import scoring

    for step in (ingestion.ingest, training.train, scoring.score):
        step(config)  # the model learns dataset2.csv as it is now
    dataset2 = config.input_folder_path / "dataset2.csv"
    dataset2.write_text(dataset2.read_text() + "zzzz,1,2,3,1\n")
    ingestion.ingest(config)  # a new version of it is recorded, which the model never saw
    deployment.deploy(config)
    with sqlite3.connect(config.history_path) as conn:
        versions = conn.execute("SELECT name, rows, decision FROM files ORDER BY id").fetchall()
    # the version it learned is gone from the folder, so there is nothing to decide of it; the new one is new data
    assert versions == [("dataset1.csv", 400, "decided"), ("dataset2.csv", 300, None), ("dataset2.csv", 301, None)]


def test_a_missing_source_file_fails_before_production_changes(trained_project, config):
    before = live(config)
    (config.output_model_path / "latestscore.txt").unlink()
    (config.output_folder_path / "ingestedfiles.txt").unlink()
    score, ingested = config.output_model_path / "latestscore.txt", config.output_folder_path / "ingestedfiles.txt"
    with pytest.raises(PipelineError) as raised:
        deployment.deploy(config)
    assert str(raised.value) == f"cannot deploy, missing file(s): {score}, {ingested}; production left unchanged"
    assert live(config) == before and len(artifacts.kept_releases(config.prod_deployment_path)) == 1


def test_rollback_returns_to_the_release_live_before_and_twice_comes_back(trained_project, config):
    first = live(config)
    second = retrain_and_deploy(config, flip=True)
    assert deployment.rollback(config) == (second, first)
    assert live(config) == first
    assert deployment.rollback(config) == (first, second)  # like `kubectl rollout undo`
    assert [row[2] for row in audit(config)] == ["manual", "manual", "rollback", "rollback"]
    assert audit(config)[2] == (second, first, "rollback", "tester@box", "done")


def test_rollback_to_any_kept_release(trained_project, config):
    first = live(config)
    retrain_and_deploy(config, flip=True)
    retrain_and_deploy(config)
    deployment.rollback(config, target=first)
    assert live(config) == first


@pytest.mark.parametrize(
    "target, message",
    [
        ("20200101T000000000000Z-dead", r"release 20200101T000000000000Z-dead is not kept in .*releases"),
        ("../models", "release ../models is not kept"),
        ("LIVE", "release {live} is already live"),
    ],
)
def test_rollback_to_a_release_that_is_not_kept_or_live_is_refused(trained_project, config, target, message):
    retrain_and_deploy(config, flip=True)
    target = live(config) if target == "LIVE" else target
    with pytest.raises(PipelineError, match=message.format(live=live(config))):
        deployment.rollback(config, target=target)


def test_rollback_with_a_single_deployment_is_refused(trained_project, config):
    with pytest.raises(PipelineError, match="no earlier release to roll back to"):
        deployment.rollback(config)


def test_the_list_marks_the_live_release_with_its_scores_and_why(trained_project, config):
    first = live(config)
    second = retrain_and_deploy(config, flip=True)
    deployment.rollback(config)  # first live again
    deployment.rollback(config)  # second live again: both keep their first deployment's time and reason
    rows = deployment.list_releases(config)
    assert [
        (row["release"], row["live"], row["reason"], [move["reason"] for move in row["moves"]]) for row in rows
    ] == [
        (second, True, "manual", ["rollback"]),
        (first, False, "manual", ["rollback"]),
    ]
    text = deployment.format_releases(rows)
    lines = text.splitlines()
    assert lines[0].split() == [
        "RELEASE",
        "MODEL",
        "HEALTH",
        "VALIDATION",
        "F1",
        "[CI]",
        "TEST",
        "F1",
        "DEPLOYED",
        "(UTC)",
        "WHY",
        "BY",
    ]
    with sqlite3.connect(config.history_path) as conn:
        moves = conn.execute(
            "SELECT to_release, at, reason FROM deployments WHERE state = 'done' ORDER BY id"
        ).fetchall()
    assert [(name, reason) for name, _, reason in moves] == [
        (first, "manual"),
        (second, "manual"),
        (first, "rollback"),
        (second, "rollback"),
    ]
    at = [f"{when[:10]} {when[11:19]}" for _, when, _ in moves]
    assert lines[1].startswith("*  " + second) and lines[1].split()[-4:] == [*at[1].split(), "manual", "tester@box"]
    assert lines[2].split() == ["live", "again", *at[3].split(), "rollback", "tester@box"]
    assert lines[3].startswith("   " + first) and lines[3].split()[-4:] == [*at[0].split(), "manual", "tester@box"]
    assert lines[4].split() == ["live", "again", *at[2].split(), "rollback", "tester@box"]
    assert len(lines) == 5
    score = float((config.prod_deployment_path / "latestscore.txt").read_text())
    assert f"{score:.4f}" in lines[1] and " unproven " in lines[1]  # never checked on new rows


def test_the_list_gives_each_releases_model_health_with_its_measured_f1(history_project):
    with sqlite3.connect(history_project.history_path) as conn:
        checks = conn.execute(
            "SELECT m.model_id, m.state, v.value FROM monitoring m JOIN verdicts v ON v.run_id = m.run_id"
            " AND v.kind = 'performance' ORDER BY m.id"
        ).fetchall()
        models = dict(conn.execute("SELECT name, model_id FROM releases"))
    latest = {model_id: (state, f1) for model_id, state, f1 in checks}  # each model's latest check
    assert sorted(state for state, _ in latest.values()) == ["degraded", "healthy"]  # drift, then none
    lines = deployment.format_releases(deployment.list_releases(history_project)).splitlines()[1:]
    assert len(lines) == len(models) == 2
    for line in lines:
        state, f1 = latest[models[line.split()[1 if line.startswith("*") else 0]]]
        assert f"  {state} (F1 {f1:.2f})  " in line


def test_the_list_takes_a_known_releases_test_f1_from_the_history_and_an_unknown_ones_from_its_file(
    trained_project, config
):
    release = config.prod_deployment_path.resolve()
    recorded = float((release / "latestscore.txt").read_text())
    (release / "latestscore.txt").write_text("0.1234")  # the file changed by hand: the history is the record
    [row] = deployment.list_releases(config)
    assert (row["known"], row["test_f1"]) == (True, recorded)
    config.history_path.unlink()  # no history: what the release folder says
    [row] = deployment.list_releases(config)
    assert (row["known"], row["test_f1"], row["model_id"], row["reason"]) == (False, 0.1234, None, None)


@pytest.mark.slow
def test_the_cli_refuses_to_roll_back_while_a_run_holds_the_lock(trained_project, config):
    retrain_and_deploy(config, flip=True)
    before = live(config)
    config.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(artifacts.lock_path(config), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_script("deployment.py", config.config_path, "--rollback")
    assert result.returncode == 75
    assert "a full-process run holds the lock (logs/fullprocess.lock); deployment.py did nothing" in result.stderr
    assert live(config) == before
    result = run_script("deployment.py", config.config_path, "--rollback")
    assert result.returncode == 0, result.stderr
    assert live(config) != before


@pytest.mark.slow
def test_make_rollback_moves_production_back(trained_project, config):
    first = live(config)
    retrain_and_deploy(config, flip=True)
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), "rollback", f"CONFIG={config.config_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert live(config) == first
    assert "UNPROVEN: The risk list comes from a model not measured on new data yet" in result.stderr  # told, too


def test_a_release_the_database_does_not_know_is_adopted_from_its_card(trained_project, config):
    release = live(config)
    config.history_path.unlink()  # the history is lost, or the release came from elsewhere
    for suffix in ("-wal", "-shm"):
        config.history_path.with_name(config.history_path.name + suffix).unlink(missing_ok=True)
    model_id = registry.file_model_id(config.prod_deployment_path / "trainedmodel.pkl")
    with history.opened(config.history_path) as conn:
        assert registry.reconcile(conn, config, "tester@box") == [
            f"adopted release {release} (model {model_id}), live without a record"
        ]
        model = history.select_one(conn, "SELECT * FROM models")
        reference = history.select_one(conn, "SELECT * FROM model_references")
    assert audit(config) == [(None, release, "adopted", "tester@box", "done")]
    assert model["origin"] == "trained" and model["validation_f1"] is not None
    assert (reference["kind"], reference["f1"]) == ("validation", model["validation_f1"])


def test_a_release_without_a_card_is_adopted_with_what_can_be_read(trained_project, config):
    release = config.prod_deployment_path.resolve()
    (release / "modelcard.json").unlink()
    for path in config.history_path.parent.glob("history.db*"):
        path.unlink()
    with history.opened(config.history_path) as conn:
        registry.reconcile(conn, config, "tester@box")
        model = history.select_one(conn, "SELECT * FROM models")
        reference = history.select_one(conn, "SELECT * FROM model_references")
    from risk.model import load_model

    fitted = load_model(release / "trainedmodel.pkl")
    score = float((release / "latestscore.txt").read_text())
    assert model["origin"] == "adopted" and model["intercept"] == float(fitted.intercept_[0])
    assert list(model["coefficients"].values()) == fitted.coef_[0].tolist()
    assert [f["name"] for f in model["training_files"]] == ["dataset1.csv", "dataset2.csv"]
    assert (reference["kind"], reference["f1"], reference["counts"]) == ("test", score, None)


def test_a_plain_production_folder_from_before_releases_is_kept_as_a_release(trained_project, config, caplog):
    prod = config.prod_deployment_path
    plain = prod.resolve()
    prod.unlink()
    shutil.copytree(plain, prod)
    shutil.rmtree(plain)
    for suffix in ("", "-wal", "-shm"):  # as the course's scripts leave it: no history either
        Path(f"{config.history_path}{suffix}").unlink(missing_ok=True)
    with caplog.at_level(logging.INFO):
        new = retrain_and_deploy(config, flip=True)
    names = [path.name for path in artifacts.kept_releases(prod)]
    assert prod.is_symlink() and live(config) == new
    assert "00000000T000000000000Z-adopted" in names
    adopted = Path(f"{prod}.releases") / "00000000T000000000000Z-adopted"
    assert any(f"moved the plain folder {prod} to {adopted}" in message for message in caplog.messages)
    with sqlite3.connect(config.history_path) as conn:
        recorded = conn.execute("SELECT name, pruned_at FROM releases ORDER BY created_at").fetchall()
    assert recorded[0] == ("00000000T000000000000Z-adopted", None)  # under the name it keeps, not pruned
    deployment.rollback(config)  # back to the course's model, verified against its record
    assert live(config) == "00000000T000000000000Z-adopted"


def test_old_releases_are_pruned_keeping_the_live_one_and_the_rollback_target(trained_project, config, monkeypatch):
    # keep 2 instead of 20; through the module attribute registry calls (mutmut wraps the function itself)
    monkeypatch.setattr(artifacts, "prune_releases", functools.partial(artifacts.prune_releases, keep=2))
    names = [live(config)] + [retrain_and_deploy(config, flip=i % 2 == 0) for i in range(4)]
    kept = [path.name for path in artifacts.kept_releases(config.prod_deployment_path)]
    assert kept == names[-2:]
    deployment.rollback(config)  # live: names[-2]
    newest = retrain_and_deploy(config)  # live: newest; its rollback target: names[-2], older than the 2 newest
    kept = [path.name for path in artifacts.kept_releases(config.prod_deployment_path)]
    assert kept == [names[-2], names[-1], newest]
    with sqlite3.connect(config.history_path) as conn:
        pruned = [row[0] for row in conn.execute("SELECT name FROM releases WHERE pruned_at IS NOT NULL")]
    assert sorted(pruned) == sorted(names[:3])


def test_an_old_release_that_cannot_be_deleted_is_named_and_kept_while_the_others_go(
    trained_project, config, monkeypatch, caplog
):
    monkeypatch.setattr(artifacts, "prune_releases", functools.partial(artifacts.prune_releases, keep=1))
    first = live(config)
    refuse_to_delete(monkeypatch, first, "rename")  # the first step of deleting it: out of the list
    second = retrain_and_deploy(config, flip=True)  # the first is its rollback target: nothing to prune
    with caplog.at_level(logging.WARNING, logger="risk.registry"):
        third = retrain_and_deploy(config)  # the first is due, and refuses
        fourth = retrain_and_deploy(config, flip=True)  # the first again, and the second, which goes
    kept = [path.name for path in artifacts.kept_releases(config.prod_deployment_path)]
    assert kept == [first, third, fourth]
    folder = artifacts.releases_path(config.prod_deployment_path) / first
    warning = (
        f"could not delete the old release {first} ([Errno 13] Permission denied: '{folder}');"
        " it stays until the next deployment"
    )
    assert caplog.messages == [warning, warning]
    with sqlite3.connect(config.history_path) as conn:
        pruned = [row[0] for row in conn.execute("SELECT name FROM releases WHERE pruned_at IS NOT NULL")]
    assert pruned == [second]


def test_an_old_release_whose_deletion_fails_halfway_leaves_the_list_and_its_rest_goes_next_time(
    trained_project, config, monkeypatch
):
    monkeypatch.setattr(artifacts, "prune_releases", functools.partial(artifacts.prune_releases, keep=1))
    first = live(config)
    with monkeypatch.context() as refusing:
        refuse_to_delete(refusing, first, "halfway")
        retrain_and_deploy(config, flip=True)
        third = retrain_and_deploy(config)  # the first is deleted, all but its card
    releases = artifacts.releases_path(config.prod_deployment_path)
    assert first not in [path.name for path in artifacts.kept_releases(config.prod_deployment_path)]
    assert sorted(path.name for path in releases.glob(".*")) == [f".tmp-discarded-{first}"]
    with sqlite3.connect(config.history_path) as conn:
        assert conn.execute("SELECT name FROM releases WHERE pruned_at IS NOT NULL").fetchall() == [(first,)]
    retrain_and_deploy(config)
    assert sorted(path.name for path in releases.glob(".*")) == []
    assert third in [path.name for path in artifacts.kept_releases(config.prod_deployment_path)]


DEPLOY_FOREVER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    os.environ["RISK_ACTOR"] = "killer"
    import deployment
    from risk.config import load_config
    config = load_config(sys.argv[2])
    while True:
        deployment.deploy(config)
    """
)


@pytest.mark.slow
def test_a_deployment_killed_at_any_moment_leaves_production_and_history_in_agreement(trained_project, config):
    rng = random.Random(7)
    for trial in range(25):
        child = subprocess.Popen([sys.executable, "-c", DEPLOY_FOREVER, str(PROJECT_DIR), str(config.config_path)])
        time.sleep(0.4 + rng.random() * 0.4)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        prod = config.prod_deployment_path
        assert sorted(p.name for p in prod.iterdir()) == RELEASE_FILES, f"trial {trial}"
        with history.opened(config.history_path) as conn:
            registry.reconcile(conn, config, "tester@box")
        assert_in_agreement(config)
    leftovers = [p for p in config.prod_deployment_path.parent.iterdir() if ".tmp-" in p.name]
    leftovers += [p for p in artifacts.releases_path(config.prod_deployment_path).iterdir() if p.name.startswith(".")]
    deployment.deploy(config)
    assert [p for p in leftovers if p.exists()] == []


# --- a history database that cannot be used never stops the release folder from working ----------------


def damage(config) -> None:
    for path in config.history_path.parent.glob("history.db*"):
        path.unlink()
    config.history_path.write_bytes(b"this is not a database, whatever its name says" * 100)


@contextlib.contextmanager
def locked(config):
    """Another process's write transaction on the history, held until the block ends."""
    holder = sqlite3.connect(config.history_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def impatient(monkeypatch):
    monkeypatch.setattr(history, "BUSY_SECONDS", 0.3)  # what a lock costs here, in seconds; 5 in production


def test_the_list_of_a_damaged_history_is_the_release_folders_with_a_warning(trained_project, config, caplog):
    release = live(config)
    damage(config)
    with caplog.at_level(logging.WARNING, logger="deployment"):
        rows = deployment.list_releases(config)
    assert [(row["release"], row["live"], row["known"]) for row in rows] == [(release, True, False)]
    assert caplog.messages == [
        f"history database {config.history_path} is damaged (file is not a database): restore it from a backup,"
        " or move it aside; listing the release folders alone"
    ]


@pytest.mark.parametrize("how", ["damaged", "malformed", "locked"])
def test_a_rollback_with_a_history_that_cannot_be_written_still_moves_production_and_says_so(
    trained_project, config, caplog, impatient, how
):
    first = live(config)
    second = retrain_and_deploy(config, flip=True)
    if how == "damaged":
        damage(config)
    if how == "malformed":  # it opens, but its tables cannot be read
        malform_history(config)
    with locked(config) if how == "locked" else contextlib.nullcontext():
        with caplog.at_level(logging.WARNING):
            assert deployment.rollback(config) == (second, first)
    assert live(config) == first
    problem = {
        "damaged": f"history database {config.history_path} is damaged (file is not a database): restore it from a"
        " backup, or move it aside",
        "malformed": f"history database {config.history_path} is damaged (database disk image is malformed): restore"
        " it from a backup, or move it aside",
        "locked": f"history database {config.history_path} is locked by another process (waited 0.3 s): try again"
        " when it is free",
    }[how]
    unverified = (
        f"production moved to {first} without a record in the history, and its model could not be"
        " verified (the history cannot be read): the API and the full process load it only once the history can"
        " be read"
    )
    said = {
        "damaged": unverified,
        "malformed": unverified,
        "locked": f"production moved to {first}, its model verified against the history but the move not recorded"
        " there: the next full-process run records it (as adopted) once the history can be written",
    }[how]
    assert caplog.messages[0] == f"{problem}; moving production without recording it"
    assert caplog.messages[-1] == said
    if how == "locked":  # the history works again: the next reconciliation records what is live
        with history.opened(config.history_path) as conn:
            model_id = registry.file_model_id(config.prod_deployment_path / "trainedmodel.pkl")
            assert registry.reconcile(conn, config, "tester@box") == [
                f"adopted release {first} (model {model_id}), live without a record"
            ]


def test_a_rollback_to_a_named_release_with_a_damaged_history_still_checks_its_files(trained_project, config):
    first = config.prod_deployment_path.resolve()
    second = retrain_and_deploy(config, flip=True)
    (first / "latestscore.txt").unlink()
    damage(config)
    with pytest.raises(registry.ReleaseRefused, match=f"release {first.name} is refused: latestscore.txt is missing"):
        deployment.rollback(config, target=first.name)
    assert live(config) == second


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--list"], ["--rollback"], ["--to", "FIRST"]])
def test_the_cli_lists_and_moves_production_with_a_damaged_history(trained_project, config, args):
    first = live(config)
    second = retrain_and_deploy(config, flip=True)
    damage(config)
    result = run_script("deployment.py", config.config_path, *[first if arg == "FIRST" else arg for arg in args])
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "history database logs/history.db is damaged (file is not a database)" in result.stderr
    assert str(config.config_path.parent) not in result.stderr + result.stdout  # no absolute path
    if args == ["--list"]:
        assert [line.split()[:2] for line in result.stdout.splitlines()[1:]] == [["*", second], [first, "(not"]]
    else:
        assert live(config) == first


@pytest.mark.slow
def test_an_idle_run_with_a_locked_history_stops_after_a_bounded_wait_with_one_line_and_exit_75(
    trained_project, config
):
    assert fullprocess_run(config).returncode == 2  # the release's reports (no API to call): the next run is idle
    with locked(config):
        started = time.monotonic()
        result = run_script("fullprocess.py", config.config_path)
        elapsed = time.monotonic() - started
    assert (result.returncode, "Traceback" in result.stderr) == (75, False)
    assert elapsed < 15  # history.BUSY_SECONDS (5 s), once
    lines = config.log_path.read_text().splitlines()
    assert lines[-1].endswith(
        "ERROR fullprocess: history database logs/history.db is locked by another process (waited 5 s): try again"
        " when it is free"
    )
    assert fullprocess_run(config).returncode == 0  # free again: the next run works


@pytest.mark.slow
def test_a_failure_met_with_a_locked_history_is_two_lines_not_a_traceback(trained_project, config):
    assert fullprocess_run(config).returncode == 2  # the release's reports: the next run is idle
    config.input_folder_path.rename(config.input_folder_path.with_name("elsewhere"))
    with locked(config):
        result = fullprocess_run(config)
    assert (result.returncode, "Traceback" in result.stderr + config.log_path.read_text()) == (1, False)
    assert [line.split(" ", 3)[3] for line in config.log_path.read_text().splitlines()[-2:]] == [
        "fullprocess: input folder sourcedata does not exist (config key input_folder_path)",
        "fullprocess: history database logs/history.db is locked by another process (waited 5 s): try again when it"
        " is free",
    ]


def fullprocess_run(config):
    return run_script("fullprocess.py", config.config_path)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["ingestion.py", "training.py", "scoring.py", "reporting.py", "deployment.py"])
def test_a_script_with_a_damaged_history_ends_with_one_line_and_exit_1(trained_project, config, script):
    damage(config)
    result = run_script(script, config.config_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert "history database logs/history.db is damaged (file is not a database)" in line


# --- a deployment killed at any point: the next run leaves no folder and no row that disagree ---------


class Killed(BaseException):
    """A kill -9 at this point: nothing after it runs, and no `except Exception` sees it."""


def kill_at(monkeypatch, owner, name: str, after: bool = False, calls: int = 1) -> None:
    """Kill the deployment at the `calls`-th call of owner.name: before it runs, or `after` it."""
    real, seen = getattr(owner, name), []

    def killing(*args, **kwargs):
        seen.append(1)
        if len(seen) < calls:
            return real(*args, **kwargs)
        if after:
            real(*args, **kwargs)
        raise Killed(name)

    monkeypatch.setattr(owner, name, killing)


KILL_POINTS = {
    "while copying the files": (artifacts, "copy_durably", False, 2),
    "built, before the intent is recorded": (registry, "switch_recorded", False, 1),
    "intent recorded, before the release is published": (artifacts, "publish_release", False, 1),
    "published, before the switch": (artifacts, "switch_to", False, 1),
    "switched, before the intent is marked done": (registry, "complete", False, 1),
    "an old release deleted, before it is marked pruned": (artifacts, "prune_releases", True, 1),
    "an old release out of the list, before it is deleted": (shutil, "rmtree", False, 1),
}


def assert_in_agreement(config) -> None:
    """No leftover; the kept release folders are the recorded ones not pruned; the history says what is live."""
    releases = artifacts.releases_path(config.prod_deployment_path)
    kept = {path.name for path in artifacts.kept_releases(config.prod_deployment_path)}
    assert {path.name for path in releases.iterdir()} == kept  # nothing hidden: no half-built or half-deleted one
    assert artifacts.leftovers(config.prod_deployment_path) == []
    with history.opened(config.history_path) as conn:
        assert set(history.unpruned_releases(conn)) == kept
        assert history.pending_deployments(conn) == []
        assert history.last_deployment(conn)["to_release"] == live(config)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_deployment_killed_at_any_point_leaves_nothing_that_disagrees_after_the_next_run(
    trained_project, config, monkeypatch, point
):
    import fullprocess

    monkeypatch.setattr(artifacts, "prune_releases", functools.partial(artifacts.prune_releases, keep=2))
    retrain_and_deploy(config, flip=True)
    retrain_and_deploy(config)  # three releases: the next deployment prunes the oldest
    owner, name, after, calls = KILL_POINTS[point]
    with monkeypatch.context() as killing:
        kill_at(killing, owner, name, after, calls)
        with pytest.raises(Killed):
            deployment.deploy(config)
    with history.opened(config.history_path) as conn:  # what the next full-process run does first
        assert fullprocess.needs_reconciling(conn, config, live(config))
        registry.reconcile(conn, config, "cron")
    assert_in_agreement(config)
    deployment.deploy(config)  # and deployments go on as before
    assert_in_agreement(config)


def test_to_an_empty_release_name_is_refused_not_taken_for_a_deployment(trained_project, config):
    before = live(config)
    result = run_script("deployment.py", config.config_path, "--to", "")
    assert result.returncode == 2 and "--to needs the name of a kept release (see --list)" in result.stderr
    assert live(config) == before
