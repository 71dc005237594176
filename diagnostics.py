"""Step 3: diagnostics of the deployed model, the data and the pipeline.

Config keys: prod_deployment_path (the deployed model), test_data_path (default data to predict),
output_folder_path (finaldata.csv), output_model_path (cache of the outdated-packages answer),
outdated_cache_seconds, history_path (the durations of the last real runs of the steps).
`python diagnostics.py` prints every diagnostic; `--refresh` times fresh runs of the steps.
Functions called without a config take it from RISK_CONFIG or config.json; the work is in risk/diagnosis.py.
"""

import argparse
import json
import logging
import time

import pandas as pd

from risk import diagnosis
from risk.config import Config, load_config
from risk.logs import run_cli
from risk.outdated import REQUIREMENTS_PATH

logger = logging.getLogger(__name__)


def config_or_default(config: Config | None) -> Config:
    return config if config is not None else load_config()


def model_predictions(df: pd.DataFrame | None = None, config: Config | None = None) -> list[int]:
    """The deployed model's 0/1 prediction for every row of `df` (default: the test data)."""
    return diagnosis.deployed_predictions(config_or_default(config), df)["predictions"]


def model_probabilities(df: pd.DataFrame | None = None, config: Config | None = None) -> list[float]:
    """The deployed model's exit probability for every row of `df` (default: the test data)."""
    return diagnosis.deployed_predictions(config_or_default(config), df)["probabilities"]


def summary_table(config: Config | None = None) -> dict[str, dict[str, float]]:
    """column -> {mean, median, std} for every numeric column of finaldata.csv."""
    return diagnosis.summary_table(config_or_default(config))


def dataframe_summary(config: Config | None = None) -> list[float]:
    """[mean, median, std] of each numeric column of finaldata.csv, in column order, as one list."""
    return diagnosis.summary_values(summary_table(config))


def missing_data_table(config: Config | None = None) -> dict[str, float]:
    """column -> percentage of missing values, for every column of finaldata.csv."""
    return diagnosis.missing_data_table(config_or_default(config))


def missing_data(config: Config | None = None) -> list[float]:
    """The percentage of missing values of each column of finaldata.csv, in column order."""
    return list(missing_data_table(config).values())


def execution_time(config: Config | None = None, refresh: bool = False) -> list[float]:
    """[ingestion seconds, training seconds]: the last real runs, as recorded when they ran (None
    for a step with no recorded run yet).

    refresh=True times fresh runs of both scripts as processes against a scratch copy of the config
    (real inputs; every output, the history database included, in a temporary folder).
    """
    return [row["seconds"] for row in execution_details(config, refresh)]


def execution_details(config: Config | None = None, refresh: bool = False) -> list[dict]:
    """Per timed step: {step, seconds, ran_at, source} (source: "last run" or "fresh run")."""
    return diagnosis.execution_details(config_or_default(config), refresh)


def outdated_packages_list(config: Config | None = None, requirements_path=REQUIREMENTS_PATH) -> list[dict[str, str]]:
    """package, installed and latest version of each requirement, as last checked (an answer older than
    outdated_cache_seconds is refreshed in the background, not waited for)."""
    return diagnosis.outdated_packages_list(config_or_default(config), requirements_path)


def main(config_path=None, refresh: bool = False) -> dict:
    config = load_config(config_path)
    started = time.perf_counter()
    logger.info("diagnostics started for %s", config.prod_deployment_path)
    timings = execution_details(config, refresh)
    report = {
        "model_predictions": model_predictions(config=config),
        "dataframe_summary": summary_table(config),
        "missing_data": missing_data_table(config),
        "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
        "outdated_packages": outdated_packages_list(config),
    }
    for name, value in report.items():
        print(f"{name}: {json.dumps(value)}")
    logger.info("diagnostics finished in %.2fs", time.perf_counter() - started)
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(description="Print every diagnostic of the deployed model and the data.")
    parser.add_argument("--refresh", action="store_true", help="time fresh runs of ingestion and training")
    args = parser.parse_args()
    run_cli(lambda: main(refresh=args.refresh))


if __name__ == "__main__":
    cli()
