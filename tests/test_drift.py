"""Pure-function tests of risk.drift: each statistic against a known answer or an independent oracle.

Expected values come from sklearn.metrics, scipy.stats, the delta method or arithmetic worked out in a
comment, never from the function under test. Every random draw is seeded, so every test is deterministic;
the tolerances say how far a different seed could move the answer.
"""

import math
import re

import numpy as np
import pytest
import scipy.stats
from scipy.stats import ks_2samp, norm
from sklearn.metrics import confusion_matrix, f1_score

from risk import drift

# Population shares of [tp, fp, fn, tn] used throughout: F1 = 2(.15) / (2(.15) + .05 + .10) = 2/3.
POPULATION = np.array([0.15, 0.05, 0.10, 0.70])
POPULATION_F1 = 2 / 3


def delta_method_se(counts) -> float:
    """Standard error of F1 = 2tp / (2tp + fp + fn) under multinomial sampling (the delta method).

    With p_t = tp/n and p_f = (fp + fn)/n, D = 2 p_t + p_f, the gradient is (2 p_f, -2 p_t) / D^2 and
    the multinomial covariance gives Var = 4 p_t p_f (p_t + p_f) / (n D^4).
    """
    tp, fp, fn, tn = counts
    n = tp + fp + fn + tn
    p_t, p_f = tp / n, (fp + fn) / n
    return 2 * math.sqrt(p_t * p_f * (p_t + p_f) / n) / (2 * p_t + p_f) ** 2


# --- confusion counts and F1 -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_confusion_counts_are_tp_fp_fn_tn_as_sklearn_counts_them(seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, labels=[0, 1])
    np.testing.assert_array_equal(drift.confusion_counts(y_true, y_pred), [tp, fp, fn, tn])


@pytest.mark.parametrize("seed", range(6))
def test_f1_of_counts_equals_sklearn_f1_score(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.random(300) < rng.uniform(0.05, 0.6)
    y_pred = np.where(rng.random(300) < 0.7, y_true, ~y_true)
    f1 = drift.f1_of(drift.confusion_counts(y_true, y_pred))
    assert isinstance(f1, float)
    assert f1 == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        ([0, 0, 0, 0], [0, 0, 0, 0]),  # no exits, none predicted: 0/0, defined as 0
        ([1, 1, 0], [0, 0, 0]),  # no true positive: 0 / (0 + 0 + 2)
        ([0, 0, 0], [1, 1, 0]),  # only false alarms: 0 / (0 + 2 + 0)
    ],
)
def test_f1_of_is_zero_when_there_is_no_true_positive(y_true, y_pred):
    expected = f1_score(y_true, y_pred, zero_division=0.0)
    assert expected == 0.0
    assert drift.f1_of(drift.confusion_counts(y_true, y_pred)) == 0.0


def test_f1_of_accepts_a_stack_of_tables_and_returns_one_f1_per_row():
    rng = np.random.default_rng(7)
    pairs = [(rng.integers(0, 2, 50), rng.integers(0, 2, 50)) for _ in range(5)]
    pairs.append((np.zeros(50, int), np.zeros(50, int)))  # the undefined case inside a stack
    stack = np.stack([drift.confusion_counts(y_true, y_pred) for y_true, y_pred in pairs])
    assert stack.shape == (6, 4)
    expected = [f1_score(y_true, y_pred, zero_division=0.0) for y_true, y_pred in pairs]
    np.testing.assert_allclose(drift.f1_of(stack), expected, rtol=0, atol=1e-12)


# --- bootstrap replicates ----------------------------------------------------------------------


def test_resample_counts_replicates_each_hold_all_n_rows():
    counts = [300, 100, 100, 1500]
    replicates = drift.resample_counts(counts, np.random.default_rng(0), 1000)
    assert replicates.shape == (1000, 4)
    assert np.all(replicates.sum(axis=1) == 2000)


def test_resample_counts_mean_and_variance_are_the_multinomial_ones():
    counts = np.array([300, 100, 100, 1500])
    n, shares, resamples = 2000, counts / 2000, 20_000
    replicates = drift.resample_counts(counts, np.random.default_rng(1), resamples)
    # Law of large numbers: each cell's replicate sd is sqrt(n p (1 - p)) <= sqrt(2000 / 4) = 22.4, so the
    # mean of 20,000 replicates has sd <= 0.16; a tolerance of 1 row is more than 6 sd.
    np.testing.assert_allclose(replicates.mean(axis=0), counts, rtol=0, atol=1.0)
    # Rows drawn WITH replacement: Var = n p (1 - p) (a draw without replacement would have variance 0).
    # The sample variance of 20,000 draws is within about sqrt(2 / 20,000) = 1% of it; allow 5%.
    np.testing.assert_allclose(replicates.var(axis=0), n * shares * (1 - shares), rtol=0.05)


def test_resample_counts_is_reproducible_from_the_seed_and_keeps_empty_cells_empty():
    counts = [40, 0, 10, 0]
    first = drift.resample_counts(counts, np.random.default_rng(42), 500)
    again = drift.resample_counts(counts, np.random.default_rng(42), 500)
    other = drift.resample_counts(counts, np.random.default_rng(43), 500)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.all(first[:, [1, 3]] == 0)


# --- the F1 interval ---------------------------------------------------------------------------


def test_f1_interval_matches_the_delta_method_interval():
    # counts [300, 100, 100, 1500]: F1 = 600 / 800 = 0.75; delta-method se = 2 sqrt(.15 * .1 * .25 / 2000)
    # / .4^2 = 0.01712; 90%: 0.75 -+ 1.645 * 0.01712 = [0.7218, 0.7782]. F1 is nearly normal at n = 2000, so
    # the percentile bootstrap lands within 0.004 of it (the bootstrap's own Monte Carlo error is ~0.001).
    counts = [300, 100, 100, 1500]
    half_width = norm.ppf(0.95) * delta_method_se(counts)
    low, high = drift.f1_interval(counts, 0.9, np.random.default_rng(0))
    assert low < 0.75 < high
    assert low == pytest.approx(0.75 - half_width, abs=0.004)
    assert high == pytest.approx(0.75 + half_width, abs=0.004)


def test_f1_interval_narrows_by_sqrt_10_with_ten_times_the_rows():
    small, large = np.array([30, 10, 10, 150]), np.array([300, 100, 100, 1500])  # same shares, F1 0.75
    low_small, high_small = drift.f1_interval(small, 0.9, np.random.default_rng(0))
    low_large, high_large = drift.f1_interval(large, 0.9, np.random.default_rng(0))
    assert low_small < low_large < 0.75 < high_large < high_small
    # Widths scale as 1/sqrt(n): the ratio is 1/sqrt(10) = 0.316 (the small sample's percentiles are
    # coarser, being ratios of small integers, hence the loose band).
    ratio = (high_large - low_large) / (high_small - low_small)
    assert 0.25 < ratio < 0.40


