"""The challenger search: candidate models on windows of data, judged out of time, and the gate.

Data arrives in batches (the files one run decided on, in arrival order). A candidate is a window:
the newest k batches (1, 2, 4, ..., the fewest reaching 2,000 rows, all), and, after a detected
change, every batch since the change. Candidates are judged on the evaluated batches (all batches
since the change; by default the newest one) by rolling origin, never on rows they trained on: each
evaluated batch is cut into folds, and each fold is predicted by the window's model trained on the
window's batches before it plus the batch's other folds. The champion (the live model) never saw the
evaluated batches, so it is judged on the same rows. Among candidates, the most data whose F1 is
within one standard error of the best wins (after a change the newest windows win; in a stable
period, more data); the gate then decides, with the burden of proof the champion's state calls for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from risk import drift
from risk.config import PipelineError
from risk.model import complete_rows, labels, predict, train_model

FOLDS = 5
WINDOW_MIN_ROWS = 2_000  # a window of the newest batches that reaches this size is always a candidate
SEED = 0


@dataclass
class Candidate:
    """A window of the newest `batches` batches, and how it did on the newest batch, out of time."""

    label: str
    batches: int
    rows: int
    y_pred: np.ndarray
    f1: float
    low: float
    high: float
    counts: np.ndarray
    se: float = 0.0


@dataclass
class SearchResult:
    candidates: list[Candidate]
    best: Candidate
    y_true: np.ndarray
    champion_pred: np.ndarray | None
    champion_counts: np.ndarray | None
    validation_rows: int
    folds: int
    verdicts: list[drift.Verdict] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)  # indexes of the batches judged on, oldest first

    @property
    def rows_text(self) -> str:
        count = len(self.evaluated)
        return "newest rows" if count <= 1 else f"rows of the {count} batches since the change"


def window_sizes(batch_rows: list[int], min_rows: int = WINDOW_MIN_ROWS) -> list[int]:
    """How many newest batches each candidate takes: 1, the fewest reaching `min_rows`, 2, 4, 8, ..., all."""
    total = len(batch_rows)
    sizes = {1, total}
    cumulative = np.cumsum(batch_rows[::-1])
    reaching = int(np.searchsorted(cumulative, min_rows) + 1)
    sizes.add(min(reaching, total))
    k = 2
    while k < total:
        sizes.add(k)
        k *= 2
    return sorted(sizes)


def window_label(k: int, total: int, since_change: bool = False) -> str:
    if since_change:
        return f"since the change ({k} batch{'es' if k > 1 else ''})"
    if k == total:
        return f"all data ({total} batch{'es' if total > 1 else ''})"
    return "newest batch" if k == 1 else f"newest {k} batches"


def prepare_batches(batches: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Complete rows of each batch; a row already in an older batch is an old row, not a new one."""
    prepared, seen = [], None
    for batch in batches:
        batch = complete_rows(batch).drop_duplicates(ignore_index=True)
        if seen is not None and len(seen):
            merged = batch.merge(seen, how="left", indicator=True)
            batch = batch[(merged["_merge"] == "left_only").to_numpy()].reset_index(drop=True)
        seen = batch if seen is None else pd.concat([seen, batch], ignore_index=True)
        prepared.append(batch)
    return prepared


def fold_count(y: np.ndarray) -> int:
    """FOLDS, or fewer when the rarer class has fewer rows than that; at least 2."""
    rarer = int(min(np.sum(y == 1), np.sum(y == 0)))
    if rarer < 2:
        raise PipelineError(f"the newest data holds {rarer} row(s) of its rarer class: too few to validate a model on")
    return min(FOLDS, rarer)


