"""Tests of risk.registry called as functions: the registry's list, adoption of unknown releases, rollback.

Projects are trained and deployed by the pipeline's steps (conftest's `trained_project`); what the
registry must say is read here from the release folders themselves (their files, hashes and times) and
written out, never taken from the module under test.
"""

import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import sqlite3

import pandas as pd
import pytest
from conftest import FEATURES, plant_pickle, refuse_to_delete, set_config

import deployment
import training
from risk import alerts, artifacts, history, overview, registry
from risk.config import PipelineError, load_config


@pytest.fixture(autouse=True)
def actor(monkeypatch):
    monkeypatch.setenv("RISK_ACTOR", "tester@box")


@pytest.fixture
def project(trained_project):
    return load_config(trained_project)


def live(config) -> str:
    return config.prod_deployment_path.resolve().name


def model_id_of(release) -> str:
    return hashlib.sha256((release / "trainedmodel.pkl").read_bytes()).hexdigest()[:12]


def deploy_flipped(config) -> str:
    """A second model, trained on flipped labels, deployed by hand; returns its release name."""
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    finaldata["exited"] = 1 - finaldata["exited"]
    finaldata.to_csv(config.output_folder_path / "finaldata.csv", index=False)
    training.train(config)
    return deployment.deploy(config).name


def forget_history(config) -> None:
    for path in config.history_path.parent.glob("history.db*"):
        path.unlink()


def query(config, sql, params=()) -> list[tuple]:
    with sqlite3.connect(config.history_path) as conn:
        return conn.execute(sql, params).fetchall()


# --- reading a release --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, card",
    [
        ('{"id": "abc"}', {"id": "abc"}),
        ("[1, 2]", None),  # JSON, but not a card
        ("{not json", None),
        (None, None),  # no card at all
    ],
)
def test_read_card_reads_a_model_card_or_nothing(tmp_path, text, card):
    if text is not None:
        (tmp_path / "modelcard.json").write_text(text)
    assert registry.read_card(tmp_path) == card


@pytest.mark.parametrize("text, score", [("0.6173\n", 0.6173), ("n/a", None), (None, None)])
def test_read_score_reads_latestscore_or_nothing(tmp_path, text, score):
    if text is not None:
        (tmp_path / "latestscore.txt").write_text(text)
    assert registry.read_score(tmp_path / "latestscore.txt") == score


def test_a_release_without_card_or_file_list_is_adopted_with_its_parameters_time_and_score(project):
    release = project.prod_deployment_path.resolve()
    (release / "modelcard.json").unlink()
    (release / "ingestedfiles.txt").unlink()
    os.utime(release / "trainedmodel.pkl", (1_767_323_045, 1_767_323_045))  # 2026-01-02T03:04:05Z
    forget_history(project)
    with open(release / "trainedmodel.pkl", "rb") as handle:
        fitted = pickle.load(handle)
    coefficients = dict(zip(FEATURES, fitted.coef_[0].tolist(), strict=True))
    score = float((release / "latestscore.txt").read_text())
    with history.opened(project.history_path) as conn:
        model_id = registry.ensure_model(conn, release)
        model = history.get_model(conn, model_id)
        reference = history.latest_reference(conn, model_id)
    assert model_id == model_id_of(release)
    assert {key: model[key] for key in registry.MODEL_COLUMNS} == {
        "id": model_id,
        "sha256": hashlib.sha256((release / "trainedmodel.pkl").read_bytes()).hexdigest(),
        "trained_at": "2026-01-02T03:04:05Z",
        "origin": "adopted",
        "window": "unknown (adopted release)",
        "training_files": [],
        "rows": None,
        "positives": None,
        "exit_rate": None,
        "coefficients": coefficients,
        "intercept": float(fitted.intercept_[0]),
        "feature_means": {},
        "validation_f1": None,
        "validation_low": None,
        "validation_high": None,
        "validation_rows": None,
        "validation_counts": None,
        "validation_method": None,
        "test_f1": score,
        "run_id": None,
    }
    assert (reference["kind"], reference["f1"], reference["files"]) == ("test", score, [])


