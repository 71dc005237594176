"""Using the model: train, save and load, predict, score, and each feature's push on the log-odds.

The model is scikit-learn's LogisticRegression with the settings in MODEL_PARAMS (fixed by the
project), on the three features as floats. Prediction is computed with NumPy from the fitted
coefficients (the same formula as `predict_proba`, without its per-call checks); a model is checked
once, when it is loaded. The model card (`modelcard.json`) says what a model learned from.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from risk import artifacts, history
from risk.artifacts import MODEL_CARD_FILE, MODEL_FILE
from risk.config import PipelineError, atomic_write_bytes, atomic_write_text
from risk.contract import FEATURES, TARGET

# Fixed by the project: liblinear's L2-regularised logistic regression.
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


def complete_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that have every feature; the model cannot use the others."""
    return df.dropna(subset=FEATURES)


def feature_matrix(df: pd.DataFrame) -> np.ndarray:
    """The model's input: the three features as float64, in a fixed order (complete rows only)."""
    return df[FEATURES].to_numpy(dtype="float64")


def labels(df: pd.DataFrame) -> np.ndarray:
    return df[TARGET].to_numpy(dtype="int64")


def train_model(df: pd.DataFrame) -> LogisticRegression:
    """Fit the model on the complete rows of `df`; both classes must be present."""
    usable = complete_rows(df)
    classes = sorted(int(label) for label in usable[TARGET].unique())
    if classes != [0, 1]:
        raise PipelineError(f"training needs rows with both exited=0 and exited=1; the data has only {classes}")
    return LogisticRegression(**MODEL_PARAMS).fit(feature_matrix(usable), labels(usable))


def model_bytes(model) -> bytes:
    """The model's pickle, the same bytes for the same fitted values whatever process writes it.

    A plain pickle writes an object met twice as a reference to the first, so its bytes depend on which
    equal strings happen to be one object (the attribute name "C" and NumPy's array order "C" are, or
    not, depending on what the process imported first): the full process and training.py gave one model
    two ids. Without the memo (`fast`: a model holds no cycles) every value is written out in full."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(model)
    return buffer.getvalue()


def model_id_of(data: bytes) -> str:
    """A model's id: the first 12 hex digits of its pickle's SHA-256 (model_bytes: the same model, the same id)."""
    return hashlib.sha256(data).hexdigest()[:12]


def save_model(model, model_path) -> str:
    """Write the model file atomically; return its id."""
    data = model_bytes(model)
    atomic_write_bytes(model_path, data)
    return model_id_of(data)


def check_model(model, model_path) -> None:
    """A usable model: a fitted binary logistic regression on our three features."""
    coef = getattr(model, "coef_", None)
    classes = getattr(model, "classes_", None)
    if not isinstance(model, LogisticRegression) or coef is None or classes is None:
        raise PipelineError(f"model file {model_path} does not hold a fitted logistic regression")
    if np.shape(coef) != (1, len(FEATURES)) or list(classes) != [0, 1]:
        raise PipelineError(
            f"model file {model_path} holds a model of {np.shape(coef)[-1]} feature(s) and classes "
            f"{np.asarray(classes).tolist()}; expected {len(FEATURES)} features and classes [0, 1]"
        )
    if not np.all(np.isfinite(coef)) or not np.all(np.isfinite(model.intercept_)):
        raise PipelineError(f"model file {model_path} has coefficients that are not finite numbers")


def load_model(model_path) -> LogisticRegression:
    """Unpickle and check a model file; a missing, unreadable or unfit file is a PipelineError.

    Unpickling runs code: only for a file this pipeline wrote, or one verified against the history
    (registry.load_release_model does that for a release)."""
    return model_from_bytes(artifacts.read_model_file(model_path), model_path)


def model_from_bytes(data: bytes, model_path) -> LogisticRegression:
    """Unpickle and check a model's bytes (read from `model_path`, named in errors)."""
    try:
        model = pickle.loads(data)
    except Exception as error:  # unpickling can raise almost anything on a damaged file
        raise PipelineError(f"model file {model_path} cannot be loaded: {type(error).__name__}: {error}") from None
    check_model(model, model_path)
    return model


def log_odds(model, X: np.ndarray) -> np.ndarray:
    return X @ model.coef_[0] + model.intercept_[0]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z); a huge negative z gives exactly 0, as scipy's expit does, without a warning."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def probabilities(model, X: np.ndarray) -> np.ndarray:
    """Exit probability of each row of X: scikit-learn's predict_proba(X)[:, 1]."""
    return sigmoid(log_odds(model, X))


def predict(model, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """0/1 predictions (as LogisticRegression.predict: log-odds above 0) and exit probabilities."""
    X = feature_matrix(df)
    z = log_odds(model, X)
    return (z > 0).astype("int64"), sigmoid(z)


def score_model(model, df: pd.DataFrame) -> float:
    """F1 of `model` on the complete rows of `df`."""
    usable = complete_rows(df)
    if usable.empty:
        raise PipelineError("no row with every feature value to score the model on")
    y_pred, _ = predict(model, usable)
    return float(f1_score(labels(usable), y_pred, zero_division=0.0))


def contributions(model, X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Each feature's push on each row's log-odds: coefficient x (value - the training mean)."""
    return (X - means) * model.coef_[0]


def describe(model) -> dict:
    """The fitted parameters, by name."""
    return {
        "coefficients": dict(zip(FEATURES, map(float, model.coef_[0]), strict=True)),
        "intercept": float(model.intercept_[0]),
    }


def training_summary(df: pd.DataFrame) -> dict:
    """What a model learned from, in numbers: rows used and left out, class balance, feature means."""
    usable = complete_rows(df)
    y = labels(usable)
    return {
        "rows": len(usable),
        "rows_left_out": len(df) - len(usable),
        "positives": int(y.sum()),
        "exit_rate": round(float(y.mean()), 6) if len(y) else None,
        "feature_means": dict(zip(FEATURES, map(float, feature_matrix(usable).mean(axis=0)), strict=True)),
    }


def make_card(model, df: pd.DataFrame, files: list[dict], window: str, validation: dict, run_id=None) -> dict:
    """The model card: id, when, what it learned from (files, rows, balance, means), its parameters,
    its validation (F1, interval, confusion counts, method) and, once scored, its test F1."""
    data = model_bytes(model)
    return {
        "id": model_id_of(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "trained_at": history.utc_now(),
        "origin": "trained",
        "window": window,
        "training_files": files,
        **training_summary(df),
        **describe(model),
        **validation,
        "test_f1": None,
        "run_id": run_id,
    }


def write_model(model, card: dict, output_model_path: Path) -> None:
    """trainedmodel.pkl and modelcard.json, each atomically (the card last: it names the model)."""
    save_model(model, Path(output_model_path) / MODEL_FILE)
    write_card(card, output_model_path)


def write_card(card: dict, output_model_path: Path) -> None:
    atomic_write_text(Path(output_model_path) / MODEL_CARD_FILE, json.dumps(card, indent=2) + "\n")
