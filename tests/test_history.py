"""The history database: schema and migrations, transactions, and readers beside a writer."""

import sqlite3
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

from risk import history

# The README's table of the history database: each table and the columns its description names.
README_TABLES = {
    "files": ["folder", "name", "sha256", "size", "mtime_ns", "rows", "first_seen_at", "status", "reason", "decision"],
    "runs": ["trigger", "actor", "new_files", "decision", "steps", "release_before", "release_after", "exit_code"],
    "verdicts": ["kind", "feature", "statistic", "value", "reference", "low", "high", "p_value", "n", "outcome"],
    "models": [
        "id",
        "sha256",
        "trained_at",
        "window",
        "training_files",
        "rows",
        "positives",
        "coefficients",
        "intercept",
    ],
    "model_references": ["model_id", "kind", "f1"],
    "releases": ["name", "model_id", "files"],
    "deployments": ["at", "from_release", "to_release", "model_id", "reason", "actor"],
    "heartbeats": ["config_path", "checked_at", "outcome", "actor"],
    "step_runs": ["step", "started_at", "seconds"],
    "alerts": [
        "event",
        "severity",
        "summary",
        "details",
        "link",
        "attempts",
        "delivered_at",
        "last_error",
        "given_up_at",
    ],
    "monitoring": ["run_id", "model_id", "counts", "reference_f1", "cusum", "threshold", "state", "evidence"],
}


def test_migrations_build_the_readmes_tables_in_wal_mode_from_an_empty_file(tmp_path):
    path = tmp_path / "logs" / "history.db"
    path.parent.mkdir()
    path.write_bytes(b"")  # an empty file is an empty database
    with history.opened(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5  # five numbered steps so far
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {table: {row[1] for row in conn.execute(f"PRAGMA table_info({table})")} for table in README_TABLES}
    assert tables - {"sqlite_sequence"} == set(README_TABLES)
    assert {table: [c for c in names if c not in columns[table]] for table, names in README_TABLES.items()} == {
        table: [] for table in README_TABLES
    }


def test_a_trained_model_is_recorded_by_its_pickles_sha256_with_what_it_learned(trained_project, config):
    import hashlib
    import json
    import pickle

    import pandas as pd
    from conftest import FEATURES

    data = (config.prod_deployment_path / "trainedmodel.pkl").read_bytes()
    model = pickle.loads(data)
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    with sqlite3.connect(config.history_path) as conn:
        conn.row_factory = sqlite3.Row
        (row,) = [dict(r) for r in conn.execute("SELECT * FROM models")]
    assert (row["id"], row["sha256"]) == (hashlib.sha256(data).hexdigest()[:12], hashlib.sha256(data).hexdigest())
    assert (row["rows"], row["positives"]) == (len(finaldata), int(finaldata["exited"].sum()))
    assert json.loads(row["coefficients"]) == dict(zip(FEATURES, model.coef_[0].tolist(), strict=True))
    assert row["intercept"] == float(model.intercept_[0])
    assert json.loads(row["feature_means"]) == pytest.approx(finaldata[FEATURES].mean().to_dict())
    assert row["test_f1"] == float((config.prod_deployment_path / "latestscore.txt").read_text())
    assert row["validation_low"] <= row["validation_f1"] <= row["validation_high"]


def test_migrating_twice_changes_nothing(tmp_path):
    path = tmp_path / "history.db"
    with history.opened(path) as conn:
        schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    with history.opened(path) as conn:
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_a_database_newer_than_the_code_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(history.MIGRATIONS) + 1}")
    with pytest.raises(history.HistoryError, match="newer than this code's"):
        history.connect(path)


def test_a_failed_migration_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "history.db"
    monkeypatch.setattr(history, "MIGRATIONS", [history.MIGRATIONS[0], "CREATE TABLE runs (id INTEGER)"])
    monkeypatch.setattr(history, "SCHEMA_VERSION", 2)
    with pytest.raises(history.HistoryError, match="cannot be used: table runs already exists"):
        history.connect(path)
    with sqlite3.connect(path) as conn:  # both steps or none: step 1 was rolled back with step 2
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


def test_rows_round_trip_with_json_columns(tmp_path):
    with history.opened(tmp_path / "history.db") as conn:
        run_id = history.start_run(conn, "/c.json", "cron", "new data", None)
        with conn:
            history.update(conn, "runs", "id", run_id, {"new_files": ["a.csv"], "steps": {"ingestion": 0.5}})
        row = history.select_one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
    assert (row["new_files"], row["steps"], row["state"], row["actor"]) == (
        ["a.csv"],
        {"ingestion": 0.5},
        "running",
        "cron",
    )