def test_f1_interval_covers_the_population_f1_about_as_often_as_its_confidence():
    # 200 samples of 500 rows from POPULATION (F1 2/3); each 90% interval should contain 2/3 about 90% of
    # the time. The number covered is Binomial(200, ~0.9): sd 0.021, so 0.80-0.97 spans -4.7 to +3.3 sd
    # around 0.9, wide enough for the percentile bootstrap's small under-coverage at n = 500, narrow
    # enough to fail for a 50% or a 99% interval.
    rng = np.random.default_rng(2024)
    covered = 0
    for _ in range(200):
        counts = rng.multinomial(500, POPULATION)
        low, high = drift.f1_interval(counts, 0.9, rng, resamples=400)
        covered += low <= POPULATION_F1 <= high
    assert 0.80 <= covered / 200 <= 0.97


# --- performance verdict -----------------------------------------------------------------------

REFERENCE_COUNTS = np.array([800, 200, 200, 8800])  # 10,000 validation rows, F1 1600 / 2000 = 0.80
PERFORMANCE = dict(margin=0.05, confidence=0.95, min_rows=500, min_positives=50)


def test_performance_verdict_calls_a_clear_drop_drift_with_the_smallest_p_value():
    new_counts = [30, 90, 50, 830]  # 1,000 rows, 80 exits (tp + fn), F1 60 / 200 = 0.30: a drop of 0.50
    verdict = drift.performance_verdict(new_counts, 0.8, REFERENCE_COUNTS, **PERFORMANCE, rng=np.random.default_rng(0))
    assert verdict.outcome == drift.DRIFT
    # The drop's sd is about 0.04 (delta method): no replicate comes near 0.05, so p = (1 + 0) / (1 + B).
    assert verdict.p_value == 1 / (drift.RESAMPLES + 1)
    assert verdict.value == pytest.approx(0.3)
    assert (verdict.reference, verdict.n, verdict.positives) == (0.8, 1000, 80)
    assert verdict.low < 0.3 < verdict.high
    assert re.fullmatch(
        r"F1 0\.30 \[0\.\d\d, 0\.\d\d\] on 1000 new rows vs 0\.80 expected: drop 0\.50 "
        r"\(at least 0\.\d\d with 95 % confidence\) > margin 0\.05 \(p < 0\.001\) -> drift",
        verdict.detail,
    ), verdict.detail


def test_performance_verdict_sees_no_drift_when_the_new_rows_score_as_the_reference():
    new_counts = [80, 20, 20, 880]  # 1,000 rows, F1 160 / 200 = 0.80, as the reference
    verdict = drift.performance_verdict(new_counts, 0.8, REFERENCE_COUNTS, **PERFORMANCE, rng=np.random.default_rng(0))
    assert verdict.outcome == drift.NO_DRIFT
    # drop ~ N(0, 0.032): P(drop <= 0.05) = Phi(1.56) = 0.94.
    assert verdict.p_value == pytest.approx(0.94, abs=0.03)
    assert verdict.detail.endswith(f"not clearly > margin 0.05 (p = {verdict.p_value:.3f}) -> no drift")


@pytest.mark.parametrize("reference_counts", [REFERENCE_COUNTS * 100, None], ids=["resampled", "fixed"])
def test_performance_verdict_does_not_call_a_drop_of_exactly_the_margin_drift(reference_counts):
    # New F1 6000 / 8000 = 0.75 on 20,000 rows against 0.80: the drop IS the margin, H0 (drop <= margin)
    # holds at its boundary; the replicates straddle the margin and p is about 1/2.
    new_counts = [3000, 1000, 1000, 15000]
    verdict = drift.performance_verdict(new_counts, 0.8, reference_counts, **PERFORMANCE, rng=np.random.default_rng(0))
    assert verdict.outcome == drift.NO_DRIFT
    assert 0.3 < verdict.p_value < 0.7


@pytest.mark.parametrize(
    "new_counts, drop, outcome",
    [
        # 1,000,000 new rows against 1,000,000 reference rows: the drop's sd is about 0.0012 (delta method),
        # so any drop is significant; only the margin, 8 sd away from both, separates these.
        ([190_000, 60_000, 60_000, 690_000], 0.04, drift.NO_DRIFT),  # F1 .38 / .50 = 0.76
        ([185_000, 65_000, 65_000, 685_000], 0.06, drift.DRIFT),  # F1 .37 / .50 = 0.74
    ],
)
def test_performance_verdict_on_huge_samples_calls_drift_only_beyond_the_margin(new_counts, drop, outcome):
    reference_counts = REFERENCE_COUNTS * 100
    verdict = drift.performance_verdict(new_counts, 0.8, reference_counts, **PERFORMANCE, rng=np.random.default_rng(0))
    assert 0.8 - verdict.value == pytest.approx(drop)
    assert verdict.outcome == outcome
    # Every replicate falls on the same side of the margin: p is its smallest or largest possible value.
    expected_p = 1 / (drift.RESAMPLES + 1) if outcome == drift.DRIFT else 1.0
    assert verdict.p_value == expected_p


@pytest.mark.parametrize("sds_beyond_margin, expected_p", [(1.0, norm.sf(1.0)), (2.5, norm.sf(2.5))])
def test_performance_verdict_p_value_is_the_share_of_bootstrap_drops_within_the_margin(sds_beyond_margin, expected_p):
    # A fixed reference F1 set so the observed drop exceeds the margin by k delta-method sds; the bootstrap
    # p = P(drop* <= margin) is then about Phi(-k): 0.159 for k = 1 (no drift at 95%), 0.0062 for k = 2.5
    # (drift). The wrong tail would give 0.84 and 0.99; Monte Carlo error is 0.004, skew adds a little.
    new_counts = [300, 100, 100, 1500]  # F1 0.75 on 2,000 rows
    se = delta_method_se(new_counts)
    reference_f1 = 0.75 + 0.05 + sds_beyond_margin * se
    verdict = drift.performance_verdict(new_counts, reference_f1, None, **PERFORMANCE, rng=np.random.default_rng(1))
    assert verdict.p_value == pytest.approx(expected_p, abs=0.01)
    assert verdict.outcome == (drift.DRIFT if verdict.p_value < 0.05 else drift.NO_DRIFT)
    assert verdict.outcome == (drift.DRIFT if sds_beyond_margin == 2.5 else drift.NO_DRIFT)
    # The reported interval is the 95% two-sided one: 0.75 -+ 1.96 se.
    assert verdict.low == pytest.approx(0.75 - 1.96 * se, abs=0.005)
    assert verdict.high == pytest.approx(0.75 + 1.96 * se, abs=0.005)


