"""A real cron daemon runs fullprocess.py from the cronjob.txt line (CI installs and starts cron)."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import PROJECT_DIR, make_project, seed_outdated_cache

from risk.config import load_config

pytestmark = pytest.mark.slow
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def read_crontab() -> str:
    result = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def write_crontab(text: str) -> None:
    subprocess.run(["crontab", "-"], input=text, text=True, check=True)


def cron_line(config) -> str:
    """cronjob.txt's line, every minute, with this interpreter and the temporary config."""
    (template,) = [line for line in (PROJECT_DIR / "cronjob.txt").read_text().splitlines() if not line.startswith("#")]
    line = template.replace("*/10 ", "* ", 1)
    line = line.replace("@PROJECT@/.venv/bin/python", f"RISK_CONFIG={config.config_path} {sys.executable}")
    assert "RISK_ACTOR=cron" in line
    line = line.replace("@PROJECT@/logs/fullprocess.log", str(config.log_path))
    return line.replace("@PROJECT@", str(PROJECT_DIR))


def require_cron() -> None:
    """On a machine without cron the test is skipped with how to get it; under CI=true it must run."""
    missing = None
    if not shutil.which("crontab"):
        missing = "cron is not installed (Debian: apt-get install cron && service cron start)"
    elif subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode != 0:
        missing = "no cron daemon is running (Debian: service cron start)"
    if missing and IN_CI:
        pytest.fail(missing + "; CI must run this test")
    if missing:
        pytest.skip(missing)


def test_cron_runs_the_full_process(tmp_path):
    require_cron()
    with socket.socket() as sock:  # a port nothing listens on: apicalls must not find a stray server
        sock.bind(("127.0.0.1", 0))
        unused_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = load_config(make_project(tmp_path, api_base_url=unused_url))
    seed_outdated_cache(config)
    config.log_path.parent.mkdir(parents=True)
    before = read_crontab()
    line = cron_line(config)
    write_crontab(before + line + "\n")
    try:
        deadline = time.monotonic() + 200  # the next minute, plus the run itself
        while time.monotonic() < deadline and "run finished" not in (
            config.log_path.read_text() if config.log_path.exists() else ""
        ):
            time.sleep(2)
    finally:
        write_crontab(before)
    assert read_crontab() == before
    log = config.log_path.read_text()
    assert "bootstrapping" in log and "run finished" in log, log[-3000:]
    assert "step deployment finished" in log
    import sqlite3

    with sqlite3.connect(config.history_path) as conn:
        assert conn.execute("SELECT actor, reason FROM deployments").fetchall() == [("cron", "bootstrap")]
    assert (config.prod_deployment_path / "trainedmodel.pkl").is_file()
    assert (config.output_model_path / "report.pdf").is_file()
    lines = log.splitlines()
    assert len(lines) == len(set(lines)), "cron's redirect and the run's own log wrote the same lines twice"
