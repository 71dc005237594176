"""Webhook alerts: recorded in the history's `alerts` table, then POSTed to a Slack or Teams webhook.

Undelivered alerts (no URL, webhook down, slow or non-2xx) stay pending for the next deliver_pending,
oldest first, at least once. check_late gives /health the heartbeat's age and raises one 'late cron'
alert per missed heartbeat. Standard library; only `time` at import (urllib and json load on first use).
"""

import time

from risk import history

EVENTS = ("drift", "deployment", "rollback", "no better model", "failed run", "late cron")
SEVERITIES = ("info", "warning", "critical")
MIN_ATTEMPT_SECONDS = 0.1  # an attempt with less time than this left would only record a spurious timeout
LATE_FACTOR = 2  # late: no heartbeat within LATE_FACTOR expected intervals
USER_AGENT = "dynamic-risk-assessment-alerts"
_opener = None


def message(alert: dict) -> dict:
    """The JSON body POSTed for an alert (a row of the alerts table, `details` decoded).

    Slack and Teams incoming webhooks show the top-level `text` and ignore the other keys, which
    carry the alert for any other receiver; `id` lets a receiver drop a repeated delivery.
    """
    text = f"[{alert['severity'].upper()}] {' '.join(alert['summary'].split())}"
    if alert["link"]:
        text += f" — {alert['link']}"
    return {
        "text": text,
        "id": alert["id"],
        "event": alert["event"],
        "severity": alert["severity"],
        "summary": alert["summary"],
        "details": alert["details"],
        "link": alert["link"],
        "created_at": alert["created_at"],
    }