@pytest.mark.parametrize(
    "new_counts, detail",
    [
        (
            [30, 70, 70, 230],  # 400 rows (< 500) with 100 exits, F1 60 / 200
            "F1 0.30 on 400 new rows with 100 exits vs 0.80 expected: "
            "below the minimum of 500 rows and 50 exits -> insufficient data",
        ),
        (
            [10, 60, 10, 920],  # 1,000 rows with 20 exits (< 50; 70 predicted), F1 20 / 90
            "F1 0.22 on 1000 new rows with 20 exits vs 0.80 expected: "
            "below the minimum of 500 rows and 50 exits -> insufficient data",
        ),
    ],
    ids=["too-few-rows", "too-few-exits"],
)
def test_performance_verdict_refuses_to_decide_below_the_minimum_sample(new_counts, detail):
    verdict = drift.performance_verdict(new_counts, 0.8, REFERENCE_COUNTS, **PERFORMANCE, rng=np.random.default_rng(0))
    assert verdict.outcome == drift.INSUFFICIENT
    assert verdict.detail == detail
    assert verdict.p_value is None and verdict.low is None


def test_performance_verdict_decides_at_exactly_the_minimum_sample():
    new_counts = [25, 40, 25, 410]  # exactly 500 rows and 50 exits (tp + fn)
    verdict = drift.performance_verdict(new_counts, 0.8, REFERENCE_COUNTS, **PERFORMANCE, rng=np.random.default_rng(0))
    assert (verdict.n, verdict.positives) == (500, 50)
    assert verdict.outcome == drift.DRIFT  # F1 50 / 115 = 0.43 against 0.80


@pytest.mark.parametrize("reference_counts", [None, [0, 0, 0, 0]], ids=["none", "empty"])
def test_performance_verdict_with_a_fixed_reference_f1_resamples_only_the_new_rows(reference_counts):
    # New F1 0.75 on 2,000 rows against a fixed 0.75: drop ~ N(0, 0.017), P(drop <= 0.05) = Phi(2.9).
    verdict = drift.performance_verdict(
        [300, 100, 100, 1500], 0.75, reference_counts, **PERFORMANCE, rng=np.random.default_rng(0)
    )
    assert verdict.outcome == drift.NO_DRIFT
    assert verdict.p_value > 0.99
    assert verdict.reference == 0.75


@pytest.mark.parametrize("seed", range(20))
def test_performance_verdict_p_value_is_at_least_one_over_b_plus_one_and_decides_the_outcome(seed):
    rng = np.random.default_rng(seed)
    # The new rows' F1 is 0.255 / 0.4275 = 0.60, a drop of 0.07: close enough to the margin that both
    # outcomes occur across the seeds.
    reference = rng.multinomial(5000, POPULATION)
    new = rng.multinomial(1000, POPULATION * [0.85, 1.15, 1.15, 1.0])
    resamples = 199
    verdict = drift.performance_verdict(
        new, drift.f1_of(reference), reference, **PERFORMANCE, rng=rng, resamples=resamples
    )
    assert verdict.p_value >= 1 / (resamples + 1)
    assert (verdict.p_value * (resamples + 1)) == pytest.approx(round(verdict.p_value * (resamples + 1)))
    assert (verdict.outcome == drift.DRIFT) == (verdict.p_value < 1 - PERFORMANCE["confidence"])


@pytest.mark.parametrize(
    "margin, low, high",
    [
        # Margin 0: H0 is "no drop" and the populations are equal, so a 95% test errs about 5% of the time;
        # over 300 seeds that is Binomial(300, 0.05): 15 +- 3.8, and 2%-10% spans about -4 to +8 sd.
        (0.0, 0.02, 0.10),
        # The working margin 0.05: the drop's sd is 0.027 (delta method), so a false alarm needs an observed
        # drop near 0.05 + 1.645 * 0.027 = 0.094, a 3.5-sd event (p ~ 0.0002): expect 0, allow 1 in 300.
        (0.05, 0.0, 1 / 300),
    ],
)
def test_performance_verdict_false_alarm_rate_under_no_change(margin, low, high):
    alarms = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        reference, new = rng.multinomial(10_000, POPULATION), rng.multinomial(1000, POPULATION)
        verdict = drift.performance_verdict(
            new, drift.f1_of(reference), reference, margin, 0.95, 500, 50, rng, resamples=500
        )
        alarms += verdict.outcome == drift.DRIFT
    assert low <= alarms / 300 <= high


# --- challenger gain ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_paired_cells_and_f1_pair_give_sklearn_f1_of_both_predictions(seed):
    rng = np.random.default_rng(seed)
    y_true, pred_a, pred_b = rng.integers(0, 2, (3, 400))
    cells = drift.paired_cells(y_true, pred_a, pred_b)
    assert cells.sum() == 400
    f1_a, f1_b = drift.f1_pair(cells)
    assert f1_a == pytest.approx(f1_score(y_true, pred_a), abs=1e-12)
    assert f1_b == pytest.approx(f1_score(y_true, pred_b), abs=1e-12)


def test_paired_cells_index_is_four_label_plus_two_a_plus_b():
    y_true, pred_a, pred_b = [0, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 0, 1]  # cells 2, 7, 7, 4, 5
    np.testing.assert_array_equal(drift.paired_cells(y_true, pred_a, pred_b), [0, 0, 1, 0, 1, 1, 0, 2])


def test_f1_pair_is_vectorised_over_a_stack_of_cell_tables():
    rng = np.random.default_rng(3)
    triples = [rng.integers(0, 2, (3, 60)) for _ in range(4)]
    stack = np.stack([drift.paired_cells(*triple) for triple in triples])
    f1_a, f1_b = drift.f1_pair(stack)
    np.testing.assert_allclose(f1_a, [f1_score(t[0], t[1]) for t in triples], atol=1e-12)
    np.testing.assert_allclose(f1_b, [f1_score(t[0], t[2]) for t in triples], atol=1e-12)


def test_gain_verdict_of_a_challenger_identical_to_the_champion_is_zero_and_not_better():
    y_true = np.array([1] * 5 + [0] * 5)
    y_pred = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0, 0])
    verdict = drift.gain_verdict(y_true, y_pred, y_pred, 0.05, 0.95, np.random.default_rng(0))
    assert (verdict.outcome, verdict.value, verdict.low, verdict.high) == ("not better", 0.0, 0.0, 0.0)
    assert verdict.p_value == 1.0  # every replicate's gain is 0, i.e. <= 0: (1 + B) / (1 + B)
    assert verdict.detail == (
        "challenger F1 0.44 vs champion 0.44 on the same 10 newest rows: "
        "gain +0.00 [+0.00, +0.00] <= margin 0.05 (p = 1.000) -> not better"
    )


