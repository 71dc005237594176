"""Step 2a: train the logistic regression that predicts `exited` from the three features.

Config keys: output_folder_path (reads finaldata.csv), output_model_path (writes trainedmodel.pkl).
Rows with a missing feature value cannot be used by the model and are left out of training
(their count is logged); `corporation` is an identifier, not a feature.
"""

import logging
import pickle
import time

import pandas as pd
from sklearn.linear_model import LogisticRegression

from common import FINALDATA_FILE, MODEL_FILE, TARGET, PipelineError, atomic_write_bytes, load_config, run_cli
from ingestion import load_dataset
from scoring import complete_rows, feature_matrix

logger = logging.getLogger(__name__)

# Fixed by the project (see the issue): liblinear's L2-regularised logistic regression.
MODEL_PARAMS = dict(
    C=1.0,
    solver="liblinear",
    random_state=0,
    tol=1e-4,
    max_iter=100,
    fit_intercept=True,
    intercept_scaling=1,
    class_weight=None,
)


def train_model(df: pd.DataFrame) -> LogisticRegression:
    """Fit the model on the complete rows of `df`."""
    usable = complete_rows(df)
    if len(usable) < len(df):
        logger.warning("training leaves out %d row(s) with a missing feature value", len(df) - len(usable))
    classes = sorted(int(label) for label in usable[TARGET].unique())
    if classes != [0, 1]:
        raise PipelineError(
            f"training needs rows with both exited=0 and exited=1; the data has only {classes}"
        )
    return LogisticRegression(**MODEL_PARAMS).fit(feature_matrix(usable), usable[TARGET])


def save_model(model, model_path) -> None:
    atomic_write_bytes(model_path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def main(config_path=None) -> LogisticRegression:
    config = load_config(config_path)
    data_path = config.output_folder_path / FINALDATA_FILE
    model_path = config.output_model_path / MODEL_FILE
    started = time.perf_counter()
    logger.info("training started on %s", data_path)
    df = load_dataset(data_path)
    model = train_model(df)
    save_model(model, model_path)
    logger.info(
        "training finished in %.2fs on %d rows: %s", time.perf_counter() - started, len(df), model_path
    )
    return model


if __name__ == "__main__":
    run_cli(main)
