"""Step 3: diagnostics of the deployed model, the data and the pipeline.

Config keys: prod_deployment_path (the deployed model), test_data_path (default data to predict),
output_folder_path (finaldata.csv), output_model_path (writes diagnosticpredictions.csv: every test row's
prediction and probability; cache of the outdated-packages answer), outdated_cache_seconds, history_path
(the durations of the last real runs of the steps). `python diagnostics.py` prints a summary of every
diagnostic (--refresh times fresh runs of the steps). Each function takes the Config; the work is in
risk/diagnosis.py.
"""

import argparse
import logging
import os
import time
from pathlib import Path

import pandas as pd

from risk import diagnosis, digest
from risk.artifacts import DIAGNOSTIC_PREDICTIONS_FILE
from risk.config import Config, atomic_write_text
from risk.contract import ID_COLUMN
from risk.logs import script_config
from risk.outdated import REQUIREMENTS_PATH

logger = logging.getLogger(__name__)


def model_predictions(config: Config, df: pd.DataFrame | None = None) -> list[int]:
    """The deployed model's 0/1 prediction for every row of `df` (default: the test data)."""
    return diagnosis.deployed_predictions(config, df)["predictions"]


def model_probabilities(config: Config, df: pd.DataFrame | None = None) -> list[float]:
    """The deployed model's exit probability for every row of `df` (default: the test data)."""
    return diagnosis.deployed_predictions(config, df)["probabilities"]


def summary_table(config: Config) -> dict[str, dict[str, float]]:
    """column -> {mean, median, std} for every numeric column of finaldata.csv."""
    return diagnosis.summary_table(config)


def dataframe_summary(config: Config) -> list[float]:
    """[mean, median, std] of each numeric column of finaldata.csv, in column order, as one list."""
    return diagnosis.summary_values(summary_table(config))


def missing_data_table(config: Config) -> dict[str, float]:
    """column -> percentage of missing values, for every column of finaldata.csv."""
    return diagnosis.missing_data_table(config)


def missing_data(config: Config) -> list[float]:
    """The percentage of missing values of each column of finaldata.csv, in column order."""
    return list(missing_data_table(config).values())


def execution_time(config: Config, refresh: bool = False) -> list[float]:
    """[ingestion seconds, training seconds]: the last real runs, as recorded when they ran (None
    for a step with no recorded run yet).

    refresh=True times fresh runs of both scripts as processes against a scratch copy of the config
    (real inputs; every output, the history database included, in a temporary folder).
    """
    return [row["seconds"] for row in execution_details(config, refresh)]


def execution_details(config: Config, refresh: bool = False) -> list[dict]:
    """Per timed step: {step, seconds, ran_at, source} (source: "last run" or "fresh run")."""
    return diagnosis.execution_details(config, refresh)


def outdated_packages_list(config: Config, requirements_path=REQUIREMENTS_PATH) -> list[dict[str, str]]:
    """package, installed and latest version of each requirement, as last checked (an answer older than
    outdated_cache_seconds is refreshed in the background, not waited for)."""
    return diagnosis.outdated_packages_list(config, requirements_path)


def diagnose(config: Config, refresh: bool = False) -> dict:
    """Every diagnostic by name: the deployed model's predictions on the test data, the summary and missing
    data of finaldata.csv, the steps' seconds (fresh runs with `refresh`) and the outdated packages."""
    return diagnose_with_rows(config, refresh)[0]


def diagnose_with_rows(config: Config, refresh: bool = False) -> tuple[dict, dict]:
    """(diagnose's report, the predictions with their probabilities and client codes: predict_rows')."""
    started = time.perf_counter()
    logger.info("diagnostics started for %s", config.prod_deployment_path)
    timings = execution_details(config, refresh)
    predicted = diagnosis.deployed_predictions(config)
    report = {
        "model_predictions": predicted["predictions"],
        "dataframe_summary": summary_table(config),
        "missing_data": missing_data_table(config),
        "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
        "outdated_packages": outdated_packages_list(config),
    }
    logger.info("diagnostics finished in %.2fs", time.perf_counter() - started)
    return report, predicted


def predictions_frame(predicted: dict) -> pd.DataFrame:
    """One row per predicted row: its client code (when the data has one), prediction and exit probability."""
    columns = [ID_COLUMN, "prediction", "probability"]
    data = [predicted.get(ID_COLUMN), predicted["predictions"], predicted["probabilities"]]
    return pd.DataFrame({name: values for name, values in zip(columns, data, strict=True) if values is not None})


def format_report(report: dict, predictions_path: Path) -> str:
    """The summary diagnostics.py prints: a line or a few per diagnostic, the predictions counted and named
    by the file that holds them all."""
    return "\n".join(
        [
            f"model_predictions: {digest.predictions_text(report['model_predictions'])}; every row in"
            f" {predictions_path}",
            "dataframe_summary (mean, median, standard deviation):",
            *("  " + line for line in digest.column_lines(report["dataframe_summary"])),
            f"missing_data: {digest.missing_text(report['missing_data'])}",
            f"execution_time: {digest.timings_text(report['execution_time'])}",
            f"outdated_packages: {digest.packages_text(report['outdated_packages'])}",
        ]
    )


def main(argv=None) -> dict:
    """`python diagnostics.py [--refresh]` with the config RISK_CONFIG names (or config.json): prints a summary
    of every diagnostic and writes every prediction to output_model_path/diagnosticpredictions.csv; a failure
    is one line and exit code 1."""
    parser = argparse.ArgumentParser(description="Print every diagnostic of the deployed model and the data.")
    parser.add_argument("--refresh", action="store_true", help="time fresh runs of ingestion and training")
    args = parser.parse_args(argv)
    with script_config() as config:
        report, predicted = diagnose_with_rows(config, args.refresh)
        predictions_path = config.output_model_path / DIAGNOSTIC_PREDICTIONS_FILE
        atomic_write_text(predictions_path, predictions_frame(predicted).to_csv(index=False))
        logger.info("every prediction written to %s", predictions_path)
    print(format_report(report, Path(os.path.relpath(predictions_path, config.config_path.parent))))
    return report


if __name__ == "__main__":
    main()