def clients_with_predictions(extra_true_positives: int):
    """10,000 rows, 3,000 exits; the champion finds half (tp 1500, fn 1500, fp 1500: F1 0.5); the
    challenger predicts the same but also finds `extra_true_positives` of the missed exits."""
    y_true = np.r_[np.ones(3000, int), np.zeros(7000, int)]
    champion = np.r_[np.ones(1500, int), np.zeros(1500, int), np.ones(1500, int), np.zeros(5500, int)]
    challenger = champion.copy()
    challenger[1500 : 1500 + extra_true_positives] = 1
    return y_true, challenger, champion


@pytest.mark.parametrize(
    "extra, gain, outcome",
    [
        # tp 2500, fn 500, fp 1500: F1 5000 / 7000 = 0.714; gain 0.214 > 0.05
        (1000, 5000 / 7000 - 0.5, "better"),
        # tp 1600, fn 1400, fp 1500: F1 3200 / 6100 = 0.525; gain 0.025 < 0.05 although certain
        (100, 3200 / 6100 - 0.5, "not better"),
    ],
)
def test_gain_verdict_needs_the_gain_to_exceed_the_margin(extra, gain, outcome):
    y_true, challenger, champion = clients_with_predictions(extra)
    verdict = drift.gain_verdict(y_true, challenger, champion, 0.05, 0.95, np.random.default_rng(0))
    assert verdict.value == pytest.approx(gain, abs=1e-12)
    assert verdict.value == pytest.approx(f1_score(y_true, challenger) - f1_score(y_true, champion), abs=1e-12)
    assert verdict.reference == pytest.approx(0.5)
    # The challenger is right wherever they differ, so a replicate's gain is <= 0 only when it draws none
    # of the `extra` rows: (1 - extra/n)^n ~ e^-100 ~ 0. p is the smallest possible in both cases.
    assert verdict.p_value == 1 / (drift.RESAMPLES + 1)
    assert verdict.outcome == outcome
    assert (verdict.n, verdict.positives) == (10_000, 3000)


def test_gain_verdict_of_a_large_gain_on_few_rows_is_not_better_when_not_significant():
    # 10 rows; the challenger differs from the champion on one row only, an exit it finds: F1 6/10 vs 4/9,
    # gain 0.156 > margin. A paired replicate's gain is 0 exactly when that row is not drawn, which happens
    # with probability (1 - 1/10)^10 = 0.349: p ~ 0.349 (Monte Carlo sd 0.005), not significant.
    y_true = np.array([1] * 5 + [0] * 5)
    champion = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0, 0])
    challenger = np.array([1, 1, 1, 0, 0, 1, 1, 0, 0, 0])
    verdict = drift.gain_verdict(y_true, challenger, champion, 0.05, 0.95, np.random.default_rng(0))
    assert verdict.value == pytest.approx(0.6 - 4 / 9)
    assert verdict.p_value == pytest.approx(0.9**10, abs=0.02)
    assert verdict.outcome == "not better"


# --- Kolmogorov-Smirnov ------------------------------------------------------------------------


def test_ks_verdict_of_identical_samples_is_zero_and_no_drift():
    values = np.random.default_rng(0).normal(size=500)
    verdict = drift.ks_verdict("lastmonth_activity", values, values.copy(), 0.95)
    assert (verdict.outcome, verdict.value, verdict.p_value) == (drift.NO_DRIFT, 0.0, 1.0)
    assert verdict.detail == (
        "lastmonth_activity: KS D 0.000 (p = 1.000) on 500 new rows vs 500 reference rows -> no drift"
    )


def test_ks_verdict_calls_a_one_sd_shift_drift_with_scipys_statistic():
    rng = np.random.default_rng(0)
    reference, new = rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)
    expected = ks_2samp(reference, new)
    verdict = drift.ks_verdict("x", reference, new, 0.95)
    # Population D for a 1-sd shift: 2 Phi(0.5) - 1 = 0.383.
    assert verdict.value == expected.statistic == pytest.approx(0.383, abs=0.03)
    assert verdict.p_value == expected.pvalue
    assert verdict.outcome == drift.DRIFT
    assert (
        verdict.detail
        == f"x: KS D {expected.statistic:.3f} (p < 0.001) on 2000 new rows vs 2000 reference rows -> drift"
    )


def test_ks_verdict_ignores_a_significant_but_tiny_shift():
    # 200,000 rows each, shift 0.1 sd: D ~ 2 Phi(0.05) - 1 = 0.04 < KS_MIN_EFFECT, yet p is tiny.
    rng = np.random.default_rng(0)
    reference, new = rng.normal(0, 1, 200_000), rng.normal(0.1, 1, 200_000)
    verdict = drift.ks_verdict("x", reference, new, 0.95)
    assert verdict.p_value < 1e-6
    assert verdict.value == pytest.approx(0.04, abs=0.01)
    assert verdict.outcome == drift.NO_DRIFT


@pytest.mark.parametrize(
    "shift, outcome",
    [
        (15, drift.NO_DRIFT),  # D 0.15 >= 0.1 but scipy's p = 0.21: not significant
        (25, drift.DRIFT),  # D 0.25 and p = 0.004
    ],
)
def test_ks_verdict_needs_both_significance_and_effect_size(shift, outcome):
    reference = np.arange(100.0)
    new = reference + shift  # D = shift / 100 exactly
    verdict = drift.ks_verdict("x", reference, new, 0.95)
    assert verdict.value == pytest.approx(shift / 100)
    assert verdict.p_value == ks_2samp(reference, new).pvalue
    assert verdict.outcome == outcome


@pytest.mark.parametrize(
    "n_reference, n_new, outcome",
    [(99, 500, drift.INSUFFICIENT), (500, 99, drift.INSUFFICIENT), (100, 100, drift.NO_DRIFT)],
)
def test_ks_verdict_needs_min_data_rows_in_each_sample(n_reference, n_new, outcome):
    rng = np.random.default_rng(0)
    verdict = drift.ks_verdict("x", rng.normal(size=n_reference), rng.normal(size=n_new), 0.95)
    assert verdict.outcome == outcome
    if outcome == drift.INSUFFICIENT:
        assert verdict.detail == (
            f"x: KS needs 100 rows in each sample, has {n_reference} and {n_new} -> insufficient data"
        )
        assert verdict.value is None


# --- population stability index ----------------------------------------------------------------


def test_psi_of_identical_samples_is_zero():
    values = np.random.default_rng(0).normal(size=1000)
    assert abs(drift.psi(values, values.copy())) < 1e-12


