"""The decision policy of the full process: judge the new rows, search for a challenger, keep or replace.

check(): the live model on the rows new in this run, pooled with its earlier checks by the sequential
test (risk.monitoring: its state, unproven, healthy or degraded, and the evidence); the features and
the exit rate against the rows it was validated on (data drift, an early warning); the course's raw
comparison (recorded, not used). A confirmed drop, a degraded model, or a data-drift flag starts a
challenger search. challenge(): candidates on windows of the batches, judged out of time on every
batch since the change, and the gate with the burden of proof the champion's state calls for; a winner
is written to output_model_path with its card. keep_champion(): the live model stays, its reference
unchanged (an expectation is never lowered without a deployment). Every verdict and check goes to the
history database; the returned lines are for the log.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from risk import artifacts, challenger, drift, history, monitoring, registry
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
    """What check() decided: the run's decision, whether a challenger search follows (and how: the gate's
    burden and the first run of the evidence), the live model's state, and what is new to tell people."""

    decision: str
    challenge: bool
    lines: list[str]
    champion: object = None
    verdicts: list[drift.Verdict] = field(default_factory=list)
    state: str | None = None
    burden: str | None = None
    since_run_id: int | None = None
    newly_degraded: bool = False
    newly_flagged: bool = False


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


def reference_exits(reference: dict | None, reference_rows: pd.DataFrame | None) -> tuple[int, int] | None:
    """(rows, exits) the exit rate is judged against: the rows the live model was validated on, or its
    validation counts when those rows are gone; None without a reference."""
    if reference_rows is not None:
        y = labels(complete_rows(reference_rows))
        return len(y), int(y.sum())
    if reference is not None and reference.get("counts"):
        tp, fp, fn, tn = reference["counts"]
        return tp + fp + fn + tn, tp + fn
    return None


def settling(conn, model_id: str) -> bool:
    """Was the live model deployed in answer to a change (its newest deployment's reason is drift)?"""
    row = history.select_one(
        conn,
        "SELECT reason FROM deployments WHERE state = 'done' AND model_id = ? ORDER BY id DESC LIMIT 1",
        (model_id,),
    )
    return row is not None and row["reason"] == "drift"


def data_verdicts(reference: pd.DataFrame | None, new_rows: pd.DataFrame, confidence: float) -> list[drift.Verdict]:
    """KS and PSI of each feature of the new rows against the reference rows (the exit rate is pooled
    over checks: monitoring.assess_exit_rate)."""
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
        verdicts.append(drift.psi_verdict(feature, reference_values, new_values, confidence))
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


def decide_judged_content(conn, folder: str, run_id: int) -> list[str]:
    """Undecided file versions whose content (SHA-256) a run has judged before, under another name or
    before it vanished (a copy, a renamed file), are not new data: decided now. The lines for the log."""
    judged = {}
    for row in history.select(
        conn, "SELECT id, name, sha256 FROM files WHERE folder = ? AND decision = 'decided'", (folder,)
    ):
        judged.setdefault(row["sha256"], row["name"])
    twins = [file for file in history.undecided_files(conn, folder) if file["sha256"] in judged]
    if twins:
        with conn:
            history.decide_files(conn, [file["id"] for file in twins], run_id, "decided")
    return [
        f"{file['name']}: the same content as {judged[file['sha256']]}, judged before: not new data" for file in twins
    ]


def no_rows_reason(conn, folder: str, run_id: int, adopted: list[str]) -> str:
    """Why a run with new files found no new rows: learned by the live release, rejected, or judged before."""
    if adopted:
        return "the live release learned from them"
    run = history.select_one(conn, "SELECT new_files FROM runs WHERE id = ?", (run_id,))
    names = (run or {}).get("new_files") or []
    newest = {name: versions[-1] for name, versions in history.file_states(conn, folder).items()}
    if any(newest.get(name, {}).get("status") == "rejected" for name in names):
        return "the new file(s) were rejected"
    return "their content was judged before (a file touched, copied or renamed)"


