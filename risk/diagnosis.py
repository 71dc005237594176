"""The diagnostics of the deployed model, the data and the pipeline, for diagnostics.py, the API and the report.

Data read through the contract, predictions, summaries, missing-data percentages, the steps' timings
(recorded, or fresh runs against a scratch copy of the config) and the outdated packages, whose answer
is cached in output_model_path for outdated_cache_seconds. Every function takes the config or paths it needs.
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from risk import artifacts, history, registry
from risk.config import (
    PROJECT_DIR,
    REQUIREMENTS_PATH,
    Config,
    PipelineError,
    atomic_write_text,
    installed_version,
    requirement_names,
    write_config,
)
from risk.contract import ID_COLUMN, PREDICTION, TRAINING, DataError, check_frame, read_csv
from risk.model import predict

logger = logging.getLogger(__name__)

PIP_DEADLINE_SECONDS = 20
TIMED_STEPS = ["ingestion", "training"]


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


def summarize(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """column -> {mean, median, std} for every numeric column of `df`."""
    numeric = df.select_dtypes("number")
    stats = {"mean": numeric.mean(), "median": numeric.median(), "std": numeric.std()}
    return {
        column: {name: round(float(values[column]), 6) for name, values in stats.items()} for column in numeric.columns
    }


def summary_values(summary: dict[str, dict[str, float]]) -> list[float]:
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
    scratch = Config(
        **{
            **vars(config),
            "output_folder_path": folder / "ingesteddata",
            "output_model_path": folder / "models",
            "prod_deployment_path": folder / "production_deployment",
            "log_path": folder / "logs" / "fullprocess.log",
            "history_path": folder / "logs" / "history.db",
        }
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
    """Per timed step: {step, seconds, ran_at, source} (source: "last run" or "fresh run").

    refresh=True times fresh runs of the steps as processes against a scratch copy of the config
    (real inputs; every output, the history database included, in a temporary folder).
    """
    if refresh:
        with tempfile.TemporaryDirectory(prefix="risk-timing-") as folder:
            config_path = scratch_config(config, Path(folder))
            now = history.utc_now()
            return [
                {
                    "step": step,
                    "seconds": time_script(f"{step}.py", config_path),
                    "ran_at": now,
                    "source": "fresh run",
                }
                for step in TIMED_STEPS
            ]
    conn = history.connect_readonly(config.history_path)
    recorded = history.last_step_runs(conn, str(config.config_path), TIMED_STEPS) if conn else {}
    if conn:
        conn.close()
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


def pip_index_command(name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "index",
        "versions",
        name,
        "--json",
        "--retries",
        "0",
        "--timeout",
        "10",
    ]


def latest_versions(names: list[str], deadline_seconds: float, command=pip_index_command) -> dict[str, str]:
    """name -> latest version on the package index, or 'unknown (reason)'; all asked at once, bounded."""
    processes = {
        name: subprocess.Popen(command(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    }
    deadline = time.monotonic() + deadline_seconds
    latest = {}
    for name, process in processes.items():
        try:
            stdout, stderr = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            latest[name] = f"unknown (pip did not answer within {deadline_seconds:g} s)"
            continue
        try:
            latest[name] = json.loads(stdout)["latest"]
        except (ValueError, KeyError, TypeError):
            reason = (stderr.strip().splitlines() or [f"pip exited with code {process.returncode}"])[-1]
            latest[name] = f"unknown ({reason.removeprefix('ERROR: ')})"
    return latest


def outdated_packages_list(
    config: Config,
    requirements_path=REQUIREMENTS_PATH,
    deadline_seconds: float = PIP_DEADLINE_SECONDS,
) -> list[dict[str, str]]:
    """package, installed and latest version of each requirement; cached for outdated_cache_seconds."""
    cache_path = config.output_model_path / artifacts.OUTDATED_CACHE_FILE
    try:
        cached = json.loads(cache_path.read_text(encoding="utf-8"))
        if time.time() - cached["checked_at"] < config.outdated_cache_seconds:
            return cached["packages"]
    except FileNotFoundError:
        pass  # no answer cached yet
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("the outdated-packages cache %s is unreadable (%s); asking pip again", cache_path, error)
    names = requirement_names(requirements_path)
    latest = latest_versions(names, deadline_seconds)
    packages = [{"package": name, "installed": installed_version(name), "latest": latest[name]} for name in names]
    atomic_write_text(cache_path, json.dumps({"checked_at": time.time(), "packages": packages}, indent=2) + "\n")
    return packages
