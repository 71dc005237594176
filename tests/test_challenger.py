"""Tests of risk.challenger: window sizes, batch preparation, out-of-time validation, the 1-SE rule, the gate.

The data is built here with NumPy (clients whose exit follows a known rule), and the expected predictions
come from scikit-learn's StratifiedKFold and LogisticRegression called directly with the settings the
README specifies, never from the module under test.
"""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import SPECIFIED
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold

from risk import challenger, drift
from risk.config import PipelineError

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]


def readme_model() -> LogisticRegression:
    """The model as the README specifies it (conftest.SPECIFIED), not imported from risk.model."""
    return LogisticRegression(**SPECIFIED)


def fit_readme_model(df: pd.DataFrame) -> LogisticRegression:
    return readme_model().fit(df[FEATURES].to_numpy(float), df["exited"].to_numpy(int))


def client_batch(seed: int, n: int, rule: str = "low") -> pd.DataFrame:
    """`n` clients; with rule "low" they exit when last month's activity (plus noise) is low, with "high"
    when it is high: the opposite relationship, as after a change in the market."""
    rng = np.random.default_rng(seed)
    month, noise = rng.integers(0, 200, n), rng.integers(0, 80, n)
    exited = month + noise < 140 if rule == "low" else month + noise > 140
    return pd.DataFrame(
        {
            "corporation": [f"s{seed}r{i}" for i in range(n)],
            "lastmonth_activity": month,
            "lastyear_activity": rng.integers(0, 3000, n),
            "number_of_employees": rng.integers(1, 500, n),
            "exited": exited.astype(int),
        }
    )


# --- window sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch_rows, min_rows, expected",
    [
        # "1, the fewest newest batches reaching min_rows, 2, 4, 8, ..., all"
        ([10_000], 2000, [1]),  # one batch: 1 = all = the newest alone reaching 2,000
        ([10_000] * 5, 2000, [1, 2, 4, 5]),  # the newest batch reaches 2,000 on its own
        ([500] * 7, 1500, [1, 2, 3, 4, 7]),  # 500 + 500 + 500 reaches 1,500: 3 is a candidate
        ([1000] * 5, 3000, [1, 2, 3, 4, 5]),  # 3 batches reach exactly 3,000: "reaching" includes equality
        ([300] * 10, 2000, [1, 2, 4, 7, 8, 10]),  # 7 x 300 = 2,100 is the first >= 2,000
        ([100] * 10, 2000, [1, 2, 4, 8, 10]),  # nothing reaches 2,000: all the batches
        ([100, 5000, 100, 100], 2000, [1, 2, 3, 4]),  # counted from the newest: 100 + 100 + 5000 -> 3
        ([5000, 100, 100, 100, 100, 100, 100, 100, 100], 2000, [1, 2, 4, 8, 9]),
    ],
)
def test_window_sizes_are_one_the_fewest_reaching_min_rows_powers_of_two_and_all(batch_rows, min_rows, expected):
    assert challenger.window_sizes(batch_rows, min_rows) == expected


def test_window_sizes_default_minimum_is_window_min_rows():
    assert challenger.WINDOW_MIN_ROWS == 2000
    assert challenger.window_sizes([500] * 6) == [1, 2, 4, 6]  # 4 x 500 reaches 2,000
    assert challenger.window_sizes([700] * 6) == [1, 2, 3, 4, 6]  # 3 x 700 = 2,100


# --- preparing batches -------------------------------------------------------------------------


def frame(rows) -> pd.DataFrame:
    """Rows as the data contract types them: codes as text, counts as nullable integers."""
    df = pd.DataFrame(rows, columns=["corporation", *FEATURES, "exited"])
    return df.astype({column: "Int64" for column in [*FEATURES, "exited"]}).astype({"corporation": "str"})


