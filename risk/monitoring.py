"""The live model's health over its checks: the evidence pooled since its last clean verdict, the
sequential test that judges it, and the state that follows (unproven, healthy, degraded).

A check is one run's judgement of the live model on the rows new in that run. Each check adds its
F1 shortfall to a CUSUM (risk.drift): the evidence is pooled over the checks since the CUSUM last
stood at zero, and a drop is called when the CUSUM crosses its threshold (an unchanged model is called
drifted in at most `false_alarm_rate` of 24 checks) and the pooled rows confirm a drop beyond
`drift_margin` with `drift_confidence` (bootstrap, the reference's own uncertainty included).
States: unproven until the rows judged since the model went live reach the minimum sample; healthy;
degraded once a drop is confirmed and no better model replaced it. A degraded model keeps the
reference it was validated at; every later check continues the challenger search, until a challenger
is deployed or the rows judged since the drift show the model back within the margin
(`degraded_confidence`). A model deployed in answer to a change is *settling* for its first
FOLLOW_UP_CHECKS checks: each also searches for a better model (the business may still be moving).
The exit rate is pooled the same way (assess_exit_rate: two CUSUMs, exits rising and falling).
Pure functions over the model's earlier checks (rows of the history's `monitoring` table); the caller
records the result.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from risk import drift

UNPROVEN, HEALTHY, DEGRADED = "unproven", "healthy", "degraded"
HEALTHY_GATE, DEGRADED_GATE = "healthy", "degraded"  # the burden of proof a challenger faces
FOLLOW_UP_CHECKS = 3  # checks of a model deployed in answer to a change that also search for a better one


@dataclass
class Assessment:
    """One check: its verdicts, the monitoring row to record (without run, model and files), and
    whether a challenger search follows (`search`: the gate's burden) on the evidence since a run."""

    verdicts: list[drift.Verdict]
    row: dict
    search: str | None = None
    since_run_id: int | None = None

    @property
    def state(self) -> str:
        return self.row["state"]


def total(counts_list) -> np.ndarray:
    """The confusion counts of several checks added up ([tp, fp, fn, tn])."""
    return np.sum([np.asarray(counts, dtype=np.int64) for counts in counts_list], axis=0, dtype=np.int64)


def rows_text(checks: int) -> str:
    return "new rows" if checks == 1 else f"rows of the last {checks} checks"


def checks_needed(have: np.ndarray, per_check: np.ndarray, min_rows: int, min_positives: int) -> int | None:
    """How many more checks like the recent ones reach the minimum sample; None if they never would."""
    shortfalls = [
        (min_rows - int(have.sum()), float(per_check.sum())),
        (min_positives - int(have[0] + have[2]), float(per_check[0] + per_check[2])),
    ]
    needed = 0
    for short, rate in shortfalls:
        if short <= 0:
            continue
        if rate <= 0:
            return None
        needed = max(needed, math.ceil(short / rate))
    return needed


def needed_text(have: np.ndarray, all_checks: list, config) -> str:
    per_check = total(all_checks) / len(all_checks)
    more = checks_needed(have, per_check, config.min_new_rows, config.min_new_positives)
    exits = per_check[0] + per_check[2]
    if more is None:
        return "the recent checks hold no exits, so more of them would not reach it"
    return f"about {more} more check{'s' if more != 1 else ''} at the recent {exits:.0f} exits a check"


def flag_spell_start(checks: list[dict], run_id: int) -> int:
    """The first run of the unbroken spell of checks, ending with this one, that flagged data drift."""
    start = run_id
    for check in reversed(checks):
        if not check["flagged"]:
            break
        start = check["run_id"]
    return start


def assess(
    checks: list[dict],
    run_id: int,
    counts,
    reference: dict | None,
    flagged: bool,
    config,
    rng,
    now: str,
    settling: bool = False,
) -> Assessment:
    """Judge this check's `counts` (the live model on this run's new rows) with the model's earlier
    `checks` (oldest first) against its `reference`; `flagged`: this check's data drift; `settling`: the
    model was deployed in answer to a change (its first FOLLOW_UP_CHECKS checks search too)."""
    assessment = assess_performance(checks, run_id, counts, reference, flagged, config, rng, now)
    if settling and assessment.search is None and len(checks) < FOLLOW_UP_CHECKS and reference is not None:
        assessment.search = HEALTHY_GATE
        assessment.since_run_id = checks[0]["run_id"] if checks else run_id
    return assessment


def assess_performance(checks, run_id, counts, reference, flagged, config, rng, now) -> Assessment:
    counts = np.asarray(counts, dtype=np.int64)
    last = checks[-1] if checks else None
    if reference is None:
        verdict = drift.Verdict(
            "performance",
            "f1",
            drift.INSUFFICIENT,
            "the live model has no reference F1",
            value=drift.f1_of(counts),
            n=int(counts.sum()),
            positives=int(counts[0] + counts[2]),
        )
        row = monitoring_row(counts, None, UNPROVEN, now, last, verdict, flagged)
        return Assessment([verdict], row)
    if last and last["state"] == DEGRADED:
        return assess_degraded(checks, run_id, counts, reference, flagged, config, rng, now)
    return assess_sequential(checks, run_id, counts, reference, flagged, config, rng, now)


def monitoring_row(counts, reference_f1, state, now, last, verdict, flagged, **values) -> dict:
    same = last is not None and last["state"] == state
    row = {
        "rows": int(counts.sum()),
        "counts": [int(x) for x in counts],
        "reference_f1": reference_f1,
        "cusum": 0.0,
        "threshold": None,
        "window_start_run_id": None,
        "window_checks": 0,
        "window_counts": [0, 0, 0, 0],
        "flagged": int(flagged),
        "state": state,
        "state_since": last["state_since"] if same else now,
        "change_run_id": None,
        "drift_run_id": None,
        "evidence": f"{state}: {verdict.detail}",
    }
    row.update(values)
    return row


def assess_sequential(checks, run_id, counts, reference, flagged, config, rng, now) -> Assessment:
    """A healthy or unproven model: the CUSUM takes this check; drift when it crosses and the pool confirms."""
    f1, margin = reference["f1"], config.drift_margin
    last = checks[-1] if checks else None
    mass = np.mean([drift.f1_mass(check["counts"]) for check in checks] + [drift.f1_mass(counts)])
    threshold = drift.cusum_threshold(f1, float(mass), margin, config.false_alarm_rate)
    before = last["cusum"] if last else 0.0
    cusum = max(0.0, before + drift.shortfall(counts, f1, margin))
    if cusum > 0 and before > 0:
        window = (last["window_start_run_id"], last["window_checks"] + 1, total([last["window_counts"], counts]))
    elif cusum > 0:
        window = (run_id, 1, counts)
    else:
        window = (None, 0, np.zeros(4, dtype=np.int64))
    evidence, evidence_checks = (window[2], window[1]) if cusum > 0 else (counts, 1)
    history_counts = [check["counts"] for check in checks] + [counts]
    judged = total(history_counts)
    enough = judged.sum() >= config.min_new_rows and judged[0] + judged[2] >= config.min_new_positives
    needed = margin + threshold / max(drift.f1_mass(evidence), 1.0)
    test = dict(
        reference_f1=f1,
        reference_counts=reference.get("counts"),
        margin=margin,
        confidence=config.drift_confidence,
        min_rows=config.min_new_rows,
        min_positives=config.min_new_positives,
        rng=rng,
        rows_text=rows_text(evidence_checks),
    )
    if cusum > threshold:
        verdict = drift.performance_verdict(
            evidence, **test, extra=f", over the {needed:.2f} the sequential test needs here"
        )
        if verdict.outcome == drift.INSUFFICIENT:
            detail = verdict.detail.replace(
                "-> insufficient data", f"to confirm a drop: {needed_text(evidence, history_counts, config)}"
            )
            verdict = dataclasses.replace(verdict, detail=detail + " -> insufficient data")
    else:
        verdict = quiet_verdict(evidence, test, needed, cusum, enough, history_counts, config)
    values = dict(
        cusum=round(cusum, 6),
        threshold=round(threshold, 6),
        window_start_run_id=window[0],
        window_checks=window[1],
        window_counts=[int(x) for x in window[2]],
    )
    if verdict.outcome == drift.DRIFT:
        values.update(change_run_id=window[0], drift_run_id=run_id)
        row = monitoring_row(counts, f1, DEGRADED, now, last, verdict, flagged, **values)
        return Assessment([verdict], row, DEGRADED_GATE, window[0])
    state = HEALTHY if enough else UNPROVEN
    row = monitoring_row(counts, f1, state, now, last, verdict, flagged, **values)
    if flagged:
        return Assessment([verdict], row, HEALTHY_GATE, flag_spell_start(checks, run_id))
    return Assessment([verdict], row)


def quiet_verdict(evidence, test, needed, cusum, enough, history_counts, config) -> drift.Verdict:
    """The verdict of a check whose CUSUM stays below its threshold: no drift, or insufficient data
    while the rows judged since the model went live are fewer than the minimum."""
    f1 = drift.f1_of(evidence)
    low, high = drift.f1_interval(evidence, test["confidence"], test["rng"]) if evidence.sum() else (0.0, 0.0)
    drop = test["reference_f1"] - f1
    head = (
        f"F1 {f1:.2f} [{low:.2f}, {high:.2f}] on {int(evidence.sum())} {test['rows_text']} "
        f"vs {test['reference_f1']:.2f} expected: drop {drop:.2f}, "
    )
    if cusum > 0:
        body = f"under the {needed:.2f} the sequential test needs on this evidence"
    else:
        body = f"within margin {test['margin']:.2f}: no evidence of a drop is left"
    judged = total(history_counts)
    if enough:
        outcome, tail = drift.NO_DRIFT, ""
    else:
        outcome = drift.INSUFFICIENT
        tail = (
            f"; {int(judged.sum())} rows with {int(judged[0] + judged[2])} exits judged since it went live, a "
            f"verdict needs {config.min_new_rows} and {config.min_new_positives}: "
            f"{needed_text(judged, history_counts, config)}"
        )
    return drift.Verdict(
        "performance",
        "f1",
        outcome,
        f"{head}{body}{tail} -> {outcome}",
        value=f1,
        reference=test["reference_f1"],
        low=low,
        high=high,
        n=int(evidence.sum()),
        positives=int(evidence[0] + evidence[2]),
    )


def assess_degraded(checks, run_id, counts, reference, flagged, config, rng, now) -> Assessment:
    """A degraded model: still below its reference on the rows since its drift, or back within the margin?"""
    last = checks[-1]
    since = [check["counts"] for check in checks if check["run_id"] > last["drift_run_id"]] + [counts]
    pooled = total(since)
    text = "rows since the drift" + (f" ({len(since)} checks)" if len(since) > 1 else "")
    common = dict(
        reference_f1=reference["f1"],
        reference_counts=reference.get("counts"),
        margin=config.drift_margin,
        min_rows=config.min_new_rows,
        min_positives=config.min_new_positives,
        rng=rng,
        rows_text=text,
    )
    performance = drift.performance_verdict(pooled, confidence=config.drift_confidence, **common)
    # Recovered: the rows since the drift show the F1 back within the margin of the expected F1, taken as
    # the stated number (with its own sampling error too, a model validated on few rows could never recover).
    recovery = drift.recovery_verdict(
        pooled, confidence=config.degraded_confidence, **{**common, "reference_counts": None}
    )
    verdicts = [performance, recovery]
    if recovery.outcome == "healthy":
        row = monitoring_row(counts, reference["f1"], HEALTHY, now, last, recovery, flagged)
        if flagged:
            return Assessment(verdicts, row, HEALTHY_GATE, flag_spell_start(checks, run_id))
        return Assessment(verdicts, row)
    row = monitoring_row(
        counts,
        reference["f1"],
        DEGRADED,
        now,
        last,
        recovery,
        flagged,
        cusum=last["cusum"],
        threshold=last["threshold"],
        change_run_id=last["change_run_id"],
        drift_run_id=last["drift_run_id"],
    )
    return Assessment(verdicts, row, DEGRADED_GATE, last["change_run_id"])


def assess_exit_rate(checks: list[dict], run_id: int, counts, reference_exits, config) -> tuple[drift.Verdict, dict]:
    """The exit rate of this check pooled with the model's earlier ones: two CUSUMs of the exits beyond
    the reference rate ± EXIT_RATE_MARGIN (rising, falling), each with half the false-alarm rate; a
    move is called when one crosses its threshold and its pooled rows confirm it (normal approximation,
    `drift_confidence`). `reference_exits`: (rows, exits) of the rows the model was validated on, or
    None. Returns the verdict and the state to record (the `exit_cusum` column)."""
    counts = np.asarray(counts, dtype=np.int64)
    rows, exits = int(counts.sum()), int(counts[0] + counts[2])
    if reference_exits is None or reference_exits[0] == 0:
        verdict = drift.Verdict("exit rate", "rate change", drift.INSUFFICIENT, "exit rate: no reference rows", n=rows)
        return verdict, {}
    reference_rows, reference_count = reference_exits
    rate = reference_count / reference_rows
    last = (checks[-1].get("exit_cusum") or {}) if checks else {}
    per_check = np.mean([check["rows"] for check in checks] + [rows])
    threshold = drift.exit_rate_threshold(rate, float(per_check), config.false_alarm_rate)
    state = {"threshold": round(threshold, 6)}
    for side, excess in zip(("up", "down"), drift.exit_rate_shortfalls(rows, exits, rate), strict=True):
        before = last.get(side, 0.0)
        value = max(0.0, before + excess)
        window = [run_id, 1, rows, exits]
        if value > 0 and before > 0:
            start, checks_in, rows_in, exits_in = last[f"{side}_window"]
            window = [start, checks_in + 1, rows_in + rows, exits_in + exits]
        state[side] = round(value, 6)
        state[f"{side}_window"] = window if value > 0 else None
    crossed = [side for side in ("up", "down") if state[side] > threshold]
    if not crossed:
        verdict = drift.exit_rate_counts_verdict(reference_rows, reference_count, rows, exits, config.drift_confidence)
        if verdict.outcome == drift.DRIFT:  # one check alone does not decide: the sequential test does
            detail = verdict.detail.removesuffix(" -> drift") + ", under what the sequential test needs -> no drift"
            verdict = dataclasses.replace(verdict, outcome=drift.NO_DRIFT, detail=detail)
        return verdict, state
    _, checks_in, rows_in, exits_in = state[f"{crossed[0]}_window"]
    needed = drift.EXIT_RATE_MARGIN + threshold / rows_in
    verdict = drift.exit_rate_counts_verdict(
        reference_rows,
        reference_count,
        rows_in,
        exits_in,
        config.drift_confidence,
        rows_text(checks_in),
        extra=f", beyond the {needed:.1%} the sequential test needs here",
    )
    return verdict, state
