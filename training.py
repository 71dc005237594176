"""Step 2a: train the logistic regression that predicts `exited` from the three features.

Config keys: output_folder_path (reads finaldata.csv and ingestionmetrics.json), output_model_path
(writes trainedmodel.pkl and modelcard.json), history_path (records the model), drift_confidence.
Rows with a missing feature value cannot be used by the model and are left out (their count is
logged). The model card holds its 5-fold cross-validated F1 with an interval, the reference the full
process compares new data with; `corporation` is an identifier, not a feature.
"""

import argparse
import json
import logging
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from risk import artifacts, challenger, history, registry
from risk.config import Config, PipelineError
from risk.contract import TRAINING, DataError, read_csv
from risk.logs import script_config
from risk.model import make_card, train_model, write_model

logger = logging.getLogger(__name__)


def training_files(config: Config) -> list[dict]:
    """The files finaldata.csv was made of (from ingestionmetrics.json), as the history names them."""
    metrics_path = config.output_folder_path / artifacts.INGESTION_METRICS_FILE
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        names = [(item["name"], item["sha256"]) for item in metrics["files_read"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning(
            "%s is unreadable (%s): the model card will not name the files it learned from, and the full"
            " process will judge data drift without its reference rows",
            metrics_path,
            error,
        )
        return []
    folder = history.folder_key(config.input_folder_path, config.history_path)
    return [{"folder": folder, "name": name, "sha256": sha256} for name, sha256 in names]


def load_training_data(data_path):
    """finaldata.csv through the data contract; a missing or bad file stops the step with one line."""
    if not data_path.is_file():
        raise PipelineError(f"data file {data_path} does not exist; run ingestion.py first")
    try:
        return read_csv(data_path, str(data_path), TRAINING)
    except DataError as error:
        raise PipelineError(str(error)) from None


def train(config: Config) -> LogisticRegression:
    """Train on every complete row of finaldata.csv (output_folder_path) and write trainedmodel.pkl and
    modelcard.json (output_model_path), the card with its 5-fold cross-validated F1 and interval
    (drift_confidence); record the model and the step's time in the history (history_path). Returns the model."""
    data_path = artifacts.finaldata_path(config)
    started_at, started = history.utc_now(), time.perf_counter()
    logger.info("training started on %s", data_path)
    df = load_training_data(data_path)
    model = train_model(df)
    validation = challenger.cross_validate(df, config.drift_confidence, np.random.default_rng(challenger.SEED))
    method = f"{challenger.FOLDS}-fold cross-validation on the training rows (in time)"
    card = make_card(
        model,
        df,
        training_files(config),
        "all ingested rows",
        challenger.validation_record(validation, method),
    )
    write_model(model, card, config.output_model_path)
    seconds = time.perf_counter() - started
    with history.opened(config.history_path) as conn:
        known = history.get_model(conn, card["id"])
        with conn:
            registry.record_card(conn, card)
        history.record_step(
            conn, str(config.config_path), "training", started_at, seconds, True, {"rows": card["rows"]}
        )
    if known:
        logger.info(
            "model %s is one the history already records (trained %s on %s): the same model, its record kept",
            card["id"],
            known["trained_at"],
            known["window"],
        )
    if card["rows_left_out"]:
        logger.warning("training left out %d row(s) with a missing feature value", card["rows_left_out"])
    logger.info(
        "training finished in %.2fs on %d rows: model %s, cross-validated F1 %.4f [%.4f, %.4f]: %s",
        seconds,
        card["rows"],
        card["id"],
        card["validation_f1"],
        card["validation_low"],
        card["validation_high"],
        config.output_model_path / artifacts.MODEL_FILE,
    )
    return model


def main(argv=None) -> LogisticRegression:
    """`python training.py`: train with the config RISK_CONFIG names (or config.json); a failure is one line
    and exit code 1."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    with script_config() as config, artifacts.run_lock(config, "training.py"):
        return train(config)


if __name__ == "__main__":
    main()
