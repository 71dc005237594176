"""Webhook alerts: recorded in the history's `alerts` table, then POSTed to a Slack or Teams webhook.

Undelivered alerts (no URL, webhook down, slow or a 5xx) stay pending for the next deliver_pending,
oldest first, at least once, up to MAX_ATTEMPTS tries; one the webhook refuses for good (a redirect,
a 4xx) is given up at once. Every delivery has one deadline in all, whatever the webhook does.
check_late gives /health and the dashboard cron's heartbeat and its age (risk.watchdog alerts a late spell).
Standard library only.
"""

import json
import os
import socket
import ssl
import threading
import time
import urllib.parse

from risk import artifacts, history
from risk.config import CRON_ACTOR, Config
from risk.logs import log_text, one_line

EVENTS = (
    "drift",
    "deployment",
    "rollback",
    "no better model",
    "failed run",
    "late cron",
    "cron recovered",
    "release refused",
)
SEVERITIES = ("info", "warning", "critical")
MIN_ATTEMPT_SECONDS = 0.1  # an attempt with less time than this left would only record a spurious timeout
MAX_ATTEMPTS = 24  # tries in all (about an hour of cron runs against a webhook that is down); then given up
MAX_STATUS_LINE = 4096
MAX_INTERIM_ANSWERS = 5  # 1xx answers skipped before the final one
MAX_INTERIM_HEADERS = 50
LATE_FACTOR = 2  # late: no heartbeat within LATE_FACTOR expected intervals
USER_AGENT = "dynamic-risk-assessment-alerts"
MAX_TEXT = 400  # characters of an alert's text, its link included: read in five seconds; `details` holds the rest
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def message(alert: dict) -> dict:
    """The JSON body POSTed for an alert (a row of the alerts table, `details` decoded).

    Slack and Teams incoming webhooks show the top-level `text` and ignore the other keys, which
    carry the alert for any other receiver; `id` lets a receiver drop a repeated delivery. The text is
    at most MAX_TEXT characters, its link whole: a longer summary is cut short (`details` has the rest).
    """
    head = f"[{alert['severity'].upper()}] "
    tail = f" — {alert['link']}" if alert["link"] else ""
    text = head + clip(" ".join(alert["summary"].split()), MAX_TEXT - len(head) - len(tail)) + tail
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


def clip(text: str, limit: int) -> str:
    """`text`, or its first `limit` - 1 characters and an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def short_reason(reason: str, limit: int = 200) -> str:
    """A reason for an alert: without its parenthesis of detail (the log has it), cut to `limit` characters."""
    return clip(reason.split(" (", 1)[0], limit)


def when_words(stamp: str) -> str:
    """A time of the history (`2026-12-02T04:41:07.123Z`, UTC) for people: `2 Dec 2026 04:41 UTC`."""
    day, hour = stamp[:10], stamp[11:16]
    year, month, date = (int(part) for part in day.split("-"))
    return f"{date} {MONTHS[month - 1]} {year} {hour} UTC"


def duration_words(seconds: float) -> str:
    """How long, for people, to the nearest unit shown: `40 s`, `26 min`, `3 h 20 min`, `2 days 3 h`."""
    if seconds < 59.5:
        return f"{max(0, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")


def found_words(verdicts: list[dict]) -> str:
    """What drift verdicts (rows of the verdicts table) found, in a few words: `F1 0.39 on 10,000 rows vs
    0.79 expected; lastmonth_activity shifted; exit rate 39% vs 23%`. Their sentences go in `details`."""
    parts = [
        f"F1 {v['value']:.2f} on {v['n']:,} rows vs {v['reference']:.2f} expected"
        for v in verdicts
        if v["kind"] == "performance"
    ]
    features = sorted({v["feature"] for v in verdicts if v["kind"] == "data drift" and v["feature"]})
    if features:
        parts.append(f"{', '.join(features)} shifted")
    parts += [f"exit rate {v['value']:.0%} vs {v['reference']:.0%}" for v in verdicts if v["kind"] == "exit rate"]
    return "; ".join(parts)


def live_words(live: dict) -> str:
    """What is live now and its health verdict in words (from overview.live_state)."""
    if live["release"] is None:
        return "Nothing is live yet."
    health = live.get("health")
    return f"Live now: release {live['release']}." + (f" {health['words']}" if health else "")


def dashboard_link(config: Config) -> str:
    """Where an alert's details are: the dashboard."""
    return config.api_base_url.rstrip("/") + "/"


