"""Tests of the sequential test (risk.drift's CUSUM of the F1 shortfall) and of risk.monitoring, the
live model's state over its checks.

The statistics are checked against what they claim: the shortfall pools checks exactly, its variance
is the variance of multinomial draws, the alarm probability is what a Monte Carlo of the same CUSUM
gives, the threshold keeps false alarms over 24 checks at the stated rate, and a slow drift is found
within a few checks of becoming material. The state machine is driven with confusion counts whose
verdicts are worked out here.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from risk import drift, history, monitoring
from risk.config import OPTIONAL_KEYS

DEFAULTS = SimpleNamespace(**{key: default for key, (default, _, _) in OPTIONAL_KEYS.items()})
SETTINGS = SimpleNamespace(  # the state tests: round minimums
    drift_margin=0.05,
    drift_confidence=0.99,
    min_new_rows=200,
    min_new_positives=50,
    false_alarm_rate=0.05,
    degraded_confidence=0.9,
)


def cells(f1: float, exit_rate: float = 0.23) -> np.ndarray:
    """Probabilities of [tp, fp, fn, tn] for a model with precision = recall = `f1`."""
    tp, fn = exit_rate * f1, exit_rate * (1 - f1)
    fp = tp * (1 / f1 - 1)
    return np.array([tp, fp, fn, 1 - tp - fp - fn])


def reference_of(counts) -> dict:
    return {"f1": drift.f1_of(counts), "counts": [int(x) for x in counts]}


def play(profile, rows, reference, rng, settings=SETTINGS, flags=None):
    """monitoring.assess over checks of `rows` rows drawn at the F1s of `profile`; the assessments."""
    checks, assessments = [], []
    for index, f1 in enumerate(profile):
        counts = rng.multinomial(rows, cells(f1))
        flagged = bool(flags and flags[index])
        assessment = monitoring.assess(
            checks, index + 1, counts, reference, flagged, settings, np.random.default_rng(0), f"t{index + 1}"
        )
        checks.append({**assessment.row, "run_id": index + 1})
        assessments.append(assessment)
    return assessments


# --- the CUSUM's parts ---------------------------------------------------------------------------


def test_the_shortfall_of_several_checks_adds_up_to_the_pooled_f1_shortfall():
    checks = [np.array([40, 10, 12, 238]), np.array([30, 20, 25, 225]), np.array([0, 5, 60, 235])]
    pooled = np.sum(checks, axis=0)
    total = sum(drift.shortfall(counts, 0.8, 0.05) for counts in checks)
    mass = 2 * pooled[0] + pooled[1] + pooled[2]
    assert total == pytest.approx(mass * (0.8 - 0.05 - drift.f1_of(pooled)))
    assert drift.f1_mass(pooled) == mass == 2 * 70 + 35 + 97


@pytest.mark.parametrize("f1, exit_rate", [(0.8, 0.23), (0.5, 0.14), (0.3, 0.4)])
def test_the_shortfall_variance_is_that_of_multinomial_draws_at_the_reference(f1, exit_rate):
    rng = np.random.default_rng(1)
    draws = rng.multinomial(400, cells(f1, exit_rate), size=200_000)
    values = (f1 - 0.05) * (2 * draws[:, 0] + draws[:, 1] + draws[:, 2]) - 2 * draws[:, 0]
    mass = np.mean(2 * draws[:, 0] + draws[:, 1] + draws[:, 2])
    assert np.var(values) / mass == pytest.approx(drift.shortfall_variance(f1, 0.05), rel=0.02)
    assert np.mean(values) == pytest.approx(-0.05 * mass, abs=0.05)


def cusum_alarms(increments: np.ndarray, threshold: float) -> np.ndarray:
    """Which streams (rows) of increments make S = max(0, S + x) exceed `threshold`."""
    s = np.zeros(len(increments))
    alarmed = np.zeros(len(increments), dtype=bool)
    for column in increments.T:
        s = np.maximum(0, s + column)
        alarmed |= s > threshold
    return alarmed


@pytest.mark.parametrize("threshold, shift", [(0.0, 1.0), (1.5, 0.5), (2.2, 1.0), (4.0, 0.3)])
def test_the_alarm_probability_is_the_monte_carlo_one(threshold, shift):
    rng = np.random.default_rng(2)
    increments = rng.normal(-shift, 1, size=(100_000, 24))
    measured = cusum_alarms(increments, threshold).mean()
    assert drift.cusum_alarm_probability(threshold, shift, 24) == pytest.approx(measured, abs=0.004)


def test_the_threshold_falls_as_more_false_alarms_are_allowed_and_is_zero_on_huge_checks():
    thresholds = [drift.cusum_threshold(0.8, 100, 0.05, rate) for rate in (0.01, 0.05, 0.2)]
    assert thresholds == sorted(thresholds, reverse=True) and thresholds[-1] > 0
    # 10,000 rows a check: one check's noise is far below the allowance, a drop > 0.05 is enough
    assert drift.cusum_threshold(0.8, 3000, 0.05, 0.05) == 0.0
    assert drift.cusum_threshold(0.8, 0, 0.05, 0.05) == 0.0


@pytest.mark.parametrize("f1, exit_rate, rows", [(0.8, 0.23, 300), (0.8, 0.23, 150), (0.55, 0.14, 300)])
def test_the_cusum_alone_keeps_false_alarms_over_24_checks_near_the_stated_rate(f1, exit_rate, rows):
    # Multinomial counts of an unchanged model: the CUSUM alone, at its threshold, is called drifted in
    # about 5 % of 24-check streams (the threshold assumes normal checks: measured 3.5 % to 6.5 %).
    rng = np.random.default_rng(3)
    probabilities = cells(f1, exit_rate)
    draws = rng.multinomial(rows, probabilities, size=(20_000, 24))
    mass = 2 * draws[..., 0] + draws[..., 1] + draws[..., 2]
    increments = (f1 - 0.05) * mass - 2 * draws[..., 0]
    threshold = drift.cusum_threshold(
        f1, rows * (2 * probabilities[0] + probabilities[1] + probabilities[2]), 0.05, 0.05
    )
    assert 0.035 <= cusum_alarms(increments, threshold).mean() <= 0.065


@pytest.mark.slow
@pytest.mark.parametrize("rows, reference_rows", [(150, 1800), (300, 1800), (300, 650)])
def test_the_whole_test_calls_an_unchanged_model_drifted_in_under_5_percent_of_24_checks(rows, reference_rows):
    # The stated rate, measured through monitoring.assess with the default settings: the CUSUM and the
    # confirmation by the pooled rows, with the reference itself estimated from a finite validation
    # sample (redrawn per stream).
    rng = np.random.default_rng(4)
    drifted = 0
    streams = 120
    for _ in range(streams):
        reference = reference_of(rng.multinomial(reference_rows, cells(0.8)))
        states = [a.state for a in play([0.8] * 24, rows, reference, rng, DEFAULTS)]
        drifted += monitoring.DEGRADED in states
    assert drifted / streams <= 0.05


@pytest.mark.slow
@pytest.mark.parametrize("rows, within", [(150, 5), (300, 4)])
def test_a_slow_drift_is_found_within_a_few_checks_of_the_drop_reaching_twice_the_margin(rows, within):
    # Six quiet checks, then the F1 falls by 0.05 a check to 0.5: the drop reaches 0.10 at check 8. The
    # pooled rows must show it beyond the margin with 99 % confidence, the reference's own error
    # included: measured on these 30 streams, 1 to 5 checks later with 150 rows a check, 0 to 4 with 300.
    rng = np.random.default_rng(5)
    profile = [0.8] * 6 + [0.8 - 0.05 * step for step in range(1, 7)] + [0.5] * 6
    found = []
    for _ in range(30):
        reference = reference_of(rng.multinomial(1800, cells(0.8)))
        states = [a.state for a in play(profile, rows, reference, rng, DEFAULTS)]
        found.append(states.index(monitoring.DEGRADED) + 1 if monitoring.DEGRADED in states else None)
    assert all(check is not None and check > 6 for check in found)  # never in the quiet checks here
    assert all(check <= 8 + within for check in found)


# --- the states ----------------------------------------------------------------------------------

REFERENCE = reference_of([720, 180, 180, 2520])  # F1 0.8 on 3,600 validation rows


def assess(checks, run_id, counts, flagged=False, reference=REFERENCE):
    assessment = monitoring.assess(
        checks, run_id, np.array(counts), reference, flagged, SETTINGS, np.random.default_rng(0), f"t{run_id}"
    )
    checks.append({**assessment.row, "run_id": run_id})
    return assessment


def test_a_model_is_unproven_until_the_rows_judged_since_it_went_live_reach_the_minimum():
    checks = []
    first = assess(checks, 1, [28, 7, 7, 108])  # 150 rows, 35 exits, F1 0.8
    assert (first.state, first.verdicts[0].outcome, first.search) == ("unproven", "insufficient data", None)
    assert first.verdicts[0].detail.endswith(
        "150 rows with 35 exits judged since it went live, a verdict needs 200 and 50: about 1 more check at the "
        "recent 35 exits a check -> insufficient data"
    )
    second = assess(checks, 2, [28, 7, 7, 108])
    assert (second.state, second.verdicts[0].outcome, second.row["state_since"]) == ("healthy", "no drift", "t2")
    third = assess(checks, 3, [28, 7, 7, 108])
    assert (third.state, third.row["state_since"]) == ("healthy", "t2")  # since it became healthy


def test_a_check_at_the_reference_leaves_the_cusum_at_zero_and_pools_nothing():
    checks = []
    result = assess(checks, 1, [160, 40, 40, 560])
    assert result.row["cusum"] == 0 and result.row["window_checks"] == 0 and result.row["window_start_run_id"] is None
    assert result.verdicts[0].detail.endswith(
        "drop 0.00, within margin 0.05: no evidence of a drop is left -> no drift"
    )


def test_small_shortfalls_pool_over_checks_until_the_cusum_resets():
    checks = []
    # F1 0.70 on 300 rows (mass 90): shortfall (0.8 - 0.05) x 90 - 2 x 31.5 ~ 4.5 a check
    a = assess(checks, 1, [31, 13, 14, 242])
    b = assess(checks, 2, [32, 14, 14, 240])
    assert a.row["window_start_run_id"] == b.row["window_start_run_id"] == 1
    assert b.row["window_checks"] == 2 and b.row["window_counts"] == [63, 27, 28, 482]
    expected = drift.shortfall([31, 13, 14, 242], 0.8, 0.05) + drift.shortfall([32, 14, 14, 240], 0.8, 0.05)
    assert b.row["cusum"] == pytest.approx(expected, abs=1e-6)
    assert "rows of the last 2 checks" in b.verdicts[0].detail and b.state == "healthy"
    # the CUSUM crosses its threshold, but the 600 rows do not show the drop beyond the margin at 99 %
    assert b.row["cusum"] > b.row["threshold"] and b.verdicts[0].outcome == "no drift"
    assert "not clearly > margin 0.05" in b.verdicts[0].detail
    assert "drop 0.10, under the 0.16 the sequential test needs on this evidence; " in a.verdicts[0].detail
    c = assess(checks, 3, [69, 1, 1, 229])  # F1 0.99: the evidence of a drop is gone
    assert (c.row["cusum"], c.row["window_checks"], c.row["window_start_run_id"]) == (0.0, 0, None)


def test_a_confirmed_drop_makes_the_model_degraded_and_starts_a_search_on_the_evidence_since_the_change():
    checks = []
    assess(checks, 1, [160, 40, 40, 560])
    result = assess(checks, 2, [20, 40, 50, 190])  # F1 0.31 on 300 rows
    performance = result.verdicts[0]
    assert (performance.outcome, result.state, result.search, result.since_run_id) == (
        "drift",
        "degraded",
        "degraded",
        2,
    )
    assert (result.row["change_run_id"], result.row["drift_run_id"], result.row["reference_f1"]) == (2, 2, 0.8)
    assert performance.detail.startswith("F1 0.31 [") and "vs 0.80 expected" in performance.detail
    assert performance.detail.endswith(" the sequential test needs here -> drift")


def test_a_degraded_model_keeps_its_reference_and_the_search_continues_until_it_recovers():
    checks = []
    assess(checks, 1, [160, 40, 40, 560])
    assess(checks, 2, [20, 40, 50, 190])
    still = assess(checks, 3, [25, 35, 45, 195])
    assert (still.state, still.search, still.since_run_id, still.row["state_since"]) == (
        "degraded",
        "degraded",
        2,
        "t2",
    )
    assert still.row["reference_f1"] == 0.8 and [v.kind for v in still.verdicts] == ["performance", "recovery"]
    assert still.verdicts[1].outcome == "degraded"
    assert "rows since the drift" in still.verdicts[1].detail and still.verdicts[1].n == 300  # run 3 only
    # the business returns: F1 0.8 on the rows since the drift (runs 3 and 4 are pooled; run 3 was poor)
    back = assess(checks, 4, [1600, 400, 400, 5600])
    recovery = back.verdicts[1]
    assert recovery.n == 8300 and recovery.outcome == "healthy"
    assert (back.state, back.search, back.row["cusum"], back.row["state_since"]) == ("healthy", None, 0.0, "t4")
    assert recovery.detail.endswith("-> healthy again")


def test_a_degraded_model_is_not_called_healthy_on_less_than_the_minimum_sample():
    checks = []
    assess(checks, 1, [160, 40, 40, 560])
    assess(checks, 2, [20, 40, 50, 190])
    result = assess(checks, 3, [28, 7, 7, 58])  # F1 0.8 but 100 rows with 35 exits
    assert (result.state, result.verdicts[1].outcome) == ("degraded", "insufficient data")


def test_a_data_drift_flag_searches_with_a_healthy_champions_burden_on_the_flagged_spell():
    checks = []
    assess(checks, 1, [160, 40, 40, 560])
    assess(checks, 2, [160, 40, 40, 560], flagged=True)
    result = assess(checks, 3, [160, 40, 40, 560], flagged=True)
    assert (result.state, result.search, result.since_run_id) == ("healthy", "healthy", 2)
    calm = assess(checks, 4, [160, 40, 40, 560])
    assert calm.search is None


def test_a_model_without_a_reference_stays_unproven_and_is_never_searched():
    checks = []
    result = assess(checks, 1, [160, 40, 40, 560], flagged=True, reference=None)
    assert (result.state, result.search, result.verdicts[0].detail) == (
        "unproven",
        None,
        "the live model has no reference F1",
    )


@pytest.mark.parametrize(
    "have, per_check, expected",
    [
        ([28, 7, 7, 108], [28, 7, 7, 108], 1),  # 150 rows 35 exits -> 200 and 50: one more
        ([5, 1, 3, 91], [5, 1, 3, 91], 6),  # 8 exits a check: 42 more exits need 6 checks
        ([5, 1, 3, 91], [0, 1, 0, 99], None),  # no exits in the checks: never
        ([200, 0, 0, 0], [1, 0, 0, 0], 0),
    ],
)
def test_checks_needed_to_reach_the_minimum_sample(have, per_check, expected):
    assert monitoring.checks_needed(np.array(have), np.array(per_check), 200, 50) == expected


# --- the history: checks that took effect --------------------------------------------------------


def test_a_check_whose_run_failed_before_deciding_its_files_is_not_counted(tmp_path):
    conn = history.connect(tmp_path / "history.db")
    with conn:
        history.record_model(conn, {"id": "m1", "trained_at": "t", "origin": "trained"})
        runs = [
            history.insert(conn, "runs", {"started_at": "t", "config_path": "c", "actor": "a", "trigger": "t"})
            for _ in range(3)
        ]
        file_ids = [
            history.insert(
                conn,
                "files",
                {
                    "folder": "f",
                    "name": name,
                    "sha256": name,
                    "size": 1,
                    "mtime_ns": 1,
                    "first_seen_at": "t",
                    "status": "accepted",
                },
            )
            for name in ("a.csv", "b.csv")
        ]
        row = {
            "model_id": "m1",
            "rows": 1,
            "counts": [1, 0, 0, 0],
            "cusum": 0.0,
            "window_checks": 0,
            "window_counts": [0, 0, 0, 0],
            "flagged": 0,
            "state": "unproven",
            "state_since": "t",
            "evidence": "e",
        }
        history.record_check(conn, {**row, "run_id": runs[0], "files": [file_ids[0]]})
        history.decide_files(conn, [file_ids[0]], runs[0], "decided")
        history.record_check(conn, {**row, "run_id": runs[1], "files": [file_ids[1]]})  # its run failed
        history.record_check(conn, {**row, "run_id": runs[2], "files": [file_ids[1]]})  # the retry decided it
        history.decide_files(conn, [file_ids[1]], runs[2], "decided")
    assert [check["run_id"] for check in history.model_checks(conn, "m1")] == [runs[0], runs[2]]
    conn.close()


# --- settling: a model deployed in answer to a change keeps looking for a better one ---------------


def test_a_model_deployed_after_a_change_searches_with_a_healthy_burden_in_its_first_three_checks():
    checks = []
    searches = []
    for run_id in range(1, 6):
        assessment = monitoring.assess(
            checks,
            run_id,
            np.array([160, 40, 40, 560]),
            REFERENCE,
            False,
            SETTINGS,
            np.random.default_rng(0),
            "t",
            True,
        )
        checks.append({**assessment.row, "run_id": run_id})
        searches.append((assessment.search, assessment.since_run_id))
    assert searches == [("healthy", 1)] * 3 + [(None, None)] * 2


def test_a_settling_model_that_drops_searches_with_the_degraded_burden():
    checks = []
    assessment = monitoring.assess(
        checks, 1, np.array([20, 40, 50, 190]), REFERENCE, False, SETTINGS, np.random.default_rng(0), "t", True
    )
    assert (assessment.state, assessment.search, assessment.since_run_id) == ("degraded", "degraded", 1)


# --- the exit rate, pooled -----------------------------------------------------------------------


def exit_check(checks, run_id, rows, exits, reference=(1800, 414)):  # 23 % on the reference rows
    counts = np.array([exits, 0, 0, rows - exits])  # only the rows and exits matter here
    verdict, state = monitoring.assess_exit_rate(checks, run_id, counts, reference, SETTINGS)
    checks.append({"run_id": run_id, "rows": rows, "exit_cusum": state})
    return verdict, state


def test_an_exit_rate_that_rises_is_found_by_pooling_checks_too_small_alone():
    # 34 % instead of 23 %: +11 points on 150 rows a check is not clear beyond the 5-point margin alone
    checks = []
    first, state = exit_check(checks, 1, 150, 51)
    assert first.outcome == "no drift" and state["up"] > 0 and state["up_window"] == [1, 1, 150, 51]
    second, state = exit_check(checks, 2, 150, 52)  # the CUSUM crosses; 300 rows do not confirm it at 99 %
    assert second.outcome == "no drift" and state["up"] > state["threshold"]
    third, state = exit_check(checks, 3, 150, 52)
    assert third.outcome == "drift" and state["up_window"] == [1, 3, 450, 155]
    assert third.detail.startswith("exit rate 34.4% on 450 rows of the last 3 checks vs 23.0% on the reference")
    assert third.detail.endswith("the sequential test needs here -> drift")


def test_an_exit_rate_that_falls_is_found_by_the_other_cusum():
    checks = []
    verdicts = [exit_check(checks, run_id, 300, 30)[0].outcome for run_id in (1, 2)]  # 10 %: 13 points down
    assert "drift" in verdicts and checks[-1]["exit_cusum"]["down"] > 0 and checks[-1]["exit_cusum"]["up"] == 0


def test_an_unchanged_exit_rate_leaves_both_cusums_at_zero_and_pools_nothing():
    checks = []
    verdict, state = exit_check(checks, 1, 300, 69)
    assert (verdict.outcome, state["up"], state["down"], state["up_window"], state["down_window"]) == (
        "no drift",
        0.0,
        0.0,
        None,
        None,
    )


def test_the_exit_rate_cusums_call_an_unchanged_rate_moved_in_about_5_percent_of_24_checks():
    rng = np.random.default_rng(6)
    rate, rows = 0.23, 150
    threshold = drift.exit_rate_threshold(rate, rows, 0.05)
    exits = rng.binomial(rows, rate, size=(20_000, 24))
    up, down = (exits - (rate + 0.05) * rows), ((rate - 0.05) * rows - exits)
    alarms = cusum_alarms(up, threshold) | cusum_alarms(down, threshold)
    assert 0.035 <= alarms.mean() <= 0.065