A = ("aaaa", 10, 100, 5, 1)
B = ("bbbb", 20, 200, 6, 0)
B_CHANGED = ("bbbb", 21, 200, 6, 0)  # the same client with a new month's activity: a new row
C_INCOMPLETE = ("cccc", 30, None, 7, 1)
D = ("dddd", 40, 400, 8, 0)
E = ("eeee", 50, 500, 9, 1)


def test_prepare_batches_keeps_a_repeated_row_in_its_first_batch_only_and_drops_incomplete_rows():
    batches = [frame([A, B, C_INCOMPLETE, A]), frame([B, D, D, B_CHANGED]), frame([A, D, E])]
    prepared = challenger.prepare_batches(batches)
    assert len(prepared) == 3
    pd.testing.assert_frame_equal(prepared[0], frame([A, B]))
    pd.testing.assert_frame_equal(prepared[1], frame([D, B_CHANGED]))
    pd.testing.assert_frame_equal(prepared[2], frame([E]))
    # The inputs are not edited.
    pd.testing.assert_frame_equal(batches[0], frame([A, B, C_INCOMPLETE, A]))


def test_prepare_batches_leaves_a_batch_empty_when_all_its_rows_are_old():
    prepared = challenger.prepare_batches([frame([A, B]), frame([B, A])])
    pd.testing.assert_frame_equal(prepared[0], frame([A, B]))
    assert prepared[1].empty and list(prepared[1].columns) == ["corporation", *FEATURES, "exited"]


def test_window_data_is_the_newest_k_prepared_batches():
    batches = [frame([A, B]), frame([B, D]), frame([D, E, C_INCOMPLETE])]
    pd.testing.assert_frame_equal(challenger.window_data(batches, 2), frame([D, E]))
    pd.testing.assert_frame_equal(challenger.window_data(batches, 3), frame([A, B, D, E]))


# --- fold count --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exits, stays, folds",
    [(100, 900, 5), (5, 900, 5), (4, 900, 4), (2, 900, 2), (900, 3, 3), (2, 2, 2)],
)
def test_fold_count_is_five_or_the_rarer_class_count(exits, stays, folds):
    y = np.r_[np.ones(exits, int), np.zeros(stays, int)]
    assert challenger.fold_count(y) == folds


@pytest.mark.parametrize("exits, stays, rarer", [(1, 900, 1), (900, 1, 1), (0, 900, 0), (900, 0, 0)])
def test_fold_count_refuses_fewer_than_two_rows_of_the_rarer_class(exits, stays, rarer):
    y = np.r_[np.ones(exits, int), np.zeros(stays, int)]
    message = f"the newest data holds {rarer} row(s) of its rarer class: too few to validate a model on"
    with pytest.raises(PipelineError, match=f"^{re.escape(message)}$"):
        challenger.fold_count(y)


# --- out-of-time predictions -------------------------------------------------------------------


def test_out_of_time_predictions_never_train_on_the_rows_they_predict(monkeypatch):
    older = client_batch(1, 300).assign(row_id=lambda df: [f"old{i}" for i in range(len(df))])
    newest = client_batch(2, 200).assign(row_id=lambda df: [f"new{i}" for i in range(len(df))])
    trained_on, predicted = [], []
    real_train, real_predict = challenger.train_model, challenger.predict

    def recording_train(df):
        trained_on.append(list(df["row_id"]))
        return real_train(df)

    def recording_predict(model, df):
        predicted.append(list(df["row_id"]))
        return real_predict(model, df)

    monkeypatch.setattr(challenger, "train_model", recording_train)
    monkeypatch.setattr(challenger, "predict", recording_predict)
    y_pred = challenger.out_of_time_predictions(older, newest, 5)

    assert len(trained_on) == len(predicted) == 5
    all_new, all_old = set(newest["row_id"]), set(older["row_id"])
    for training, fold in zip(trained_on, predicted, strict=True):
        assert len(training) == len(set(training))  # no row is used twice
        assert set(training).isdisjoint(fold)  # no predicted row is in its own model's training set
        assert all_old <= set(training)  # every older row is always used
        assert set(training) == all_old | (all_new - set(fold))  # ... with all the other folds
        assert 38 <= len(fold) <= 42  # five folds of 200 rows
    assert sorted(sum(predicted, [])) == sorted(all_new)  # every newest row predicted exactly once
    assert y_pred.shape == (200,) and set(np.unique(y_pred)) <= {0, 1}


