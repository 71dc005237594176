"""The ranked risk list: every client from its newest row, its exit probability and why, in words.

Each feature's push on a client's log-odds is coefficient x (value - the training mean); the pushes
and the intercept at the training means add up to the model's log-odds (the API's `push`, kept for
those who compute with it). For people, each feature is compared with the usual value, the median of
the clients ranked (their newest rows), in its own units, and its effect is said in percentage points:
how much lower the client's probability would be were that one feature usual. The reason names the
feature that adds the most. Probabilities are said as whole percents, the ends as bounds ("over 99 %").
Clients ranked equal (the same probability: a float saturates at 1.0) are ordered by their stronger
reason. Clients whose newest row lacks a feature cannot be scored and are listed apart, with why.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from risk.contract import FEATURES, ID_COLUMN
from risk.model import complete_rows, contributions, feature_matrix, log_odds, sigmoid

FEATURE_WORDS = {
    "lastmonth_activity": "activity last month",
    "lastyear_activity": "activity last year",
    "number_of_employees": "employees",
}
DIFFERENCE_WORDS = {  # (fewer, more) in the feature's own units
    "lastmonth_activity": ("below", "above"),
    "lastyear_activity": ("below", "above"),
    "number_of_employees": ("fewer than", "more than"),
}
NO_REASON = "no feature raises the risk above a typical client's"
PUSH_COLUMNS = [f"push_{feature}" for feature in FEATURES]
POINTS_COLUMNS = [f"points_{feature}" for feature in FEATURES]
RANKING_COLUMNS = [  # riskranking.csv and /toprisk.csv, in this order; the readable columns last
    "rank",
    ID_COLUMN,
    "probability",
    *FEATURES,
    *PUSH_COLUMNS,
    "reason",
    "risk",
    *POINTS_COLUMNS,
]


def newest_rows(finaldata: pd.DataFrame) -> pd.DataFrame:
    """Each client's newest row: finaldata.csv lists files in arrival order, so the last one."""
    return finaldata.drop_duplicates(subset=ID_COLUMN, keep="last").reset_index(drop=True)


def percent_words(probability: float) -> str:
    """A probability for people: a whole percent, the ends said as bounds ('over 99 %', 'under 1 %'),
    since 99.7 % is not 100 % and a rounded 0 % would promise what no model can."""
    whole = math.floor(probability * 100 + 0.5)  # half up: 0.5 % is 1 %, never a banker's 0 %
    if whole >= 100:
        return "over 99 %"
    return "under 1 %" if whole < 1 else f"{whole} %"


def points_words(points: float) -> str:
    """Percentage points a feature adds, in words: 'adds 41 percentage points'."""
    if points < 0.5:
        return "adds less than 1 percentage point"
    whole = round(points)
    return f"adds {whole} percentage point{'' if whole == 1 else 's'}"


def number_words(value: float) -> str:
    """A count as people write it: 1,250; a median between two counts keeps its half (34.5)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def difference_words(feature: str, value: float, usual: float) -> str:
    """How far `value` is from the usual one, in the feature's own units: '32 fewer than the usual 35'."""
    fewer, more = DIFFERENCE_WORDS[feature]
    if value == usual:
        return f"the usual {number_words(usual)}"
    side = more if value > usual else fewer
    return f"{number_words(abs(value - usual))} {side} the usual {number_words(usual)}"


def reason_of(values: np.ndarray, points: np.ndarray, typical: np.ndarray, usual: np.ndarray) -> tuple[str, str]:
    """(the reason, its short form) for one client: the feature that adds the most (by its log-odds
    against the usual value, `typical`, which orders even probabilities saturated at 1), e.g.
    ('employees 3, 32 fewer than the usual 35: adds 41 percentage points', 'employees 3: adds 41 ...')."""
    strongest = int(np.argmax(typical))
    if typical[strongest] <= 0:
        return NO_REASON, NO_REASON
    feature = FEATURES[strongest]
    value, adds = values[strongest], points_words(points[strongest])
    words = FEATURE_WORDS[feature]
    full = f"{words} {number_words(value)}, {difference_words(feature, value, usual[strongest])}: {adds}"
    return full, f"{words} {number_words(value)}: {adds}"