# --- recording a trained model's card ------------------------------------------------------------


CARD = {
    "id": "0123456789ab",
    "trained_at": "2026-11-01T00:00:00Z",
    "origin": "trained",
    "window": "newest 2 batches",
    "training_files": [{"name": "a.csv"}, {"name": "b.csv"}],
    "reference_files": [{"name": "b.csv"}],
    "rows": 400,
    "coefficients": {"lastmonth_activity": 0.01, "lastyear_activity": 0.002, "number_of_employees": -0.03},
    "intercept": -1.5,
    "feature_means": {"lastmonth_activity": 80.0, "lastyear_activity": 900.0, "number_of_employees": 40.0},
    "validation_f1": 0.61,
    "validation_low": 0.55,
    "validation_high": 0.67,
    "validation_rows": 200,
    "validation_counts": [30, 10, 9, 151],
}


def references(conn) -> list[tuple]:
    return [
        tuple(row)
        for row in conn.execute(
            "SELECT model_id, run_id, kind, f1, low, high, rows, counts, files FROM model_references"
        )
    ]


def test_a_card_is_recorded_once_with_its_validation_as_the_first_reference(tmp_path):
    with history.opened(tmp_path / "history.db") as conn:
        run_id = history.start_run(conn, "config.json", "tester@box", "cron", None)
        with conn:
            registry.record_card(conn, {**CARD, "run_id": run_id})
            registry.record_card(conn, {**CARD, "run_id": run_id, "validation_f1": 0.99})  # known: nothing changes
        assert (history.get_model(conn, CARD["id"])["run_id"], history.get_model(conn, CARD["id"])["rows"]) == (
            run_id,
            400,
        )
        assert references(conn) == [
            (CARD["id"], run_id, "validation", 0.61, 0.55, 0.67, 200, "[30, 10, 9, 151]", '[{"name": "b.csv"}]')
        ]


def test_a_card_without_reference_files_is_judged_against_its_training_files(tmp_path):
    card = {key: value for key, value in CARD.items() if key != "reference_files"}
    with history.opened(tmp_path / "history.db") as conn, conn:
        registry.record_card(conn, card)
        assert references(conn)[0][-1] == '[{"name": "a.csv"}, {"name": "b.csv"}]'


def test_a_card_from_another_history_is_recorded_without_its_run(tmp_path):
    with history.opened(tmp_path / "history.db") as conn, conn:
        registry.record_card(conn, {**CARD, "run_id": 7})  # no run 7 here: the card came with an adopted release
        assert history.get_model(conn, CARD["id"])["run_id"] is None
        assert references(conn)[0][:3] == (CARD["id"], None, "validation")


# --- the list ---------------------------------------------------------------------------------------