def test_psi_on_a_tiny_example_worked_by_hand():
    # bins=4: cut points at the reference's 25/50/75% quantiles, numpy's linear rule, position q (n - 1):
    #   sorted reference 1 1 1 1 1 2 3 4; positions 1.75 -> 1, 3.5 -> 1, 5.25 -> 2 + 0.25 (3 - 2) = 2.25.
    #   Tied cut points merge: edges [1, 2.25], bins (-inf, 1], (1, 2.25], (2.25, inf) (a value on an edge
    #   goes to the bin below it).
    # reference counts [5, 1, 2] of 8; new [1, 2, 2, 3, 5, 9] -> [1, 2, 3] of 6.
    # Half a row added to each bin: reference (5.5, 1.5, 2.5) / 9.5 = (11, 3, 5) / 19;
    #   new (1.5, 2.5, 3.5) / 7.5 = (1/5, 1/3, 7/15).
    # PSI = sum (new - ref) ln(new / ref)
    #     = -36/95 ln(19/55) + 10/57 ln(19/9) + 58/285 ln(133/75) = 0.4028 + 0.1311 + 0.1166 = 0.6505
    expected = -36 / 95 * math.log(19 / 55) + 10 / 57 * math.log(19 / 9) + 58 / 285 * math.log(133 / 75)
    reference, new = [1, 1, 1, 1, 1, 2, 3, 4], [1, 2, 2, 3, 5, 9]
    assert drift.psi(reference, new, bins=4) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.6505, abs=1e-4)


def population_psi(shift: float) -> float:
    """PSI of N(shift, 1) against N(0, 1) over the reference's deciles, from the normal CDF."""
    edges = np.r_[-np.inf, norm.ppf(np.linspace(0, 1, 11)[1:-1]), np.inf]
    new_share, reference_share = np.diff(norm.cdf(edges - shift)), np.full(10, 0.1)
    return float(np.sum((new_share - reference_share) * np.log(new_share / reference_share)))


@pytest.mark.parametrize(
    "shift, outcome",
    [(0.2, drift.NO_DRIFT), (0.5, drift.DRIFT)],  # population PSI 0.039 and 0.238
)
def test_psi_of_a_shifted_normal_matches_the_population_value(shift, outcome):
    # 100,000 rows each: the sample PSI's sd is about 0.003 here; allow 0.01.
    rng = np.random.default_rng(0)
    reference, new = rng.normal(0, 1, 100_000), rng.normal(shift, 1, 100_000)
    value = drift.psi(reference, new)
    assert value == pytest.approx(population_psi(shift), abs=0.01)
    verdict = drift.psi_verdict("x", reference, new, 0.99)
    assert verdict.value == value
    assert verdict.outcome == outcome
    relation = ">=" if outcome == drift.DRIFT else "<"
    assert verdict.detail == f"x: PSI {value:.3f} ({relation} 0.2, p < 0.001) -> {outcome}"


@pytest.mark.parametrize("n_reference, n_new", [(99, 500), (500, 99)])
def test_psi_verdict_needs_min_data_rows_in_each_sample(n_reference, n_new):
    rng = np.random.default_rng(0)
    verdict = drift.psi_verdict("x", rng.normal(size=n_reference), rng.normal(5, 1, size=n_new), 0.99)
    assert verdict.outcome == drift.INSUFFICIENT
    assert verdict.detail == (
        f"x: PSI needs 100 rows in each sample, has {n_reference} and {n_new} -> insufficient data"
    )


# --- exit rate ---------------------------------------------------------------------------------


def labels_with_rate(n: int, rate: float) -> np.ndarray:
    exits = round(n * rate)
    return np.r_[np.ones(exits, int), np.zeros(n - exits, int)]


@pytest.mark.parametrize(
    "n, reference_rate, new_rate, outcome, change",
    [
        (10_000, 0.25, 0.25, drift.NO_DRIFT, "+0.0%"),
        (10_000, 0.25, 0.45, drift.DRIFT, "+20.0%"),
        (10_000, 0.45, 0.25, drift.DRIFT, "-20.0%"),  # a fall counts as well as a rise
        (1_000_000, 0.25, 0.28, drift.NO_DRIFT, "+3.0%"),  # certain, but below the 5-point margin
        (1_000_000, 0.25, 0.30, drift.NO_DRIFT, "+5.0%"),  # exactly the margin: p ~ 1/2
        (1_000_000, 0.25, 0.31, drift.DRIFT, "+6.0%"),
    ],
)
def test_exit_rate_verdict_flags_changes_beyond_five_points(n, reference_rate, new_rate, outcome, change):
    verdict = drift.exit_rate_verdict(labels_with_rate(n, reference_rate), labels_with_rate(n, new_rate), 0.95)
    assert verdict.outcome == outcome
    assert f"change {change} [" in verdict.detail
    assert (verdict.value, verdict.reference) == (pytest.approx(new_rate), pytest.approx(reference_rate))


def test_exit_rate_verdict_interval_and_p_value_are_the_two_proportion_normal_ones():
    # 25% vs 45% of 10,000: se = sqrt(.25 * .75 / 1e4 + .45 * .55 / 1e4) = sqrt(4.35e-5) = 0.006595;
    # 95%: 0.20 -+ 1.96 * 0.006595 = [0.1871, 0.2129]; p = P(Z > (0.20 - 0.05) / se) = P(Z > 22.7).
    se = math.sqrt(0.25 * 0.75 / 1e4 + 0.45 * 0.55 / 1e4)
    verdict = drift.exit_rate_verdict(labels_with_rate(10_000, 0.25), labels_with_rate(10_000, 0.45), 0.95)
    assert verdict.low == pytest.approx(0.2 - norm.ppf(0.975) * se, rel=1e-9)
    assert verdict.high == pytest.approx(0.2 + norm.ppf(0.975) * se, rel=1e-9)
    assert verdict.p_value == pytest.approx(norm.sf(0.15 / se), rel=1e-6)
    assert verdict.detail == (
        "exit rate 45.0% on 10000 new rows vs 25.0% on the reference: change +20.0% [+18.7%, +21.3%] "
        "vs margin 5% -> drift"
    )
    assert verdict.positives == 4500


@pytest.mark.parametrize("n_reference, n_new", [(99, 5000), (5000, 99)])
def test_exit_rate_verdict_needs_min_data_rows_in_each_sample(n_reference, n_new):
    verdict = drift.exit_rate_verdict(labels_with_rate(n_reference, 0.2), labels_with_rate(n_new, 0.8), 0.95)
    assert verdict.outcome == drift.INSUFFICIENT
    assert verdict.detail == (
        f"exit rate needs 100 rows in each sample, has {n_reference} and {n_new} -> insufficient data"
    )


# --- the course's rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f1_all_rows, test_f1, outcome, relation",
    [
        (0.5301, 0.5966, drift.DRIFT, "<"),
        (0.5966, 0.5966, drift.NO_DRIFT, ">="),  # the course's edge: an equal score is not drift
        (0.7989, 0.5966, drift.NO_DRIFT, ">="),
    ],
)
def test_course_verdict_is_drift_only_when_strictly_lower(f1_all_rows, test_f1, outcome, relation):
    verdict = drift.course_verdict(f1_all_rows, test_f1, 30_000)
    assert verdict.outcome == outcome
    assert verdict.detail == (
        f"course rule: F1 {f1_all_rows:.4f} on all 30000 ingested rows {relation} {test_f1:.4f} "
        f"on the test data -> {outcome} (recorded only)"
    )


