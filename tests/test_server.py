"""Real servers: gunicorn on a free loopback port, and apicalls.py calling it over HTTP."""

import json

import pytest
import requests
from conftest import free_port, gunicorn, run_script, seed_outdated_cache


@pytest.fixture
def server(trained_project, config, tmp_path):
    """gunicorn serving wsgi:app for the temporary project; yields its base URL."""
    seed_outdated_cache(config)
    with gunicorn(config.config_path, tmp_path / "gunicorn.log", "--workers", "2") as url:
        yield url


@pytest.mark.slow
def test_apicalls_against_gunicorn_writes_the_four_answers(server, config):
    result = run_script("apicalls.py", config.config_path, "--url", server)
    assert result.returncode == 0, result.stderr
    answers = json.loads((config.output_model_path / "apireturns.txt").read_text())
    assert list(answers) == ["prediction", "scoring", "summarystats", "diagnostics"]
    assert answers["prediction"]["rows"] == 200 and answers["prediction"]["source"] == "testdata/testdata.csv"
    assert answers["scoring"]["f1"] == round(float((config.prod_deployment_path / "latestscore.txt").read_text()), 6)
    assert "lastmonth_activity" in answers["summarystats"]["summary"]
    assert set(answers["diagnostics"]) == {
        "execution_time",
        "execution_runs",
        "missing_data",
        "outdated_packages",
    }


@pytest.mark.slow
def test_gunicorn_serves_json_errors_without_tracebacks(server):
    response = requests.post(f"{server}/prediction", data="{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "error" in response.json()
    assert "Traceback" not in response.text


@pytest.mark.slow
def test_apicalls_without_an_api_fails_with_one_line_and_no_file(config):
    result = run_script("apicalls.py", config.config_path, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "cannot reach the API at http://127.0.0.1:" in errors[0]
    assert not (config.output_model_path / "apireturns.txt").exists()


@pytest.mark.slow
def test_stalled_clients_do_not_freeze_the_api_for_others(server):
    """Clients that connect and stall, with half a request or nothing, while others are served."""
    import socket
    import time
    from urllib.parse import urlparse

    address = urlparse(server)
    stalled = []
    try:
        for index in range(40):
            sock = socket.create_connection((address.hostname, address.port))
            if index % 2:
                sock.sendall(b'POST /prediction HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"rec')
            stalled.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        for _ in range(5):
            assert requests.get(f"{server}/health", timeout=5).status_code == 200
            answer = requests.post(
                f"{server}/prediction",
                json={"records": [{"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}]},
                timeout=5,
            )
            assert answer.status_code == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()