def test_the_list_gives_every_kept_release_newest_first_with_its_first_deployment_later_moves_and_health(project):
    first = live(project)
    second = deploy_flipped(project)
    for _ in range(3):
        deployment.rollback(project)  # live: first, second, then first again: three moves, each a rollback
    releases = artifacts.releases_path(project.prod_deployment_path)
    stray = releases / "20000101T000000000000Z-aaaa"  # a release folder the history does not know
    shutil.copytree(releases / first, stray)
    cards = {name: json.loads((releases / name / "modelcard.json").read_text()) for name in (first, second)}
    scores = {name: float((releases / name / "latestscore.txt").read_text()) for name in (first, second, stray.name)}
    moves = {
        name: query(
            project,
            "SELECT at, from_release, reason, actor FROM deployments WHERE to_release = ? AND state = 'done'"
            " ORDER BY id",
            (name,),
        )
        for name in (first, second)
    }
    assert {name: [move[1:] for move in rows] for name, rows in moves.items()} == {
        first: [(None, "manual", "tester@box"), (second, "rollback", "tester@box"), (second, "rollback", "tester@box")],
        second: [(first, "manual", "tester@box"), (first, "rollback", "tester@box")],
    }
    with history.opened(project.history_path) as conn:
        health = {name: overview.health(conn, model_id_of(releases / name)) for name in (first, second)}
    assert [entry["verdict"] for entry in health.values()] == ["unproven", "unproven"]  # never checked on new rows

    def row(name, live, known):
        card = cards.get(name) if known else None
        first_move, *later = moves[name] if known else [None]
        return {
            "release": name,
            "live": live,
            "model_id": model_id_of(releases / name) if known else None,
            "health": {**health[name], "words": health[name]["words"] if live else None} if known else None,
            "validation_f1": card["validation_f1"] if card else None,
            "validation_low": card["validation_low"] if card else None,
            "validation_high": card["validation_high"] if card else None,
            "test_f1": scores[name],
            "deployed_at": first_move[0] if first_move else None,  # its first deployment: when, why, by whom
            "reason": first_move[2] if first_move else None,
            "actor": first_move[3] if first_move else None,
            "moves": [dict(zip(["at", "from_release", "reason", "actor"], move, strict=True)) for move in later],
            "known": known,
        }

    with history.opened(project.history_path) as conn:
        assert registry.list_releases(conn, project) == [
            row(second, False, True),
            row(first, True, True),
            row(stray.name, False, False),
        ]
    assert registry.list_releases(None, project) == [  # no history yet: what the folders say
        row(second, False, False),
        row(first, True, False),
        row(stray.name, False, False),
    ]


def test_a_release_never_live_is_listed_without_a_deployment(project):
    releases = artifacts.releases_path(project.prod_deployment_path)
    first = live(project)
    with history.opened(project.history_path) as conn, conn:
        conn.execute("DELETE FROM deployments")  # recorded, never moved to (as a deployment abandoned before it)
        [row] = registry.list_releases(conn, project)
    assert (row["release"], row["model_id"], row["deployed_at"], row["reason"], row["moves"]) == (
        first,
        model_id_of(releases / first),
        None,
        None,
        [],
    )


# --- rollback -----------------------------------------------------------------------------------------


def test_rollback_with_a_single_deployment_is_refused_in_one_sentence(project):
    with history.opened(project.history_path) as conn:
        with pytest.raises(PipelineError) as raised:
            registry.rollback(conn, project, "tester@box")
    assert str(raised.value) == "no earlier release to roll back to: production has been deployed only once"


def test_rollback_to_a_release_not_kept_names_where_releases_are_and_how_to_list_them(project):
    releases = artifacts.releases_path(project.prod_deployment_path)
    with history.opened(project.history_path) as conn:
        with pytest.raises(PipelineError) as raised:
            registry.rollback(conn, project, "tester@box", "20200101T000000000000Z-dead")
    assert str(raised.value) == (
        f"release 20200101T000000000000Z-dead is not kept in {releases} (see `python deployment.py --list`)"
    )


def test_after_the_history_is_lost_a_rollback_adopts_the_live_release_but_refuses_an_unknown_one(project):
    first = live(project)
    second = deploy_flipped(project)
    forget_history(project)
    with history.opened(project.history_path) as conn:
        with pytest.raises(registry.ReleaseRefused) as refused:
            registry.rollback(conn, project, "ops@box", first)
    assert str(refused.value) == (
        f"release {first} is refused: the history does not know it, so its model cannot be verified (a pickle is"
        " code); production left as it was"
    )
    assert live(project) == second
    assert query(project, "SELECT from_release, to_release, reason, actor FROM deployments ORDER BY id") == [
        (None, second, "adopted", "ops@box"),  # what is live is adopted (trusted on first use), in the actor's name
    ]


