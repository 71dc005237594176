"""The service's cron watchdog: a thread of each worker that looks at cron's heartbeat once a minute, with
nobody calling the service, and raises and sends the alerts of a late spell (risk.watchdog: one of each per
spell across every worker); and the cron's last check and run, read for a request."""

import contextlib
import logging
import threading
import time

from risk import alerts, history, overview, watchdog
from risk.config import Config
from risk.web.readers import FAILURES, HISTORY_TIMEOUT_SECONDS, history_problem, reading

logger = logging.getLogger(__name__)


class Watchdog:
    """Looks at cron's heartbeat every `period` seconds in a daemon thread once start()ed (wsgi.py and app.py
    start it; an app made for a test does not, unless the test does). `clock` gives epoch seconds (a test
    passes its own). Without a webhook it does nothing: there is nobody to tell."""

    def __init__(self, config: Config, period: float = watchdog.WATCH_SECONDS, clock=time.time):
        self.config, self.period, self.clock = config, period, clock
        self.stopped = threading.Event()
        self.thread = None

    def start(self) -> None:
        if self.config.alert_webhook_url and self.thread is None:
            self.thread = threading.Thread(target=self.run, name="cron-watchdog", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()

    def run(self) -> None:
        while True:
            try:
                self.look()
            except Exception:  # a bug: in the log with its traceback, and the watchdog keeps looking
                logger.exception("the cron watchdog's look failed; it looks again in %g s", self.period)
            if self.stopped.wait(self.period):
                return

    def look(self) -> list[int]:
        """One look: the alerts raised (and sent), or none; a history that cannot be used is a warning, and
        the next look tries again."""
        config = self.config
        if not config.history_path.exists():  # no run yet: nothing to be late from, and no database to make
            return []
        try:
            with contextlib.closing(history.connect(config.history_path, timeout=HISTORY_TIMEOUT_SECONDS)) as conn:
                raised = watchdog.watch(conn, config, self.clock())
                if raised:
                    alerts.deliver_pending(conn, config.alert_webhook_url)
                return raised
        except FAILURES as error:
            logger.warning("cannot look at cron's heartbeat: %s", history_problem(error, config))
            return []


def pipeline_state(config: Config) -> dict:
    """The cron's last check and run and whether it is late, read from the history (the watchdog tells)."""
    with reading(config) as conn:
        if conn is None:
            return overview.NO_PIPELINE_STATE
        return alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes)