# --- whole verdicts: every field the history records -------------------------------------------


def test_course_verdict_records_both_f1s_and_the_row_count():
    assert drift.course_verdict(0.5301, 0.5966, 30_000) == drift.Verdict(
        "course",
        "f1",
        drift.DRIFT,
        "course rule: F1 0.5301 on all 30000 ingested rows < 0.5966 on the test data -> drift (recorded only)",
        value=0.5301,
        reference=0.5966,
        n=30_000,
    )


def test_ks_verdict_records_the_feature_its_statistic_and_p_value():
    reference, new = np.arange(100.0), np.arange(100.0) + 25  # D = 25 / 100
    p_value = ks_2samp(reference, new).pvalue  # 0.0037
    assert drift.ks_verdict("x", reference, new, 0.95) == drift.Verdict(
        "data drift",
        "ks",
        drift.DRIFT,
        "x: KS D 0.250 (p = 0.004) on 100 new rows vs 100 reference rows -> drift",
        feature="x",
        value=0.25,
        p_value=p_value,
        n=100,
    )


@pytest.mark.parametrize(
    "verdict_of, expected",
    [
        (
            lambda: drift.ks_verdict("x", np.arange(99), np.arange(150), 0.95),
            drift.Verdict(
                "data drift",
                "ks",
                drift.INSUFFICIENT,
                "x: KS needs 100 rows in each sample, has 99 and 150 -> insufficient data",
                feature="x",
                n=150,
            ),
        ),
        (
            lambda: drift.psi_verdict("x", np.arange(150), np.arange(99), 0.99),
            drift.Verdict(
                "data drift",
                "psi",
                drift.INSUFFICIENT,
                "x: PSI needs 100 rows in each sample, has 150 and 99 -> insufficient data",
                feature="x",
                n=99,
            ),
        ),
        (
            lambda: drift.exit_rate_verdict(labels_with_rate(99, 0.2), labels_with_rate(150, 0.2), 0.95),
            drift.Verdict(
                "exit rate",
                "rate change",
                drift.INSUFFICIENT,
                "exit rate needs 100 rows in each sample, has 99 and 150 -> insufficient data",
                n=150,
            ),
        ),
        (
            lambda: drift.performance_verdict(
                [30, 70, 70, 230], 0.8, REFERENCE_COUNTS, **PERFORMANCE, rng=np.random.default_rng(0)
            ),
            drift.Verdict(
                "performance",
                "f1",
                drift.INSUFFICIENT,
                "F1 0.30 on 400 new rows with 100 exits vs 0.80 expected: "
                "below the minimum of 500 rows and 50 exits -> insufficient data",
                value=0.3,  # 60 / 200
                reference=0.8,
                n=400,
                positives=100,
            ),
        ),
    ],
    ids=["ks", "psi", "exit rate", "performance"],
)
def test_an_insufficient_verdict_records_its_kind_statistic_and_sample(verdict_of, expected):
    assert verdict_of() == expected


def test_psi_verdict_records_the_flag_as_its_reference_and_decides_at_exactly_min_data_rows():
    values = np.arange(100.0)
    assert drift.psi_verdict("x", values, values.copy(), 0.99) == drift.Verdict(
        "data drift",
        "psi",
        drift.NO_DRIFT,
        "x: PSI 0.000 (< 0.2, p = 1.000) -> no drift",
        feature="x",
        value=0.0,
        reference=0.2,
        p_value=1.0,
        n=100,
    )


def test_a_psi_of_exactly_the_flag_is_drift_when_it_is_significant(monkeypatch):
    # The README: flagged when PSI >= 0.2 with the confidence. No data gives exactly 0.2, so psi() is
    # replaced: 1,000 rows each, 10 bins: 0.2 x 1000 x 1000 / 2000 = 100 on 9 degrees of freedom.
    monkeypatch.setattr(drift, "psi", lambda reference_values, new_values: 0.2)
    verdict = drift.psi_verdict("x", np.arange(1000.0), np.arange(1000.0), 0.99)
    assert (verdict.outcome, verdict.detail) == (drift.DRIFT, "x: PSI 0.200 (>= 0.2, p < 0.001) -> drift")
    assert verdict.p_value == pytest.approx(scipy.stats.chi2.sf(100, 9))


@pytest.mark.parametrize("rows, outcome", [(100, drift.NO_DRIFT), (170, drift.NO_DRIFT), (180, drift.DRIFT)])
def test_a_psi_over_the_flag_on_few_rows_is_drift_only_when_chance_cannot_explain_it(monkeypatch, rows, outcome):
    # PSI 0.25 x n/2 on 9 degrees of freedom: chi-square's 99 % point is 21.67, reached at n = 173.4;
    # with a 10-bin table of 100 rows each PSI of 0.25 is common by chance (p = 0.2).
    monkeypatch.setattr(drift, "psi", lambda reference_values, new_values: 0.25)
    values = np.arange(float(rows))
    verdict = drift.psi_verdict("x", values, values, 0.99)
    expected_p = scipy.stats.chi2.sf(0.25 * rows / 2, 9)
    assert verdict.p_value == pytest.approx(expected_p)
    assert verdict.outcome == (drift.DRIFT if expected_p < 0.01 else drift.NO_DRIFT) == outcome


def test_performance_verdict_records_its_kind_and_statistic_when_it_decides():
    verdict = drift.performance_verdict(
        [30, 90, 50, 830], 0.8, REFERENCE_COUNTS, **PERFORMANCE, rng=np.random.default_rng(0)
    )
    assert (verdict.kind, verdict.statistic, verdict.feature, verdict.outcome) == ("performance", "f1", None, "drift")


def test_exit_rate_verdict_records_both_rates_the_interval_and_the_exits_at_exactly_min_data_rows():
    # 25 of 100 against 25 of 100: change 0, se = sqrt(2 * .25 * .75 / 100) = 0.0612; 95%: 0 -+ 1.96 se;
    # p = P(Z > (0 - 0.05) / se) = Phi(0.816) = 0.793.
    se = math.sqrt(2 * 0.25 * 0.75 / 100)
    verdict = drift.exit_rate_verdict(labels_with_rate(100, 0.25), labels_with_rate(100, 0.25), 0.95)
    z = norm.ppf(0.975)
    assert verdict == drift.Verdict(
        "exit rate",
        "rate change",
        drift.NO_DRIFT,
        "exit rate 25.0% on 100 new rows vs 25.0% on the reference: change +0.0% [-12.0%, +12.0%] vs margin 5% "
        "-> no drift",
        value=0.25,
        reference=0.25,
        low=pytest.approx(-z * se, rel=1e-12),
        high=pytest.approx(z * se, rel=1e-12),
        p_value=pytest.approx(norm.sf(-0.05 / se), rel=1e-12),
        n=100,
        positives=25,
    )


