"""The main job on the bundled data (`make run`): the whole story, start to end.

Refuses to start when the API's port (`--port`, default config.json's api_port) is taken by another
process. Resets the generated outputs, serves the API with gunicorn in the background on that port,
deploys a first model with the practice configuration (practiceconfig.json), then runs fullprocess.py
with the production configuration (config.json), both calling that API (RISK_API_BASE_URL): it finds the
source files new, finds drift, re-trains, re-deploys and reports. Stops the API and prints where each
output is and the decisions taken.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from demo.clean import GENERATED, generated_months  # noqa: E402
from risk import history, sandbox  # noqa: E402
from risk.config import API_URL_ENV_VAR, CONFIG_ENV_VAR, load_config  # noqa: E402

PRACTICE_CONFIG = PROJECT_DIR / "practiceconfig.json"
PRODUCTION_CONFIG = PROJECT_DIR / "config.json"


def reset_outputs() -> None:
    """Remove the outputs of an earlier run (GENERATED); warn of data months added since the bundled data,
    which would change the story (`make clean` removes them)."""
    for name in GENERATED:
        path = PROJECT_DIR / name
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
    months = generated_months(PROJECT_DIR)
    if months:
        names = ", ".join(str(path.relative_to(PROJECT_DIR)) for path in months)
        print(f"note: {names} were added since the bundled data; the story will differ (make clean removes them)")


def run_fullprocess(config_path: Path, api_url: str) -> int:
    """fullprocess.py with `config_path`, its API calls and alert links pointed at `api_url`."""
    print(f"\n$ RISK_CONFIG={config_path.name} python fullprocess.py")
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "fullprocess.py")],
        env={**os.environ, CONFIG_ENV_VAR: str(config_path), API_URL_ENV_VAR: api_url},
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


def main(port: int | None = None) -> int:
    """The story, its API on `port` (default: the production config's api_port)."""
    config = load_config(PRODUCTION_CONFIG)
    port = port or config.api_port
    if sandbox.port_in_use(config.api_host, port):
        sys.exit(
            f"port {port} on {config.api_host} is in use by another process: stop it, or choose another port,"
            f" e.g. make run PORT={8010 if port != 8010 else 8020}"
        )
    reset_outputs()
    log_path = PROJECT_DIR / "logs" / "gunicorn.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sandbox.serve(PRODUCTION_CONFIG, log_path, host=config.api_host, port=port) as url:
            print(f"API: gunicorn serving on {url} (log: {log_path.relative_to(PROJECT_DIR)})")
            codes = [run_fullprocess(PRACTICE_CONFIG, url), run_fullprocess(PRODUCTION_CONFIG, url)]
    except sandbox.ServerError as error:
        sys.exit(f"the API did not start on port {port} (try another: make run PORT=8010): {error}")
    print("\nAPI stopped.")
    describe_runs(config.history_path)
    describe_outputs(PRODUCTION_CONFIG)
    return max(codes)


def cli() -> int:
    parser = argparse.ArgumentParser(description="The whole story on the bundled data (make run).")
    parser.add_argument("--port", type=int, help="the API's port (default: config.json's api_port)")
    return main(parser.parse_args().port)


if __name__ == "__main__":
    sys.exit(cli())