def sklearn_out_of_fold(older: pd.DataFrame, newest: pd.DataFrame, n_splits: int) -> np.ndarray:
    """The oracle: sklearn's StratifiedKFold on the newest rows, the model on older + other folds."""
    y = newest["exited"].to_numpy(int)
    y_pred = np.full(len(newest), -1)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=0)
    for train_index, test_index in splitter.split(newest[FEATURES], y):
        model = fit_readme_model(pd.concat([older, newest.iloc[train_index]]))
        y_pred[test_index] = model.predict(newest.iloc[test_index][FEATURES].to_numpy(float))
    return y_pred


def test_out_of_time_predictions_equal_sklearn_out_of_fold_predictions():
    older, newest = client_batch(3, 400), client_batch(4, 250, rule="high")
    expected = sklearn_out_of_fold(older, newest, 5)
    np.testing.assert_array_equal(challenger.out_of_time_predictions(older, newest, 5), expected)


@pytest.mark.parametrize(
    "n, exits, folds",
    # the rule's own exits; or only 3 exits: min(5, 3) folds; or 16 clients, so few that one row seen in
    # training changes predictions (a leak of one row into every fold shows)
    [(300, None, 5), (60, 3, 3), (16, None, 5)],
)
def test_cross_validate_f1_equals_sklearn_on_its_own_out_of_fold_predictions(n, exits, folds):
    df = client_batch(5, n)
    if exits is not None:
        df["exited"] = 0
        df.loc[df.index[[4, 20, 41]], "exited"] = 1
    df["lastyear_activity"] = df["lastyear_activity"].astype(float)
    df.loc[df.index[[1, 7]], "lastyear_activity"] = np.nan  # incomplete rows: left out
    usable = df.dropna().reset_index(drop=True)
    y_true = usable["exited"].to_numpy(int)
    expected_pred = sklearn_out_of_fold(usable.iloc[0:0], usable, folds)
    (tn, fp), (fn, tp) = confusion_matrix(y_true, expected_pred, labels=[0, 1])

    candidate = challenger.cross_validate(df, 0.95, np.random.default_rng(0))

    np.testing.assert_array_equal(candidate.y_pred, expected_pred)
    assert candidate.f1 == pytest.approx(f1_score(y_true, expected_pred, zero_division=0.0), abs=1e-12)
    np.testing.assert_array_equal(candidate.counts, [tp, fp, fn, tn])
    assert (candidate.label, candidate.batches, candidate.rows) == ("all rows", 1, n - 2)
    # The 95 % percentile bootstrap the README describes (10,000 resamples of the rows: a multinomial draw
    # of the four cells), from the same seed: the 2.5th and 97.5th percentiles of the replicates' F1.
    draws = np.random.default_rng(0).multinomial(n - 2, np.array([tp, fp, fn, tn]) / (n - 2), size=10_000)
    f1s = np.array([2 * a / (2 * a + b + c) if 2 * a + b + c else 0.0 for a, b, c, _ in draws])
    assert (candidate.low, candidate.high) == pytest.approx(tuple(np.quantile(f1s, [0.025, 0.975])), abs=1e-12)


# --- choosing among candidates: the one-standard-error rule -------------------------------------


def candidate(batches: int, f1: float, se: float) -> challenger.Candidate:
    return challenger.Candidate(
        f"{batches}", batches, 1000 * batches, np.array([0, 1]), f1, f1 - 2 * se, f1 + 2 * se, np.zeros(4), se
    )