def check(conn, config: Config, run_id: int) -> Check:
    """Judge the new rows; record the verdicts and the check; decide the files unless a search follows."""
    model, model_id, reference, release = live_model(conn, config)
    folder = history.folder_key(config.input_folder_path, config.history_path)
    adopted, notes = adopt_learned_files(conn, config, release, folder)
    notes += decide_judged_content(conn, folder, run_id)
    new_files = history.undecided_files(conn, folder)
    if not new_files:
        return Check(f"no new rows: {no_rows_reason(conn, folder, run_id, adopted)}", False, notes)
    _, frames = batches(conn, config)
    new_rows = challenger.prepare_batches(frames)[-1]
    if new_rows.empty:  # every row of the new files was judged before, in other files
        with conn:
            history.decide_files(conn, [file["id"] for file in new_files], run_id, "decided")
        names = ", ".join(file["name"] for file in new_files)
        return Check(f"no new rows: every row of {names} was judged before", False, notes)
    y_pred, _ = predict(model, new_rows)
    counts = drift.confusion_counts(labels(new_rows), y_pred)
    data, reference_rows = [], None
    if reference is not None:
        reference_rows = read_recorded(config.history_path, reference["files"])
        data = data_verdicts(reference_rows, new_rows, config.drift_confidence)
    checks = history.model_checks(conn, model_id)
    exit_state = {}
    if reference is not None:
        exit_rate, exit_state = monitoring.assess_exit_rate(
            checks, run_id, counts, reference_exits(reference, reference_rows), config
        )
        data.append(exit_rate)
    flagged = any(v.outcome == drift.DRIFT for v in data)
    rng = np.random.default_rng(SEED)
    assessment = monitoring.assess(
        checks, run_id, counts, reference, flagged, config, rng, history.utc_now(), settling(conn, model_id)
    )
    verdicts = [course_comparison(config, model, release), *assessment.verdicts, *data]
    ids = [file["id"] for file in new_files]
    row = {**assessment.row, "exit_cusum": exit_state}
    with conn:
        history.record_verdicts(conn, run_id, [v.row() for v in verdicts])
        history.record_check(
            conn, {**row, "run_id": run_id, "model_id": model_id, "release": release.name, "files": ids}
        )
        if not assessment.search:
            history.decide_files(conn, ids, run_id, "decided")
    before = checks[-1]["state"] if checks else monitoring.UNPROVEN
    result = Check(
        decision_text(assessment, before, verdicts),
        assessment.search is not None,
        notes
        + [v.detail for v in verdicts]
        + [f"the live model is {assessment.state} (since {assessment.row['state_since']})"],
        champion=model if assessment.search else None,
        verdicts=verdicts,
        state=assessment.state,
        burden=assessment.search,
        since_run_id=assessment.since_run_id,
        newly_degraded=assessment.state == monitoring.DEGRADED and before != monitoring.DEGRADED,
        newly_flagged=flagged and not (checks and checks[-1]["flagged"]),
    )
    if result.challenge:
        result.lines.append(f"{result.decision}: the gate's burden is that of a {assessment.search} champion")
    return result


def decision_text(assessment: monitoring.Assessment, before: str, verdicts: list[drift.Verdict]) -> str:
    """The run's decision in a few words, from the check's state and what it flagged."""
    performance = verdicts[1]
    if before == monitoring.DEGRADED and assessment.state == monitoring.DEGRADED:
        return "still degraded: challenger search"
    flagged = sorted({v.kind for v in verdicts if v.outcome == drift.DRIFT and v.kind != "course"})
    if assessment.search and not flagged:
        return "settling after a change: challenger search"
    if assessment.search:
        return f"{' and '.join(flagged)}: challenger search"
    if before == monitoring.DEGRADED:
        return "healthy again: the live model stays"
    if performance.outcome == drift.INSUFFICIENT:
        return f"insufficient data: the live model stays ({assessment.state})"
    return "no drift: the live model stays"


def file_key(file: dict) -> dict:
    return {key: file[key] for key in ("folder", "name", "sha256")}


def window_files(groups: list[list[dict]], k: int) -> list[dict]:
    return [file_key(file) for group in groups[-k:] for file in group]


