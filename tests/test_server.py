"""Real servers: gunicorn on a free loopback port, and apicalls.py calling it (or a recording stand-in)
over HTTP; gunicorn's settings."""

import json
import runpy
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import PROJECT_DIR, free_port, gunicorn, run_script, seed_outdated_cache, set_config

import apicalls
from risk import sandbox
from risk.config import PipelineError


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


def test_gunicorn_runs_two_gevent_workers_without_keep_alive_and_restarts_a_silent_one_after_30_s():
    settings = runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))
    assert {key: settings[key] for key in ("workers", "worker_class", "keepalive", "timeout")} == {
        "workers": 2,
        "worker_class": "gevent",
        "keepalive": 0,
        "timeout": 30,
    }


class RecordingAPI:
    """A stand-in API on a loopback port: answers each of apicalls' four endpoints with a small JSON body
    and records (method, path, Authorization header, JSON body) of every request."""

    ANSWERS = {
        ("POST", "/prediction"): {"rows": 2, "predictions": [0, 1]},
        ("GET", "/scoring"): {"f1": 0.5},
        ("GET", "/summarystats"): {"summary": {}},
        ("GET", "/diagnostics"): {"missing_data": {}},
    }

    def __init__(self):
        self.requests = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                api.requests.append((self.command, self.path, self.headers.get("Authorization"), body))
                data = json.dumps(api.ANSWERS.get((self.command, self.path), {"error": "no"})).encode()
                self.send_response(200 if (self.command, self.path) in api.ANSWERS else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer  # noqa: N815 - the names http.server calls

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recording_api():
    api = RecordingAPI()
    yield api
    api.stop()


@pytest.mark.parametrize("token, header", [("tok-123", "Bearer tok-123"), (None, None)])
def test_apicalls_sends_api_token_to_every_endpoint_and_keeps_the_four_answers(
    config, recording_api, monkeypatch, token, header
):
    if token:
        monkeypatch.setenv("API_TOKEN", token)
    else:
        monkeypatch.delenv("API_TOKEN", raising=False)
    config = set_config(config, api_base_url=recording_api.url + "/")  # found through the config
    answers = apicalls.main(config.config_path)
    assert recording_api.requests == [
        ("POST", "/prediction", header, {"filepath": "testdata/testdata.csv"}),
        ("GET", "/scoring", header, None),
        ("GET", "/summarystats", header, None),
        ("GET", "/diagnostics", header, None),
    ]
    expected = {"prediction": {"rows": 2, "predictions": [0, 1]}, "scoring": {"f1": 0.5}}
    expected |= {"summarystats": {"summary": {}}, "diagnostics": {"missing_data": {}}}
    assert answers == expected
    assert json.loads((config.output_model_path / "apireturns.txt").read_text()) == expected


def test_apicalls_url_argument_overrides_the_config(config, recording_api, monkeypatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    config = set_config(config, api_base_url=f"http://127.0.0.1:{free_port()}")  # nothing there
    apicalls.main(config.config_path, base_url=recording_api.url)
    assert [path for _, path, _, _ in recording_api.requests] == [
        "/prediction",
        "/scoring",
        "/summarystats",
        "/diagnostics",
    ]


def test_apicalls_takes_a_host_and_port_without_a_scheme_as_http(config, recording_api, monkeypatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    apicalls.main(config.config_path, base_url=recording_api.url.removeprefix("http://"))
    assert [path for _, path, _, _ in recording_api.requests] == [
        "/prediction",
        "/scoring",
        "/summarystats",
        "/diagnostics",
    ]


@pytest.mark.parametrize(
    "url, problem",
    [
        ("ftp://127.0.0.1:8000", "its scheme must be http or https, not 'ftp'"),
        ("http://", "it names no host"),
        ("127.0.0.1:80000", "Port out of range 0-65535"),
        ("127.0.0.1:port", "Port could not be cast to integer value as 'port'"),
        ("http://127.0.0.1:8000/?debug=1", "it may not hold a query (?) or a fragment (#)"),
    ],
)
def test_a_url_apicalls_cannot_use_is_one_line_saying_what_is_wrong(config, url, problem):
    with pytest.raises(PipelineError) as raised:
        apicalls.main(config.config_path, base_url=url)
    assert str(raised.value).startswith(f"--url {url!r} is not a URL of the API: {problem}")
    assert not (config.output_model_path / "apireturns.txt").exists()


@pytest.mark.slow
def test_a_server_that_cannot_listen_is_not_taken_for_ready_because_another_answers_on_its_port(
    trained_project, config, tmp_path
):
    decoy = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers anything with a 501
    threading.Thread(target=decoy.serve_forever, daemon=True).start()
    try:
        with pytest.raises(sandbox.ServerError, match="the server exited with code"):
            with sandbox.serve(config.config_path, tmp_path / "gunicorn.log", port=decoy.server_address[1]):
                pass
    finally:
        decoy.shutdown()
        decoy.server_close()