@pytest.mark.parametrize(
    "table, chosen",
    [
        # (batches, F1, se); the values are exact binary fractions so the boundary is exact.
        ([(1, 0.75, 0.125), (2, 0.6875, 0.01), (4, 0.5, 0.01)], 2),  # 2 within 0.125 of the best, 4 not
        ([(1, 0.75, 0.125), (2, 0.625, 0.0), (4, 0.5, 0.0)], 2),  # exactly one se below the best: within
        ([(1, 0.75, 0.0), (2, 0.6875, 0.5), (4, 0.5, 0.5)], 1),  # the best's se counts, not each candidate's
        ([(1, 0.5, 0.0625), (2, 0.75, 0.0625), (4, 0.71875, 0.0625)], 4),  # best is in the middle
        ([(1, 0.5, 0.25), (2, 0.5, 0.25), (4, 0.5, 0.25), (8, 0.5, 0.25)], 8),  # a tie: the most data
        ([(1, 0.25, 0.0625), (2, 0.5, 0.0625), (4, 0.75, 0.0625)], 4),  # the most data is also the best
    ],
)
def test_choose_takes_the_most_data_within_one_standard_error_of_the_best(table, chosen):
    candidates = [candidate(*row) for row in table]
    assert challenger.choose(candidates).batches == chosen


# --- the search, before and after a change --------------------------------------------------------


def test_search_after_a_change_chooses_the_newest_batch_and_the_gate_deploys_it():
    old = [client_batch(seed, 2000, rule="low") for seed in (10, 11, 12)]
    newest = client_batch(13, 2000, rule="high")  # the relationship has turned over
    champion = fit_readme_model(pd.concat(old))

    result = challenger.search([*old, newest], champion, 0.95, np.random.default_rng(0))

    assert [c.label for c in result.candidates] == [
        "newest batch",
        "newest 2 batches",
        "all data (4 batches)",
    ]
    assert [c.rows for c in result.candidates] == [2000, 4000, 8000]
    assert (result.validation_rows, result.folds) == (2000, 5)
    assert result.best.label == "newest batch"
    assert result.best.f1 > 0.8 > max(c.f1 for c in result.candidates[1:])
    y_true = newest["exited"].to_numpy(int)
    np.testing.assert_array_equal(result.y_true, y_true)
    # The champion is judged on the same rows by its own predictions, computed here by sklearn.
    champion_pred = champion.predict(newest[FEATURES].to_numpy(float))
    np.testing.assert_array_equal(result.champion_pred, champion_pred)
    assert float(f1_score(y_true, champion_pred)) < 0.3

    verdict = challenger.gate(result, result.best.y_pred, 0.05, 0.95, np.random.default_rng(0))
    assert (verdict.outcome, verdict.statistic) == ("better", "f1 gain")
    assert verdict.value == pytest.approx(result.best.f1 - f1_score(y_true, champion_pred), abs=1e-12)


def test_search_in_a_stable_period_chooses_all_the_data_and_the_gate_keeps_the_champion():
    old = [client_batch(seed, 2000) for seed in (20, 21, 22)]
    newest = client_batch(23, 2000)
    champion = fit_readme_model(pd.concat(old))

    result = challenger.search([*old, newest], champion, 0.95, np.random.default_rng(0))

    f1s = [c.f1 for c in result.candidates]
    assert max(f1s) - min(f1s) < result.best.se  # the windows do equally well ...
    # ... the newest 2 batches happen to score highest (0.907 against 0.907 - 0.001 for all the data),
    # and the 1-SE rule takes the most data anyway.
    assert max(result.candidates, key=lambda c: c.f1).label == "newest 2 batches"
    assert result.best.label == "all data (4 batches)"
    verdict = challenger.gate(result, result.best.y_pred, 0.05, 0.95, np.random.default_rng(0))
    assert verdict.outcome == "not better"
    assert abs(verdict.value) < 0.05


