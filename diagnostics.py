"""Step 3: diagnostics of the deployed model, the data and the pipeline.

Config keys: prod_deployment_path (the deployed model), test_data_path (default data to predict),
output_folder_path (finaldata.csv), output_model_path (cache of the outdated-packages answer),
outdated_cache_seconds, history_path (the durations of the last real runs of the steps).
`python diagnostics.py` prints every diagnostic (diagnose); `--refresh` times fresh runs of the steps.
Each function takes the Config; the work is in risk/diagnosis.py.
"""

import argparse
import json
import logging
import time

import pandas as pd

from risk import diagnosis
from risk.config import Config
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
    started = time.perf_counter()
    logger.info("diagnostics started for %s", config.prod_deployment_path)
    timings = execution_details(config, refresh)
    report = {
        "model_predictions": model_predictions(config),
        "dataframe_summary": summary_table(config),
        "missing_data": missing_data_table(config),
        "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
        "outdated_packages": outdated_packages_list(config),
    }
    logger.info("diagnostics finished in %.2fs", time.perf_counter() - started)
    return report


def main(argv=None) -> dict:
    """`python diagnostics.py [--refresh]` with the config RISK_CONFIG names (or config.json): prints every
    diagnostic, one line each; a failure is one line and exit code 1."""
    parser = argparse.ArgumentParser(description="Print every diagnostic of the deployed model and the data.")
    parser.add_argument("--refresh", action="store_true", help="time fresh runs of ingestion and training")
    args = parser.parse_args(argv)
    with script_config() as config:
        report = diagnose(config, args.refresh)
    for name, value in report.items():
        print(f"{name}: {json.dumps(value)}")
    return report


if __name__ == "__main__":
    main()
