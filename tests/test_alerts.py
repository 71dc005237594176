"""Webhook alerts against a real local HTTP server: delivery, retries, the time budget, the late-cron rule,
and the migration that adds the alerts table."""

import calendar
import inspect
import json
import os
import sqlite3
import time

import pytest
from conftest import hang, run_script, set_config, trickle

import fullprocess
from risk import alerts, history

CONFIG = "/srv/risk/config.json"


@pytest.fixture
def conn(tmp_path):
    with history.opened(tmp_path / "history.db") as conn:
        yield conn


def raise_drift(conn, number: int = 1) -> int:
    return alerts.raise_alert(
        conn,
        "drift",
        "warning",
        f"drift {number} in lastmonth_activity",
        details={"feature": "lastmonth_activity", "p_value": 0.001},
        link="http://127.0.0.1:8000/report",
    )


def rows(conn) -> list[dict]:
    return history.select(conn, "SELECT id, attempts, delivered_at IS NOT NULL AS delivered FROM alerts ORDER BY id")


def epoch(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + int(stamp[20:23]) / 1000


# --- pure functions --------------------------------------------------------------------------


def test_message_puts_one_line_of_text_first_for_slack_and_teams():
    alert = {
        "id": 7,
        "created_at": "2026-11-27T18:30:01.123Z",
        "event": "failed run",
        "severity": "critical",
        "summary": "scoring failed:\nno model",
        "details": {"exit_code": 1},
        "link": None,
    }
    assert alerts.message(alert) == {
        "text": "[CRITICAL] scoring failed: no model",
        "id": 7,
        "created_at": "2026-11-27T18:30:01.123Z",
        "event": "failed run",
        "severity": "critical",
        "summary": "scoring failed:\nno model",
        "details": {"exit_code": 1},
        "link": None,
    }
    assert list(alerts.message(alert))[0] == "text"


@pytest.mark.parametrize(
    ("event", "severity", "match"),
    [("flood", "info", "alert event must be one of drift, "), ("drift", "fatal", "alert severity must be one of")],
)
def test_an_unknown_event_or_severity_is_refused(conn, event, severity, match):
    with pytest.raises(ValueError, match=match):
        alerts.raise_alert(conn, event, severity, "x")
    assert rows(conn) == []


def test_a_dedupe_key_records_one_alert(conn):
    first = alerts.raise_alert(conn, "late cron", "warning", "late", dedupe_key="late:/c:t1")
    second = alerts.raise_alert(conn, "late cron", "warning", "late again", dedupe_key="late:/c:t1")
    assert (first, second) == (1, None)
    assert [row["summary"] for row in history.select(conn, "SELECT summary FROM alerts")] == ["late"]


# --- delivery to a real server ---------------------------------------------------------------


def test_a_delivered_alert_reaches_the_server_as_json_and_is_marked_delivered(conn, webhook):
    webhook.start()
    alert_id = raise_drift(conn)
    assert alerts.deliver_pending(conn, webhook.url) == {"delivered": 1, "pending": 0, "errors": [], "given_up": []}
    row = history.select_one(conn, "SELECT * FROM alerts WHERE id = ?", (alert_id,))
    assert webhook.bodies == [
        {
            "text": "[WARNING] drift 1 in lastmonth_activity — http://127.0.0.1:8000/report",
            "id": alert_id,
            "event": "drift",
            "severity": "warning",
            "summary": "drift 1 in lastmonth_activity",
            "details": {"feature": "lastmonth_activity", "p_value": 0.001},
            "link": "http://127.0.0.1:8000/report",
            "created_at": row["created_at"],
        }
    ]
    assert (row["attempts"], row["last_error"], row["delivered_at"] is not None) == (1, None, True)
    assert alerts.deliver_pending(conn, webhook.url)["delivered"] == 0  # not sent twice


def test_a_down_server_leaves_alerts_pending_then_delivers_them_in_order(conn, webhook):
    ids = [raise_drift(conn, number) for number in range(1, 4)]
    sleeps = []
    started = time.monotonic()
    result = alerts.deliver_pending(conn, webhook.url, sleep=sleeps.append)
    assert time.monotonic() - started < 1.0
    assert sleeps == [0.5, 1.0, 2.0]  # 4 tries of the oldest; the others wait behind it
    assert (result["delivered"], result["pending"], [error["id"] for error in result["errors"]]) == (0, 3, [1])
    assert "ConnectionRefusedError" in result["errors"][0]["error"]
    assert rows(conn) == [
        {"id": 1, "attempts": 4, "delivered": 0},
        {"id": 2, "attempts": 0, "delivered": 0},
        {"id": 3, "attempts": 0, "delivered": 0},
    ]
    assert "Connection refused" in history.select_one(conn, "SELECT last_error FROM alerts WHERE id = 1")["last_error"]

    webhook.start()
    assert alerts.deliver_pending(conn, webhook.url, sleep=sleeps.append) == {
        "delivered": 3,
        "pending": 0,
        "errors": [],
        "given_up": [],
    }
    assert [body["id"] for body in webhook.bodies] == ids
    assert rows(conn) == [
        {"id": 1, "attempts": 5, "delivered": 1},
        {"id": 2, "attempts": 1, "delivered": 1},
        {"id": 3, "attempts": 1, "delivered": 1},
    ]
    assert history.select_one(conn, "SELECT last_error FROM alerts WHERE id = 1")["last_error"] is None


def test_the_defaults_are_a_2_s_timeout_3_retries_with_backoff_and_a_6_s_budget():
    defaults = {
        name: parameter.default for name, parameter in inspect.signature(alerts.deliver_pending).parameters.items()
    }
    assert {key: defaults[key] for key in ("timeout", "retries", "backoff", "budget_seconds")} == {
        "timeout": 2.0,
        "retries": 3,
        "backoff": 0.5,
        "budget_seconds": 6.0,
    }


def test_a_down_server_costs_at_most_a_few_seconds_in_real_time(conn, webhook):
    for number in range(1, 4):
        raise_drift(conn, number)
    started = time.monotonic()
    result = alerts.deliver_pending(conn, webhook.url)  # the defaults: 2 s timeout, 3 retries, 6 s budget
    elapsed = time.monotonic() - started
    assert 3.5 <= elapsed < 4.5  # the backoff of the oldest alert, 0.5 + 1 + 2 s, then the call gives up
    assert (result["delivered"], result["pending"]) == (0, 3)


def test_the_budget_cuts_the_backoff_short(conn, webhook):
    raise_drift(conn)
    sleeps = []
    result = alerts.deliver_pending(conn, webhook.url, retries=10, backoff=1.0, sleep=sleeps.append, budget_seconds=6)
    assert sleeps == [1.0, 2.0]  # a wait of 4 s would leave no time to try again within 6 s
    assert (result["pending"], rows(conn)) == (1, [{"id": 1, "attempts": 3, "delivered": 0}])


def test_a_slow_server_is_given_up_within_the_budget(conn, webhook):
    webhook.delay = 5.0
    webhook.start()
    raise_drift(conn)
    started = time.monotonic()
    result = alerts.deliver_pending(conn, webhook.url, timeout=0.3, backoff=0.1, budget_seconds=1.0)
    assert time.monotonic() - started < 1.3
    assert (result["delivered"], result["pending"]) == (0, 1)
    assert result["errors"][0]["error"] == "no answer within 0.3 s (timed out waiting for its answer)"
    assert history.select_one(conn, "SELECT delivered_at FROM alerts")["delivered_at"] is None
    assert len(webhook.bodies) == 1  # it went out whole: not sent again in the same call


def test_a_500_is_retried_then_left_pending_and_a_later_200_delivers(conn, webhook):
    webhook.status = 500
    webhook.start()
    raise_drift(conn)
    sleeps = []
    result = alerts.deliver_pending(conn, webhook.url, sleep=sleeps.append)
    assert result == {
        "delivered": 0,
        "pending": 1,
        "errors": [{"id": 1, "error": "HTTP 500 Internal Server Error"}],
        "given_up": [],
    }
    assert (len(webhook.bodies), sleeps) == (4, [0.5, 1.0, 2.0])
    webhook.status = 200
    assert alerts.deliver_pending(conn, webhook.url, sleep=sleeps.append)["delivered"] == 1
    assert rows(conn) == [{"id": 1, "attempts": 5, "delivered": 1}]


def test_a_500_then_a_200_delivers_on_the_retry(conn, webhook):
    webhook.statuses = [500]
    webhook.start()
    raise_drift(conn)
    sleeps = []
    assert alerts.deliver_pending(conn, webhook.url, sleep=sleeps.append)["delivered"] == 1
    assert (sleeps, rows(conn)) == ([0.5], [{"id": 1, "attempts": 2, "delivered": 1}])


@pytest.mark.parametrize(
    ("status", "delivered", "error"),
    [
        (200, 2, None),
        (201, 2, None),
        (204, 2, None),
        (302, 0, "HTTP 302 Found"),  # not followed: urllib would resend the POST as a GET
        (400, 0, "HTTP 400 Bad Request"),
        (404, 0, "HTTP 404 Not Found"),
    ],
)
def test_only_a_2xx_delivers_and_a_3xx_or_4xx_is_given_up_at_once(conn, webhook, status, delivered, error):
    webhook.status = status
    webhook.start()
    raise_drift(conn, 1)
    raise_drift(conn, 2)
    sleeps = []
    result = alerts.deliver_pending(conn, webhook.url, sleep=sleeps.append)
    errors = [] if error is None else [{"id": 1, "error": error}, {"id": 2, "error": error}]
    given_up = [{**item, "event": "drift", "attempts": 1} for item in errors]
    assert result == {"delivered": delivered, "pending": 0, "errors": errors, "given_up": given_up}
    assert ([body["id"] for body in webhook.bodies], sleeps) == ([1, 2], [])
    assert alerts.deliver_pending(conn, webhook.url)["delivered"] == 0 and len(webhook.bodies) == 2  # never again


SLOW_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40


@pytest.mark.parametrize(
    "behaviour, delivered, error",
    [
        (trickle(SLOW_200, 0.2), 0, "no answer within 1 s (timed out waiting for its answer)"),  # 10 s in all
        (trickle(b"HTTP/1.1 200 OK\r\n" + SLOW_200[17:], 0), 1, None),  # its status at once: delivered
        (lambda connection, stopping: connection.sendall(b"HTTP/1.1 200 OK\r\n") or stopping.wait(60), 1, None),
        (hang, 0, "no answer within 1 s (timed out waiting for its answer)"),
        (lambda connection, stopping: None, 0, "ConnectionError: the webhook closed the connection without answering"),
        (
            trickle(b"SSH-2.0-OpenSSH\r\n", 0),
            0,
            "ValueError: the webhook's answer does not begin with an HTTP status line",
        ),
        (trickle(b"HTTP/1.1 100 Continue\r\n\r\n" + SLOW_200, 0), 1, None),  # an interim answer first (RFC 9110)
        (
            trickle(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n", 0),
            0,
            "HTTP 404 Not Found",
        ),
        (
            trickle(b"HTTP/1.1 100 Continue\r\n\r\n" * 6, 0),
            0,
            "ValueError: the webhook sent more than 5 interim answers and no final one",
        ),
    ],
)
def test_a_delivery_ends_within_its_deadline_whatever_the_webhook_does_and_is_never_sent_twice(
    conn, misbehaving, behaviour, delivered, error
):
    server = misbehaving(behaviour)
    raise_drift(conn)
    started = time.monotonic()
    result = alerts.deliver_pending(conn, server.url, timeout=1.0, budget_seconds=3.0)
    assert time.monotonic() - started < 1.5  # one try of at most 1 s in all: no retry of a request that went out
    assert (result["delivered"], server.requests) == (delivered, 1)
    assert result["errors"] == ([] if error is None else [{"id": 1, "error": error}])


def test_a_webhook_slow_to_connect_is_cut_off_by_the_total_deadline(conn, monkeypatch):
    """A name the resolver takes for ever to resolve costs the deadline, not the resolver's own time."""
    import socket as socket_module

    real = socket_module.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "webhook.invalid" and not kwargs.get("flags", 0) & socket_module.AI_NUMERICHOST:
            time.sleep(5)  # a resolver that does not answer in time (and no network is asked)
            raise socket_module.gaierror(socket_module.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # asked only whether it is an address: at once

    monkeypatch.setattr(socket_module, "getaddrinfo", slow)
    raise_drift(conn)
    started = time.monotonic()
    result = alerts.deliver_pending(conn, "http://webhook.invalid/hook", timeout=0.5, retries=0, budget_seconds=1.0)
    assert time.monotonic() - started < 1.0
    assert result["errors"] == [{"id": 1, "error": "no answer within 0.5 s (timed out connecting and sending)"}]


def test_an_alert_tried_the_maximum_number_of_times_is_given_up_and_said_so(conn, webhook):
    webhook.status = 503
    webhook.start()
    raise_drift(conn)
    with conn:
        conn.execute("UPDATE alerts SET attempts = ?", (alerts.MAX_ATTEMPTS - 2,))
    result = alerts.deliver_pending(conn, webhook.url, sleep=lambda seconds: None)
    given_up = {"id": 1, "event": "drift", "attempts": alerts.MAX_ATTEMPTS, "error": "HTTP 503 Service Unavailable"}
    assert (result["pending"], result["given_up"], len(webhook.bodies)) == (0, [given_up], 2)
    assert alerts.describe(result) == [
        f"alert 1 (drift) is undeliverable after {alerts.MAX_ATTEMPTS} tries: HTTP 503 Service Unavailable;"
        " it is not sent again"
    ]
    assert history.select_one(conn, "SELECT given_up_at IS NOT NULL AS given_up FROM alerts")["given_up"] == 1
    assert alerts.deliver_pending(conn, webhook.url)["delivered"] == 0 and len(webhook.bodies) == 2


def test_no_url_sends_nothing_and_keeps_alerts_pending(conn, webhook):
    webhook.start()
    raise_drift(conn)
    assert alerts.deliver_pending(conn, None) == {"delivered": 0, "pending": 1, "errors": [], "given_up": []}
    assert (webhook.bodies, rows(conn)) == ([], [{"id": 1, "attempts": 0, "delivered": 0}])


# --- the late-cron rule ----------------------------------------------------------------------


def finished_run(conn) -> tuple[int, str]:
    """A finished run of CONFIG, with its heartbeat; its id and the heartbeat's time."""
    run_id = history.start_run(conn, CONFIG, "cron", "new data", None)
    history.finish_run(conn, run_id, {"decision": "no drift", "exit_code": 0})
    return run_id, history.select_one(conn, "SELECT checked_at FROM heartbeats WHERE actor = 'cron'")["checked_at"]


def test_a_fresh_heartbeat_is_not_late(conn):
    run_id, checked_at = finished_run(conn)
    state = alerts.check_late(conn, CONFIG, 10, now=epoch(checked_at) + 19 * 60)
    finished_at = history.select_one(conn, "SELECT finished_at FROM runs")["finished_at"]
    assert state == {
        "config_path": CONFIG,
        "expected_interval_minutes": 10,
        "heartbeat": {"checked_at": checked_at, "outcome": "no drift", "run_id": run_id},
        "seconds_since_heartbeat": 1140.0,
        "late": False,
        "last_run": {"id": run_id, "decision": "no drift", "exit_code": 0, "finished_at": finished_at},
        "by_hand": None,
    }


@pytest.mark.parametrize("seconds, late", [(1200.0, False), (1200.001, True)])
def test_late_means_no_heartbeat_within_twice_the_expected_interval(conn, seconds, late):
    _, checked_at = finished_run(conn)
    assert alerts.check_late(conn, CONFIG, 10, now=epoch(checked_at) + seconds)["late"] is late  # 2 x 10 min


def test_without_any_heartbeat_lateness_is_unknown(conn):
    state = alerts.check_late(conn, CONFIG, 10, now=time.time() + 86400)
    assert (state["late"], state["heartbeat"], state["seconds_since_heartbeat"], state["last_run"]) == (
        None,
        None,
        None,
        None,
    )


def test_another_configs_heartbeat_does_not_count(conn):
    history.beat(conn, "/other/config.json", "no new data", "cron")
    assert alerts.check_late(conn, CONFIG, 10)["late"] is None


def test_a_run_by_hand_is_not_crons_heartbeat_and_is_given_apart_with_who_ran_it(conn):
    history.beat(conn, CONFIG, "no new data", "ann@box")
    (by_hand,) = history.select(conn, "SELECT actor, checked_at, outcome, run_id FROM heartbeats")
    state = alerts.check_late(conn, CONFIG, 10, now=epoch(by_hand["checked_at"]) + 60)
    assert (state["heartbeat"], state["late"], state["by_hand"]) == (None, None, by_hand)
    time.sleep(0.002)
    _, checked_at = finished_run(conn)  # cron's run
    history.beat(conn, CONFIG, "no new data", "bob@box")
    state = alerts.check_late(conn, CONFIG, 10, now=epoch(checked_at) + 21 * 60)
    assert (state["heartbeat"]["checked_at"], state["late"], state["by_hand"]["actor"]) == (checked_at, True, "bob@box")


# --- the migration ---------------------------------------------------------------------------


def test_a_version_1_database_migrates_to_the_alerts_table_and_keeps_its_rows(tmp_path):
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    old.executescript(history.MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.execute(
        "INSERT INTO runs (started_at, config_path, actor, trigger) VALUES (?, ?, 'cron', 'new data')",
        ("2026-01-01T00:00:00.000Z", CONFIG),
    )
    old.execute("INSERT INTO heartbeats VALUES (?, '2026-01-01T00:00:01.000Z', 'no new data', 1)", (CONFIG,))
    old.commit()
    old.close()
    with history.opened(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
        assert history.select(conn, "SELECT id, config_path FROM runs") == [{"id": 1, "config_path": CONFIG}]
        assert alerts.check_late(conn, CONFIG, 10, now=epoch("2026-01-01T00:00:01.000Z") + 3600)["late"] is True
        assert alerts.raise_alert(conn, "cron recovered", "info", "cron runs again") == 1
        migrated = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    with history.opened(tmp_path / "fresh.db") as conn:
        assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == migrated


# --- what the full process and deployment.py raise ----------------------------------------------------------


def raised(conn) -> list[tuple]:
    return [
        (row["event"], row["severity"], row["summary"], row["link"], row["run_id"])
        for row in history.select(conn, "SELECT * FROM alerts ORDER BY id")
    ]


def head(config, conn, alert_id: int = 1) -> str:
    """How an alert's summary begins: the system's name and when, for people."""
    created_at = history.select_one(conn, "SELECT created_at FROM alerts WHERE id = ?", (alert_id,))["created_at"]
    return f"{config.system_name}, {alerts.when_words(created_at)}: "


@pytest.mark.parametrize(
    "stamp, words",
    [("2026-12-02T05:10:59.999Z", "2 Dec 2026 05:10 UTC"), ("2027-01-31T23:00:00.000Z", "31 Jan 2027 23:00 UTC")],
)
def test_times_are_written_for_people_in_utc(stamp, words):
    assert alerts.when_words(stamp) == words


@pytest.mark.parametrize(
    "seconds, words",
    [
        (40.9, "41 s"),
        (25 * 60 + 59, "26 min"),
        (176.4, "3 min"),  # rounded, not cut: 2 min 56 s is 3 min
        (3 * 3600 + 20 * 60, "3 h 20 min"),
        (7200, "2 h"),
        (51 * 3600, "2 days 3 h"),
    ],
)
def test_durations_are_written_for_people(seconds, words):
    assert alerts.duration_words(seconds) == words


def test_a_long_summary_is_cut_to_400_characters_keeping_its_link_whole():
    alert = {"id": 1, "event": "drift", "severity": "warning", "summary": "word " * 200, "details": {}}
    alert.update(link="http://127.0.0.1:8000/", created_at="2026-12-02T05:10:00.000Z")
    text = alerts.message(alert)["text"]
    assert len(text) == alerts.MAX_TEXT
    assert text.startswith("[WARNING] word word") and text.endswith("word… — http://127.0.0.1:8000/")


SHIFT = {"kind": "data drift", "feature": "lastmonth_activity", "detail": "lastmonth_activity: KS 0.41 -> drift"}
DROP = {"kind": "performance", "feature": None, "value": 0.39, "reference": 0.79, "n": 10000, "detail": "F1 0.39"}
EXITS = {"kind": "exit rate", "feature": None, "value": 0.39, "reference": 0.23, "n": 10000, "detail": "exit rate"}


def test_what_drift_found_is_said_in_a_few_words_each_feature_once():
    found = alerts.found_words([DROP, SHIFT, {**SHIFT, "detail": "another test"}, EXITS])
    assert found == "F1 0.39 on 10,000 rows vs 0.79 expected; lastmonth_activity shifted; exit rate 39% vs 23%"


HEALTH = (
    "The risk list comes from a model that scored F1 0.39 on the latest data (10,000 clients), below its"
    " expected 0.79: treat it with care."
)


@pytest.mark.parametrize(
    "run, code, expected",
    [
        (  # drift fixed in the same run: one message
            {"decision": "drift: re-trained and re-deployed", "drift": [DROP, SHIFT], "steps": {"deployment": 1}},
            0,
            (
                "drift",
                "warning",
                "Run 1 found drift (F1 0.39 on 10,000 rows vs 0.79 expected; lastmonth_activity shifted) and"
                " deployed a better model.",
            ),
        ),
        (
            {
                "decision": "drift, no better model: the live model stays (degraded)",
                "drift": [DROP],
                "newly_degraded": True,
                "steps": {},
            },
            3,
            (
                "no better model",
                "warning",
                "Run 1 found drift (F1 0.39 on 10,000 rows vs 0.79 expected); no better model was found, so the"
                " live model stays.",
            ),
        ),
        (  # still degraded: the search goes on, people were told when it began
            {"decision": "drift, no better model: the live model stays (degraded)", "steps": {}},
            3,
            None,
        ),
        (
            {"decision": "failed: step scoring failed: no model", "steps": {"ingestion": 1}},
            1,
            ("failed run", "critical", "Run 1 failed: step scoring failed: no model."),
        ),
        (  # two bad files: their names, not their reasons (the dashboard has them)
            {
                "decision": "rejected: a.csv lacks columns corporation, lastmonth_activity, lastyear_activity,"
                " number_of_employees, exited; b.csv lacks columns corporation, lastmonth_activity,"
                " lastyear_activity, number_of_employees, exited",
                "new_files": ["a.csv", "b.csv"],
                "steps": {"ingestion": 1},
            },
            1,
            ("failed run", "critical", "Run 1 failed: every new file was rejected (a.csv, b.csv)."),
        ),
        (
            {"decision": "bootstrap", "steps": {"deployment": 1}},
            2,
            ("deployment", "info", "Run 1 deployed a better model."),
        ),
        ({"decision": "no drift: the live model stays", "steps": {"ingestion": 1}}, 0, None),
    ],
)
def test_the_full_process_raises_one_alert_per_run_saying_what_is_live_and_its_health(
    conn, config, monkeypatch, run, code, expected
):
    from risk import overview

    monkeypatch.setattr(overview, "live_state", lambda conn, config: {"release": "r2", "health": {"words": HEALTH}})
    run_id = history.start_run(conn, CONFIG, "cron", "new data", "r1")
    record = fullprocess.Run(run_id, "new data", run.pop("new_files", []), release_after="r2", **run)
    fullprocess.raise_alerts(conn, config, record, code)
    if expected is None:
        assert raised(conn) == []
        return
    event, severity, text = expected
    summary = f"{head(config, conn)}{text} Live now: release r2. {HEALTH}"
    assert raised(conn) == [(event, severity, summary, "http://127.0.0.1:8000/", run_id)]
    assert len(alerts.message(history.select_one(conn, "SELECT * FROM alerts"))["text"]) <= alerts.MAX_TEXT


def retrain_and_deploy(config) -> str:
    import pandas as pd

    import deployment
    import training

    path = config.output_folder_path / "finaldata.csv"
    finaldata = pd.read_csv(path)
    finaldata.assign(exited=1 - finaldata["exited"]).to_csv(path, index=False)
    training.train(config)
    return deployment.deploy(config).name


def test_a_rollback_by_hand_is_alerted_at_once_with_the_health_of_the_model_now_live(
    trained_project, config, webhook, monkeypatch
):
    import deployment

    webhook.start()
    monkeypatch.setenv("RISK_ACTOR", "ann@box")
    first = config.prod_deployment_path.resolve().name
    config = set_config(config, alert_webhook_url=webhook.url)
    second = retrain_and_deploy(config)
    deployment.rollback(config)
    body = webhook.bodies[-1]
    expected = (
        f"ann@box moved production to release {first} (was {second}). Live now: release {first}. The risk list"
        " comes from a model not measured on new data yet (its validation promises F1 "
    )
    assert (body["event"], body["severity"]) == ("rollback", "warning")
    assert body["summary"].startswith(f"{config.system_name}, {alerts.when_words(body['created_at'])}: {expected}")
    assert body["details"]["health"]["verdict"] == "unproven" and body["link"] == "http://127.0.0.1:8000/"


def test_a_deployment_by_hand_is_alerted(trained_project, config, webhook, monkeypatch):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    monkeypatch.setenv("RISK_ACTOR", "ann@box")
    release = retrain_and_deploy(config)
    (body,) = webhook.bodies
    assert (body["event"], body["severity"]) == ("deployment", "info")
    assert body["summary"].startswith(
        f"{config.system_name}, {alerts.when_words(body['created_at'])}: ann@box deployed release {release} by hand."
        f" Live now: release {release}. The risk list comes from a model not measured on new data yet"
    )


@pytest.mark.slow
def test_a_failed_runs_record_and_alert_name_files_never_where_the_server_keeps_them(config, webhook):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    (config.test_data_path / "testdata.csv").unlink()  # the bootstrap fails at scoring, naming the file
    result = run_script("fullprocess.py", config.config_path)
    assert result.returncode == 1
    failure = "step scoring failed: test data file testdata/testdata.csv does not exist (config key test_data_path)"
    with history.opened(config.history_path) as conn:
        assert history.recent_runs(conn, 1)[0]["decision"] == f"failed: {failure}"
    (body,) = webhook.bodies
    when = alerts.when_words(body["created_at"])
    assert body["summary"] == f"{config.system_name}, {when}: Run 1 failed: {failure}. Nothing is live yet."
    assert str(config.config_path.parent) not in config.log_path.read_text() + json.dumps(webhook.bodies)


def test_one_process_delivers_at_a_time_so_no_alert_goes_out_twice(conn, webhook):
    from risk import artifacts

    webhook.start()
    history.start_run(conn, CONFIG, "cron", "new data", "r1")
    alerts.raise_alert(conn, "drift", "warning", "drift: F1 0.00 -> drift", {}, "http://127.0.0.1:8000/", run_id=1)
    database = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
    holder = artifacts.acquire_lock(f"{database}.alerts.lock")  # another process (a worker, cron) delivering
    try:
        result = alerts.deliver_pending(conn, webhook.url)
    finally:
        os.close(holder)
    assert (result["delivered"], result["pending"], webhook.bodies) == (0, 1, [])
    assert alerts.deliver_pending(conn, webhook.url)["delivered"] == 1 and len(webhook.bodies) == 1