def raise_alert(
    conn,
    event: str,
    severity: str,
    summary: str,
    details: dict | None = None,
    link: str | None = None,
    run_id: int | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Record an alert (one transaction) and return its id; None when `dedupe_key` was already recorded.

    Raises ValueError for an event or severity the table does not allow. Nothing is sent: see deliver_pending.
    """
    if event not in EVENTS:
        raise ValueError(f"alert event must be one of {', '.join(EVENTS)}, got {event!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"alert severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    row = history.encode(
        {
            "created_at": history.utc_now(),
            "event": event,
            "severity": severity,
            "summary": summary,
            "details": details or {},
            "link": link,
            "run_id": run_id,
            "dedupe_key": dedupe_key,
        }
    )
    # ON CONFLICT names the one constraint to forgive; INSERT OR IGNORE would also skip CHECK failures.
    sql = (
        f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})"
        " ON CONFLICT (dedupe_key) DO NOTHING"
    )
    with conn:
        cursor = conn.execute(sql, list(row.values()))
    return cursor.lastrowid if cursor.rowcount == 1 else None


def pending_alerts(conn) -> list[dict]:
    """Undelivered alerts, oldest first."""
    return history.select(conn, "SELECT * FROM alerts WHERE delivered_at IS NULL ORDER BY id")


class Budget:
    """Seconds left of a call's budget. Time passed to `sleep` counts as slept even when a test's fake
    sleep returns at once, so a fake sleep shows what a real one would do without the wait."""

    def __init__(self, seconds: float, sleep):
        self.deadline, self.sleep, self.slept_ahead = time.monotonic() + seconds, sleep, 0.0

    def left(self) -> float:
        return self.deadline - time.monotonic() - self.slept_ahead

    def wait(self, seconds: float) -> None:
        started = time.monotonic()
        self.sleep(seconds)
        self.slept_ahead += max(0.0, seconds - (time.monotonic() - started))


def post(url: str, body: dict, timeout: float) -> str | None:
    """POST `body` as JSON; None on a 2xx answer, else one line saying what went wrong.

    Redirects are not followed (urllib would turn the POST into a GET). `timeout` bounds the connection
    and each read, as in urllib; resolving the host name is not bounded by it.
    """
    import http.client
    import json
    import urllib.error
    import urllib.request

    global _opener
    if _opener is None:

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None  # the 3xx then surfaces as an HTTPError: not delivered

        _opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return None if 200 <= response.status < 300 else f"HTTP {response.status} {response.reason}"
    except urllib.error.HTTPError as error:
        error.close()
        return f"HTTP {error.code} {error.reason}"
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError, timeouts, garbled answers
        reason = getattr(error, "reason", None) or error
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def is_transient(error: str) -> bool:
    """Worth trying again: the network, a timeout, 408, 429 or 5xx; another 3xx or 4xx will not change."""
    if not error.startswith("HTTP "):
        return True
    code = int(error.split()[1])
    return code in (408, 429) or code >= 500


def record_attempt(conn, alert_id: int, error: str | None) -> None:
    changes = {"last_error": error} if error else {"delivered_at": history.utc_now(), "last_error": None}
    with conn:
        conn.execute("UPDATE alerts SET attempts = attempts + 1 WHERE id = ?", (alert_id,))
        history.update(conn, "alerts", "id", alert_id, changes)


def deliver_one(conn, url: str, alert: dict, timeout: float, retries: int, backoff: float, budget: Budget):
    """Try one alert up to 1 + `retries` times, waiting backoff, 2 x backoff, ... between tries, within
    the budget; return None when delivered, else its last error."""
    body, error = message(alert), "not tried: time budget spent"
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            if delay + MIN_ATTEMPT_SECONDS > budget.left():
                break
            budget.wait(delay)
        if budget.left() < MIN_ATTEMPT_SECONDS:
            break
        error = post(url, body, min(timeout, budget.left()))
        record_attempt(conn, alert["id"], error)
        if error is None or not is_transient(error):
            break
    return error


def deliver_pending(
    conn,
    url: str | None,
    timeout: float = 2.0,
    retries: int = 3,
    backoff: float = 0.5,
    sleep=time.sleep,
    budget_seconds: float = 6.0,
) -> dict:
    """POST the undelivered alerts, oldest first; never raises for a webhook that is down.

    Each alert gets 1 + `retries` tries, `timeout` seconds each, with exponential backoff between them.
    No try starts, and no wait is begun, that the `budget_seconds` of the whole call cannot hold, and a
    try's timeout is cut to the time left, so the call returns within about the budget (urllib's timeout
    bounds each socket operation: a host slow both to connect and to answer can add one more timeout).
    A transient failure (network, timeout, 408, 429, 5xx) that outlasts the retries ends the call: the
    rest stay pending, so they are never sent out of order. Another 3xx or 4xx is not retried and the
    next alert is tried. Each try updates the alert's attempts,
    last_error and, on a 2xx, delivered_at, in its own transaction. With `url` None nothing is sent.
    Returns {"delivered": n, "pending": m, "errors": [{"id": alert_id, "error": one line}, ...]}.
    """
    delivered, errors = 0, []
    if url is not None:
        budget = Budget(budget_seconds, sleep)
        for alert in pending_alerts(conn):
            if budget.left() < MIN_ATTEMPT_SECONDS:
                break
            error = deliver_one(conn, url, alert, timeout, retries, backoff, budget)
            if error is None:
                delivered += 1
                continue
            errors.append({"id": alert["id"], "error": error})
            if is_transient(error):
                break
    pending = conn.execute("SELECT COUNT(*) FROM alerts WHERE delivered_at IS NULL").fetchone()[0]
    return {"delivered": delivered, "pending": pending, "errors": errors}


def check_late(
    conn, config_path: str, expected_interval_minutes: int, now: float | None = None, alert: bool = True
) -> dict:
    """The pipeline's state for /health, raising a 'late cron' alert when the heartbeat is overdue.

    `now` is epoch seconds (time.time() when None). Late means no heartbeat within LATE_FACTOR x
    `expected_interval_minutes` of `now`. With no heartbeat ever recorded, `late` is None (unknown): a
    fresh install has nothing to be late from, and its first cron run writes one. One alert is raised per
    missed heartbeat (dedupe key `late:<config_path>:<checked_at>`), however often this is called;
    `alert_id` is the alert this call raised, else None; `alert=False` (no webhook configured) raises none.
    `conn` must be writable when the heartbeat may be late. Times in the database are parsed by SQLite.
    """
    now = time.time() if now is None else float(now)
    beat = history.select_one(
        conn,
        "SELECT checked_at, outcome, run_id, (julianday(checked_at) - 2440587.5) * 86400.0 AS epoch"
        " FROM heartbeats WHERE config_path = ?",
        (config_path,),
    )
    last_run = history.select_one(
        conn,
        "SELECT id, decision, exit_code, finished_at FROM runs WHERE config_path = ? AND state = 'finished'"
        " ORDER BY id DESC LIMIT 1",
        (config_path,),
    )
    state = {
        "config_path": config_path,
        "expected_interval_minutes": expected_interval_minutes,
        "heartbeat": None,
        "seconds_since_heartbeat": None,
        "late": None,
        "last_run": last_run,
        "alert_id": None,
    }
    if beat is None:
        return state
    epoch = beat.pop("epoch")
    age = round(now - epoch, 3)
    late = age > LATE_FACTOR * expected_interval_minutes * 60
    state.update(heartbeat=beat, seconds_since_heartbeat=age, late=late)
    if late and alert:
        state["alert_id"] = raise_alert(
            conn,
            "late cron",
            "warning",
            f"no cron heartbeat for {config_path} since {beat['checked_at']} ({age / 60:.0f} min;"
            f" expected every {expected_interval_minutes} min)",
            details={key: state[key] for key in ("heartbeat", "seconds_since_heartbeat", "last_run")},
            run_id=beat["run_id"],
            dedupe_key=f"late:{config_path}:{beat['checked_at']}",
        )
    return state
