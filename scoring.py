"""Step 2b: score a model by its F1 on the test data.

Config keys: output_model_path (reads trainedmodel.pkl, writes latestscore.txt), test_data_path
(reads testdata.csv). `python scoring.py --model PATH` scores another model file.
`score_model` returns the score without writing anything, for the other steps and the API.
"""

import argparse
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from common import (
    FEATURES,
    MODEL_FILE,
    SCORE_FILE,
    TARGET,
    TESTDATA_FILE,
    PipelineError,
    atomic_write_text,
    load_config,
    run_cli,
)
from ingestion import load_dataset

logger = logging.getLogger(__name__)


def load_model(model_path):
    """Unpickle a model file; a missing or unreadable file is a PipelineError."""
    model_path = Path(model_path)
    try:
        with open(model_path, "rb") as handle:
            model = pickle.load(handle)
    except FileNotFoundError:
        raise PipelineError(
            f"model file {model_path} does not exist (training.py trains a model, deployment.py deploys it)"
        ) from None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
        raise PipelineError(f"model file {model_path} cannot be loaded: {error}") from None
    if not hasattr(model, "predict_proba"):
        raise PipelineError(f"model file {model_path} does not hold a classifier")
    return model


def complete_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that have every feature; the model cannot use the others."""
    return df.dropna(subset=FEATURES)


def feature_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """The model's input: the three features as floats, in a fixed order."""
    return df[FEATURES].astype("float64")


def predict(model, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """0/1 predictions and exit probabilities for rows that have every feature."""
    X = feature_matrix(df)
    return model.predict(X).astype(int), model.predict_proba(X)[:, 1]


def score_model(model, df: pd.DataFrame) -> float:
    """F1 of `model` (a model or a model file's path) on the complete rows of `df`."""
    if isinstance(model, (str, Path)):
        model = load_model(model)
    usable = complete_rows(df)
    if usable.empty:
        raise PipelineError("no row with every feature value to score the model on")
    y_pred, _ = predict(model, usable)
    return float(f1_score(usable[TARGET], y_pred, zero_division=0.0))


def read_score(score_path) -> float:
    """The number in a latestscore.txt."""
    try:
        return float(Path(score_path).read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        raise PipelineError(f"score file {score_path} does not exist") from None
    except ValueError:
        raise PipelineError(f"score file {score_path} does not hold a number") from None


def main(config_path=None, model_path=None) -> float:
    config = load_config(config_path)
    model_path = Path(model_path) if model_path else config.output_model_path / MODEL_FILE
    data_path = config.test_data_path / TESTDATA_FILE
    score_path = config.output_model_path / SCORE_FILE
    started = time.perf_counter()
    logger.info("scoring %s on %s", model_path, data_path)
    score = score_model(load_model(model_path), load_dataset(data_path))
    atomic_write_text(score_path, f"{score!r}\n")
    logger.info(
        "scoring finished in %.2fs: F1 %.4f written to %s", time.perf_counter() - started, score, score_path
    )
    return score


def cli() -> None:
    parser = argparse.ArgumentParser(description="Score a model's F1 on the test data.")
    parser.add_argument("--model", type=Path, help="model file (default: output_model_path/trainedmodel.pkl)")
    args = parser.parse_args()
    run_cli(lambda: main(model_path=args.model))


if __name__ == "__main__":
    cli()
