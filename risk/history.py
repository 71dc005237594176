"""The history database (SQLite): data files, runs, models, releases, deployments, verdicts, heartbeats.

Owns the schema, created and migrated by numbered steps (`PRAGMA user_version`), the connections (WAL
mode lets the API read while a run writes; `with connection:` is one transaction, BEGIN IMMEDIATE) and
one function per question or change; parameters are always bound. Functions take a connection. JSON
columns hold lists and objects; times are UTC ISO 8601 text. Standard library only: the idle cron run opens it.
"""

import contextlib
import json
import os
import sqlite3
import time

from risk.artifacts import list_csv_names
from risk.config import PipelineError

# Each step is applied once, in order, inside one transaction with its user_version bump.
MIGRATIONS = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished', 'interrupted')),
        config_path TEXT NOT NULL,
        actor TEXT NOT NULL,
        trigger TEXT NOT NULL,
        new_files TEXT NOT NULL DEFAULT '[]',
        decision TEXT,
        message TEXT,
        steps TEXT NOT NULL DEFAULT '{}',
        release_before TEXT,
        release_after TEXT,
        exit_code INTEGER,
        seconds REAL
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        folder TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        rows INTEGER,
        first_seen_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
        reason TEXT,
        decision TEXT CHECK (decision IN ('waiting', 'decided')),
        decided_run_id INTEGER REFERENCES runs (id),
        present INTEGER NOT NULL DEFAULT 1,
        UNIQUE (folder, name, sha256)
    );
    CREATE TABLE step_runs (
        id INTEGER PRIMARY KEY,
        step TEXT NOT NULL,
        started_at TEXT NOT NULL,
        seconds REAL NOT NULL,
        ok INTEGER NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        config_path TEXT NOT NULL
    );
    CREATE TABLE models (
        id TEXT PRIMARY KEY,
        trained_at TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('trained', 'adopted')),
        window TEXT,
        training_files TEXT NOT NULL DEFAULT '[]',
        rows INTEGER,
        positives INTEGER,
        exit_rate REAL,
        coefficients TEXT NOT NULL DEFAULT '{}',
        intercept REAL,
        feature_means TEXT NOT NULL DEFAULT '{}',
        validation_f1 REAL,
        validation_low REAL,
        validation_high REAL,
        validation_rows INTEGER,
        validation_counts TEXT,
        validation_method TEXT,
        test_f1 REAL,
        run_id INTEGER REFERENCES runs (id)
    );
    CREATE TABLE model_references (
        id INTEGER PRIMARY KEY,
        model_id TEXT NOT NULL REFERENCES models (id),
        at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        kind TEXT NOT NULL CHECK (kind IN ('validation', 'revalidation', 'test')),
        f1 REAL NOT NULL,
        low REAL,
        high REAL,
        rows INTEGER,
        counts TEXT,
        files TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE releases (
        name TEXT PRIMARY KEY,
        model_id TEXT REFERENCES models (id),
        created_at TEXT NOT NULL,
        test_f1 REAL,
        pruned_at TEXT
    );
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        from_release TEXT,
        to_release TEXT NOT NULL REFERENCES releases (name),
        model_id TEXT REFERENCES models (id),
        reason TEXT NOT NULL CHECK (reason IN ('bootstrap', 'drift', 'rollback', 'manual', 'adopted')),
        actor TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'abandoned')),
        decide_files TEXT NOT NULL DEFAULT '[]',
        note TEXT
    );
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        feature TEXT,
        statistic TEXT NOT NULL,
        value REAL,
        reference REAL,
        low REAL,
        high REAL,
        p_value REAL,
        n INTEGER,
        positives INTEGER,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE heartbeats (
        config_path TEXT PRIMARY KEY,
        checked_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id)
    );
    CREATE INDEX files_by_folder ON files (folder, name);
    CREATE INDEX verdicts_by_run ON verdicts (run_id);
    CREATE INDEX deployments_by_state ON deployments (state, id);
    """,
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        event TEXT NOT NULL CHECK (
            event IN ('drift', 'deployment', 'rollback', 'no better model', 'failed run', 'late cron')
        ),
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        summary TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        link TEXT,
        run_id INTEGER REFERENCES runs (id),
        dedupe_key TEXT UNIQUE,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        last_error TEXT
    );
    CREATE INDEX alerts_by_delivery ON alerts (delivered_at, id);
    """,
    """
    CREATE TABLE monitoring (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        at TEXT NOT NULL,
        model_id TEXT NOT NULL REFERENCES models (id),
        release TEXT,
        files TEXT NOT NULL DEFAULT '[]',
        rows INTEGER NOT NULL,
        counts TEXT NOT NULL,
        reference_f1 REAL,
        cusum REAL NOT NULL,
        threshold REAL,
        window_start_run_id INTEGER REFERENCES runs (id),
        window_checks INTEGER NOT NULL,
        window_counts TEXT NOT NULL,
        flagged INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('unproven', 'healthy', 'degraded')),
        state_since TEXT NOT NULL,
        change_run_id INTEGER REFERENCES runs (id),
        drift_run_id INTEGER REFERENCES runs (id),
        evidence TEXT NOT NULL,
        exit_cusum TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX monitoring_by_model ON monitoring (model_id, id);
    """,
    # A model's full SHA-256 (a release is loaded only if its pickle has it), each release's files and
    # their SHA-256 when it was made, alerts given up on (undeliverable), and an event for a release
    # refused. SQLite changes a CHECK only by rebuilding the table.
    """
    ALTER TABLE models ADD COLUMN sha256 TEXT;
    ALTER TABLE releases ADD COLUMN files TEXT;
    CREATE TABLE alerts_rebuilt (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        event TEXT NOT NULL CHECK (
            event IN (
                'drift', 'deployment', 'rollback', 'no better model', 'failed run', 'late cron', 'release refused'
            )
        ),
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        summary TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        link TEXT,
        run_id INTEGER REFERENCES runs (id),
        dedupe_key TEXT UNIQUE,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        last_error TEXT,
        given_up_at TEXT
    );
    INSERT INTO alerts_rebuilt (
        id, created_at, event, severity, summary, details, link, run_id, dedupe_key, attempts, delivered_at, last_error
    )
    SELECT
        id, created_at, event, severity, summary, details, link, run_id, dedupe_key, attempts, delivered_at, last_error
    FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_rebuilt RENAME TO alerts;
    CREATE INDEX alerts_by_delivery ON alerts (delivered_at, id);
    """,
    # A heartbeat per configuration and actor: cron's (actor 'cron', which lateness is judged by) apart from a
    # person's; one from before actors were recorded is its run's actor's, or cron's when it had no run (as it
    # counted then). An event for the end of a late spell; a late alert told before spells had an end keeps its
    # key under another prefix, so that no recovery of a spell long over is told now.
    """
    CREATE TABLE heartbeats_rebuilt (
        config_path TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        actor TEXT NOT NULL,
        PRIMARY KEY (config_path, actor)
    );
    INSERT INTO heartbeats_rebuilt (config_path, checked_at, outcome, run_id, actor)
    SELECT h.config_path, h.checked_at, h.outcome, h.run_id, COALESCE(r.actor, 'cron')
    FROM heartbeats h LEFT JOIN runs r ON r.id = h.run_id;
    DROP TABLE heartbeats;
    ALTER TABLE heartbeats_rebuilt RENAME TO heartbeats;
    CREATE TABLE alerts_rebuilt (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        event TEXT NOT NULL CHECK (
            event IN (
                'drift', 'deployment', 'rollback', 'no better model', 'failed run', 'late cron', 'cron recovered',
                'release refused'
            )
        ),
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        summary TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        link TEXT,
        run_id INTEGER REFERENCES runs (id),
        dedupe_key TEXT UNIQUE,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        last_error TEXT,
        given_up_at TEXT
    );
    INSERT INTO alerts_rebuilt (
        id, created_at, event, severity, summary, details, link, run_id, dedupe_key, attempts, delivered_at, last_error,
        given_up_at
    )
    SELECT
        id, created_at, event, severity, summary, details, link, run_id, dedupe_key, attempts, delivered_at, last_error,
        given_up_at
    FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_rebuilt RENAME TO alerts;
    CREATE INDEX alerts_by_delivery ON alerts (delivered_at, id);
    UPDATE alerts SET dedupe_key = 'told before step 5:' || dedupe_key WHERE event = 'late cron';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
JSON_COLUMNS = {
    "new_files",
    "steps",
    "training_files",
    "coefficients",
    "feature_means",
    "validation_counts",
    "counts",
    "window_counts",
    "exit_cusum",
    "files",
    "decide_files",
    "detail",
    "details",
}


BUSY_SECONDS = 5  # the longest wait for another process's write (theirs last milliseconds; a stuck one, for ever)


class HistoryError(PipelineError):
    """The database cannot be used (newer schema, damaged, read-only); the message says what to do."""


class HistoryBusy(HistoryError):
    """Another process held the database's write lock longer than BUSY_SECONDS."""


