"""Drift statistics as pure functions: arrays in, a Verdict out; the random generator is passed in.

- performance_verdict: has the live model's F1 dropped on the new rows by more than a margin?
  Bootstrap (rows resampled with replacement, as a multinomial draw over the confusion table), both
  the new rows and the reference's validation rows, independent samples of independent clients.
- gain_verdict: does a challenger beat the champion on the same rows by the margin? Paired
  bootstrap over the rows' (label, challenger, champion) cells.
- ks_verdict / psi_verdict / exit_rate_verdict: has a feature's distribution, or the exit rate,
  moved between the reference rows and the new rows?
- cusum_step / cusum_threshold: the sequential test over checks that pools the evidence of an F1
  shortfall (a CUSUM of the F1 shortfall, weighted by each check's F1 mass), its threshold set so
  that a model that has not changed is called drifted in at most `false_alarm_rate` of 24 checks.
Each test refuses to decide below its minimum sample and says so ("insufficient data").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr  # the standard normal CDF
from scipy.stats import chi2, ks_2samp, norm

DRIFT = "drift"
NO_DRIFT = "no drift"
INSUFFICIENT = "insufficient data"
RESAMPLES = 10_000
PSI_BINS = 10
PSI_FLAG = 0.2  # the usual reading: < 0.1 stable, 0.1-0.2 moderate, >= 0.2 a shift worth acting on
KS_MIN_EFFECT = 0.1  # with thousands of rows KS finds tiny differences; flag only a sizeable one
EXIT_RATE_MARGIN = 0.05  # an exit-rate change smaller than 5 points is not worth a challenger check
MIN_DATA_ROWS = 100  # per sample, for KS, PSI (10 rows per bin) and the exit rate


@dataclass(frozen=True)
class Verdict:
    """One test's outcome with its numbers; `detail` is the sentence for the log and the dashboard."""

    kind: str
    statistic: str
    outcome: str
    detail: str
    feature: str | None = None
    value: float | None = None
    reference: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    n: int = 0
    positives: int | None = None

    def row(self) -> dict:
        return asdict(self)


def confusion_counts(y_true, y_pred) -> np.ndarray:
    """[tp, fp, fn, tn] of 0/1 labels and predictions."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    return np.array(
        [
            np.sum(y_true & y_pred),
            np.sum(~y_true & y_pred),
            np.sum(y_true & ~y_pred),
            np.sum(~y_true & ~y_pred),
        ],
        dtype=np.int64,
    )


def f1_of(counts) -> np.ndarray | float:
    """F1 = 2tp / (2tp + fp + fn) over the last axis of [tp, fp, fn, ...] counts; 0 when undefined."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(f1) if f1.ndim == 0 else f1


