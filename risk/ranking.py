"""The ranked risk list: every client from its newest row, its exit probability and why.

Each feature's push on a client's log-odds is coefficient x (value - the training mean); the pushes
and the intercept at the training means add up to the model's log-odds, so the reasons explain the
probability exactly. The strongest upward push is said in plain words. Clients whose newest row
lacks a feature cannot be scored and are listed apart, with the missing features named.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from risk.contract import FEATURES, ID_COLUMN
from risk.model import complete_rows, contributions, feature_matrix, log_odds, sigmoid

FEATURE_WORDS = {
    "lastmonth_activity": "activity last month",
    "lastyear_activity": "activity last year",
    "number_of_employees": "employees",
}
PUSH_COLUMNS = [f"push_{feature}" for feature in FEATURES]
RANKING_COLUMNS = [
    "rank",
    ID_COLUMN,
    "probability",
    *FEATURES,
    *PUSH_COLUMNS,
    "reason",
]


def newest_rows(finaldata: pd.DataFrame) -> pd.DataFrame:
    """Each client's newest row: finaldata.csv lists files in arrival order, so the last one."""
    return finaldata.drop_duplicates(subset=ID_COLUMN, keep="last").reset_index(drop=True)


def compare_words(value: float, mean: float) -> str:
    if mean <= 0:
        return "above usual" if value > mean else "usual"
    ratio = value / mean
    for limit, words in (
        (0.5, "far below usual"),
        (0.9, "below usual"),
        (1.1, "near usual"),
        (2.0, "above usual"),
    ):
        if ratio < limit:
            return words
    return "far above usual"


def reason_of(values: np.ndarray, pushes: np.ndarray, means: np.ndarray) -> str:
    """The strongest upward push in words, e.g. 'activity last month 3, far below usual (95): raises risk most'."""
    strongest = int(np.argmax(pushes))
    if pushes[strongest] <= 0:
        return "no feature raises risk above a typical client's"
    feature = FEATURES[strongest]
    value, mean = values[strongest], means[strongest]
    return f"{FEATURE_WORDS[feature]} {value:,.0f}, {compare_words(value, mean)} ({mean:,.0f}): raises risk most"


def risk_table(finaldata: pd.DataFrame, model, means: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranked clients, highest probability first; clients that cannot be scored, with why)."""
    latest = newest_rows(finaldata)
    scored = complete_rows(latest).reset_index(drop=True)
    unscored = latest[~latest.index.isin(complete_rows(latest).index)].reset_index(drop=True)
    X = feature_matrix(scored)
    z = log_odds(model, X)
    pushes = contributions(model, X, means)
    table = pd.DataFrame({ID_COLUMN: scored[ID_COLUMN].to_numpy(), "probability": sigmoid(z)})
    for feature, column in zip(FEATURES, PUSH_COLUMNS, strict=True):
        table[feature] = scored[feature].to_numpy(dtype="int64")
        table[column] = pushes[:, FEATURES.index(feature)]
    table["reason"] = [reason_of(X[i], pushes[i], means) for i in range(len(table))]
    table = table.sort_values(["probability", ID_COLUMN], ascending=[False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    missing = unscored[FEATURES].isna()
    unscored_table = pd.DataFrame(
        {
            ID_COLUMN: unscored[ID_COLUMN].to_numpy(),
            "reason": [
                "no value for " + ", ".join(FEATURE_WORDS[f] for f in FEATURES if row[f])
                for _, row in missing.iterrows()
            ],
        }
    )
    return table[RANKING_COLUMNS], unscored_table


def training_means(card: dict | None, finaldata: pd.DataFrame) -> np.ndarray:
    """The training means from the model card; for an adopted model without one, the data's means."""
    means = (card or {}).get("feature_means") or {}
    if all(feature in means for feature in FEATURES):
        return np.array([means[feature] for feature in FEATURES], dtype="float64")
    return feature_matrix(complete_rows(finaldata)).mean(axis=0)


def as_records(table: pd.DataFrame) -> list[dict]:
    """Ranked rows as JSON-ready dicts: the pushes together, rounded for people."""
    records = []
    for row in table.to_dict("records"):
        record = {key: row[key] for key in ["rank", ID_COLUMN, *FEATURES, "reason"]}
        record["probability"] = round(float(row["probability"]), 6)
        record["push"] = {feature: round(float(row[f"push_{feature}"]), 6) for feature in FEATURES}
        records.append(record)
    return records
