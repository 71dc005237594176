"""The main job on the bundled data (`make run`): the whole story, start to end.

Resets the generated outputs, serves the API with gunicorn in the background, deploys a first model
with the practice configuration (practiceconfig.json), then runs fullprocess.py with the production
configuration (config.json): it finds the source files new, finds drift, re-trains, re-deploys and
reports. Stops the API and prints where each output is and the decisions taken.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from risk import history, sandbox  # noqa: E402
from risk.config import load_config  # noqa: E402

PRACTICE_CONFIG = PROJECT_DIR / "practiceconfig.json"
PRODUCTION_CONFIG = PROJECT_DIR / "config.json"
GENERATED = [
    "ingesteddata",
    "models",
    "practicemodels",
    "production_deployment",
    "production_deployment.releases",
    "logs",
]


def reset_outputs() -> None:
    for name in GENERATED:
        path = PROJECT_DIR / name
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)


def run_fullprocess(config_path: Path) -> int:
    print(f"\n$ RISK_CONFIG={config_path.name} python fullprocess.py")
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "fullprocess.py")],
        env={**os.environ, "RISK_CONFIG": str(config_path)},
    )
    return result.returncode


def describe_runs(history_path: Path) -> None:
    """Each run's decision and its verdicts in numbers, from the history database."""
    print("\nDecisions (from the history database):")
    with history.opened(history_path) as conn:
        for run in reversed(history.recent_runs(conn, 20)):
            print(
                f"- {Path(run['config_path']).name}: {run['decision']}; steps {', '.join(run['steps'])}; "
                f"release {run['release_after']}; exit code {run['exit_code']}"
            )
            for verdict in history.run_verdicts(conn, run["id"]):
                if verdict["kind"] in ("performance", "gate", "course"):
                    print(f"    {verdict['kind']}: {verdict['detail']}")


def describe_outputs(config_path: Path) -> None:
    config = load_config(config_path)
    score = (config.prod_deployment_path / "latestscore.txt").read_text().strip()
    print(f"\nDeployed model: F1 {float(score):.4f} on the test data")
    print("Outputs:")
    for path in [
        config.output_folder_path / "finaldata.csv",
        config.output_folder_path / "ingestedfiles.txt",
        config.output_folder_path / "ingestionmetrics.json",
        config.output_model_path / "trainedmodel.pkl",
        config.output_model_path / "modelcard.json",
        config.output_model_path / "latestscore.txt",
        config.output_model_path / "confusionmatrix.png",
        config.output_model_path / "report.pdf",
        config.output_model_path / "trend.png",
        config.output_model_path / "riskranking.csv",
        config.output_model_path / "apireturns.txt",
        config.prod_deployment_path,
        config.log_path,
        config.history_path,
    ]:
        print(f"  {path.relative_to(PROJECT_DIR)}{'' if path.exists() else '  (missing)'}")


def main() -> int:
    reset_outputs()
    config = load_config(PRODUCTION_CONFIG)
    log_path = PROJECT_DIR / "logs" / "gunicorn.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sandbox.serve(PRODUCTION_CONFIG, log_path, host=config.api_host, port=config.api_port) as url:
            print(f"API: gunicorn serving on {url} (log: {log_path.relative_to(PROJECT_DIR)})")
            codes = [run_fullprocess(PRACTICE_CONFIG), run_fullprocess(PRODUCTION_CONFIG)]
    except sandbox.ServerError as error:
        sys.exit(f"the API did not start (is port {config.api_port} in use?): {error}")
    print("\nAPI stopped.")
    describe_runs(load_config(PRODUCTION_CONFIG).history_path)
    describe_outputs(PRODUCTION_CONFIG)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