def resample_counts(counts, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Bootstrap replicates of a table of counts: rows drawn with replacement = a multinomial draw."""
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    return rng.multinomial(n, counts / n, size=resamples)


def f1_interval(counts, confidence: float, rng: np.random.Generator, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Two-sided percentile bootstrap interval of F1 at `confidence`."""
    replicates = f1_of(resample_counts(counts, rng, resamples))
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return float(low), float(high)


def p_text(p_value: float) -> str:
    """'p < 0.001' below a thousandth, else the value (a bootstrap p is at least 1 / (B + 1))."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


@dataclass(frozen=True)
class Drop:
    """The new rows' F1 against a reference: its interval and the bootstrap replicates of the drop."""

    f1: float
    low: float
    high: float
    drops: np.ndarray


def bootstrap_drop(new_counts, reference_f1: float, reference_counts, confidence: float, rng, resamples: int) -> Drop:
    """Bootstrap replicates of the drop (reference F1 - new F1), and the new F1's interval at `confidence`;
    the reference is resampled too when its counts are known (independent samples), else taken as fixed."""
    new_replicates = f1_of(resample_counts(new_counts, rng, resamples))
    if reference_counts is not None and int(np.sum(reference_counts)) > 0:
        reference_replicates = f1_of(resample_counts(reference_counts, rng, resamples))
    else:
        reference_replicates = np.full(resamples, reference_f1)
    tail = (1 - confidence) / 2
    low, high = (float(x) for x in np.quantile(new_replicates, [tail, 1 - tail]))
    return Drop(f1_of(new_counts), low, high, reference_replicates - new_replicates)


def too_few(counts, min_rows: int, min_positives: int) -> tuple[int, int, bool]:
    """(rows, exits, whether they are below the minimum sample) of confusion counts."""
    n, positives = int(np.sum(counts)), int(counts[0] + counts[2])
    return n, positives, n < min_rows or positives < min_positives


def performance_verdict(
    new_counts,
    reference_f1: float,
    reference_counts,
    margin: float,
    confidence: float,
    min_rows: int,
    min_positives: int,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    rows_text: str = "new rows",
    extra: str = "",
) -> Verdict:
    """Drift when the F1 drop from the reference exceeds `margin` with confidence `confidence`.

    One-sided bootstrap test of H0: drop <= margin, where drop = reference F1 - F1 on the new rows.
    Both F1s are resampled (independent samples); a reference given without counts (an adopted
    release's test F1) is taken as fixed. p = (1 + #{replicates with drop <= margin}) / (1 + B);
    drift iff p < 1 - confidence. Minimum sample: `min_rows` new rows holding `min_positives` exits
    (F1 is about the exits: with fewer, its interval is too wide to tell a change from noise).
    `rows_text` names the rows in the sentence ("new rows", "rows of the last 3 checks"); `extra` is
    a clause added before the outcome.
    """
    new_counts = np.asarray(new_counts, dtype=np.int64)
    n, positives, insufficient = too_few(new_counts, min_rows, min_positives)
    f1_new = f1_of(new_counts)
    base = dict(kind="performance", statistic="f1", value=f1_new, reference=reference_f1, n=n, positives=positives)
    if insufficient:
        detail = (
            f"F1 {f1_new:.2f} on {n} {rows_text} with {positives} exits vs {reference_f1:.2f} expected: "
            f"below the minimum of {min_rows} rows and {min_positives} exits -> insufficient data"
        )
        return Verdict(outcome=INSUFFICIENT, detail=detail, **base)
    drop = bootstrap_drop(new_counts, reference_f1, reference_counts, confidence, rng, resamples)
    p_value = (1 + np.sum(drop.drops <= margin)) / (1 + resamples)
    outcome = DRIFT if p_value < 1 - confidence else NO_DRIFT
    detail = (
        f"F1 {f1_new:.2f} [{drop.low:.2f}, {drop.high:.2f}] on {n} {rows_text} vs {reference_f1:.2f} expected: "
        f"drop {reference_f1 - f1_new:.2f} (at least {np.quantile(drop.drops, 1 - confidence):.2f} with "
        f"{confidence * 100:g} % confidence) {'>' if outcome == DRIFT else 'not clearly >'} margin "
        f"{margin:.2f} ({p_text(p_value)}){extra} -> {outcome}"
    )
    return Verdict(outcome=outcome, detail=detail, low=drop.low, high=drop.high, p_value=float(p_value), **base)


def recovery_verdict(
    counts,
    reference_f1: float,
    reference_counts,
    margin: float,
    confidence: float,
    min_rows: int,
    min_positives: int,
    rng: np.random.Generator,
    rows_text: str,
    resamples: int = RESAMPLES,
) -> Verdict:
    """Is a degraded model back within the margin of its reference on the rows judged since its drift?

    One-sided bootstrap test of H0: drop >= margin (the mirror of performance_verdict):
    p = (1 + #{replicates with drop >= margin}) / (1 + B); healthy iff p < 1 - confidence. Below the
    minimum sample it stays degraded ("insufficient data"): a model shown poor is not trusted on less.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n, positives, insufficient = too_few(counts, min_rows, min_positives)
    f1_new = f1_of(counts)
    base = dict(kind="recovery", statistic="f1 drop", value=f1_new, reference=reference_f1, n=n, positives=positives)
    if insufficient:
        detail = (
            f"F1 {f1_new:.2f} on {n} {rows_text} with {positives} exits vs {reference_f1:.2f} expected: below the "
            f"minimum of {min_rows} rows and {min_positives} exits to show it recovered -> still degraded"
        )
        return Verdict(outcome=INSUFFICIENT, detail=detail, **base)
    drop = bootstrap_drop(counts, reference_f1, reference_counts, confidence, rng, resamples)
    p_value = (1 + np.sum(drop.drops >= margin)) / (1 + resamples)
    recovered = p_value < 1 - confidence
    detail = (
        f"F1 {f1_new:.2f} [{drop.low:.2f}, {drop.high:.2f}] on {n} {rows_text} vs {reference_f1:.2f} expected: "
        f"drop {reference_f1 - f1_new:.2f} (at most {np.quantile(drop.drops, confidence):.2f} with "
        f"{confidence * 100:g} % confidence) {'<' if recovered else 'not clearly <'} margin {margin:.2f} "
        f"({p_text(p_value)}) -> {'healthy again' if recovered else 'still degraded'}"
    )
    outcome = "healthy" if recovered else "degraded"
    return Verdict(outcome=outcome, detail=detail, low=drop.low, high=drop.high, p_value=float(p_value), **base)


def paired_cells(y_true, pred_a, pred_b) -> np.ndarray:
    """Counts of the 8 (label, a, b) combinations, index 4*label + 2*a + b."""
    index = (
        4 * np.asarray(y_true, dtype=np.int64)
        + 2 * np.asarray(pred_a, dtype=np.int64)
        + np.asarray(pred_b, dtype=np.int64)
    )
    return np.bincount(index, minlength=8)


def f1_pair(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 of predictions a and b from (..., 8) cell counts (tp, fp, fn: F1 ignores true negatives)."""
    c = cells.reshape(*cells.shape[:-1], 2, 2, 2)  # [label, a, b]
    counts_a = np.stack([c[..., 1, 1, :].sum(-1), c[..., 0, 1, :].sum(-1), c[..., 1, 0, :].sum(-1)], -1)
    counts_b = np.stack([c[..., 1, :, 1].sum(-1), c[..., 0, :, 1].sum(-1), c[..., 1, :, 0].sum(-1)], -1)
    return f1_of(counts_a), f1_of(counts_b)


def gain_verdict(
    y_true,
    challenger_pred,
    champion_pred,
    margin: float,
    confidence: float,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    rows_text: str = "newest rows",
    burden: str = "",
) -> Verdict:
    """Does the challenger beat the champion on the same rows by the margin?

    Gain = F1(challenger) - F1(champion). "better" when the gain exceeds `margin` (the smallest
    improvement worth a deployment) and the challenger is better at all with `confidence`
    (paired bootstrap: p = share of replicates with gain <= 0, plus one, over B + 1). `rows_text`
    names the rows and `burden` the champion's state in the sentence.
    """
    y_true = np.asarray(y_true)
    cells = paired_cells(y_true, challenger_pred, champion_pred)
    f1_challenger, f1_champion = (float(x) for x in f1_pair(cells))
    gain = f1_challenger - f1_champion
    replicates = np.subtract(*f1_pair(resample_counts(cells, rng, resamples)))
    p_value = (1 + np.sum(replicates <= 0)) / (1 + resamples)
    tail = (1 - confidence) / 2
    low, high = (float(x) for x in np.quantile(replicates, [tail, 1 - tail]))
    better = gain > margin and p_value < 1 - confidence
    detail = (
        f"challenger F1 {f1_challenger:.2f} vs {burden + ' ' if burden else ''}champion {f1_champion:.2f} on the same "
        f"{len(y_true)} {rows_text}: gain {gain:+.2f} [{low:+.2f}, {high:+.2f}] {'>' if gain > margin else '<='} "
        f"margin {margin:.2f} ({p_text(p_value)}{f', needs < {1 - confidence:.2g}' if burden else ''}) -> "
        f"{'better' if better else 'not better'}"
    )
    return Verdict(
        kind="gate",
        statistic="f1 gain",
        outcome="better" if better else "not better",
        detail=detail,
        value=gain,
        reference=f1_champion,
        low=low,
        high=high,
        p_value=float(p_value),
        n=len(y_true),
        positives=int(np.sum(y_true)),
    )


def ks_verdict(feature: str, reference_values, new_values, confidence: float) -> Verdict:
    """Two-sample Kolmogorov-Smirnov test; drift when p < 1 - confidence and D >= KS_MIN_EFFECT.

    Assumes independent samples; with tied (integer) values the test is conservative.
    """
    reference_values, new_values = np.asarray(reference_values), np.asarray(new_values)
    n = len(new_values)
    if min(len(reference_values), n) < MIN_DATA_ROWS:
        return Verdict(
            "data drift",
            "ks",
            INSUFFICIENT,
            f"{feature}: KS needs {MIN_DATA_ROWS} rows in each sample, "
            f"has {len(reference_values)} and {n} -> insufficient data",
            feature=feature,
            n=n,
        )
    result = ks_2samp(reference_values, new_values)
    d, p_value = float(result.statistic), float(result.pvalue)
    drift = p_value < 1 - confidence and d >= KS_MIN_EFFECT
    outcome = DRIFT if drift else NO_DRIFT
    detail = (
        f"{feature}: KS D {d:.3f} ({p_text(p_value)}) on {n} new rows vs {len(reference_values)} reference rows "
        f"-> {outcome}"
    )
    return Verdict("data drift", "ks", outcome, detail, feature=feature, value=d, p_value=p_value, n=n)


def psi_counts(reference_values, new_values, bins: int = PSI_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples in bins cut at the reference's quantiles (ties merge bins)."""
    reference_values, new_values = np.asarray(reference_values), np.asarray(new_values)
    edges = np.unique(np.quantile(reference_values, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, reference_values), minlength=len(edges) + 1)
    new_counts = np.bincount(np.searchsorted(edges, new_values), minlength=len(edges) + 1)
    return ref_counts, new_counts


def psi(reference_values, new_values, bins: int = PSI_BINS) -> float:
    """Population stability index over bins cut at the reference's quantiles (ties merge bins).

    Each bin's share gets half a row added on both sides, so an empty bin stays finite.
    """
    ref_counts, new_counts = psi_counts(reference_values, new_values, bins)
    ref_share = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * len(ref_counts))
    new_share = (new_counts + 0.5) / (new_counts.sum() + 0.5 * len(new_counts))
    return float(np.sum((new_share - ref_share) * np.log(new_share / ref_share)))


def psi_verdict(feature: str, reference_values, new_values, confidence: float) -> Verdict:
    """PSI of the new rows against the reference; drift when PSI >= PSI_FLAG and it is significant.

    PSI is the symmetric Kullback-Leibler divergence of the binned shares; for two samples of sizes n
    and m from one distribution, PSI x nm / (n + m) is about chi-square with (bins - 1) degrees of
    freedom. With a few hundred rows PSI reaches 0.2 by chance alone, so the flag also needs
    p < 1 - confidence (bins cut at the reference's own quantiles: a slightly conservative test).
    """
    n, n_reference = len(new_values), len(reference_values)
    if min(n_reference, n) < MIN_DATA_ROWS:
        return Verdict(
            "data drift",
            "psi",
            INSUFFICIENT,
            f"{feature}: PSI needs {MIN_DATA_ROWS} rows in each sample, has {n_reference} and {n} -> insufficient data",
            feature=feature,
            n=n,
        )
    value = psi(reference_values, new_values)
    bins = len(psi_counts(reference_values, new_values)[0])
    p_value = float(chi2.sf(value * n * n_reference / (n + n_reference), bins - 1))
    drift = value >= PSI_FLAG and p_value < 1 - confidence
    outcome = DRIFT if drift else NO_DRIFT
    detail = (
        f"{feature}: PSI {value:.3f} ({'>=' if value >= PSI_FLAG else '<'} {PSI_FLAG}, {p_text(p_value)}) -> {outcome}"
    )
    return Verdict(
        "data drift",
        "psi",
        outcome,
        detail,
        feature=feature,
        value=value,
        reference=PSI_FLAG,
        p_value=p_value,
        n=n,
    )


def exit_rate_verdict(reference_labels, new_labels, confidence: float) -> Verdict:
    """Has the exit rate moved by more than EXIT_RATE_MARGIN, with `confidence`? (normal approximation)"""
    reference_labels, new_labels = np.asarray(reference_labels), np.asarray(new_labels)
    return exit_rate_counts_verdict(
        len(reference_labels), int(reference_labels.sum()), len(new_labels), int(new_labels.sum()), confidence
    )


def exit_rate_counts_verdict(
    reference_rows: int,
    reference_exits: int,
    rows: int,
    exits: int,
    confidence: float,
    rows_text: str = "new rows",
    extra: str = "",
) -> Verdict:
    """exit_rate_verdict from counts of rows and exits; `rows_text` names the rows and `extra` adds a
    clause before the outcome in the sentence."""
    if min(reference_rows, rows) < MIN_DATA_ROWS:
        return Verdict(
            "exit rate",
            "rate change",
            INSUFFICIENT,
            f"exit rate needs {MIN_DATA_ROWS} rows in each sample, has {reference_rows} and {rows}"
            " -> insufficient data",
            n=rows,
        )
    p_ref, p_new = reference_exits / reference_rows, exits / rows
    change = p_new - p_ref
    se = np.sqrt(p_ref * (1 - p_ref) / reference_rows + p_new * (1 - p_new) / rows) or 1e-12
    z = norm.ppf(1 - (1 - confidence) / 2)
    low, high = change - z * se, change + z * se
    p_value = float(norm.sf((abs(change) - EXIT_RATE_MARGIN) / se))
    outcome = DRIFT if p_value < 1 - confidence else NO_DRIFT
    detail = (
        f"exit rate {p_new:.1%} on {rows} {rows_text} vs {p_ref:.1%} on the reference: change {change:+.1%} "
        f"[{low:+.1%}, {high:+.1%}] vs margin {EXIT_RATE_MARGIN:.0%}{extra} -> {outcome}"
    )
    return Verdict(
        "exit rate",
        "rate change",
        outcome,
        detail,
        value=float(p_new),
        reference=float(p_ref),
        low=float(low),
        high=float(high),
        p_value=p_value,
        n=rows,
        positives=exits,
    )


def course_verdict(f1_all_rows: float, test_f1: float, n: int) -> Verdict:
    """The course's raw comparison, recorded beside the sound one: F1 on all ingested rows < test F1."""
    drift = f1_all_rows < test_f1
    outcome = DRIFT if drift else NO_DRIFT
    detail = (
        f"course rule: F1 {f1_all_rows:.4f} on all {n} ingested rows {'<' if drift else '>='} "
        f"{test_f1:.4f} on the test data -> {outcome} (recorded only)"
    )
    return Verdict("course", "f1", outcome, detail, value=f1_all_rows, reference=test_f1, n=n)


# --- the sequential test over checks: a CUSUM of the F1 shortfall ----------------------------------

CHECKS = 24  # the false-alarm rate is stated over this many checks: two years of monthly files
CUSUM_CELLS = 120  # grid of the Markov-chain computation of the alarm probability


def f1_mass(counts) -> float:
    """2tp + fp + fn: the rows F1 is about (exits and predicted exits), tp counted twice, as in F1."""
    tp, fp, fn = (float(x) for x in np.asarray(counts)[:3])
    return 2 * tp + fp + fn


def shortfall(counts, reference_f1: float, allowance: float) -> float:
    """How far a check's F1 fell below `reference_f1` - `allowance`, weighted by its F1 mass.

    (reference - allowance) * mass - 2tp = mass * (reference - allowance - F1): summed over checks it is
    the pooled F1's shortfall times the pooled mass, so a CUSUM of it pools the checks exactly.
    """
    return (reference_f1 - allowance) * f1_mass(counts) - 2 * float(np.asarray(counts)[0])


def shortfall_variance(reference_f1: float, allowance: float) -> float:
    """Variance of the shortfall per unit of F1 mass when the F1 is still `reference_f1`.

    Per row the shortfall is (F - k) * b - a with (a, b) = (2, 2) for a true positive, (0, 1) for a false
    positive or negative, (0, 0) otherwise; at F1 = F the mass is split F : 1 - F between true positives
    and errors, which gives 2F(1 - F + k)^2 + (1 - F)(F - k)^2 (less a term k^2 x mass per row, which
    is dropped: the variance is overstated by under 0.1 %).
    """
    f, k = reference_f1, allowance
    return 2 * f * (1 - f + k) ** 2 + (1 - f) * (f - k) ** 2


def cusum_alarm_probability(threshold: float, drift: float, checks: int = CHECKS, cells: int = CUSUM_CELLS) -> float:
    """P(a CUSUM S = max(0, S + X) of N(-drift, 1) increments, started at 0, exceeds `threshold` within
    `checks` steps): the Markov chain of Brook and Evans (1972) over `cells` values of S in [0, threshold)."""
    if threshold <= 0:  # S never carries over: each check alarms alone when its increment is > 0
        return float(1 - ndtr(drift) ** checks)
    width = threshold / (cells - 0.5)
    values = np.arange(cells) * width
    upper = values + width / 2
    lower = np.concatenate([[-np.inf], upper[:-1]])
    moves = ndtr(upper[None, :] - values[:, None] + drift) - ndtr(lower[None, :] - values[:, None] + drift)
    state = np.zeros(cells)
    state[0] = 1.0
    for _ in range(checks):
        state = state @ moves
    return float(1 - state.sum())


def cusum_threshold(
    reference_f1: float,
    mass_per_check: float,
    allowance: float,
    false_alarm_rate: float,
    checks: int = CHECKS,
) -> float:
    """The CUSUM threshold h (in F1 mass units) such that a model whose F1 is still `reference_f1`,
    checked on `mass_per_check` F1 mass at a time, is called drifted within `checks` checks with
    probability at most `false_alarm_rate`: each check's shortfall taken as normal, mean
    -allowance x mass and variance shortfall_variance x mass (normal_cusum_threshold). The
    simulation in the tests checks the rate with multinomial counts.
    """
    variance = shortfall_variance(reference_f1, allowance) * mass_per_check
    return normal_cusum_threshold(allowance * mass_per_check, variance, false_alarm_rate, checks)


def normal_cusum_threshold(mean: float, variance: float, false_alarm_rate: float, checks: int = CHECKS) -> float:
    """The threshold h of a CUSUM of N(-mean, variance) increments that crosses it within `checks`
    steps with probability at most `false_alarm_rate`: exact for that model (cusum_alarm_probability),
    found by bisection; 0 when a single step's increment is rarely positive enough."""
    if mean <= 0 or variance <= 0:
        return 0.0
    drift = mean / np.sqrt(variance)
    if cusum_alarm_probability(0.0, drift, checks) <= false_alarm_rate:
        return 0.0
    low, high = 0.0, 1.0
    while cusum_alarm_probability(high, drift, checks) > false_alarm_rate:
        low, high = high, 2 * high
    while high - low > 1e-3 * high:
        middle = (low + high) / 2
        if cusum_alarm_probability(middle, drift, checks) > false_alarm_rate:
            low = middle
        else:
            high = middle
    return float(high * np.sqrt(variance))


# --- the exit rate, pooled over checks: two CUSUMs (exits rising, exits falling) ------------------


def exit_rate_shortfalls(rows: int, exits: int, reference_rate: float) -> tuple[float, float]:
    """How far a check's exits went beyond the reference rate + the margin (up) and below the reference
    rate - the margin (down), in exits: summed over checks they are the pooled excess."""
    return exits - (reference_rate + EXIT_RATE_MARGIN) * rows, (reference_rate - EXIT_RATE_MARGIN) * rows - exits


def exit_rate_threshold(reference_rate: float, rows_per_check: float, false_alarm_rate: float) -> float:
    """The threshold of each of the two exit-rate CUSUMs (in exits): together they call an unchanged
    exit rate moved within 24 checks with probability at most `false_alarm_rate` (half each side)."""
    variance = reference_rate * (1 - reference_rate) * rows_per_check
    return normal_cusum_threshold(EXIT_RATE_MARGIN * rows_per_check, variance, false_alarm_rate / 2)