def usual_values(X: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The median of each feature over the clients ranked; `fallback` when there are none."""
    return np.median(X, axis=0) if len(X) else np.asarray(fallback, dtype="float64")


def risk_table(finaldata: pd.DataFrame, model, means: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranked clients, highest probability first, equal ones by their stronger reason; clients that
    cannot be scored, with why). The ranked table holds RANKING_COLUMNS and, for the pages, `usual_*`
    (the medians), `reason_feature` (or None), `reason_short` and `strength` (the reason's log-odds)."""
    latest = newest_rows(finaldata)
    scored = complete_rows(latest).reset_index(drop=True)
    unscored = latest[~latest.index.isin(complete_rows(latest).index)].reset_index(drop=True)
    X = feature_matrix(scored)
    z = log_odds(model, X)
    usual = usual_values(X, means)
    typical = contributions(model, X, usual)  # each feature's log-odds against the usual value
    probability = sigmoid(z)
    points = 100 * (probability[:, None] - sigmoid(z[:, None] - typical))
    table = pd.DataFrame({ID_COLUMN: scored[ID_COLUMN].to_numpy(), "probability": probability})
    pushes = contributions(model, X, means)
    for index, feature in enumerate(FEATURES):
        table[feature] = scored[feature].to_numpy(dtype="int64")
        table[PUSH_COLUMNS[index]] = pushes[:, index]
        table[POINTS_COLUMNS[index]] = points[:, index]
        table[f"usual_{feature}"] = usual[index]
    reasons = [reason_of(X[i], points[i], typical[i], usual) for i in range(len(table))]
    table["reason"] = [full for full, _ in reasons]
    table["reason_short"] = [short for _, short in reasons]
    strongest = typical.argmax(axis=1) if len(table) else np.zeros(0, dtype=int)
    table["strength"] = typical.max(axis=1) if len(table) else np.zeros(0)
    table["reason_feature"] = [
        FEATURES[i] if s > 0 else None for i, s in zip(strongest, table["strength"], strict=True)
    ]
    table["risk"] = [percent_words(p) for p in probability]
    order = ["probability", "strength", ID_COLUMN]
    table = table.sort_values(order, ascending=[False, False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table, unscored_table(unscored)


def unscored_table(unscored: pd.DataFrame) -> pd.DataFrame:
    """The clients whose newest row lacks a feature, with the missing features named."""
    missing = unscored[FEATURES].isna()
    return pd.DataFrame(
        {
            ID_COLUMN: unscored[ID_COLUMN].to_numpy(),
            "reason": [
                "no value for " + ", ".join(FEATURE_WORDS[f] for f in FEATURES if row[f])
                for _, row in missing.iterrows()
            ],
        }
    )


def training_means(card: dict | None, finaldata: pd.DataFrame) -> np.ndarray:
    """The training means from the model card; for an adopted model without one, the data's means."""
    means = (card or {}).get("feature_means") or {}
    if all(feature in means for feature in FEATURES):
        return np.array([means[feature] for feature in FEATURES], dtype="float64")
    return feature_matrix(complete_rows(finaldata)).mean(axis=0)


def csv_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ranked list as riskranking.csv and /toprisk.csv hold it."""
    return table[RANKING_COLUMNS]


def as_records(table: pd.DataFrame, for_page: bool = False) -> list[dict]:
    """Ranked rows as JSON-ready dicts: the probability (6 decimals) and the pushes (log-odds) as the API
    has always given them, and beside them the risk in words, the percentage points each feature adds
    and the usual values; `for_page` adds what the pages need to say a shared reason once."""
    records = []
    for row in table.to_dict("records"):
        record = {key: row[key] for key in ["rank", ID_COLUMN, *FEATURES, "reason"]}
        record["probability"] = round(float(row["probability"]), 6)
        record["push"] = {feature: round(float(row[f"push_{feature}"]), 6) for feature in FEATURES}
        record["risk"] = row["risk"]
        record["points"] = {feature: round(float(row[f"points_{feature}"]), 1) for feature in FEATURES}
        record["usual"] = {feature: float(row[f"usual_{feature}"]) for feature in FEATURES}
        if for_page:
            record["reason_key"] = reason_key(row)
            record["reason_short"] = row["reason_short"]
            record["points_words"] = {feature: signed_points(row[f"points_{feature}"]) for feature in FEATURES}
        records.append(record)
    return records


def signed_points(points: float) -> str:
    """The percentage points one feature adds (+) or takes off (-), short, for a table cell."""
    if abs(points) < 0.5:
        return "< 1 point"
    whole = round(abs(points))
    return f"{'+' if points > 0 else '−'}{whole} point{'' if whole == 1 else 's'}"


def reason_key(row: dict) -> str | None:
    """What a client's reason is about, e.g. 'number_of_employees above' (None: no reason)."""
    feature = row["reason_feature"]
    if not feature:
        return None
    return f"{feature} {'above' if row[feature] > row[f'usual_{feature}'] else 'below'}"


def shared_reason(records: list[dict]) -> dict | None:
    """When most of `records` (page records: more than half, and at least 3) share their reason (its
    feature and side), that reason said once: {'key', 'count', 'of', 'words'}, the words e.g. 'more
    employees than usual (35)'; else None."""
    keys = [record["reason_key"] for record in records if record["reason_key"]]
    if not keys:
        return None
    key = max(sorted(set(keys)), key=keys.count)
    count = keys.count(key)
    if count < 3 or 2 * count <= len(records):
        return None
    feature, side = key.split()
    more = "more employees" if feature == "number_of_employees" else f"more {FEATURE_WORDS[feature]}"
    fewer = "fewer employees" if feature == "number_of_employees" else f"less {FEATURE_WORDS[feature]}"
    usual = number_words(records[0]["usual"][feature])
    words = f"{more if side == 'above' else fewer} than usual ({usual})"
    return {"key": key, "count": count, "of": len(records), "words": words}
