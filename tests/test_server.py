"""Real servers: gunicorn on a free loopback port, and apicalls.py calling it over HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import PROJECT_DIR, run_script, seed_outdated_cache


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(trained_project, config, tmp_path):
    """gunicorn serving wsgi:app for the temporary project; yields its base URL."""
    seed_outdated_cache(config)
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("w")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=PROJECT_DIR,
        env={**os.environ, "RISK_CONFIG": str(config.config_path)},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        process.kill()
        process.wait()
        log.close()
        pytest.fail(f"gunicorn did not start: {log_path.read_text()[-2000:]}")
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_apicalls_against_gunicorn_writes_the_four_answers(server, config):
    result = run_script("apicalls.py", config.config_path, "--url", server)
    assert result.returncode == 0, result.stderr
    answers = json.loads((config.output_model_path / "apireturns.txt").read_text())
    assert list(answers) == ["prediction", "scoring", "summarystats", "diagnostics"]
    assert answers["prediction"]["rows"] == 100 and answers["prediction"]["source"] == "testdata/testdata.csv"
    assert 0 < answers["scoring"]["f1"] <= 1
    assert "lastmonth_activity" in answers["summarystats"]["summary"]
    assert set(answers["diagnostics"]) == {"execution_time", "missing_data", "outdated_packages"}


@pytest.mark.slow
def test_gunicorn_serves_json_errors_without_tracebacks(server):
    response = requests.post(
        f"{server}/prediction", data="{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "error" in response.json()
    assert "Traceback" not in response.text


@pytest.mark.slow
def test_apicalls_without_an_api_fails_with_one_line_and_no_file(config):
    result = run_script("apicalls.py", config.config_path, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "cannot reach the API at http://127.0.0.1:" in errors[0]
    assert not (config.output_model_path / "apireturns.txt").exists()