def announce(
    conn,
    config: Config,
    event: str,
    severity: str,
    text: str,
    details: dict | None = None,
    run_id: int | None = None,
    dedupe_key: str | None = None,
    unless_key: str | None = None,
) -> int | None:
    """Record an alert for people (raise_alert): the system's name and the time in UTC first, then `text` (a
    few sentences, written as one line with files relative to the config's folder), linking to the dashboard."""
    created_at = history.utc_now()
    summary = log_text(f"{config.system_name}, {when_words(created_at)}: {text}", config.config_path.parent)
    link = dashboard_link(config)
    return raise_alert(conn, event, severity, summary, details, link, run_id, dedupe_key, unless_key, created_at)


def raise_alert(
    conn,
    event: str,
    severity: str,
    summary: str,
    details: dict | None = None,
    link: str | None = None,
    run_id: int | None = None,
    dedupe_key: str | None = None,
    unless_key: str | None = None,
    created_at: str | None = None,
) -> int | None:
    """Record an alert (one transaction; `created_at` default now) and return its id; None when `dedupe_key`
    was already recorded, or an alert with the dedupe key `unless_key` was (checked in the same statement, so
    no other process can record that one in between).

    Raises ValueError for an event or severity the table does not allow. Nothing is sent: see deliver_pending.
    """
    if event not in EVENTS:
        raise ValueError(f"alert event must be one of {', '.join(EVENTS)}, got {event!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"alert severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    row = history.encode(
        {
            "created_at": created_at or history.utc_now(),
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
        f"INSERT INTO alerts ({', '.join(row)}) SELECT {', '.join('?' for _ in row)}"
        " WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE dedupe_key = ?) ON CONFLICT (dedupe_key) DO NOTHING"
    )
    with conn:
        cursor = conn.execute(sql, [*row.values(), unless_key])
    return cursor.lastrowid if cursor.rowcount == 1 else None


def delivery_lock(conn) -> int | None:
    """The lock of the one process delivering this database's alerts (a file beside it), or None when
    another process holds it."""
    database = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
    return artifacts.acquire_lock(f"{database}.alerts.lock")


def pending_alerts(conn) -> list[dict]:
    """Alerts neither delivered nor given up on, oldest first."""
    return history.select(conn, "SELECT * FROM alerts WHERE delivered_at IS NULL AND given_up_at IS NULL ORDER BY id")


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


def post(url: str, body: dict, seconds: float) -> tuple[str | None, bool]:
    """POST `body` as JSON to `url`, all of it within `seconds`: resolving the name, connecting, TLS,
    sending and reading the status line (a server that answers a byte a second is cut off at the
    deadline like one that never answers). Redirects are not followed; the answer's body is not read.

    Returns (None on a 2xx, else one line saying what went wrong; whether the whole request went out:
    after that the receiver may have it, so it is not sent again in the same call).
    """
    deadline = time.monotonic() + seconds
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        return (f"the webhook URL is not valid ({error})", False)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ("the webhook URL is not an http(s) URL with a host", False)
    payload = json.dumps(body).encode("utf-8")
    sock, sent = None, False
    try:
        sock = connect(parts.hostname, port, deadline)
        if parts.scheme == "https":
            sock = wrap_tls(sock, parts.hostname, deadline)
        send_all(sock, request_bytes(parts, payload), deadline)
        sent = True
        status, reason = read_status(sock, deadline)
        return (None if 200 <= status < 300 else f"HTTP {status} {reason}".rstrip(), True)
    except TimeoutError:
        stage = "waiting for its answer" if sent else "connecting and sending"
        return (f"no answer within {seconds:.3g} s (timed out {stage})", sent)
    except (OSError, ValueError) as error:  # refused, unreachable, reset, TLS, a garbled answer
        return (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, sent)
    finally:
        if sock is not None:
            sock.close()


def left(deadline: float) -> float:
    """Seconds until `deadline`; TimeoutError when it has passed."""
    seconds = deadline - time.monotonic()
    if seconds <= 0:
        raise TimeoutError("timed out")
    return seconds


def connect(host: str, port: int, deadline: float):
    """A TCP connection to `host`, its name resolved and the connection made before `deadline`."""
    error = OSError(f"no address for {host}")
    for family, kind, protocol, _, address in resolve(host, port, deadline):
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(left(deadline))
            sock.connect(address)
            return sock
        except OSError as failure:  # TimeoutError included: the next address gets what time is left
            sock.close()
            error = failure
    raise error


def resolve(host: str, port: int, deadline: float) -> list:
    """getaddrinfo within the deadline (the resolver has no timeout of its own: it runs in a thread that
    is left behind if it does not answer in time)."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass  # a name, not an address
    found: list = []

    def lookup():
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            found.append(error)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(left(deadline))
    if not found:
        raise TimeoutError("timed out")
    if isinstance(found[0], OSError):
        raise found[0]
    return found[0]


def wrap_tls(sock, host: str, deadline: float):
    """TLS over `sock`, the certificate checked against `host`; the handshake bounded by the deadline."""
    sock.settimeout(left(deadline))  # CPython bounds the whole handshake by the socket's timeout
    return ssl.create_default_context().wrap_socket(sock, server_hostname=host)


def request_bytes(parts, payload: bytes) -> bytes:
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host += f":{parts.port}" if parts.port else ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + payload


def send_all(sock, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        sock.settimeout(left(deadline))
        view = view[sock.send(view) :]


def read_status(sock, deadline: float) -> tuple[int, str]:
    """The status code and reason of an HTTP answer's final status line, read before the deadline. Interim
    answers (1xx, such as 100 Continue) are skipped with their header lines, as RFC 9110 asks of a client."""
    buffer = bytearray()
    for _ in range(MAX_INTERIM_ANSWERS + 1):
        words = read_line(sock, deadline, buffer).decode("latin-1").strip().split(" ", 2)
        if len(words) < 2 or not words[0].startswith("HTTP/") or not (words[1].isdigit() and len(words[1]) == 3):
            raise ValueError("the webhook's answer does not begin with an HTTP status line")
        code = int(words[1])
        if not 100 <= code < 200:
            return code, one_line(words[2][:80]) if len(words) > 2 else ""
        for _ in range(MAX_INTERIM_HEADERS):
            if not read_line(sock, deadline, buffer).strip():
                break
        else:
            raise ValueError(f"the webhook's interim answer {code} has more than {MAX_INTERIM_HEADERS} header lines")
    raise ValueError(f"the webhook sent more than {MAX_INTERIM_ANSWERS} interim answers and no final one")


def read_line(sock, deadline: float, buffer: bytearray) -> bytes:
    """The next line of the answer (without its end), from `buffer` and then the socket, before the deadline."""
    while b"\n" not in buffer:
        if len(buffer) > MAX_STATUS_LINE:
            raise ValueError("the webhook's answer has a line longer than an HTTP status or header line")
        sock.settimeout(left(deadline))
        chunk = sock.recv(1024)
        if not chunk:
            raise ConnectionError("the webhook closed the connection without answering")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def is_transient(error: str) -> bool:
    """Worth trying again: the network, a timeout, 408, 429 or 5xx; another 3xx or 4xx will not change."""
    if not error.startswith("HTTP "):
        return True
    code = int(error.split()[1])
    return code in (408, 429) or code >= 500


def record_attempt(conn, alert_id: int, error: str | None) -> int:
    """Count a try (delivered, or its error) in one transaction; return the alert's tries so far."""
    changes = {"last_error": error} if error else {"delivered_at": history.utc_now(), "last_error": None}
    with conn:
        conn.execute("UPDATE alerts SET attempts = attempts + 1 WHERE id = ?", (alert_id,))
        history.update(conn, "alerts", "id", alert_id, changes)
    return conn.execute("SELECT attempts FROM alerts WHERE id = ?", (alert_id,)).fetchone()[0]


def give_up(conn, alert_id: int) -> None:
    with conn:
        history.update(conn, "alerts", "id", alert_id, {"given_up_at": history.utc_now()})


def deliver_one(conn, url: str, alert: dict, timeout: float, retries: int, backoff: float, budget: Budget) -> dict:
    """Try one alert up to 1 + `retries` times, waiting backoff, 2 x backoff, ... between tries, within
    the budget. Returns {"error": None when delivered, else the last one; "stop": the call should end;
    "given_up": the alert is undeliverable}."""
    body, error = message(alert), "not tried: time budget spent"
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            if delay + MIN_ATTEMPT_SECONDS > budget.left():
                break
            budget.wait(delay)
        if budget.left() < MIN_ATTEMPT_SECONDS:
            break
        error, sent = post(url, body, min(timeout, budget.left()))
        attempts = record_attempt(conn, alert["id"], error)
        if error is None:
            return {"error": None, "stop": False, "given_up": False}
        if not is_transient(error) or attempts >= MAX_ATTEMPTS:
            give_up(conn, alert["id"])
            return {"error": error, "stop": False, "given_up": True}
        if sent and not error.startswith("HTTP "):  # it may have arrived: never twice in one call
            return {"error": error, "stop": True, "given_up": False}
    return {"error": error, "stop": True, "given_up": False}


def deliver_pending(
    conn,
    url: str | None,
    timeout: float = 2.0,
    retries: int = 3,
    backoff: float = 0.5,
    sleep=time.sleep,
    budget_seconds: float = 6.0,
) -> dict:
    """POST the alerts neither delivered nor given up on, oldest first; never raises for a webhook that
    is down, and returns within `budget_seconds` whatever the webhook does.

    Each alert gets 1 + `retries` tries with exponential backoff, each try at most `timeout` seconds in
    all (connection, request, answer) and never more than the budget has left. A failure the webhook
    may change its mind about (the network, a timeout, 408, 429, 5xx) that outlasts the retries ends
    the call: the rest stay pending, so they are never sent out of order. A request that went out whole
    but got no answer in time is not sent again in the same call (the receiver may have it: it can drop
    a repeat later by the alert's `id`). A 3xx or another 4xx will not change: the alert is given up at
    once, and so is one tried MAX_ATTEMPTS times in all; then the next is tried. Each try updates the
    alert's attempts, last_error and, on a 2xx, delivered_at, in its own transaction. One process delivers
    at a time (a lock beside the database: the full process and each API worker may all try, and no alert
    goes out twice); the others leave the pending alerts to it. With `url` None nothing is sent.
    Returns {"delivered": n, "pending": m, "errors": [{"id", "error"}, ...],
    "given_up": [{"id", "event", "attempts", "error"}, ...]}.
    """
    delivered, errors, given_up = 0, [], []
    lock = delivery_lock(conn) if url is not None else None
    if lock is not None:
        budget = Budget(budget_seconds, sleep)
        for alert in pending_alerts(conn):
            if budget.left() < MIN_ATTEMPT_SECONDS:
                break
            outcome = deliver_one(conn, url, alert, timeout, retries, backoff, budget)
            if outcome["error"] is None:
                delivered += 1
                continue
            errors.append({"id": alert["id"], "error": outcome["error"]})
            if outcome["given_up"]:
                attempts = conn.execute("SELECT attempts FROM alerts WHERE id = ?", (alert["id"],)).fetchone()[0]
                given_up.append(
                    {"id": alert["id"], "event": alert["event"], "attempts": attempts, "error": outcome["error"]}
                )
            if outcome["stop"]:
                break
        os.close(lock)
    pending = conn.execute("SELECT COUNT(*) FROM alerts WHERE delivered_at IS NULL AND given_up_at IS NULL").fetchone()[
        0
    ]
    return {"delivered": delivered, "pending": pending, "errors": errors, "given_up": given_up}


def describe(result: dict) -> list[str]:
    """deliver_pending's result as log lines: each alert given up on, and what still waits."""
    lines = [
        f"alert {item['id']} ({item['event']}) is undeliverable after {item['attempts']} tr"
        f"{'y' if item['attempts'] == 1 else 'ies'}: {item['error']}; it is not sent again"
        for item in result["given_up"]
    ]
    if result["pending"]:
        last = f" (last error: {result['errors'][-1]['error']})" if result["errors"] else ""
        lines.append(f"{result['pending']} alert(s) wait for the webhook, for the next run{last}")
    return lines


def check_late(conn, config_path: str, expected_interval_minutes: int, now: float | None = None) -> dict:
    """The pipeline's state for /health and the dashboard: cron's last heartbeat, its age, whether it is late,
    the last finished run, and the newest run by hand (risk.watchdog raises the alerts of a late spell).

    `now` is epoch seconds (time.time() when None). Late means no heartbeat of cron's (actor `cron`) within
    LATE_FACTOR x `expected_interval_minutes` of `now`: a run by hand is not cron's, and is given apart
    (`by_hand`: the newest heartbeat of a person, with who). With no heartbeat of cron's, `late` is None
    (unknown): a fresh install has nothing to be late from, and its first cron run writes one. Times in the
    database are parsed by SQLite.
    """
    now = time.time() if now is None else float(now)
    beat = history.select_one(
        conn,
        "SELECT checked_at, outcome, run_id, (julianday(checked_at) - 2440587.5) * 86400.0 AS epoch"
        " FROM heartbeats WHERE config_path = ? AND actor = ?",
        (config_path, CRON_ACTOR),
    )
    by_hand = history.select_one(
        conn,
        "SELECT actor, checked_at, outcome, run_id FROM heartbeats WHERE config_path = ? AND actor != ?"
        " ORDER BY checked_at DESC LIMIT 1",
        (config_path, CRON_ACTOR),
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
        "by_hand": by_hand,
    }
    if beat is None:
        return state
    epoch = beat.pop("epoch")
    age = round(now - epoch, 3)
    state.update(heartbeat=beat, seconds_since_heartbeat=age, late=age > LATE_FACTOR * expected_interval_minutes * 60)
    return state