def test_a_planted_release_folder_is_never_unpickled_by_a_rollback(project, tmp_path):
    first = live(project)
    planted = project.prod_deployment_path.resolve().parent / "20200101T000000000000Z-evil"
    planted.mkdir()
    marker = tmp_path / "PWNED"
    for name in ("latestscore.txt", "ingestedfiles.txt"):
        (planted / name).write_bytes((project.prod_deployment_path / name).read_bytes())
    plant_pickle(planted / "trainedmodel.pkl", marker)
    with history.opened(project.history_path) as conn:
        with pytest.raises(registry.ReleaseRefused, match="the history does not know it"):
            registry.rollback(conn, project, "ops@box", planted.name)
    assert not marker.exists() and live(project) == first


def test_rollback_decides_no_file_even_one_the_target_release_learned_from(project):
    first = live(project)
    deploy_flipped(project)
    dataset1 = project.input_folder_path / "dataset1.csv"
    dataset1.write_text(dataset1.read_text() + "zzzz,1,1,1,1\n")  # a new version, not yet judged
    from ingestion import ingest

    ingest(project)
    with history.opened(project.history_path) as conn:
        registry.rollback(conn, project, "tester@box", first)
    new_version = query(project, "SELECT decision FROM files WHERE name = 'dataset1.csv' ORDER BY id DESC")[0]
    assert new_version == (None,)
    assert query(project, "SELECT decide_files FROM deployments WHERE reason = 'rollback'") == [("[]",)]


# --- reconciling the history with production after a stopped deployment -------------------------


def mark_pending(config, release: str) -> None:
    """As if the run deploying `release` had stopped before marking its deployment done."""
    with sqlite3.connect(config.history_path) as conn:
        conn.execute(
            "UPDATE deployments SET state = 'pending'"
            " WHERE id = (SELECT max(id) FROM deployments WHERE to_release = ?)",
            (release,),
        )


def reconcile(config) -> list[str]:
    with history.opened(config.history_path) as conn:
        return registry.reconcile(conn, config, "tester@box")


def test_a_deployment_stopped_after_the_switch_is_completed(project):
    second = deploy_flipped(project)
    mark_pending(project, second)
    assert reconcile(project) == [f"completed the deployment of {second} that a stopped run had begun"]
    assert query(project, "SELECT state FROM deployments WHERE to_release = ?", (second,)) == [("done",)]
    assert reconcile(project) == []  # agreed: nothing more to do


def test_a_deployment_stopped_before_the_switch_is_abandoned_and_what_is_live_adopted(project):
    first = project.prod_deployment_path.resolve()
    second = deploy_flipped(project)
    third = deploy_flipped(project)
    mark_pending(project, third)  # the third never finished ...
    artifacts.switch_to(first, project.prod_deployment_path)  # ... and someone put the first back by hand
    assert reconcile(project) == [
        f"abandoned the deployment of {third}: production never switched to it",
        f"adopted release {first.name} (model {model_id_of(first)}), live without a record",
    ]
    assert query(project, "SELECT to_release, state, reason FROM deployments ORDER BY id")[-3:] == [
        (second, "done", "manual"),
        (third, "abandoned", "manual"),
        (first.name, "done", "adopted"),
    ]
    assert not (first.parent / third).exists()  # never live: its folder goes
    assert (first.parent / second).exists()
    assert query(project, "SELECT from_release, actor, note FROM deployments WHERE reason = 'adopted'") == [
        (second, "tester@box", "found live on disk without a record (deployed by hand or by an older version)")
    ]


def test_the_first_deployment_stopped_after_the_switch_is_completed(project):
    first = live(project)
    mark_pending(project, first)  # no deployment was ever done before it
    assert reconcile(project) == [f"completed the deployment of {first} that a stopped run had begun"]
    assert query(project, "SELECT to_release, state FROM deployments") == [(first, "done")]


def test_the_first_deployment_stopped_before_the_switch_is_abandoned_and_its_folder_removed(project):
    first = project.prod_deployment_path.resolve()
    mark_pending(project, first.name)
    project.prod_deployment_path.unlink()  # production never pointed anywhere
    assert reconcile(project) == [f"abandoned the deployment of {first.name}: production never switched to it"]
    assert query(project, "SELECT to_release, state FROM deployments") == [(first.name, "abandoned")]
    assert not first.exists()


