"""The risk list in words people use, as pure functions: percents, reasons against the median, the
percentage points a feature adds, ties, and a reason most of the list shares.

Expected values are worked out by hand in the comments, or with scikit-learn's own predict_proba.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES
from sklearn.linear_model import LogisticRegression

from risk import ranking


def fixed_model(coefficients, intercept=0.0) -> LogisticRegression:
    """A logistic regression with the given coefficients (as if fitted)."""
    model = LogisticRegression()
    model.coef_ = np.array([coefficients], dtype=float)
    model.intercept_ = np.array([intercept], dtype=float)
    model.classes_ = np.array([0, 1])
    return model


def clients(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["corporation", *FEATURES, "exited"])


@pytest.mark.parametrize(
    "probability, words",
    [
        (1.0, "over 99 %"),
        (0.99999, "over 99 %"),
        (0.995, "over 99 %"),  # would round to 100 %: said as a bound
        (0.994, "99 %"),
        (0.5, "50 %"),
        (0.126, "13 %"),
        (0.005, "1 %"),
        (0.0049, "under 1 %"),  # would round to 0 %
        (0.0, "under 1 %"),
    ],
)
def test_probabilities_are_whole_percents_and_the_ends_are_bounds(probability, words):
    assert ranking.percent_words(probability) == words


@pytest.mark.parametrize(
    "points, words",
    [(41.4, "adds 41 percentage points"), (1.2, "adds 1 percentage point"), (0.3, "adds less than 1 percentage point")],
)
def test_the_points_a_reason_adds_are_said_in_words(points, words):
    assert ranking.points_words(points) == words


@pytest.mark.parametrize(
    "points, words", [(41.4, "+41 points"), (-2.6, "−3 points"), (0.7, "+1 point"), (0.2, "< 1 point")]
)
def test_a_table_cell_says_the_points_with_their_sign(points, words):
    assert ranking.signed_points(points) == words


def test_each_reason_says_the_difference_from_the_median_in_the_features_units_and_the_points_it_adds():
    # Employees push up: 0.05 per employee. Medians: month 10, year 100, employees 35 (the middle client).
    model = fixed_model([0.0, 0.0, 0.05], intercept=-3.0)
    data = clients([("aaaa", 5, 100, 95, 1), ("bbbb", 10, 90, 35, 0), ("cccc", 20, 120, 5, 0)])
    ranked, unscored = ranking.risk_table(data, model, np.array([10.0, 100.0, 45.0]))
    top = ranked.iloc[0]
    # aaaa: z = -3 + 0.05 * 95 = 1.75; with the usual 35 employees, z = -1.25.
    X = np.array([[5, 100, 95], [5, 100, 35]], dtype=float)
    with_usual = model.predict_proba(X)[:, 1]
    points = 100 * (with_usual[0] - with_usual[1])  # 85.2 - 22.3 = 62.9
    assert top["corporation"] == "aaaa" and round(points) == 63
    assert top["reason"] == "employees 95, 60 more than the usual 35: adds 63 percentage points"
    assert top["points_number_of_employees"] == pytest.approx(points)
    assert (top["risk"], top["reason_short"]) == ("85 %", "employees 95: adds 63 percentage points")
    assert ranked.iloc[1]["reason"] == ranking.NO_REASON  # bbbb: at the median; cccc below it
    assert unscored.empty


def test_clients_of_equal_probability_are_ranked_by_the_stronger_reason_not_by_code():
    # 10 per employee: every probability but the smallest two saturates at exactly 1.0 in floating point.
    model = fixed_model([0.0, 0.0, 10.0])
    data = clients([("aaaa", 1, 1, 100, 1), ("bbbb", 1, 1, 200, 1), ("cccc", 1, 1, 300, 1), ("dddd", 1, 1, 2, 0)])
    data.loc[4] = ["eeee", 1, 1, 1, 0]
    probabilities = model.predict_proba(data[FEATURES].to_numpy(float))[:, 1]
    assert probabilities.tolist()[:3] == [1.0, 1.0, 1.0]
    ranked, _ = ranking.risk_table(data, model, np.zeros(3))
    # Median 100 employees: cccc adds the most (300 is 200 more), then bbbb, then aaaa (usual: no reason).
    assert ranked["corporation"].tolist() == ["cccc", "bbbb", "aaaa", "dddd", "eeee"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 5]


def page_records(keys: list[str | None]) -> list[dict]:
    usual = {"lastmonth_activity": 50.0, "lastyear_activity": 600.0, "number_of_employees": 35.0}
    return [{"reason_key": key, "usual": usual} for key in keys]


@pytest.mark.parametrize(
    "keys, shared",
    [
        (["number_of_employees above"] * 14 + ["lastmonth_activity below"] * 6, (14, "more employees than usual (35)")),
        (["lastmonth_activity below"] * 11 + [None] * 9, (11, "less activity last month than usual (50)")),
        (["number_of_employees above"] * 10 + ["lastmonth_activity below"] * 10, None),  # half is not most
        (["number_of_employees above"] * 2 + [None], None),  # too few to say
        ([None] * 5, None),
    ],
)
def test_a_reason_most_of_the_list_shares_is_said_once(keys, shared):
    found = ranking.shared_reason(page_records(keys))
    assert (None if found is None else (found["count"], found["words"])) == shared
