"""Step 2b: score a model by its F1 on the test data.

Config keys: output_model_path (reads trainedmodel.pkl, writes latestscore.txt and the test F1 into
modelcard.json), test_data_path (reads testdata.csv), history_path (records the model's test F1).
`python scoring.py --model PATH` scores another model file and writes nothing but latestscore.txt.
"""

import argparse
import json
import logging
import time
from pathlib import Path

from risk import artifacts, history, registry
from risk.config import Config, PipelineError, atomic_write_text
from risk.contract import TRAINING, DataError, read_csv
from risk.logs import script_config
from risk.model import load_model, model_id_of, score_model, write_card

logger = logging.getLogger(__name__)


def load_test_data(config: Config):
    path = artifacts.testdata_path(config)
    if not path.is_file():
        raise PipelineError(f"test data file {path} does not exist (config key test_data_path)")
    try:
        return read_csv(path, str(path), TRAINING)
    except DataError as error:
        raise PipelineError(str(error)) from None


def record_test_score(config: Config, model_path: Path, score: float) -> None:
    """The test F1 in the model's card (when it is this model's) and in the history."""
    model_id = model_id_of(model_path.read_bytes())
    card_path = config.output_model_path / artifacts.MODEL_CARD_FILE
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        card = None
    if isinstance(card, dict) and card.get("id") == model_id:
        write_card({**card, "test_f1": score}, config.output_model_path)
    with history.opened(config.history_path) as conn, conn:
        history.update(conn, "models", "id", model_id, {"test_f1": score})


def score(config: Config, model_path: Path | None = None) -> float:
    """The F1 on testdata.csv (test_data_path) of `model_path` (default: output_model_path/trainedmodel.pkl),
    written to latestscore.txt (output_model_path); the default model's score also goes into its card and
    the history (history_path)."""
    default_model = config.output_model_path / artifacts.MODEL_FILE
    model_path = Path(model_path) if model_path else default_model
    score_path = config.output_model_path / artifacts.SCORE_FILE
    started = time.perf_counter()
    logger.info("scoring %s on %s", model_path, artifacts.testdata_path(config))
    if model_path == default_model:  # the pipeline's own model: loaded only as the history recorded it
        with history.opened(config.history_path) as conn:
            model = registry.load_recorded_model(conn, model_path)
    else:  # a file the caller named: a pickle is code, so name only files you trust (the README says so)
        model = load_model(model_path)
    f1 = score_model(model, load_test_data(config))
    atomic_write_text(score_path, f"{f1!r}\n")
    if model_path == default_model:
        record_test_score(config, model_path, f1)
    logger.info("scoring finished in %.2fs: F1 %.4f written to %s", time.perf_counter() - started, f1, score_path)
    return f1


def main(argv=None) -> float:
    """`python scoring.py [--model PATH]`: score with the config RISK_CONFIG names (or config.json); a failure
    is one line and exit code 1."""
    parser = argparse.ArgumentParser(description="Score a model's F1 on the test data.")
    parser.add_argument("--model", type=Path, help="model file (default: output_model_path/trainedmodel.pkl)")
    args = parser.parse_args(argv)
    with script_config() as config, artifacts.run_lock(config, "scoring.py"):
        return score(config, args.model)


if __name__ == "__main__":
    main()
