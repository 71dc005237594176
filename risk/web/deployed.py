"""The deployed model as the API serves it: loaded once per release and again when production moves,
only once its pickle's SHA-256 is the one the history records (a pickle is code); a refused file alerted
once; and the ranked risk list the live model gives over finaldata.csv, cached until a file changes."""

import contextlib
import logging
import os
import threading
from pathlib import Path

from risk import alerts, artifacts, diagnosis, history, ranking, registry
from risk.config import Config, PipelineError
from risk.web.answers import public
from risk.web.filecache import FileCache
from risk.web.readers import FAILURES, HISTORY_TIMEOUT_SECONDS, history_problem

logger = logging.getLogger(__name__)


class DeployedModel:
    """The deployed model, loaded once per release and again when production moves, and only once its
    pickle's SHA-256 is the one the history records for it (a pickle is code). A pickle that does not
    match is refused until its file changes: 503, one log line, one alert; one that cannot be verified
    (no history, or one that cannot be read) is tried again at the next request. A model already loaded
    keeps serving while its file is unchanged, whatever happens to the history."""

    def __init__(self, config: Config):
        self.config = config
        self.lock = threading.Lock()
        self.key = None  # the model file last loaded, or refused for good
        self.model = None
        self.release = None
        self.refused = None  # why the file with `key` is not served

    def get(self):
        """(model, release name); raises PipelineError when nothing loadable is deployed."""
        path = os.path.realpath(self.config.prod_deployment_path)
        try:
            stat = os.stat(os.path.join(path, artifacts.MODEL_FILE))
        except OSError:
            raise PipelineError("no model is deployed yet") from None
        key = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self.lock:
            if key != self.key:
                self.load(Path(path), key)
            if self.refused:
                raise registry.ReleaseRefused(self.refused)
            return self.model, self.release

    def load(self, release: Path, key: tuple) -> None:
        try:
            model = registry.read_release_model(self.config.history_path, release, HISTORY_TIMEOUT_SECONDS)
        except registry.ReleaseRefused as error:
            if str(error) != self.refused:
                logger.error("%s", public(str(error), self.config))
            self.model, self.release, self.refused = None, None, str(error)
            if isinstance(error, registry.ModelMismatch):
                self.key = key  # this file is refused until it changes
                alert_refusal(self.config, release.name, str(error), key)
            return
        self.model, self.release, self.key, self.refused = model, release.name, key, None
        logger.info("loaded the deployed model of release %s", self.release)


def alert_refusal(config: Config, release: str, reason: str, key: tuple) -> None:
    """One alert per refused model file (however many requests meet it), recorded and sent in the
    background: no request waits on the history database or the webhook."""
    if config.alert_webhook_url:
        threading.Thread(target=record_refusal, args=(config, release, reason, key), daemon=True).start()


def record_refusal(config: Config, release: str, reason: str, key: tuple) -> None:
    try:
        with contextlib.closing(history.connect(config.history_path, timeout=HISTORY_TIMEOUT_SECONDS)) as conn:
            text = f"The API serves no model: {alerts.short_reason(public(reason, config))}. It answers 503 until then."
            dedupe_key = f"refused:{release}:{key[1]}:{key[2]}"
            alerts.announce(conn, config, "release refused", "critical", text, {"release": release}, None, dedupe_key)
            alerts.deliver_pending(conn, config.alert_webhook_url)
    except FAILURES as error:
        logger.error("the refusal could not be recorded as an alert: %s", history_problem(error, config))


def risk_list(config: Config, deployed: DeployedModel, cache: FileCache):
    """(ranked clients, unscored clients, release) from finaldata.csv and the live model, cached."""
    model, release = deployed.get()
    finaldata_path = artifacts.finaldata_path(config)

    def compute():
        finaldata = diagnosis.read_data(finaldata_path)
        card = registry.read_card(config.prod_deployment_path)
        return ranking.risk_table(finaldata, model, ranking.training_means(card, finaldata))

    ranked, unscored = cache.get(
        "ranking",
        [
            finaldata_path,
            config.prod_deployment_path / artifacts.MODEL_FILE,
            config.prod_deployment_path / artifacts.MODEL_CARD_FILE,
        ],
        compute,
    )
    return ranked, unscored, release