@pytest.mark.parametrize(
    "reference_rate, new_rate, detail, outcome",
    [
        # No exit on either side: the rates are certain (se 0, kept just above 0): change 0, nothing to flag.
        (0.0, 0.0, "exit rate 0.0% on 100 new rows vs 0.0% on the reference: change +0.0% [-0.0%, +0.0%]", "no drift"),
        # Every client left, where none did: certain, and 100 points beyond the margin.
        (
            0.0,
            1.0,
            "exit rate 100.0% on 100 new rows vs 0.0% on the reference: change +100.0% [+100.0%, +100.0%]",
            "drift",
        ),
    ],
)
def test_exit_rate_verdict_of_certain_rates_has_an_empty_interval(reference_rate, new_rate, detail, outcome):
    verdict = drift.exit_rate_verdict(labels_with_rate(100, reference_rate), labels_with_rate(100, new_rate), 0.99)
    assert verdict.detail == f"{detail} vs margin 5% -> {outcome}"
    assert verdict.outcome == outcome


def test_exit_rate_verdict_p_value_equal_to_one_minus_confidence_is_not_significant():
    # 25 of 100 on both sides: change 0, p = P(Z > (0 - 0.05) / se) = 0.793, the same formula as the module
    # (so the same float). At confidence 1 - p, exact in floats for p >= 1/2, p < 1 - confidence is false.
    se = np.sqrt(0.25 * (1 - 0.25) / 100 + 0.25 * (1 - 0.25) / 100)
    p_value = float(norm.sf((0.0 - 0.05) / se))
    labels = labels_with_rate(100, 0.25)
    assert drift.exit_rate_verdict(labels, labels, 0.95).p_value == p_value
    assert drift.exit_rate_verdict(labels, labels, 1 - p_value).outcome == drift.NO_DRIFT


@pytest.mark.parametrize(
    "confidence_of_p, outcome",
    [
        # D is exactly 0.1 here and scipy's p is 0.702; at confidence 1 - p the p-value equals 1 - confidence
        # (exact in floats for p >= 1/2): not significant, strictly.
        (lambda p: 1 - p, drift.NO_DRIFT),
        # At confidence 0.2 (p 0.702 < 0.8) the effect D = 0.1 is exactly KS_MIN_EFFECT, which is enough.
        (lambda p: 0.2, drift.DRIFT),
    ],
    ids=["p at 1 - confidence", "D at the minimum effect"],
)
def test_ks_verdict_boundaries_are_p_strictly_below_and_d_at_least(confidence_of_p, outcome):
    reference, new = np.arange(100.0), np.arange(100.0) + 10
    expected = ks_2samp(reference, new)
    assert (expected.statistic, 1 - (1 - expected.pvalue)) == (0.1, expected.pvalue)
    verdict = drift.ks_verdict("x", reference, new, confidence_of_p(expected.pvalue))
    assert verdict.outcome == outcome


# --- boundaries of the bootstrap tests: p = (1 + k) / (1 + B), exact for chosen B ---------------


def test_performance_verdict_p_value_equal_to_one_minus_confidence_is_not_drift():
    # One resample: the new F1 is 0 in every replicate (no true positive), the fixed reference 0.9, so the
    # drop 0.9 > margin and k = 0: p = (1 + 0) / (1 + 1) = 1/2 = 1 - 0.5 exactly.
    verdict = drift.performance_verdict([0, 0, 10, 90], 0.9, None, 0.05, 0.5, 1, 1, np.random.default_rng(0), 1)
    assert (verdict.p_value, verdict.outcome) == (0.5, drift.NO_DRIFT)


def test_p_text_shows_a_p_value_of_exactly_one_thousandth_as_its_value():
    # 999 resamples, none within the margin: p = 1 / 1000.
    verdict = drift.performance_verdict([0, 0, 10, 90], 0.9, None, 0.05, 0.99, 1, 1, np.random.default_rng(0), 999)
    assert verdict.p_value == 0.001
    assert verdict.detail.endswith("> margin 0.05 (p = 0.001) -> drift")


def test_performance_verdict_counts_a_replicate_drop_of_exactly_the_margin_as_within_it():
    # Counts [tp 1, fp 2, fn 0, tn 0], 3 rows: a replicate draws tp ~ Binomial(3, 1/3) and fp = 3 - tp.
    # F1 = 2tp / (2tp + fp): tp 0 -> 0, tp 1 -> 2/4 = 0.5, tp 2 -> 4/5, tp 3 -> 1. Against a fixed 1.0 with
    # margin 0.5 the drop is <= 0.5 whenever tp >= 1 (tp = 1 gives exactly 0.5): P = 1 - (2/3)^3 = 19/27.
    verdict = drift.performance_verdict([1, 2, 0, 0], 1.0, None, 0.5, 0.95, 1, 1, np.random.default_rng(0))
    assert verdict.p_value == pytest.approx(19 / 27, abs=0.015)  # Monte Carlo sd 0.005; 7/27 if not counted


def test_performance_verdict_resamples_the_reference_as_often_as_the_new_rows():
    # The reference is 200 rows at F1 0.8 (sd by the delta method ~0.04), the new rows 200,000 at 0.70
    # (sd ~0.0015): the drop 0.10 is 0.05 beyond the margin, about 1.2 sd of the reference alone, so
    # p ~ Phi(-0.05 / sd) with both sds. Resampling the reference once only would put p near 0 or 1.
    reference_counts, new_counts = [40, 10, 10, 140], [35_000, 15_000, 15_000, 135_000]
    sd = math.hypot(delta_method_se(reference_counts), delta_method_se(new_counts))
    verdict = drift.performance_verdict(new_counts, 0.8, reference_counts, 0.05, 0.95, 1, 1, np.random.default_rng(0))
    assert verdict.p_value == pytest.approx(norm.sf(0.05 / sd), abs=0.04)


def test_performance_verdict_interval_is_the_two_sided_percentile_interval_at_the_confidence():
    # 100,000 rows at F1 0.5 (tp 15,000, fp 15,000, fn 15,000): with 100,000 resamples the 99% interval is
    # 0.5 -+ 2.576 se (delta method) to within 0.05 se; a 99.67% interval would be 0.14 se wider.
    counts = [15_000, 15_000, 15_000, 55_000]
    se = delta_method_se(counts)
    verdict = drift.performance_verdict(counts, 0.5, None, 0.05, 0.99, 1, 1, np.random.default_rng(0), 100_000)
    assert (verdict.low - 0.5) / se == pytest.approx(-norm.ppf(0.995), abs=0.07)
    assert (verdict.high - 0.5) / se == pytest.approx(norm.ppf(0.995), abs=0.07)


