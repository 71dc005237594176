"""The decision policy of the full process: judge the new rows, search for a challenger, keep or replace.

check(): the live model on the new rows only (its F1 against the reference it was validated at),
the features and the exit rate against its reference rows (data drift), and the course's raw
comparison (recorded, not used); too few new rows and the files wait. challenge(): candidates on
windows of the batches, judged out of time on the newest batch, and the gate; a winner is written to
output_model_path with its card. keep_champion(): the files are decided and the live model's
reference becomes its F1 on the newest rows, so one change is acted on once.
Every verdict goes to the history database; the returned lines are for the log.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from risk import artifacts, challenger, drift, history, registry
from risk.config import Config, PipelineError, actor
from risk.contract import FEATURES, TRAINING, DataError, read_csv, read_csv_bytes
from risk.model import (
    complete_rows,
    labels,
    make_card,
    predict,
    score_model,
    train_model,
    write_model,
)

SEED = 0


@dataclass
class Check:
    decision: str
    challenge: bool
    lines: list[str]
    champion: object = None
    verdicts: list[drift.Verdict] = field(default_factory=list)


@dataclass
class Choice:
    deploy: bool
    lines: list[str]
    result: challenger.SearchResult | None = None


def read_recorded(history_path, files: list[dict]) -> pd.DataFrame | None:
    """The rows of recorded file versions; None when one is gone or its content changed."""
    frames = []
    for file in files:
        if not file.get("folder") or not file.get("sha256"):
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(history_path)), file["folder"], file["name"])
        try:
            data, _ = artifacts.read_input(path)
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != file["sha256"]:
            return None
        try:
            frames.append(read_csv_bytes(data, file["name"], TRAINING))
        except DataError:
            return None
    return pd.concat(frames, ignore_index=True) if frames else None


def batches(conn, config) -> tuple[list[list[dict]], list[pd.DataFrame]]:
    """The decided batches, oldest first, then the undecided files as the newest batch."""
    folder = history.folder_key(config.input_folder_path, config.history_path)
    groups = history.decided_batches(conn, folder)
    undecided = history.undecided_files(conn, folder)
    if undecided:
        groups.append(undecided)
    frames = []
    for group in groups:
        df = read_recorded(config.history_path, group)
        if df is None:
            names = ", ".join(file["name"] for file in group)
            raise PipelineError(f"input file(s) {names} changed or vanished during the run; the next run retries")
        frames.append(df)
    return groups, frames


def live_model(conn, config):
    """(model, its model id, its reference) of the live release."""
    release = artifacts.live_release(config.prod_deployment_path)
    if release is None:
        raise PipelineError(f"nothing is deployed at {config.prod_deployment_path}")
    with conn:
        registry.ensure_release(conn, release)  # adopted (trusted on first use) if the history does not know it
    model, model_id = registry.load_release_model(conn, release, record=True)
    reference = history.latest_reference(conn, model_id)
    return model, model_id, reference, release


def data_verdicts(reference: pd.DataFrame | None, new_rows: pd.DataFrame, confidence: float) -> list[drift.Verdict]:
    """KS and PSI of each feature, and the exit rate, of the new rows against the reference rows."""
    if reference is None:
        detail = (
            "the reference rows (the files the live model was validated on) are gone or changed -> insufficient data"
        )
        return [drift.Verdict("data drift", "reference", drift.INSUFFICIENT, detail, n=len(new_rows))]
    reference = complete_rows(reference)
    verdicts = []
    for feature in FEATURES:
        reference_values = reference[feature].to_numpy(dtype="float64")
        new_values = new_rows[feature].to_numpy(dtype="float64")
        verdicts.append(drift.ks_verdict(feature, reference_values, new_values, confidence))
        verdicts.append(drift.psi_verdict(feature, reference_values, new_values))
    verdicts.append(drift.exit_rate_verdict(labels(reference), labels(new_rows), confidence))
    return verdicts


def course_comparison(config, model, release) -> drift.Verdict:
    """The course's rule on all of finaldata.csv against the release's latestscore.txt."""
    finaldata = read_csv(artifacts.finaldata_path(config), artifacts.FINALDATA_FILE, TRAINING)
    test_f1 = registry.read_score(release / artifacts.SCORE_FILE)
    if test_f1 is None:
        return drift.Verdict("course", "f1", drift.INSUFFICIENT, "course rule: the release has no latestscore.txt")
    return drift.course_verdict(score_model(model, finaldata), test_f1, len(complete_rows(finaldata)))


def adopt_learned_files(conn, config: Config, release, folder: str) -> tuple[list[str], list[str]]:
    """Undecided file versions the live release's model learned from (it was adopted: deployed by hand
    before the history knew, or the history was lost) are not new data to judge it by: decide them as
    their own batch, under a run of their own. Learned means the same content (registry.learned_versions),
    never the same name alone. Returns (the names adopted, the lines for the log: what was adopted, and
    each learned name that came back with other content, which is new data)."""
    adopted, changed = registry.learned_versions(conn, release, folder)
    if adopted:
        run_id = history.start_run(conn, str(config.config_path), actor(), "adoption", release.name)
        with conn:
            history.decide_files(conn, [file["id"] for file in adopted], run_id, "decided")
        history.finish_run(conn, run_id, {"decision": "files the live release learned from, adopted", "exit_code": 0})
    names = [file["name"] for file in adopted]
    notes = [f"{', '.join(names)}: learned by the live release {release.name}, not new data"] if names else []
    notes += [f"{name} changed since the live model learned from it: new data" for name in changed]
    return names, notes


def check(conn, config: Config, run_id: int) -> Check:
    """Judge the new rows; record the verdicts; decide the files unless a challenger check follows."""
    model, model_id, reference, release = live_model(conn, config)
    folder = history.folder_key(config.input_folder_path, config.history_path)
    adopted, notes = adopt_learned_files(conn, config, release, folder)
    new_files = history.undecided_files(conn, folder)
    if not new_files:
        reason = "the live release learned from them" if adopted else "the new file(s) were rejected"
        return Check(f"no new rows: {reason}", False, notes)
    groups, frames = batches(conn, config)
    new_rows = challenger.prepare_batches(frames)[-1]
    if reference is None:
        performance = drift.Verdict("performance", "f1", drift.INSUFFICIENT, "the live model has no reference F1")
    else:
        y_pred, _ = predict(model, new_rows)
        performance = drift.performance_verdict(
            drift.confusion_counts(labels(new_rows), y_pred),
            reference["f1"],
            reference["counts"],
            config.drift_margin,
            config.drift_confidence,
            config.min_new_rows,
            config.min_new_positives,
            np.random.default_rng(SEED),
        )
    verdicts = [course_comparison(config, model, release), performance]
    ids = [file["id"] for file in new_files]
    if performance.outcome == drift.INSUFFICIENT:
        with conn:
            history.record_verdicts(conn, run_id, [v.row() for v in verdicts])
            history.decide_files(conn, ids, run_id, "waiting")
        names = ", ".join(file["name"] for file in new_files)
        return Check(f"insufficient data: {names} wait for more rows", False, notes + [v.detail for v in verdicts])
    reference_rows = read_recorded(config.history_path, reference["files"])  # a reference: judged above
    verdicts += data_verdicts(reference_rows, new_rows, config.drift_confidence)
    flagged = [v for v in verdicts if v.outcome == drift.DRIFT and v.kind != "course"]
    lines = notes + [v.detail for v in verdicts]
    if not flagged:
        with conn:
            history.record_verdicts(conn, run_id, [v.row() for v in verdicts])
            history.decide_files(conn, ids, run_id, "decided")
        return Check("no drift: the live model stays", False, lines + ["no drift: keeping the live model"])
    with conn:
        history.record_verdicts(conn, run_id, [v.row() for v in verdicts])
    kinds = sorted({v.kind for v in flagged})
    lines.append(f"{' and '.join(kinds)} flagged: searching for a challenger")
    return Check(f"{' and '.join(kinds)}: challenger search", True, lines, champion=model, verdicts=verdicts)


def window_files(groups: list[list[dict]], k: int) -> list[dict]:
    return [{key: file[key] for key in ("folder", "name", "sha256")} for group in groups[-k:] for file in group]


def challenge(conn, config: Config, run_id: int, champion) -> Choice:
    """Search the windows, gate the best; on success write the model and its card for deployment."""
    started_at, started = history.utc_now(), time.perf_counter()
    groups, frames = batches(conn, config)
    if not frames:
        raise PipelineError(f"no accepted data file in {config.input_folder_path} to train on")
    rng = np.random.default_rng(SEED)
    result = challenger.search(frames, champion, config.drift_confidence, rng)
    best = result.best
    window_df = challenger.window_data(frames, best.batches)
    model = train_model(window_df)
    final_pred, _ = predict(model, challenger.prepare_batches(frames)[-1])
    verdict = challenger.gate(result, final_pred, config.drift_margin, config.drift_confidence, rng)
    verdicts = challenger.describe_candidates(result) + [verdict]
    with conn:
        history.record_verdicts(conn, run_id, [v.row() for v in verdicts])
    seconds = time.perf_counter() - started
    detail = {"kind": "challenger search", "candidates": len(result.candidates), "rows": len(window_df)}
    history.record_step(conn, str(config.config_path), "training", started_at, seconds, True, detail)
    lines = [v.detail for v in verdicts]
    if verdict.outcome != "better":
        return Choice(False, lines, result)
    method = (
        f"out of time: {result.folds} folds of the newest batch ({result.validation_rows} rows), "
        "older rows of the window added to each training fold"
    )
    files = window_files(groups, best.batches)
    card = make_card(model, window_df, files, best.label, challenger.validation_record(best, method), run_id)
    card["reference_files"] = files
    write_model(model, card, config.output_model_path)
    with conn:
        registry.record_card(conn, card)
    lines.append(f"model {card['id']} trained on {best.label} ({card['rows']} rows) is the challenger to deploy")
    return Choice(True, lines, result)


def keep_champion(conn, config: Config, run_id: int, choice: Choice) -> None:
    """The live model stays: decide the files, and re-baseline it on the newest rows it was judged on."""
    folder = history.folder_key(config.input_folder_path, config.history_path)
    new_files = history.undecided_files(conn, folder)
    _, model_id, _, _ = live_model(conn, config)
    result = choice.result
    counts = result.champion_counts
    low, high = drift.f1_interval(counts, config.drift_confidence, np.random.default_rng(SEED))
    with conn:
        history.decide_files(conn, [file["id"] for file in new_files], run_id, "decided")
        history.add_reference(
            conn,
            {
                "model_id": model_id,
                "run_id": run_id,
                "kind": "revalidation",
                "f1": drift.f1_of(counts),
                "low": low,
                "high": high,
                "rows": int(counts.sum()),
                "counts": [int(x) for x in counts],
                "files": [{key: file[key] for key in ("folder", "name", "sha256")} for file in new_files],
            },
        )