def test_search_judges_the_newest_batch_after_removing_its_old_rows():
    old = client_batch(30, 2000)
    newest = pd.concat([client_batch(31, 1500), old.iloc[:500]], ignore_index=True)  # 500 rows seen before
    result = challenger.search([old, newest], None, 0.95, np.random.default_rng(0))
    assert result.validation_rows == 1500
    np.testing.assert_array_equal(result.y_true, client_batch(31, 1500)["exited"].to_numpy(int))
    assert result.champion_pred is None and result.champion_counts is None


# --- the gate ------------------------------------------------------------------------------------


def search_result(y_true, best_pred, champion_pred=None) -> challenger.SearchResult:
    y_true, best_pred = np.asarray(y_true), np.asarray(best_pred)
    best = challenger.Candidate(
        "newest batch", 1, len(y_true), best_pred, f1_score(y_true, best_pred, zero_division=0.0), 0, 1, None
    )
    return challenger.SearchResult(
        [best],
        best,
        y_true,
        None if champion_pred is None else np.asarray(champion_pred),
        None,
        len(y_true),
        2,
    )


Y_TRUE = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
GOOD = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1]  # tp 3, fn 1, fp 1: F1 6/8 = 0.75


@pytest.mark.parametrize(
    "best_pred, final_pred",
    [([0] * 10, GOOD), ([1] * 10, GOOD), (GOOD, [0] * 10)],
    ids=["candidate-all-stay", "candidate-all-exit", "final-model-all-stay"],
)
def test_gate_refuses_a_single_class_model_when_the_rows_hold_both_classes(best_pred, final_pred):
    result = search_result(Y_TRUE, best_pred)
    verdict = challenger.gate(result, np.array(final_pred), 0.05, 0.95, np.random.default_rng(0))
    assert (verdict.kind, verdict.statistic, verdict.outcome) == ("gate", "single class", "not better")
    assert verdict.detail == (
        "the best candidate (newest batch) predicts a single class on 10 newest rows that hold both -> refused"
    )


def test_gate_deploys_a_two_class_candidate_when_nothing_is_deployed():
    result = search_result(Y_TRUE, GOOD)
    verdict = challenger.gate(result, np.array(GOOD), 0.05, 0.95, np.random.default_rng(0))
    assert (verdict.statistic, verdict.outcome, verdict.value) == ("f1", "better", 0.75)
    assert verdict.detail == "nothing is deployed: the best candidate (newest batch, F1 0.75) goes live -> better"


def test_gate_accepts_a_single_class_candidate_when_the_rows_hold_a_single_class():
    result = search_result([0] * 10, [0] * 10)
    verdict = challenger.gate(result, np.zeros(10, int), 0.05, 0.95, np.random.default_rng(0))
    assert (verdict.statistic, verdict.outcome) == ("f1", "better")


def test_gate_keeps_the_champion_when_the_challenger_is_not_better_by_the_margin():
    # 10,000 rows, 3,000 exits. Champion: tp 1500, fn 1500, fp 1500 (F1 0.5); the challenger also finds
    # 100 of the missed exits (F1 3200 / 6100 = 0.525): certainly better, but by less than 0.05.
    y_true = np.r_[np.ones(3000, int), np.zeros(7000, int)]
    champion = np.r_[np.ones(1500, int), np.zeros(1500, int), np.ones(1500, int), np.zeros(5500, int)]
    best = champion.copy()
    best[1500:1600] = 1
    result = search_result(y_true, best, champion)
    verdict = challenger.gate(result, best, 0.05, 0.95, np.random.default_rng(0))
    assert (verdict.statistic, verdict.outcome) == ("f1 gain", "not better")
    assert verdict.value == pytest.approx(3200 / 6100 - 0.5, abs=1e-12)
    best[1600:2500] = 1  # now F1 5000 / 7000 = 0.714: better by 0.21
    verdict = challenger.gate(search_result(y_true, best, champion), best, 0.05, 0.95, np.random.default_rng(0))
    assert verdict.outcome == "better"