FAILURES = (HistoryError, sqlite3.Error)  # what a database that cannot be used raises


def history_error(error: Exception, path, waited: float | None = None) -> HistoryError:
    """An error of SQLite (or the file system) about the database at `path` as one line saying what to do
    (`waited`: the seconds a statement waited for a lock, BUSY_SECONDS unless said)."""
    if isinstance(error, HistoryError):
        return error
    waited = BUSY_SECONDS if waited is None else waited
    text = str(error) or type(error).__name__
    if "locked" in text or "busy" in text:
        return HistoryBusy(
            f"history database {path} is locked by another process (waited {waited:g} s): try again when it is free"
        )
    if "readonly" in text or "read-only" in text:
        return HistoryError(f"history database {path} is read-only ({text}): make it writable for this user")
    if "malformed" in text or "not a database" in text:
        return HistoryError(f"history database {path} is damaged ({text}): restore it from a backup, or move it aside")
    return HistoryError(f"history database {path} cannot be used: {text}")


def utc_now(now: float | None = None) -> str:
    """Now (or `now`, epoch seconds), in UTC, to the millisecond: 2026-11-27T18:30:01.123Z."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def connect(path, migrate_schema: bool = True, timeout: float | None = None) -> sqlite3.Connection:
    """A read-write connection, the schema brought up to date; `with conn:` is one transaction.

    `timeout`: seconds a statement waits for another connection's lock before 'database is locked'
    (BUSY_SECONDS unless said).
    """
    path = os.fspath(path)
    timeout = BUSY_SECONDS if timeout is None else timeout
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, isolation_level="IMMEDIATE")
    except (OSError, sqlite3.Error) as error:
        raise history_error(error, path, timeout) from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        if migrate_schema:
            migrate(conn)
    except BaseException as error:
        conn.close()
        if isinstance(error, sqlite3.Error):
            raise history_error(error, path, timeout) from None
        raise
    return conn


@contextlib.contextmanager
def opened(path):
    """`with opened(path) as conn:` connect(), closed on the way out (a transaction still needs `with conn:`).

    An error of SQLite inside the block leaves it as a HistoryError saying what to do, in one line."""
    conn = connect(path)
    try:
        yield conn
    except sqlite3.Error as error:
        raise history_error(error, path) from None
    finally:
        conn.close()


def closing(conn: sqlite3.Connection | None):
    """`with closing(conn) as conn:` contextlib.closing for a connection that may be None (a reader's, when
    there is no database yet): it is closed on the way out, and None passes through."""
    return contextlib.closing(conn) if conn is not None else contextlib.nullcontext()


def connect_readonly(path, timeout: float = 10) -> sqlite3.Connection | None:
    """A read-only connection for readers such as the API; None when there is no database yet.

    A damaged or locked file raises sqlite3.DatabaseError (a lock after `timeout` seconds).
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path):  # a folder, a broken link, a device: what the scripts refuse too
        raise sqlite3.OperationalError("unable to open database file (not a regular file)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except BaseException:
        conn.close()
        raise
    if version != SCHEMA_VERSION:
        conn.close()
        raise HistoryError(
            f"history database {path} has schema version {version}, this code expects {SCHEMA_VERSION}"
            " (the next full-process run migrates it)"
        )
    return conn


def connect_reader(path, timeout: float | None = None) -> sqlite3.Connection | None:
    """connect_readonly, after migrating a database of an older schema first when this process can write
    it (what the next full-process run would do); HistoryError when it cannot. `timeout`: the seconds a
    statement waits for a lock (BUSY_SECONDS unless said: the API's requests wait less than a run)."""
    timeout = BUSY_SECONDS if timeout is None else timeout
    try:
        return connect_readonly(path, timeout)
    except HistoryError:
        connect(path, timeout=timeout).close()
        return connect_readonly(path, timeout)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database lacks, all in one transaction (all or none); return the version."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return SCHEMA_VERSION
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    level, conn.isolation_level = conn.isolation_level, None
    try:
        conn.execute("BEGIN IMMEDIATE")  # then re-read: another process may have migrated meanwhile
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"the history database has schema version {version}, newer than this code's "
                f"{SCHEMA_VERSION}: update the code, or set history_path to another file"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.isolation_level = level
    return SCHEMA_VERSION


# --- generic rows ----------------------------------------------------------------------------


def encode(row: dict) -> dict:
    if JSON_COLUMNS.isdisjoint(row):
        return row
    return {
        key: json.dumps(value) if key in JSON_COLUMNS and value is not None else value for key, value in row.items()
    }


def decode(row: sqlite3.Row | None) -> dict | None:
    """A row as a dict, JSON columns parsed."""
    if row is None:
        return None
    keys = row.keys()
    if JSON_COLUMNS.isdisjoint(keys):
        return dict(zip(keys, row, strict=True))
    return {
        key: json.loads(row[key]) if key in JSON_COLUMNS and row[key] is not None else row[key] for key in row.keys()
    }


def insert(conn: sqlite3.Connection, table: str, row: dict, replace: bool = False) -> int:
    """Insert one row (within the caller's transaction); return its rowid."""
    row = encode(row)
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return conn.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", list(row.values())).lastrowid


def update(conn: sqlite3.Connection, table: str, key: str, value, changes: dict) -> None:
    changes = encode(changes)
    assignments = ", ".join(f"{column} = ?" for column in changes)
    conn.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", [*changes.values(), value])


def select(conn: sqlite3.Connection, sql: str, params=()) -> list[dict]:
    return [decode(row) for row in conn.execute(sql, params)]


def select_one(conn: sqlite3.Connection, sql: str, params=()) -> dict | None:
    return decode(conn.execute(sql, params).fetchone())


# --- data files ------------------------------------------------------------------------------


def folder_key(folder_path, history_path) -> str:
    """How a data folder is named in the database: relative to the database's folder."""
    return os.path.relpath(os.path.abspath(folder_path), os.path.dirname(os.path.abspath(history_path)))


def file_states(conn: sqlite3.Connection, folder: str) -> dict[str, list[dict]]:
    """name -> the versions of that file recorded for `folder`, newest last."""
    states: dict[str, list[dict]] = {}
    for row in select(conn, "SELECT * FROM files WHERE folder = ? ORDER BY id", (folder,)):
        states.setdefault(row["name"], []).append(row)
    return states


def record_file(conn: sqlite3.Connection, file: dict) -> int:
    """A file version seen by ingestion: insert it, or refresh its fingerprint; return its id."""
    known = select_one(
        conn,
        "SELECT id FROM files WHERE folder = ? AND name = ? AND sha256 = ?",
        (file["folder"], file["name"], file["sha256"]),
    )
    if known:
        update(conn, "files", "id", known["id"], {"size": file["size"], "mtime_ns": file["mtime_ns"]})
        return known["id"]
    return insert(conn, "files", {"first_seen_at": utc_now(), **file})


def mark_present(conn: sqlite3.Connection, folder: str, file_ids: list[int]) -> None:
    """The versions in the folder now are `file_ids`; every other version of the folder is gone."""
    conn.execute("UPDATE files SET present = 0 WHERE folder = ?", (folder,))
    for file_id in file_ids:
        conn.execute("UPDATE files SET present = 1 WHERE id = ?", (file_id,))


def undecided_files(conn: sqlite3.Connection, folder: str) -> list[dict]:
    """Accepted files in the folder not yet part of a decision (new, or waiting for more rows), oldest first."""
    return select(
        conn,
        "SELECT * FROM files WHERE folder = ? AND present = 1 AND status = 'accepted'"
        " AND (decision IS NULL OR decision = 'waiting') ORDER BY id",
        (folder,),
    )


def unjudged_files(conn: sqlite3.Connection, folder_path, history_path, names=None) -> list[str]:
    """Input files (`names`, default: artifacts.list_csv_names) that are new: unknown, changed since
    (size or time), or never judged.

    Files waiting for more rows are not new: they are judged again with the next new file.
    """
    known = file_states(conn, folder_key(folder_path, history_path))
    new = []
    for name in list_csv_names(folder_path) if names is None else names:
        try:
            stat = os.lstat(os.path.join(folder_path, name))
        except FileNotFoundError:  # gone since it was listed
            continue
        versions = [v for v in known.get(name, []) if (v["size"], v["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)]
        if not versions or (versions[-1]["status"] == "accepted" and versions[-1]["decision"] is None):
            new.append(name)
    return new


def decide_files(conn: sqlite3.Connection, file_ids: list[int], run_id: int, decision: str) -> None:
    for file_id in file_ids:
        update(conn, "files", "id", file_id, {"decision": decision, "decided_run_id": run_id})


def decided_batches(conn: sqlite3.Connection, folder: str) -> list[list[dict]]:
    """The decided file versions of `folder`, grouped by the run that decided them, oldest batch first."""
    batches: dict[int, list[dict]] = {}
    rows = select(
        conn,
        "SELECT * FROM files WHERE folder = ? AND present = 1 AND decision = 'decided'"
        " ORDER BY decided_run_id, first_seen_at, id",
        (folder,),
    )
    for row in rows:
        batches.setdefault(row["decided_run_id"], []).append(row)
    return list(batches.values())


# --- runs and heartbeats ---------------------------------------------------------------------


def start_run(conn: sqlite3.Connection, config_path: str, actor: str, trigger: str, release: str | None) -> int:
    with conn:
        return insert(
            conn,
            "runs",
            {
                "started_at": utc_now(),
                "config_path": config_path,
                "actor": actor,
                "trigger": trigger,
                "release_before": release,
            },
        )


def finish_run(conn: sqlite3.Connection, run_id: int, changes: dict) -> None:
    """Close a run's record and leave its actor's heartbeat, in one transaction."""
    with conn:
        update(conn, "runs", "id", run_id, {"finished_at": utc_now(), "state": "finished", **changes})
        config_path, actor = conn.execute("SELECT config_path, actor FROM runs WHERE id = ?", (run_id,)).fetchone()
        beat(conn, config_path, changes.get("decision") or "finished", actor, run_id)


def interrupt_stale_runs(conn: sqlite3.Connection) -> list[int]:
    """Runs still 'running' when a new run holds the lock were killed: mark them interrupted."""
    stale = [row[0] for row in conn.execute("SELECT id FROM runs WHERE state = 'running'")]
    if stale:
        with conn:
            for run_id in stale:
                update(conn, "runs", "id", run_id, {"state": "interrupted", "finished_at": utc_now()})
    return stale


def beat(conn: sqlite3.Connection, config_path: str, outcome: str, actor: str, run_id: int | None = None) -> None:
    """When `actor` (cron, or a person) last checked and what it found (one small write; the caller's
    transaction or its own). Cron's heartbeat is the one lateness is judged by."""
    row = {"config_path": config_path, "checked_at": utc_now(), "outcome": outcome, "run_id": run_id, "actor": actor}
    if conn.in_transaction:
        insert(conn, "heartbeats", row, replace=True)
    else:
        with conn:
            insert(conn, "heartbeats", row, replace=True)


def reported_release(conn: sqlite3.Connection, config_path: str) -> str | None:
    """The release the newest report of this config was written for."""
    row = conn.execute(
        "SELECT release_after FROM runs WHERE config_path = ? AND steps LIKE '%\"reporting\"%'"
        " AND release_after IS NOT NULL ORDER BY id DESC LIMIT 1",
        (config_path,),
    ).fetchone()
    return row[0] if row else None


def recent_runs(conn: sqlite3.Connection, limit: int) -> list[dict]:
    return select(conn, "SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))


def run_verdicts(conn: sqlite3.Connection, run_id: int) -> list[dict]:
    return select(conn, "SELECT * FROM verdicts WHERE run_id = ? ORDER BY id", (run_id,))


def record_verdicts(conn: sqlite3.Connection, run_id: int, verdicts: list[dict]) -> None:
    """Verdicts of a run (dicts with the verdicts table's columns), in the caller's transaction."""
    now = utc_now()
    for verdict in verdicts:
        insert(conn, "verdicts", {"run_id": run_id, "at": now, **verdict})


# --- models and references -------------------------------------------------------------------


def record_model(conn: sqlite3.Connection, model: dict) -> None:
    """A model (dict with the models table's columns); a model already known keeps its record."""
    if not select_one(conn, "SELECT id FROM models WHERE id = ?", (model["id"],)):
        insert(conn, "models", model)


def get_model(conn: sqlite3.Connection, model_id: str) -> dict | None:
    return select_one(conn, "SELECT * FROM models WHERE id = ?", (model_id,))


def add_reference(conn: sqlite3.Connection, reference: dict) -> None:
    insert(conn, "model_references", {"at": utc_now(), **reference})


def latest_reference(conn: sqlite3.Connection, model_id: str) -> dict | None:
    """What the model is expected to score, and on which rows: what it was validated at (its newest
    validation or test reference). A 'revalidation' (an earlier version lowered a model's reference
    after "no better model") is history only: an expectation is never lowered without a deployment."""
    return select_one(
        conn,
        "SELECT * FROM model_references WHERE model_id = ? AND kind IN ('validation', 'test') ORDER BY id DESC LIMIT 1",
        (model_id,),
    )


# --- monitoring: the live model's checks and its state ---------------------------------------


def record_check(conn: sqlite3.Connection, check: dict) -> None:
    """One check of the live model (a dict with the monitoring table's columns), in the caller's transaction."""
    insert(conn, "monitoring", {"at": utc_now(), **check})


def model_checks(conn: sqlite3.Connection, model_id: str) -> list[dict]:
    """The checks of a model that took effect (their run decided the files they judged), oldest first.

    A run that failed after its check (say, in the deployment) leaves its files undecided: the next
    run judges them again, and the failed run's check is not counted twice.
    """
    checks = select(conn, "SELECT * FROM monitoring WHERE model_id = ? ORDER BY id", (model_id,))
    decided = {row["id"]: row["decided_run_id"] for row in select(conn, "SELECT id, decided_run_id FROM files")}
    return [check for check in checks if all(decided.get(file_id) == check["run_id"] for file_id in check["files"])]


def latest_check(conn: sqlite3.Connection, model_id: str) -> dict | None:
    checks = model_checks(conn, model_id)
    return checks[-1] if checks else None


# --- releases and deployments ----------------------------------------------------------------


def disagrees_with(conn: sqlite3.Connection, live: str | None) -> bool:
    """Does the history disagree with production (an intent left pending, another release live)?"""
    last = conn.execute("SELECT to_release FROM deployments WHERE state = 'done' ORDER BY id DESC LIMIT 1").fetchone()
    pending = conn.execute("SELECT 1 FROM deployments WHERE state = 'pending' LIMIT 1").fetchone()
    return pending is not None or (live is not None and (last is None or last[0] != live))


def unpruned_releases(conn: sqlite3.Connection) -> list[str]:
    """Names of the recorded releases not marked pruned: each should have its folder on disk."""
    return [row[0] for row in conn.execute("SELECT name FROM releases WHERE pruned_at IS NULL ORDER BY name")]


def get_release(conn: sqlite3.Connection, name: str) -> dict | None:
    return select_one(conn, "SELECT * FROM releases WHERE name = ?", (name,))


def last_deployment(conn: sqlite3.Connection) -> dict | None:
    """The newest completed deployment: it names the release production should serve."""
    return select_one(conn, "SELECT * FROM deployments WHERE state = 'done' ORDER BY id DESC LIMIT 1")


def release_moves(conn: sqlite3.Connection, name: str) -> list[dict]:
    """Every completed move of the live pointer to release `name`, oldest first: its first deployment, then
    each later move that made it live again (a rollback, --to, an adoption after a move by hand)."""
    return select(
        conn,
        "SELECT at, from_release, reason, actor FROM deployments WHERE to_release = ? AND state = 'done' ORDER BY id",
        (name,),
    )


def pending_deployments(conn: sqlite3.Connection) -> list[dict]:
    return select(conn, "SELECT * FROM deployments WHERE state = 'pending' ORDER BY id")


def deployments(conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
    return select(conn, "SELECT * FROM deployments WHERE state = 'done' ORDER BY id DESC LIMIT ?", (limit,))


# --- step timings ----------------------------------------------------------------------------


def record_step(
    conn: sqlite3.Connection,
    config_path: str,
    step: str,
    started_at: str,
    seconds: float,
    ok: bool,
    detail: dict,
) -> None:
    with conn:
        insert(
            conn,
            "step_runs",
            {
                "step": step,
                "started_at": started_at,
                "seconds": seconds,
                "ok": int(ok),
                "detail": detail,
                "config_path": config_path,
            },
        )


def last_step_runs(conn: sqlite3.Connection, config_path: str, steps: list[str]) -> dict[str, dict]:
    """step -> its newest successful run for this config."""
    found = {}
    for step in steps:
        row = select_one(
            conn,
            "SELECT * FROM step_runs WHERE step = ? AND config_path = ? AND ok = 1 ORDER BY id DESC LIMIT 1",
            (step, config_path),
        )
        if row:
            found[step] = row
    return found
