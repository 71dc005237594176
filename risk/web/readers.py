"""The history database for a request: a read-only connection that waits at most a second for a lock,
and why a history that cannot be used cannot be, in one sentence for the caller."""

import contextlib
import sqlite3

from risk import history
from risk.config import Config
from risk.web.answers import public

# A request waits at most this long for a locked history database, then answers 503. Short: in a gevent
# worker SQLite's wait blocks every connection of the worker, and WAL readers wait only on an abnormal lock.
HISTORY_TIMEOUT_SECONDS = 1
FAILURES = (history.HistoryError, sqlite3.Error)  # a history that cannot be used: a 503 (errors.py)


def reader(config: Config) -> sqlite3.Connection | None:
    """A read-only connection to the history for this request, or None before the first run.

    A database from an older version of this code is migrated first (what the next run would do). One that
    is damaged, locked for more than HISTORY_TIMEOUT_SECONDS or cannot be migrated raises HistoryError or
    sqlite3.Error: a 503 that history_problem words.
    """
    return history.connect_reader(config.history_path, HISTORY_TIMEOUT_SECONDS)


@contextlib.contextmanager
def reading(config: Config):
    """reader(config) for a `with` block, closed at its end (None before the first run)."""
    conn = reader(config)
    try:
        yield conn
    finally:
        if conn is not None:
            conn.close()


def history_problem(error: Exception, config: Config) -> str:
    """Why the history cannot be read, in one sentence for a caller (no server path)."""
    return public(str(history.history_error(error, config.history_path, HISTORY_TIMEOUT_SECONDS)), config)