def test_against_a_degraded_champion_the_gate_deploys_a_challenger_better_at_all_with_the_lower_confidence():
    # The same +0.025 gain that a healthy champion keeps its place against (not by the 0.05 margin):
    # against a degraded champion it is enough, being better with 90 % confidence (paired bootstrap).
    y_true = np.r_[np.ones(3000, int), np.zeros(7000, int)]
    champion = np.r_[np.ones(1500, int), np.zeros(1500, int), np.ones(1500, int), np.zeros(5500, int)]
    best = champion.copy()
    best[1500:1600] = 1
    result = search_result(y_true, best, champion)
    verdict = challenger.gate(result, best, 0.05, 0.99, np.random.default_rng(0), degraded_confidence=0.9)
    assert verdict.outcome == "better"
    assert verdict.detail.startswith("challenger F1 0.52 vs degraded champion 0.50 on the same 10000 newest rows")
    assert "margin 0.00" in verdict.detail and "needs < 0.1" in verdict.detail


@pytest.mark.parametrize("extra_misses", [0, 100], ids=["equal", "worse"])
def test_against_a_degraded_champion_the_gate_never_deploys_an_equal_or_worse_challenger(extra_misses):
    y_true = np.r_[np.ones(3000, int), np.zeros(7000, int)]
    champion = np.r_[np.ones(1500, int), np.zeros(1500, int), np.ones(1500, int), np.zeros(5500, int)]
    best = champion.copy()
    best[:extra_misses] = 0
    verdict = challenger.gate(
        search_result(y_true, best, champion), best, 0.05, 0.99, np.random.default_rng(0), degraded_confidence=0.6
    )
    assert verdict.outcome == "not better"


def test_the_window_since_the_change_replaces_the_newest_window_of_its_size_and_grows_from_its_start():
    windows = challenger.candidate_windows([500, 100, 100, 100, 100], change=2)
    assert [(w.label, w.batches, w.start) for w in windows] == [
        ("newest batch", 1, None),
        ("newest 2 batches", 2, None),
        ("since the change (3 batches)", 3, 2),
        ("newest 4 batches", 4, None),
        ("all data (5 batches)", 5, None),
    ]
    since = windows[2]
    assert [since.older(s) for s in (2, 3, 4)] == [slice(2, 2), slice(2, 3), slice(2, 4)]
    assert [windows[1].older(s) for s in (2, 3, 4)] == [slice(1, 2), slice(2, 3), slice(3, 4)]
    # no change, or a change at the first or newest batch: the newest-k windows alone
    assert challenger.candidate_windows([500, 100, 100], None) == challenger.candidate_windows([500, 100, 100], 2)


def test_a_training_set_of_one_class_predicts_that_class():
    rows = client_batch(1, 20)
    ones = rows.assign(exited=1)
    np.testing.assert_array_equal(challenger.fit_predict(ones, rows), np.ones(20, int))
    np.testing.assert_array_equal(challenger.fit_predict(rows.iloc[0:0], rows), np.zeros(20, int))


@pytest.mark.parametrize("exits, folds", [(0, 1), (1, 1), (2, 2), (4, 4), (9, 5)])
def test_an_evaluated_batch_is_cut_into_at_most_five_folds_and_predicted_whole_below_two(exits, folds):
    y = np.r_[np.ones(exits, int), np.zeros(50, int)]
    assert challenger.batch_folds(y) == folds


# --- reporting a search --------------------------------------------------------------------------


def test_describe_candidates_marks_the_chosen_one():
    candidates = [candidate(1, 0.75, 0.125), candidate(2, 0.6875, 0.01)]
    result = challenger.SearchResult(candidates, candidates[1], np.array([1, 0, 1]), None, None, 3, 2)
    rows = challenger.describe_candidates(result)
    assert [row.outcome for row in rows] == ["candidate", "chosen"]
    assert rows[1].detail == "candidate 2 (2000 rows): F1 0.69 [0.67, 0.71] on 3 newest rows -> chosen"
    assert (rows[0].positives, rows[0].n) == (2, 3)