def test_an_abandoned_move_back_to_a_release_once_live_keeps_its_folder(project):
    first = project.prod_deployment_path.resolve()
    second = deploy_flipped(project)
    deployment.rollback(project)  # to the first ...
    mark_pending(project, first.name)  # ... stopped before it was marked done, and undone by hand:
    artifacts.switch_to(first.parent / second, project.prod_deployment_path)
    assert reconcile(project) == [f"abandoned the deployment of {first.name}: production never switched to it"]
    assert first.exists()  # it was live before: a rollback target, not a leftover
    assert live(project) == second


def hidden_leftovers(config) -> list[str]:
    return sorted(path.name for path in artifacts.releases_path(config.prod_deployment_path).glob(".*"))


@pytest.mark.parametrize("how", ["rename", "halfway"])
def test_a_never_live_folder_that_cannot_be_deleted_does_not_stop_the_reconciliation(project, monkeypatch, caplog, how):
    first = live(project)
    second = deploy_flipped(project)
    artifacts.switch_to(artifacts.releases_path(project.prod_deployment_path) / first, project.prod_deployment_path)
    mark_pending(project, second)
    refuse_to_delete(monkeypatch, second, how)
    with caplog.at_level(logging.WARNING, logger="risk.registry"):
        assert reconcile(project) == [f"abandoned the deployment of {second}: production never switched to it"]
    monkeypatch.undo()
    assert query(project, "SELECT to_release, state FROM deployments WHERE to_release = ?", (second,)) == [
        (second, "abandoned")
    ]
    kept = [path.name for path in artifacts.kept_releases(project.prod_deployment_path)]
    if how == "rename":  # it stays whole, a release like any other, and a warning says why
        assert kept == [first, second] and hidden_leftovers(project) == []
        folder = artifacts.releases_path(project.prod_deployment_path) / second
        assert caplog.messages == [
            f"could not delete the abandoned release {second} ([Errno 13] Permission denied: '{folder}')"
        ]
    else:  # out of the list at once; what is left is hidden, and the next deployment clears it
        assert kept == [first] and hidden_leftovers(project) == [f".tmp-discarded-{second}"]
        assert caplog.messages == []
        deploy_flipped(project)
        assert hidden_leftovers(project) == []


# --- a release is verified before it is trusted ------------------------------------------------------


def test_a_rollback_to_a_release_whose_pickle_was_replaced_is_refused_alerted_and_never_unpickled(
    project, webhook, tmp_path
):
    webhook.start()
    config = set_config(project, alert_webhook_url=webhook.url)
    first = live(config)
    second = deploy_flipped(config)
    marker = tmp_path / "the planted pickle ran"
    plant_pickle(artifacts.releases_path(config.prod_deployment_path) / first / "trainedmodel.pkl", marker)
    with pytest.raises(registry.ReleaseRefused) as raised:
        deployment.rollback(config)
    model_id = query(config, "SELECT model_id FROM releases WHERE name = ?", (first,))[0][0]
    reason = (
        f"release {first} is refused: its trainedmodel.pkl is not the model {model_id} the history records for it"
        " (its SHA-256 differs: the file was changed or replaced after it was recorded)"
    )
    assert str(raised.value) == f"{reason}; production left as it was"
    assert not marker.exists() and live(config) == second
    assert query(config, "SELECT reason FROM deployments WHERE state = 'done' ORDER BY id") == [("manual",)] * 2
    body = webhook.bodies[-1]
    short = reason.split(" (")[0]  # the log has the detail
    assert (body["event"], body["severity"]) == ("release refused", "critical")
    assert body["summary"].startswith(
        f"{config.system_name}, {alerts.when_words(body['created_at'])}: tester@box tried to move production:"
        f" {short}. It stays as it was. Live now: release {second}."
    )
    assert len(alerts.message(body)["text"]) <= alerts.MAX_TEXT


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda release: (release / "latestscore.txt").unlink(), "latestscore.txt is missing"),
        (lambda release: (release / "ingestedfiles.txt").unlink(), "ingestedfiles.txt is missing"),
        (lambda release: (release / "modelcard.json").unlink(), "modelcard.json is missing"),
        (
            lambda release: (release / "latestscore.txt").write_text("0.99\n"),
            "latestscore.txt changed after the release was made",
        ),
        (
            lambda release: (release / "latestscore.txt").unlink() or (release / "latestscore.txt").mkdir(),
            "latestscore.txt cannot be read (Is a directory)",
        ),
    ],
)
def test_a_rollback_to_a_release_missing_or_changing_a_file_it_held_is_refused(project, damage, problem):
    first = project.prod_deployment_path.resolve()
    second = deploy_flipped(project)
    damage(first)
    expected = f"^release {first.name} is refused: {re.escape(problem)}; production left as it was$"
    with pytest.raises(registry.ReleaseRefused, match=expected):
        deployment.rollback(project)
    assert live(project) == second


