"""Step 3: diagnostics of the deployed model, the data and the pipeline.

Config keys: prod_deployment_path (the deployed model), test_data_path (default data to predict),
output_folder_path (finaldata.csv), output_model_path (cache of the outdated-packages answer),
outdated_cache_seconds. `python diagnostics.py` prints every diagnostic.
Functions called without paths take them from the config (RISK_CONFIG or config.json).
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from common import (
    FEATURES,
    FINALDATA_FILE,
    ID_COLUMN,
    MODEL_FILE,
    PROJECT_DIR,
    TARGET,
    TESTDATA_FILE,
    Config,
    PipelineError,
    atomic_write_text,
    load_config,
    run_cli,
    write_config,
)
from ingestion import DataFileError, check_columns, check_number_column, load_dataset
from scoring import complete_rows, load_model, predict

logger = logging.getLogger(__name__)

REQUIREMENTS_PATH = Path(PROJECT_DIR) / "requirements.txt"
OUTDATED_CACHE_FILE = "outdatedpackages.json"
PIP_DEADLINE_SECONDS = 20
TIMED_SCRIPTS = ["ingestion.py", "training.py"]


def config_or_default(config: Config | None) -> Config:
    return config if config is not None else load_config()


def check_prediction_rows(df: pd.DataFrame, name: str = "the data") -> pd.DataFrame:
    """Rows to predict: the three features (numbers >= 0, none missing); `corporation`, `exited` optional."""
    check_columns(df, name, FEATURES, optional=(ID_COLUMN, TARGET))
    if df.empty:
        raise DataFileError(f"{name}: no rows to predict")
    checked = df.copy()
    for column in FEATURES:
        checked[column] = check_number_column(df, column, name)
        absent = checked[column].isna()
        if absent.any():
            line = int(absent.to_numpy().argmax()) + 1
            raise DataFileError(
                f"{name}: row {line} has no value for '{column}'; the model needs all three features"
            )
    return checked


def predict_rows(df: pd.DataFrame, model) -> dict:
    """Predictions and exit probabilities for checked rows, as lists the API and reports use."""
    y_pred, probabilities = predict(model, df)
    result = {"predictions": y_pred.tolist(), "probabilities": [round(float(p), 6) for p in probabilities]}
    if ID_COLUMN in df.columns:
        result[ID_COLUMN] = df[ID_COLUMN].tolist()
    return result


def model_predictions(df: pd.DataFrame | None = None, config: Config | None = None) -> list[int]:
    """The deployed model's 0/1 prediction for every row of `df` (default: the test data)."""
    return deployed_predictions(df, config)["predictions"]


def model_probabilities(df: pd.DataFrame | None = None, config: Config | None = None) -> list[float]:
    """The deployed model's exit probability for every row of `df` (default: the test data)."""
    return deployed_predictions(df, config)["probabilities"]


def deployed_predictions(df: pd.DataFrame | None = None, config: Config | None = None) -> dict:
    config = config_or_default(config)
    if df is None:
        df = load_dataset(config.test_data_path / TESTDATA_FILE)
    try:
        rows = check_prediction_rows(df)
    except DataFileError as error:
        raise PipelineError(str(error)) from None
    return predict_rows(rows, load_model(config.prod_deployment_path / MODEL_FILE))


def top_risk_clients(df: pd.DataFrame, model, count: int = 20) -> list[dict]:
    """The `count` clients most likely to exit, highest first, from each client's latest row.

    Rows come in ingestion order (files by name, so later months last); rows missing a feature
    cannot be scored and are left out.
    """
    latest = complete_rows(df).drop_duplicates(subset=ID_COLUMN, keep="last")
    _, probabilities = predict(model, latest)
    ranked = latest.assign(probability=probabilities).nlargest(count, "probability")
    return [
        {ID_COLUMN: row[ID_COLUMN], "probability": round(float(row["probability"]), 4)}
        for _, row in ranked.iterrows()
    ]


def read_finaldata(data_path: Path) -> pd.DataFrame:
    if not data_path.is_file():
        raise PipelineError(f"data file {data_path} does not exist; run ingestion.py first")
    return pd.read_csv(data_path)


