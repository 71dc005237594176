"""The late-cron watcher: the cron's last check and run, read for a request, and the one alert a late cron
raises, recorded and sent by a background thread (the cron that would send it is the one that is late)."""

import contextlib
import logging
import threading

from risk import alerts, history, overview
from risk.config import Config
from risk.web.readers import FAILURES, HISTORY_TIMEOUT_SECONDS, history_problem, reading

logger = logging.getLogger(__name__)


class LateAlerts:
    """The late-cron alert the API raises: recorded and delivered by a background thread, one per missed
    heartbeat, so that no request writes to the history or waits for the webhook."""

    def __init__(self, config: Config):
        self.config = config
        self.lock = threading.Lock()
        self.raised_for = None  # the heartbeat (its time) an alert was raised for

    def raise_once(self, heartbeat_at: str) -> None:
        with self.lock:
            if self.raised_for == heartbeat_at:  # raised already, or being raised
                return
            self.raised_for = heartbeat_at
        threading.Thread(target=self.record_and_send, args=(heartbeat_at,), daemon=True).start()

    def record_and_send(self, heartbeat_at: str) -> None:
        config = self.config
        try:
            with contextlib.closing(history.connect(config.history_path, timeout=HISTORY_TIMEOUT_SECONDS)) as conn:
                state = alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes)
                if state.get("alert_id"):
                    alerts.deliver_pending(conn, config.alert_webhook_url)
        except FAILURES as error:
            logger.warning("cannot record the late-cron alert: %s", history_problem(error, config))
            with self.lock:
                if self.raised_for == heartbeat_at:
                    self.raised_for = None  # the next request tries again


def pipeline_state(config: Config, late_alerts: LateAlerts) -> dict:
    """The cron's last check and run and whether it is late, read from the history. A late cron raises one
    alert, recorded and sent in the background."""
    with reading(config) as conn:
        if conn is None:
            return overview.NO_PIPELINE_STATE
        state = alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes, alert=False)
    if state["late"] and config.alert_webhook_url:
        late_alerts.raise_once(state["heartbeat"]["checked_at"])
    return state