def test_a_release_recorded_before_its_files_were_is_checked_for_the_course_files_and_a_readable_score(project):
    first = project.prod_deployment_path.resolve()
    deploy_flipped(project)
    with sqlite3.connect(project.history_path) as conn:
        conn.execute("UPDATE releases SET files = NULL")  # as an older version recorded it
    (first / "latestscore.txt").write_text("n/a\n")
    with history.opened(project.history_path) as conn:
        assert registry.release_problems(conn, first) == ["latestscore.txt is damaged"]
        (first / "latestscore.txt").write_text("0.5\n")
        (first / "modelcard.json").unlink()  # optional then: the course's releases had none
        assert registry.release_problems(conn, first) == []


def test_each_release_records_its_files_with_their_sha256(project):
    release = project.prod_deployment_path.resolve()
    (files,) = query(project, "SELECT files FROM releases")[0]
    assert json.loads(files) == {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(release.iterdir())
    }


def test_a_model_recorded_with_its_id_only_is_checked_on_it_and_gets_its_full_hash_from_a_writer(project):
    release = project.prod_deployment_path.resolve()
    digest = hashlib.sha256((release / "trainedmodel.pkl").read_bytes()).hexdigest()
    with sqlite3.connect(project.history_path) as conn:
        conn.execute("UPDATE models SET sha256 = NULL")  # recorded before full hashes were kept
    with history.opened(project.history_path) as conn:
        registry.load_release_model(conn, release)  # a reader: checked on the id, nothing written
        assert query(project, "SELECT sha256 FROM models") == [(None,)]
        registry.load_release_model(conn, release, record=True)
    assert query(project, "SELECT sha256 FROM models") == [(digest,)]
    with sqlite3.connect(project.history_path) as conn:
        conn.execute("UPDATE models SET sha256 = ?", ("0" * 64,))  # another file than the one recorded
    with history.opened(project.history_path) as conn, pytest.raises(registry.ModelMismatch):
        registry.load_release_model(conn, release)


def test_a_live_release_unknown_to_the_history_is_adopted_with_its_full_hash_and_then_loads(project):
    release = project.prod_deployment_path.resolve()
    forget_history(project)
    with history.opened(project.history_path) as conn:
        registry.reconcile(conn, project, "tester@box")
        model, model_id = registry.load_release_model(conn, release)
    digest = hashlib.sha256((release / "trainedmodel.pkl").read_bytes()).hexdigest()
    assert query(project, "SELECT id, sha256 FROM models") == [(digest[:12], digest)]
    assert model_id == digest[:12] and model.coef_.shape == (1, 3)