def summarize(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """column -> {mean, median, std} for every numeric column of `df`."""
    numeric = df.select_dtypes("number")
    stats = {"mean": numeric.mean(), "median": numeric.median(), "std": numeric.std()}
    return {
        column: {name: round(float(values[column]), 6) for name, values in stats.items()}
        for column in numeric.columns
    }


def summary_values(summary: dict[str, dict[str, float]]) -> list[float]:
    """A labelled summary as one list: [mean, median, std] of each column, in column order."""
    return [value for stats in summary.values() for value in stats.values()]


def missing_percentages(df: pd.DataFrame) -> dict[str, float]:
    """column -> percentage of missing values, for every column of `df`."""
    return {column: round(float(share) * 100, 4) for column, share in df.isna().mean().items()}


def summary_table(config: Config | None = None) -> dict[str, dict[str, float]]:
    """column -> {mean, median, std} for every numeric column of finaldata.csv."""
    return summarize(read_finaldata(config_or_default(config).output_folder_path / FINALDATA_FILE))


def dataframe_summary(config: Config | None = None) -> list[float]:
    """[mean, median, std] of each numeric column of finaldata.csv, in column order, as one list."""
    return summary_values(summary_table(config))


def missing_data_table(config: Config | None = None) -> dict[str, float]:
    """column -> percentage of missing values, for every column of finaldata.csv."""
    return missing_percentages(read_finaldata(config_or_default(config).output_folder_path / FINALDATA_FILE))


def missing_data(config: Config | None = None) -> list[float]:
    """The percentage of missing values of each column of finaldata.csv, in column order."""
    return list(missing_data_table(config).values())


def scratch_config(config: Config, folder: Path) -> Path:
    """A copy of `config` that reads the real inputs but writes only into `folder`."""
    scratch = Config(
        **{
            **vars(config),
            "output_folder_path": folder / "ingesteddata",
            "output_model_path": folder / "models",
            "prod_deployment_path": folder / "production_deployment",
            "log_path": folder / "logs" / "fullprocess.log",
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


def execution_time(config: Config | None = None) -> list[float]:
    """[ingestion seconds, training seconds], real runs against a scratch copy of the config."""
    config = config_or_default(config)
    with tempfile.TemporaryDirectory(prefix="risk-timing-") as folder:
        config_path = scratch_config(config, Path(folder))
        return [time_script(script, config_path) for script in TIMED_SCRIPTS]


def requirement_names(requirements_path: Path) -> list[str]:
    """Package names pinned in a requirements file (`name==version` lines)."""
    names = []
    for line in requirements_path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(line.split("==")[0].split(">=")[0].strip())
    return names


def installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


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
    config: Config | None = None,
    requirements_path: Path = REQUIREMENTS_PATH,
    deadline_seconds: float = PIP_DEADLINE_SECONDS,
) -> list[dict[str, str]]:
    """package, installed and latest version of each requirement; cached for outdated_cache_seconds."""
    config = config_or_default(config)
    cache_path = config.output_model_path / OUTDATED_CACHE_FILE
    try:
        cached = json.loads(cache_path.read_text(encoding="utf-8"))
        if time.time() - cached["checked_at"] < config.outdated_cache_seconds:
            return cached["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    names = requirement_names(requirements_path)
    latest = latest_versions(names, deadline_seconds)
    packages = [
        {"package": name, "installed": installed_version(name), "latest": latest[name]} for name in names
    ]
    atomic_write_text(
        cache_path, json.dumps({"checked_at": time.time(), "packages": packages}, indent=2) + "\n"
    )
    return packages


def main(config_path=None) -> dict:
    config = load_config(config_path)
    started = time.perf_counter()
    logger.info("diagnostics started for %s", config.prod_deployment_path)
    timings = execution_time(config)
    report = {
        "model_predictions": model_predictions(config=config),
        "dataframe_summary": summary_table(config),
        "missing_data": missing_data_table(config),
        "execution_time": dict(zip(["ingestion_seconds", "training_seconds"], timings, strict=True)),
        "outdated_packages": outdated_packages_list(config),
    }
    for name, value in report.items():
        print(f"{name}: {json.dumps(value)}")
    logger.info("diagnostics finished in %.2fs", time.perf_counter() - started)
    return report


if __name__ == "__main__":
    run_cli(main)
