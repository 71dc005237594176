"""The diagnostics of the deployed model, the data and the pipeline, for diagnostics.py, the API and the report.

Data read through the contract, predictions, summaries, missing-data percentages, the steps' timings
(recorded, or fresh runs against a scratch copy of the config, one at a time) and the outdated packages
(risk.outdated: cached in output_model_path, refreshed in the background when older than
outdated_cache_seconds). Every function takes the config or paths it needs.
"""

import dataclasses
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from risk import artifacts, history, outdated, registry
from risk.config import PROJECT_DIR, Config, PipelineError, write_config
from risk.contract import ID_COLUMN, PREDICTION, TRAINING, DataError, check_frame, read_csv
from risk.model import predict

logger = logging.getLogger(__name__)

TIMED_STEPS = ["ingestion", "training"]


class TimingBusy(PipelineError):
    """A fresh timing is already running; the message says what to do instead."""


def read_data(path: Path, mode=TRAINING) -> pd.DataFrame:
    """A data file through the contract; a missing or bad file is one PipelineError line."""
    if not path.is_file():
        hint = "; run ingestion.py first" if path.name == artifacts.FINALDATA_FILE else ""
        raise PipelineError(f"data file {path} does not exist{hint}")
    try:
        return read_csv(path, str(path), mode)
    except DataError as error:
        raise PipelineError(str(error)) from None


def predict_rows(df: pd.DataFrame, model) -> dict:
    """Predictions and exit probabilities for checked rows, as lists the API and reports use."""
    y_pred, probabilities = predict(model, df)
    result = {"predictions": y_pred.tolist(), "probabilities": [round(float(p), 6) for p in probabilities]}
    if ID_COLUMN in df.columns:
        result[ID_COLUMN] = [None if pd.isna(code) else code for code in df[ID_COLUMN].tolist()]
    return result


def deployed_predictions(config: Config, df: pd.DataFrame | None = None) -> dict:
    """The deployed model's predictions for the rows of `df` (default: the test data), via predict_rows."""
    try:
        if df is None:
            rows = read_data(artifacts.testdata_path(config), PREDICTION)
        else:
            rows = check_frame(df, "the data", PREDICTION)
    except DataError as error:
        raise PipelineError(str(error)) from None
    return predict_rows(rows, registry.load_live_model(config)[0])


def summarize(df: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """column -> {mean, median, std} for every numeric column of `df`, missing values left out.

    A statistic with nothing to measure is None (JSON null): all three for a column with no value,
    the standard deviation (n - 1) for a column with one.
    """
    numeric = df.select_dtypes("number")
    stats = {"mean": numeric.mean(), "median": numeric.median(), "std": numeric.std()}
    return {
        column: {
            name: None if pd.isna(values[column]) else round(float(values[column]), 6) for name, values in stats.items()
        }
        for column in numeric.columns
    }


def summary_values(summary: dict[str, dict[str, float | None]]) -> list[float | None]:
    """A labelled summary as one list: [mean, median, std] of each column, in column order."""
    return [value for stats in summary.values() for value in stats.values()]


def missing_percentages(df: pd.DataFrame) -> dict[str, float]:
    """column -> percentage of missing values, for every column of `df`."""
    return {column: round(float(share) * 100, 4) for column, share in df.isna().mean().items()}


def summary_table(config: Config) -> dict[str, dict[str, float]]:
    """column -> {mean, median, std} for every numeric column of finaldata.csv."""
    return summarize(read_data(artifacts.finaldata_path(config)))


def missing_data_table(config: Config) -> dict[str, float]:
    """column -> percentage of missing values, for every column of finaldata.csv."""
    return missing_percentages(read_data(artifacts.finaldata_path(config)))


def scratch_config(config: Config, folder: Path) -> Path:
    """A copy of `config` that reads the real inputs but writes only into `folder`, the history too."""
    scratch = dataclasses.replace(
        config,
        output_folder_path=folder / "ingesteddata",
        output_model_path=folder / "models",
        prod_deployment_path=folder / "production_deployment",
        log_path=folder / "logs" / "fullprocess.log",
        history_path=folder / "logs" / "history.db",
    )
    return write_config(scratch, folder / "config.json")


def time_script(script: str, config_path: Path) -> float:
    """Wall seconds of one run of a top-level script as a process with this interpreter."""
    env = {**os.environ, "RISK_CONFIG": str(config_path)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, os.path.join(PROJECT_DIR, script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"timing run of {script} failed: {last_line}")
    return round(seconds, 4)


def execution_details(config: Config, refresh: bool = False) -> list[dict]:
    """Per timed step: {step, seconds, ran_at, source}: fresh_timings() with refresh, else recorded_timings()."""
    if refresh:
        return fresh_timings(config)
    try:
        with history.closing(history.connect_readonly(config.history_path)) as conn:
            return recorded_timings(conn, config)
    except sqlite3.Error as error:  # damaged: one sentence saying what to do, as for any history error
        raise history.history_error(error, config.history_path) from None


def timing_lock_path(config: Config) -> str:
    """The lock a fresh timing holds, beside the history (in the project's own log folder, not the shared
    temporary one, where another user could plant a link at a predictable name), so that every process
    serving this project shares it."""
    return str(config.history_path.parent / "timing.lock")


def fresh_timings(config: Config) -> list[dict]:
    """Per timed step: {step, seconds, ran_at, source: "fresh run"}, from a run of each step as a process
    against a scratch copy of the config (real inputs; every output, the history included, in a temporary folder).

    One at a time per project, whatever process asks (timing_lock_path): TimingBusy otherwise.
    """
    fd = artifacts.acquire_lock(timing_lock_path(config))
    if fd is None:
        raise TimingBusy(
            "'refresh=1': a fresh timing is already running (one at a time); try again when it ends,"
            " or leave out refresh for the recorded timings"
        )
    try:
        with tempfile.TemporaryDirectory(prefix="risk-timing-") as folder:
            config_path = scratch_config(config, Path(folder))
            now = history.utc_now()
            return [
                {"step": step, "seconds": time_script(f"{step}.py", config_path), "ran_at": now, "source": "fresh run"}
                for step in TIMED_STEPS
            ]
    finally:
        os.close(fd)


def recorded_timings(conn, config: Config) -> list[dict]:
    """Per timed step, its newest recorded run for this config: {step, seconds, ran_at, source}.

    `conn` is a reader's connection to the history, or None when there is no history yet.
    """
    recorded = history.last_step_runs(conn, str(config.config_path), TIMED_STEPS) if conn else {}
    details = []
    for step in TIMED_STEPS:
        row = recorded.get(step)
        if row is None:
            details.append({"step": step, "seconds": None, "ran_at": None, "source": "no run recorded yet"})
        else:
            details.append(
                {
                    "step": step,
                    "seconds": round(row["seconds"], 4),
                    "ran_at": row["started_at"],
                    "source": "last run",
                }
            )
    return details


def outdated_packages_list(config: Config, requirements_path=outdated.REQUIREMENTS_PATH) -> list[dict[str, str]]:
    """package, installed and latest version of each requirement, as last checked, at once: an answer older
    than outdated_cache_seconds is refreshed in the background (risk.outdated), never waited for."""
    cache_path = config.output_model_path / artifacts.OUTDATED_CACHE_FILE
    return outdated.outdated_packages(cache_path, requirements_path, config.outdated_cache_seconds)
