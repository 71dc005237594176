"""The cron watchdog: the alerts of a late spell, one 'late cron' when cron's heartbeat grows older than
LATE_FACTOR expected intervals and one 'cron recovered' when cron runs again, saying how long it was silent.

Whoever looks first tells: the running service once a minute (watch(), risk/web/watcher.py), and each cron run
on the way in (note_cron_start(), fullprocess.py), so a spell is told with no service and nobody watching.
Each spell's two alerts have dedupe keys of its last heartbeat, so however many workers and runs look, a spell
raises one of each, and no 'late cron' follows its own 'cron recovered'. Config keys: expected_interval_minutes,
system_name, api_base_url (the link), log_path (named in the late alert). Standard library only.
"""

import time
from datetime import datetime

from risk import alerts, history
from risk.config import Config

WATCH_SECONDS = 60  # how often the service looks: a late cron is told within a minute of crossing the limit


def spell_keys(config_path: str, heartbeat_at: str) -> tuple[str, str]:
    """The dedupe keys of a late spell's two alerts: the spell begins at cron's last heartbeat."""
    return f"late:{config_path}:{heartbeat_at}", f"recovered:{config_path}:{heartbeat_at}"


def epoch(stamp: str) -> float:
    """A time of the history (`2026-12-02T04:41:07.123Z`, UTC) as epoch seconds."""
    return datetime.fromisoformat(stamp).timestamp()


def watch(conn, config: Config, now: float | None = None) -> list[int]:
    """One look at cron's heartbeat (`now` in epoch seconds, default the clock): a 'late cron' alert when it is
    late, unless this spell was told already; a 'cron recovered' alert when cron ran since a spell was told and
    no cron run told its end. Returns the ids of the alerts raised; `conn` must be writable."""
    config_path = str(config.config_path)
    state = alerts.check_late(conn, config_path, config.expected_interval_minutes, now)
    if state["late"]:
        raised = raise_late(conn, config, state)
        return [raised] if raised else []
    spell = open_spell(conn, config_path)
    if spell is None or state["heartbeat"] is None or state["heartbeat"]["checked_at"] <= spell:
        return []  # no spell told, or cron has not run since (a clock set back)
    silent = epoch(state["heartbeat"]["checked_at"]) - epoch(spell)
    raised = raise_recovered(conn, config, spell, state["heartbeat"]["checked_at"], silent)
    return [raised] if raised else []


def note_cron_start(conn, config: Config, now: float | None = None) -> int | None:
    """On the way into a cron run, before it leaves its heartbeat: when cron's last heartbeat is late, the
    silence ends now; a 'cron recovered' alert says how long it lasted (the only message of the spell when no
    service watched). Returns its id, None when cron was not late or the spell's end was told already."""
    state = alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes, now)
    if not state["late"]:
        return None
    now = time.time() if now is None else now
    heartbeat_at = state["heartbeat"]["checked_at"]
    return raise_recovered(conn, config, heartbeat_at, history.utc_now(now), state["seconds_since_heartbeat"])


def open_spell(conn, config_path: str) -> str | None:
    """The last heartbeat of the newest late spell told with no end told yet, or None."""
    prefix = spell_keys(config_path, "")[0]
    told = history.select_one(
        conn,
        "SELECT substr(dedupe_key, ?) AS heartbeat_at FROM alerts WHERE event = 'late cron'"
        " AND substr(dedupe_key, 1, ?) = ? ORDER BY id DESC LIMIT 1",
        (len(prefix) + 1, len(prefix), prefix),
    )
    if told is None:
        return None
    recovered = spell_keys(config_path, told["heartbeat_at"])[1]
    if conn.execute("SELECT 1 FROM alerts WHERE dedupe_key = ?", (recovered,)).fetchone():
        return None
    return told["heartbeat_at"]


def raise_late(conn, config: Config, state: dict) -> int | None:
    heartbeat = state["heartbeat"]
    late_key, recovered_key = spell_keys(str(config.config_path), heartbeat["checked_at"])
    text = (
        f"Cron has not run for {alerts.duration_words(state['seconds_since_heartbeat'])} (last run"
        f" {alerts.when_words(heartbeat['checked_at'])}; expected every {config.expected_interval_minutes} min),"
        f" so new data waits unjudged: check the cron line (crontab -l) and {config.log_path}."
    )
    details = {key: state[key] for key in ("heartbeat", "seconds_since_heartbeat", "expected_interval_minutes")}
    return alerts.announce(
        conn, config, "late cron", "warning", text, details, heartbeat["run_id"], late_key, unless_key=recovered_key
    )


def raise_recovered(conn, config: Config, heartbeat_at: str, resumed_at: str, silent_seconds: float) -> int | None:
    text = (
        f"Cron runs again: it was silent for {alerts.duration_words(silent_seconds)}"
        f" (no run from {alerts.when_words(heartbeat_at)} to {alerts.when_words(resumed_at)})."
    )
    details = {"last_heartbeat": heartbeat_at, "resumed_at": resumed_at, "silent_seconds": round(silent_seconds, 3)}
    recovered_key = spell_keys(str(config.config_path), heartbeat_at)[1]
    return alerts.announce(conn, config, "cron recovered", "info", text, details, dedupe_key=recovered_key)