def test_gain_verdict_interval_is_the_two_sided_percentile_interval_at_the_confidence():
    # The champion predicts no exit (F1 0 in every replicate), so the gain is the challenger's F1: 0.5 on
    # 100,000 rows (tp, fp, fn 15,000 each), its 99% interval 0.5 -+ 2.576 se as above.
    y_true, challenger_pred, champion_pred = gain_rows(15_000, 15_000, 15_000, 55_000)
    se = delta_method_se([15_000, 15_000, 15_000, 55_000])
    verdict = drift.gain_verdict(y_true, challenger_pred, champion_pred, 0.05, 0.99, np.random.default_rng(0), 100_000)
    assert (verdict.low - 0.5) / se == pytest.approx(-norm.ppf(0.995), abs=0.07)
    assert (verdict.high - 0.5) / se == pytest.approx(norm.ppf(0.995), abs=0.07)


def gain_rows(tp: int, fp: int, fn: int, tn: int):
    """Labels, a challenger with these counts, and a champion that predicts no exit at all."""
    y_true = np.r_[np.ones(tp + fn, int), np.zeros(fp + tn, int)]
    challenger_pred = np.r_[np.ones(tp, int), np.zeros(fn, int), np.ones(fp, int), np.zeros(tn, int)]
    return y_true, challenger_pred, np.zeros(len(y_true), int)


def test_gain_verdict_records_every_field_of_a_clear_gain():
    # Challenger tp 2500, fn 500, fp 1500 (F1 5000 / 7000 = 0.714), champion tp 1500 (F1 0.5): gain 0.214.
    y_true, challenger_pred, champion_pred = clients_with_predictions(1000)
    verdict = drift.gain_verdict(y_true, challenger_pred, champion_pred, 0.05, 0.95, np.random.default_rng(0))
    assert verdict == drift.Verdict(
        "gate",
        "f1 gain",
        "better",
        "challenger F1 0.71 vs champion 0.50 on the same 10000 newest rows: "
        f"gain +0.21 [{verdict.low:+.2f}, {verdict.high:+.2f}] > margin 0.05 (p < 0.001) -> better",
        value=pytest.approx(5000 / 7000 - 0.5, abs=1e-12),
        reference=0.5,
        low=verdict.low,
        high=verdict.high,
        p_value=1 / (drift.RESAMPLES + 1),
        n=10_000,
        positives=3000,
    )
    assert verdict.low < 5000 / 7000 - 0.5 < verdict.high


def test_gain_verdict_of_a_gain_of_exactly_the_margin_is_not_better():
    # Challenger tp, fp, fn 100 each: F1 200 / 400 = 0.5 exactly; the champion 0: gain 0.5 = the margin.
    y_true, challenger_pred, champion_pred = gain_rows(100, 100, 100, 700)
    verdict = drift.gain_verdict(y_true, challenger_pred, champion_pred, 0.5, 0.95, np.random.default_rng(0))
    assert (verdict.value, verdict.outcome) == (0.5, "not better")
    assert verdict.detail.endswith("<= margin 0.50 (p < 0.001) -> not better")


def test_gain_verdict_p_value_equal_to_one_minus_confidence_is_not_better():
    # One resample, whose gain is surely > 0: p = (1 + 0) / (1 + 1) = 1/2 = 1 - 0.5 exactly.
    y_true, challenger_pred, champion_pred = gain_rows(100, 100, 100, 700)
    verdict = drift.gain_verdict(y_true, challenger_pred, champion_pred, 0.05, 0.5, np.random.default_rng(0), 1)
    assert (verdict.p_value, verdict.outcome) == (0.5, "not better")


@pytest.mark.parametrize("dtype", [int, bool, float])
def test_paired_cells_count_labels_and_predictions_given_as_ints_bools_or_floats(dtype):
    y_true, pred_a, pred_b = [0, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 0, 1]  # cells 2, 7, 7, 4, 5
    cells = drift.paired_cells(*(np.asarray(values, dtype=dtype) for values in (y_true, pred_a, pred_b)))
    np.testing.assert_array_equal(cells, [0, 0, 1, 0, 1, 1, 0, 2])


def test_paired_cells_always_has_all_eight_cells():
    np.testing.assert_array_equal(drift.paired_cells([0, 0], [0, 0], [0, 0]), [2, 0, 0, 0, 0, 0, 0, 0])


# --- PSI: more worked examples -----------------------------------------------------------------


def test_psi_on_distinct_values_worked_by_hand():
    # bins=4 over the reference 1..8: cut points at positions 0.25, 0.5, 0.75 of 7 -> 1.75, 3.5, 5.25,
    # values 2.75, 4.5, 6.25 (none tied). Reference counts [2, 2, 2, 2]; new [1, 1, 1, 5, 8, 9] -> [3, 0, 1, 2].
    # Half a row each: reference 2.5 / 10 = 1/4 each; new (3.5, 0.5, 1.5, 2.5) / 8 = (7, 1, 3, 5) / 16.
    # PSI = 3/16 ln(7/4) - 3/16 ln(1/4) - 1/16 ln(3/4) + 1/16 ln(5/4) = 0.1049 + 0.2599 + 0.0180 + 0.0139 = 0.3968
    expected = 3 / 16 * math.log(7 / 4) - 3 / 16 * math.log(1 / 4) - 1 / 16 * math.log(3 / 4) + 1 / 16 * math.log(5 / 4)
    assert drift.psi(np.arange(1, 9), [1, 1, 1, 5, 8, 9], bins=4) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.3968, abs=1e-4)


def test_psi_of_a_constant_reference_keeps_the_empty_bin_above_it():
    # All 100 reference values are 5: one cut point, 5; bins (-inf, 5] and (5, inf). Reference [100, 0],
    # new (all 7) [0, 100]; shares (100.5, 0.5) / 101 and (0.5, 100.5) / 101:
    # PSI = 2 * (100 / 101) * ln(100.5 / 0.5) = 2 * 0.990 * ln 201 = 10.50
    expected = 2 * (100 / 101) * math.log(201)
    assert drift.psi(np.full(100, 5.0), np.full(100, 7.0)) == pytest.approx(expected, rel=1e-12)


def test_psi_of_new_values_all_in_the_lowest_bin_keeps_the_empty_bins():
    # Reference 0..99: deciles 9.9, 19.8, ..., 89.1, ten rows per bin, share 10.5 / 105 = 0.1 each.
    # New: 100 zeros, all in the first bin: shares 100.5 / 105 and then 0.5 / 105 nine times.
    first, other = 100.5 / 105, 0.5 / 105
    expected = (first - 0.1) * math.log(first / 0.1) + 9 * (other - 0.1) * math.log(other / 0.1)
    assert drift.psi(np.arange(100.0), np.zeros(100)) == pytest.approx(expected, rel=1e-12)