def test_a_failing_transaction_writes_nothing(tmp_path):
    with history.opened(tmp_path / "history.db") as conn:
        with pytest.raises(sqlite3.IntegrityError), conn:
            history.insert(
                conn, "heartbeats", {"config_path": "/c", "checked_at": "t", "outcome": "x", "actor": "cron"}
            )
            history.insert(
                conn, "heartbeats", {"config_path": "/c", "checked_at": "t", "outcome": "y", "actor": "cron"}
            )
        assert conn.execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0] == 0


def test_a_version_4_database_keeps_its_heartbeats_each_under_its_runs_actor_or_crons(tmp_path):
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    for step in history.MIGRATIONS[:4]:
        old.executescript(step)
    old.execute("PRAGMA user_version = 4")
    for actor in ("cron", "ann@box"):
        old.execute(
            "INSERT INTO runs (started_at, config_path, actor, trigger) VALUES ('t', ?, ?, 'new data')",
            (f"/{actor}", actor),
        )
    old.executemany("INSERT INTO heartbeats VALUES (?, 't', 'x', ?)", [("/cron", 1), ("/ann@box", 2), ("/idle", None)])
    old.execute(
        "INSERT INTO alerts (created_at, event, severity, summary, dedupe_key)"
        " VALUES ('t', 'late cron', 'warning', 'late', 'late:/cron:t')"
    )
    old.commit()
    old.close()
    with history.opened(path) as conn:
        assert history.select(conn, "SELECT config_path, actor, run_id FROM heartbeats ORDER BY config_path") == [
            {"config_path": "/ann@box", "actor": "ann@box", "run_id": 2},
            {"config_path": "/cron", "actor": "cron", "run_id": 1},
            {"config_path": "/idle", "actor": "cron", "run_id": None},  # it counted as cron's then
        ]
        assert history.select(conn, "SELECT id, event, summary, dedupe_key FROM alerts") == [
            {"id": 1, "event": "late cron", "summary": "late", "dedupe_key": "told before step 5:late:/cron:t"}
        ]  # a spell told before spells had an end: no recovery of it is told now
        history.beat(conn, "/cron", "no new data", "bob@box")  # a person's heartbeat beside cron's
        assert conn.execute("SELECT COUNT(*) FROM heartbeats WHERE config_path = '/cron'").fetchone()[0] == 2
        with conn:
            conn.execute(
                "INSERT INTO alerts (created_at, event, severity, summary) VALUES ('t', 'cron recovered', 'info', 'x')"
            )


def test_stale_running_runs_are_marked_interrupted(tmp_path):
    with history.opened(tmp_path / "history.db") as conn:
        first = history.start_run(conn, "/c.json", "cron", "new data", None)
        assert history.interrupt_stale_runs(conn) == [first]
        assert history.select_one(conn, "SELECT state FROM runs")["state"] == "interrupted"
        assert history.interrupt_stale_runs(conn) == []


WRITER = """
import sys, time
sys.path.insert(0, {project!r})
from risk import history
with history.opened({path!r}) as conn:
    for i in range(400):
        with conn:
            row = {{"checked_at": "t", "outcome": "x", "actor": "cron"}}
            history.insert(conn, "heartbeats", {{**row, "config_path": f"/c{{i}}"}})
            history.insert(conn, "heartbeats", {{**row, "config_path": f"/d{{i}}"}})
"""


def test_a_reader_sees_whole_transactions_while_another_process_writes(tmp_path):
    path = tmp_path / "history.db"
    history.connect(path).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(project=str(PROJECT_DIR), path=str(path))])
    counts = []
    try:
        while writer.poll() is None:
            reader = history.connect_readonly(path)
            counts.append(reader.execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0])
            reader.close()
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert all(count % 2 == 0 for count in counts), "a reader saw half a transaction"
    assert counts == sorted(counts) and len(counts) > 5


def test_readers_are_read_only_and_absent_without_a_database(tmp_path):
    assert history.connect_readonly(tmp_path / "none.db") is None
    history.connect(tmp_path / "history.db").close()
    reader = history.connect_readonly(tmp_path / "history.db")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO heartbeats VALUES ('/c', 't', 'x', NULL, 'cron')")
    reader.close()