@pytest.mark.parametrize("card", ["kept", "damaged"])
def test_a_live_release_whose_pickle_is_not_its_cards_model_is_never_adopted(project, tmp_path, card):
    release = project.prod_deployment_path.resolve()
    marker = tmp_path / "PWNED"
    plant_pickle(release / "trainedmodel.pkl", marker)  # changed after the release was built
    if card == "damaged":
        (release / "modelcard.json").write_text("{not json")
    forget_history(project)  # as a damaged history moved aside, or a backup older than the releases
    with history.opened(project.history_path) as conn, pytest.raises(registry.ReleaseRefused) as refused:
        registry.reconcile(conn, project, "tester@box")
    assert not marker.exists() and str(refused.value).startswith(f"{release.name} is refused: its ")
    assert query(project, "SELECT COUNT(*) FROM models") == [(0,)]


def test_a_release_whose_card_changed_after_it_was_made_is_refused_by_its_loaders(project):
    release = project.prod_deployment_path.resolve()
    card = json.loads((release / "modelcard.json").read_text())
    card["feature_means"] = {name: 0.0 for name in card["feature_means"]}  # what the reasons are measured from
    (release / "modelcard.json").write_text(json.dumps(card))
    expected = f"release {release.name} is refused: modelcard.json changed after the release was made"
    with pytest.raises(registry.ReleaseRefused) as refused:
        registry.read_release_model(project.history_path, release)
    assert str(refused.value) == expected


def test_a_reader_refuses_a_release_it_cannot_verify(project):
    release = project.prod_deployment_path.resolve()
    forget_history(project)
    with pytest.raises(registry.ReleaseRefused, match="its model cannot be verified without the history database"):
        registry.read_release_model(project.history_path, release)
    with history.opened(project.history_path):
        pass  # an empty history: the release is not in it
    with pytest.raises(registry.ReleaseRefused, match="it is not in the history, so its model cannot be verified"):
        registry.read_release_model(project.history_path, release)


def test_a_reader_migrates_a_history_of_an_older_schema_before_it_verifies(project, monkeypatch):
    release = project.prod_deployment_path.resolve()
    newer = [*history.MIGRATIONS, "CREATE TABLE a_later_step (id INTEGER)"]  # code newer than the database
    monkeypatch.setattr(history, "MIGRATIONS", newer)
    monkeypatch.setattr(history, "SCHEMA_VERSION", len(newer))
    assert registry.read_release_model(project.history_path, release).coef_.shape == (1, 3)
    assert query(project, "PRAGMA user_version") == [(len(newer),)]


def test_a_score_that_is_not_the_recorded_test_f1_of_the_trained_model_is_not_deployed(project):
    import deployment

    first = live(project)
    model_id = model_id_of(project.output_model_path)  # the trained model, recorded by training
    with history.opened(project.history_path) as conn, conn:
        conn.execute("UPDATE models SET test_f1 = 0.5 WHERE id = ?", (model_id,))
    (project.output_model_path / "latestscore.txt").write_text("0.75\n")  # as `scoring.py --model OTHER` leaves it
    with pytest.raises(PipelineError, match="cannot deploy: .*latestscore.txt says 0.75, but model .* scored F1 0.5;"):
        deployment.deploy(project)
    assert live(project) == first


@pytest.mark.parametrize("step", ["scoring", "deployment"])
def test_a_planted_model_in_the_output_folder_is_never_unpickled_by_scoring_or_a_deployment(project, tmp_path, step):
    import deployment
    import scoring

    first = live(project)
    marker = tmp_path / "PWNED"
    plant_pickle(project.output_model_path / "trainedmodel.pkl", marker)
    with pytest.raises(registry.ReleaseRefused) as refused:
        scoring.score(project) if step == "scoring" else deployment.deploy(project)
    assert str(refused.value).startswith(f"{project.output_model_path / 'trainedmodel.pkl'} is not a model the history")
    assert not marker.exists() and live(project) == first
    assert query(project, "SELECT COUNT(*) FROM runs WHERE state = 'running'") == [(0,)]  # its run closed, not killed
