"""The cron watchdog: one 'late cron' alert per late spell and one 'cron recovered' after it, whoever looks (the
service's timer in each worker, or the next cron run on the way in), with nobody calling the service."""

import sqlite3
import time

import pytest
from conftest import gunicorn, run_script, set_config

from risk import alerts, history, watchdog
from risk.web.watcher import Watchdog

LIMIT = 20 * 60  # late: no cron heartbeat within twice the 10 minutes expected


@pytest.fixture
def conn(config):
    with history.opened(config.history_path) as conn:
        yield conn


def beat(conn, config, seconds_ago: float = 0.0, actor: str = "cron", at: float | None = None) -> str:
    """Cron's (or a person's) heartbeat `seconds_ago`, or `at` (epoch seconds); its time."""
    checked_at = history.utc_now(time.time() - seconds_ago if at is None else at)
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO heartbeats VALUES (?, ?, 'no new data', NULL, ?)",
            (str(config.config_path), checked_at, actor),
        )
    return checked_at


def told(conn) -> list[tuple]:
    return [
        (row["event"], row["severity"], row["dedupe_key"].split(":")[0], row["summary"])
        for row in history.select(conn, "SELECT * FROM alerts ORDER BY id")
    ]


def head(config, conn, alert_id: int) -> str:
    created_at = history.select_one(conn, "SELECT created_at FROM alerts WHERE id = ?", (alert_id,))["created_at"]
    return f"{config.system_name}, {alerts.when_words(created_at)}: "


# --- one look at the heartbeat --------------------------------------------------------------------------


def test_a_late_spell_raises_one_alert_however_often_it_is_looked_at_with_the_next_step(conn, config):
    last = beat(conn, config)
    assert watchdog.watch(conn, config, now=watchdog.epoch(last) + LIMIT) == []  # on the limit: not late yet
    looks = [watchdog.watch(conn, config, now=watchdog.epoch(last) + 25 * 60 + look) for look in range(5)]
    assert looks == [[1], [], [], [], []]
    summary = (
        f"{head(config, conn, 1)}Cron has not run for 25 min (last run {alerts.when_words(last)}; expected every"
        " 10 min), so new data waits unjudged: check the cron line (crontab -l) and logs/fullprocess.log."
    )
    assert told(conn) == [("late cron", "warning", "late", summary)]
    assert str(config.config_path.parent) not in summary


def test_a_cron_heartbeat_after_a_told_spell_raises_one_recovered_alert_saying_how_long_it_lasted(conn, config):
    last = beat(conn, config, seconds_ago=3 * 3600 + 20 * 60)
    assert watchdog.watch(conn, config) == [1]
    beat(conn, config, seconds_ago=0.0, actor="ann@box")  # a person's run does not end cron's silence
    assert watchdog.watch(conn, config) == []
    again = beat(conn, config)
    assert [watchdog.watch(conn, config) for _ in range(3)] == [[2], [], []]
    summary = (
        f"{head(config, conn, 2)}Cron runs again: it was silent for 3 h 20 min (no run from"
        f" {alerts.when_words(last)} to {alerts.when_words(again)})."
    )
    assert told(conn)[1] == ("cron recovered", "info", "recovered", summary)


def test_each_late_spell_is_told_and_each_is_followed_by_its_recovery(conn, config):
    for spell in range(2):
        beat(conn, config, seconds_ago=LIMIT + 60 * (spell + 1))  # each spell from its own last heartbeat
        watchdog.watch(conn, config)
        beat(conn, config)
        watchdog.watch(conn, config)
    assert [(event, key) for event, _, key, _ in told(conn)] == [
        ("late cron", "late"),
        ("cron recovered", "recovered"),
        ("late cron", "late"),
        ("cron recovered", "recovered"),
    ]


def test_the_next_cron_run_tells_a_silence_nobody_watched_and_no_late_alert_follows_it(conn, config):
    last = beat(conn, config, seconds_ago=2 * 3600)
    resumed = time.time()
    assert watchdog.note_cron_start(conn, config, now=resumed) == 1
    summary = (
        f"{head(config, conn, 1)}Cron runs again: it was silent for 2 h (no run from {alerts.when_words(last)} to"
        f" {alerts.when_words(history.utc_now(resumed))})."
    )
    assert told(conn) == [("cron recovered", "info", "recovered", summary)]
    assert watchdog.watch(conn, config) == []  # a look before the run's heartbeat: that spell is over
    assert watchdog.note_cron_start(conn, config, now=resumed) is None  # told once