def evaluation_batches(conn, groups: list[list[dict]], champion_id: str | None, since_run_id) -> list[int]:
    """The batches candidates are judged on: the newest (undecided) one, and those the champion was judged
    on from run `since_run_id` on, in its current spell as the live model (after a rollback, only the
    rows since it came back; never rows it learned from: it was live before they came)."""
    newest = len(groups) - 1
    if since_run_id is None or champion_id is None:
        return [newest]
    went_live = history.select_one(
        conn, "SELECT MAX(at) AS at FROM deployments WHERE state = 'done' AND model_id = ?", (champion_id,)
    )["at"]
    judged = {
        check["run_id"]
        for check in history.model_checks(conn, champion_id)
        if check["run_id"] >= since_run_id and (went_live is None or check["at"] > went_live)
    }
    return [index for index, group in enumerate(groups) if index == newest or group[0]["decided_run_id"] in judged]


def gate_burden(burden: str | None, result: challenger.SearchResult, reference: dict | None, config) -> tuple:
    """A degraded champion loses the protection of the margin only while it still fails its own test on
    the rows the challenger is judged on (say after a rollback, it may hold there): (burden, a note)."""
    if burden != monitoring.DEGRADED_GATE or reference is None or result.champion_counts is None:
        return burden, None
    f1 = drift.f1_of(result.champion_counts)
    if f1 < reference["f1"] - config.drift_margin:
        return burden, None
    note = (
        f"the degraded champion scores F1 {f1:.2f} on these rows, within margin {config.drift_margin:.2f} of the "
        f"{reference['f1']:.2f} expected: a challenger must beat it as it would a healthy one"
    )
    return monitoring.HEALTHY_GATE, note


def challenge(
    conn, config: Config, run_id: int, champion, burden: str | None = None, since_run_id: int | None = None
) -> Choice:
    """Search the windows, gate the best; on success write the model and its card for deployment.

    `burden`: the champion's state (monitoring.HEALTHY_GATE or DEGRADED_GATE); `since_run_id`: the first
    run of the evidence since the change (default: the newest batch alone)."""
    started_at, started = history.utc_now(), time.perf_counter()
    groups, frames = batches(conn, config)
    if not frames:
        raise PipelineError(f"no accepted data file in {config.input_folder_path} to train on")
    _, champion_id, reference, _ = live_model(conn, config) if champion is not None else (None, None, None, None)
    evaluated = evaluation_batches(conn, groups, champion_id, since_run_id)
    rng = np.random.default_rng(SEED)
    change = evaluated[0] if len(evaluated) > 1 else None
    result = challenger.search(frames, champion, config.drift_confidence, rng, evaluated, change)
    best = result.best
    window_df = challenger.window_data(frames, best.batches)
    model = train_model(window_df)
    final_pred, _ = predict(model, challenger.prepare_batches(frames)[-1])
    burden, note = gate_burden(burden, result, reference, config)
    degraded = config.degraded_confidence if burden == monitoring.DEGRADED_GATE else None
    verdict = challenger.gate(result, final_pred, config.drift_margin, config.drift_confidence, rng, degraded)
    verdicts = challenger.describe_candidates(result) + [verdict]
    with conn:
        history.record_verdicts(conn, run_id, [v.row() for v in verdicts])
    seconds = time.perf_counter() - started
    detail = {"kind": "challenger search", "candidates": len(result.candidates), "rows": len(window_df)}
    history.record_step(conn, str(config.config_path), "training", started_at, seconds, True, detail)
    lines = [v.detail for v in verdicts]
    if note:
        lines.insert(-1, note)
    if verdict.outcome != "better":
        return Choice(False, lines, result)
    method = (
        f"out of time, rolling origin over {len(evaluated)} batch{'es' if len(evaluated) > 1 else ''} "
        f"({result.validation_rows} rows): each cut into folds, each fold predicted by the window's model "
        "trained on the window's batches before it and the other folds"
    )
    files = window_files(groups, best.batches)
    card = make_card(model, window_df, files, best.label, challenger.validation_record(best, method), run_id)
    card["reference_files"] = [file_key(file) for index in evaluated for file in groups[index]]
    write_model(model, card, config.output_model_path)
    with conn:
        registry.record_card(conn, card)
    lines.append(f"model {card['id']} trained on {best.label} ({card['rows']} rows) is the challenger to deploy")
    return Choice(True, lines, result)


def keep_champion(conn, config: Config, run_id: int) -> None:
    """The live model stays, its reference unchanged: the files this run judged are decided."""
    folder = history.folder_key(config.input_folder_path, config.history_path)
    new_files = history.undecided_files(conn, folder)
    with conn:
        history.decide_files(conn, [file["id"] for file in new_files], run_id, "decided")