def test_validation_record_holds_the_candidates_numbers_for_the_model_card():
    chosen = challenger.Candidate("all rows", 1, 10, np.zeros(10), 0.6666666667, 0.4, 0.9, np.array([2, 1, 1, 6]))
    assert challenger.validation_record(chosen, "5-fold cross-validation") == {
        "validation_f1": 0.666667,
        "validation_low": 0.4,
        "validation_high": 0.9,
        "validation_rows": 10,
        "validation_counts": [2, 1, 1, 6],
        "validation_method": "5-fold cross-validation",
    }


# --- every field of what the search reports ------------------------------------------------------


@pytest.mark.parametrize(
    "k, total, label",
    [
        (1, 1, "all data (1 batch)"),
        (2, 2, "all data (2 batches)"),
        (3, 3, "all data (3 batches)"),
        (1, 3, "newest batch"),
        (2, 3, "newest 2 batches"),
    ],
)
def test_window_label_names_the_window_in_words(k, total, label):
    assert challenger.window_label(k, total) == label


def test_prepare_batches_numbers_the_rows_of_each_batch_from_zero():
    prepared = challenger.prepare_batches([frame([A, A, C_INCOMPLETE, B]), frame([B, D])])
    pd.testing.assert_frame_equal(prepared[0], frame([A, B]))  # index 0, 1: not 0, 3
    pd.testing.assert_frame_equal(prepared[1], frame([D]))


def test_describe_candidates_gives_each_candidate_its_numbers_and_only_the_chosen_one_the_mark():
    candidates = [candidate(1, 0.75, 0.125), candidate(2, 0.6875, 0.01)]
    result = challenger.SearchResult(candidates, candidates[1], np.array([1, 0, 1]), None, None, 3, 2)
    assert challenger.describe_candidates(result) == [
        drift.Verdict(
            "candidate",
            "f1",
            "candidate",
            "candidate 1 (1000 rows): F1 0.75 [0.50, 1.00] on 3 newest rows",
            feature="1",
            value=0.75,
            low=0.5,
            high=1.0,
            n=3,
            positives=2,
        ),
        drift.Verdict(
            "candidate",
            "f1",
            "chosen",
            "candidate 2 (2000 rows): F1 0.69 [0.67, 0.71] on 3 newest rows -> chosen",
            feature="2",
            value=0.6875,
            low=0.6675,
            high=0.7075,
            n=3,
            positives=2,
        ),
    ]


def test_the_gate_records_a_refusal_and_a_first_deployment_with_the_rows_they_were_judged_on():
    refused = challenger.gate(search_result(Y_TRUE, [0] * 10), np.array(GOOD), 0.05, 0.95, np.random.default_rng(0))
    assert refused == drift.Verdict(
        "gate",
        "single class",
        "not better",
        "the best candidate (newest batch) predicts a single class on 10 newest rows that hold both -> refused",
        n=10,
    )
    first = challenger.gate(search_result(Y_TRUE, GOOD), np.array(GOOD), 0.05, 0.95, np.random.default_rng(0))
    assert first == drift.Verdict(
        "gate",
        "f1",
        "better",
        "nothing is deployed: the best candidate (newest batch, F1 0.75) goes live -> better",
        value=0.75,
        n=10,
    )


def test_search_counts_the_champions_predictions_on_the_newest_batch():
    newest = client_batch(21, 400, rule="high")
    champion = fit_readme_model(client_batch(20, 2000, rule="low"))
    result = challenger.search([client_batch(20, 2000, rule="low"), newest], champion, 0.95, np.random.default_rng(0))
    champion_pred = champion.predict(newest[FEATURES].to_numpy(float))
    (tn, fp), (fn, tp) = confusion_matrix(newest["exited"], champion_pred, labels=[0, 1])
    np.testing.assert_array_equal(result.champion_pred, champion_pred)
    np.testing.assert_array_equal(result.champion_counts, [tp, fp, fn, tn])