def fit_predict(train: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Predictions for `rows` by the model trained on `train`; training rows of one class predict that class."""
    classes = np.unique(labels(train))
    if len(classes) < 2:
        return np.full(len(rows), classes[0] if len(classes) else 0, dtype=np.int64)
    y_pred, _ = predict(train_model(train), rows)
    return y_pred


def out_of_time_predictions(older: pd.DataFrame, newest: pd.DataFrame, folds: int) -> np.ndarray:
    """Predictions for every newest row from a model trained on the older rows and the other folds
    (with fewer than 2 folds, from the older rows alone)."""
    if folds < 2:
        return fit_predict(older, newest)
    y = labels(newest)
    y_pred = np.zeros(len(newest), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    for train_index, test_index in splitter.split(np.zeros(len(y)), y):
        train = pd.concat([older, newest.iloc[train_index]], ignore_index=True)
        y_pred[test_index] = fit_predict(train, newest.iloc[test_index])
    return y_pred


def batch_folds(y: np.ndarray) -> int:
    """Folds of an evaluated batch: FOLDS, fewer when its rarer class is rarer than that, 1 below 2."""
    rarer = int(min(np.sum(y == 1), np.sum(y == 0)))
    return min(FOLDS, rarer) if rarer >= 2 else 1


def judge(label: str, k: int, rows: int, y_true, y_pred, confidence: float, rng) -> Candidate:
    counts = drift.confusion_counts(y_true, y_pred)
    replicates = drift.f1_of(drift.resample_counts(counts, rng, drift.RESAMPLES))
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Candidate(
        label,
        k,
        rows,
        y_pred,
        drift.f1_of(counts),
        float(low),
        float(high),
        counts,
        float(np.std(replicates)),
    )


def choose(candidates: list[Candidate]) -> Candidate:
    """The most data whose F1 is within one standard error of the best candidate's (the 1-SE rule)."""
    best = max(candidates, key=lambda candidate: candidate.f1)
    close = [candidate for candidate in candidates if candidate.f1 >= best.f1 - best.se]
    return max(close, key=lambda candidate: candidate.batches)


@dataclass(frozen=True)
class Window:
    """A candidate: at evaluated batch s it trains on batches [first(s), s); its final model on [first(T+1), T]."""

    label: str
    batches: int  # the final model's batches: the newest `batches`
    start: int | None = None  # a fixed first batch (since the change); None: the newest `batches` of each origin

    def older(self, s: int) -> slice:
        return slice(self.start if self.start is not None else max(0, s - self.batches + 1), s)


def older_rows(batches: list[pd.DataFrame], window: Window, s: int) -> pd.DataFrame:
    """What a window's model learns from, besides batch s's other folds, when it predicts batch s."""
    older = batches[window.older(s)]
    return pd.concat(older, ignore_index=True) if older else batches[s].iloc[0:0]


def candidate_windows(batch_rows: list[int], change: int | None) -> list[Window]:
    """The newest-k windows, and the window since the change (which replaces the newest-k of its size)."""
    total = len(batch_rows)
    windows = {k: Window(window_label(k, total), k) for k in window_sizes(batch_rows)}
    if change is not None and 0 < change < total - 1:
        k = total - change
        windows[k] = Window(window_label(k, total, since_change=True), k, start=change)
    return [windows[k] for k in sorted(windows)]


def search(
    batches: list[pd.DataFrame],
    champion,
    confidence: float,
    rng: np.random.Generator,
    evaluated: list[int] | None = None,
    change: int | None = None,
) -> SearchResult:
    """Judge every window's candidate, and the champion (if any), on the `evaluated` batches (indexes,
    default the newest), each predicted out of time by rolling origin; `change`: the first batch since
    a detected change, for the window that starts there."""
    batches = prepare_batches(batches)
    evaluated = evaluated or [len(batches) - 1]
    y_true = np.concatenate([labels(batches[s]) for s in evaluated])
    fold_count(y_true)  # fewer than 2 rows of a class: nothing to validate a model on (raises, naming them)
    candidates = []
    for window in candidate_windows([len(batch) for batch in batches], change):
        y_pred = np.concatenate(
            [
                out_of_time_predictions(older_rows(batches, window, s), batches[s], batch_folds(labels(batches[s])))
                for s in evaluated
            ]
        )
        rows = sum(len(batch) for batch in batches[-window.batches :])
        candidates.append(judge(window.label, window.batches, rows, y_true, y_pred, confidence, rng))
    champion_pred = champion_counts = None
    if champion is not None:
        champion_pred = np.concatenate([predict(champion, batches[s])[0] for s in evaluated])
        champion_counts = drift.confusion_counts(y_true, champion_pred)
    return SearchResult(
        candidates, choose(candidates), y_true, champion_pred, champion_counts, len(y_true), FOLDS, evaluated=evaluated
    )


def window_data(batches: list[pd.DataFrame], k: int) -> pd.DataFrame:
    """The rows a window's final model trains on: the newest k batches, complete and de-duplicated."""
    return pd.concat(prepare_batches(batches)[-k:], ignore_index=True)


def single_class(y_pred) -> bool:
    return len(np.unique(y_pred)) < 2


def gate(
    result: SearchResult,
    final_pred,
    margin: float,
    confidence: float,
    rng,
    degraded_confidence: float | None = None,
) -> drift.Verdict:
    """Deploy the best candidate? Never one that predicts a single class when the data holds both.
    Against a healthy champion, only when it beats it on the same rows by the margin with `confidence`;
    against a degraded one (`degraded_confidence` given), when it is better at all with that confidence."""
    best = result.best
    both = len(np.unique(result.y_true)) == 2
    if both and (single_class(best.y_pred) or single_class(final_pred)):
        detail = (
            f"the best candidate ({best.label}) predicts a single class on {result.validation_rows} "
            f"{result.rows_text} that hold both -> refused"
        )
        return drift.Verdict("gate", "single class", "not better", detail, n=result.validation_rows)
    if result.champion_pred is None:
        detail = f"nothing is deployed: the best candidate ({best.label}, F1 {best.f1:.2f}) goes live -> better"
        return drift.Verdict("gate", "f1", "better", detail, value=best.f1, n=result.validation_rows)
    if degraded_confidence is not None:
        margin, confidence = 0.0, degraded_confidence
    burden = "degraded" if degraded_confidence is not None else ""
    return drift.gain_verdict(
        result.y_true,
        best.y_pred,
        result.champion_pred,
        margin,
        confidence,
        rng,
        rows_text=result.rows_text,
        burden=burden,
    )


def describe_candidates(result: SearchResult) -> list[drift.Verdict]:
    """Each candidate's out-of-time F1 as a verdict row, the chosen one marked."""
    rows = []
    for candidate in result.candidates:
        chosen = candidate is result.best
        detail = (
            f"candidate {candidate.label} ({candidate.rows} rows): F1 {candidate.f1:.2f} "
            f"[{candidate.low:.2f}, {candidate.high:.2f}] on {result.validation_rows} {result.rows_text}"
            + (" -> chosen" if chosen else "")
        )
        rows.append(
            drift.Verdict(
                "candidate",
                "f1",
                "chosen" if chosen else "candidate",
                detail,
                feature=candidate.label,
                value=candidate.f1,
                low=candidate.low,
                high=candidate.high,
                n=result.validation_rows,
                positives=int(result.y_true.sum()),
            )
        )
    return rows


def cross_validate(df: pd.DataFrame, confidence: float, rng: np.random.Generator) -> Candidate:
    """In-time validation of a model trained on all of `df` (the course's training.py): K-fold CV."""
    usable = complete_rows(df).reset_index(drop=True)
    y_true = labels(usable)
    y_pred = out_of_time_predictions(usable.iloc[0:0], usable, fold_count(y_true))
    return judge("all rows", 1, len(usable), y_true, y_pred, confidence, rng)


def validation_record(candidate: Candidate, method: str) -> dict:
    """A candidate's validation as the model card's fields."""
    return {
        "validation_f1": round(candidate.f1, 6),
        "validation_low": round(candidate.low, 6),
        "validation_high": round(candidate.high, 6),
        "validation_rows": int(candidate.counts.sum()),
        "validation_counts": [int(x) for x in candidate.counts],
        "validation_method": method,
    }