def test_a_clock_set_back_is_no_recovery(conn, config):
    last = beat(conn, config)
    assert watchdog.watch(conn, config, now=watchdog.epoch(last) + LIMIT + 1) == [1]
    assert watchdog.watch(conn, config, now=watchdog.epoch(last) + 60) == []  # not late, but cron has not run
    assert [event for event, *_ in told(conn)] == ["late cron"]


def test_a_cron_run_on_time_or_the_first_one_tells_nothing(conn, config):
    assert watchdog.note_cron_start(conn, config) is None  # no heartbeat of cron's yet
    beat(conn, config, seconds_ago=LIMIT - 60)
    assert (watchdog.note_cron_start(conn, config), watchdog.watch(conn, config), told(conn)) == (None, [], [])


# --- the service: a thread per worker, nobody calling -----------------------------------------------------


class Clock:
    """Epoch seconds a test moves on; the watchdogs read it."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_two_workers_with_nobody_calling_tell_a_stopped_cron_once_and_its_return_once(config, conn, webhook):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    clock = Clock()
    last = watchdog.epoch(beat(conn, config))
    workers = [Watchdog(config, period=0.02, clock=clock) for _ in range(2)]  # two gunicorn workers' watchdogs
    for worker in workers:
        worker.start()
    try:
        clock.now = last + LIMIT - 1  # cron stopped: not late yet
        time.sleep(0.3)
        assert webhook.bodies == []
        clock.now = last + LIMIT + 1  # it crosses the limit: told within a look (a minute in service)
        wait_for(lambda: webhook.bodies)
        time.sleep(0.3)  # fifteen more looks by each worker
        assert [body["event"] for body in webhook.bodies] == ["late cron"]
        beat(conn, config, at=clock.now)  # cron runs again, at the watchdogs' time
        clock.now += 60
        wait_for(lambda: len(webhook.bodies) > 1)
        time.sleep(0.3)
    finally:
        for worker in workers:
            worker.stop()
    assert [body["event"] for body in webhook.bodies] == ["late cron", "cron recovered"]
    assert watchdog.WATCH_SECONDS == 60 and all(worker.thread.name == "cron-watchdog" for worker in workers)


def test_a_watchdog_without_a_webhook_or_a_history_does_nothing(config):
    quiet = Watchdog(config)
    quiet.start()
    assert (quiet.thread, quiet.look(), config.history_path.exists()) == (None, [], False)


@pytest.mark.slow
def test_gunicorn_with_nobody_calling_raises_one_late_alert_across_its_workers(config, tmp_path, webhook):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    with history.opened(config.history_path) as conn:
        beat(conn, config, seconds_ago=LIMIT + 600)
    with gunicorn(config.config_path, tmp_path / "gunicorn.log", "--workers", "2"):
        wait_for(lambda: webhook.bodies, seconds=30)  # each worker looks as it starts, then once a minute
        time.sleep(1.0)
    assert [body["event"] for body in webhook.bodies] == ["late cron"]
    with sqlite3.connect(config.history_path) as db:
        assert db.execute("SELECT COUNT(*) FROM alerts").fetchone() == (1,)


# --- the next cron run, with no service ----------------------------------------------------------------


@pytest.mark.slow
def test_the_next_cron_run_says_how_long_cron_was_silent_and_a_persons_run_does_not(config, webhook):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    (config.input_folder_path / "dataset1.csv").unlink()
    (config.input_folder_path / "dataset2.csv").unlink()  # nothing to bootstrap from: a short failed run
    with history.opened(config.history_path) as conn:
        beat(conn, config, seconds_ago=5 * 3600 + 60)
    assert run_script("fullprocess.py", config.config_path, env={"RISK_ACTOR": "ann@box"}).returncode == 1
    assert "cron recovered" not in [body["event"] for body in webhook.bodies]
    assert run_script("fullprocess.py", config.config_path, env={"RISK_ACTOR": "cron"}).returncode == 1
    (recovered,) = [body for body in webhook.bodies if body["event"] == "cron recovered"]
    assert "Cron runs again: it was silent for 5 h 1 min (no run from " in recovered["summary"]
    assert recovered["text"].endswith(" — http://127.0.0.1:8000/")
