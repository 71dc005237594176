"""Real servers: gunicorn on a free loopback port, and apicalls.py calling it (or a recording stand-in)
over HTTP; gunicorn's settings."""

import json
import os
import runpy
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from conftest import PROJECT_DIR, free_port, gunicorn, run_script, seed_outdated_cache, set_config

import apicalls
from risk import sandbox
from risk.config import PipelineError
from risk.web.answers import TOO_LARGE


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
    answers = apicalls.read_answers(config.output_model_path / "apireturns.txt")
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
@pytest.mark.parametrize("extra, status", [(0, 200), (1, 413), (200_000, 413)])
def test_gunicorn_refuses_a_chunked_body_over_16_mib_with_a_413(server, extra, status):
    from app import MAX_BODY_BYTES

    record = {"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}
    body = json.dumps({"records": [record]}).encode()
    body += b" " * (MAX_BODY_BYTES + extra - len(body))  # still valid JSON wherever it were cut

    def chunks():  # a generator: requests sends it with Transfer-Encoding: chunked, no Content-Length
        for start in range(0, len(body), 1 << 16):
            yield body[start : start + (1 << 16)]

    response = requests.post(
        f"{server}/prediction", data=chunks(), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == status, response.text[:200]
    if status == 413:
        assert response.json() == {"error": TOO_LARGE}


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


TOKEN = "s3cret-token"


@pytest.fixture
def guarded_server(trained_project, config, tmp_path):
    """gunicorn with API_TOKEN set and no SECRET_KEY: two workers that must agree on sessions."""
    seed_outdated_cache(config)
    env = {"API_TOKEN": TOKEN, "SECRET_KEY": "", "FORWARDED_ALLOW_IPS": "*"}  # the conf file must win over the env
    with gunicorn(config.config_path, tmp_path / "gunicorn.log", "--workers", "2", env=env) as url:
        yield url


def send(url: str, method: str, path: str, body: str = "", headers=None, source: str = "127.0.0.1"):
    """One request from the loopback address `source`; (status, headers as a list of pairs)."""
    import http.client
    from urllib.parse import urlparse

    address = urlparse(url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheaders()
    finally:
        conn.close()


def log_in(url: str, source: str = "127.0.0.1", headers=None) -> str:
    """The Set-Cookie header of a login with the right token."""
    form = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    status, answer = send(url, "POST", "/login", f"token={TOKEN}&next=/", form, source)
    assert status == 302
    (cookie,) = [value for name, value in answer if name.lower() == "set-cookie"]
    return cookie


@pytest.mark.slow
@pytest.mark.parametrize(
    "source, headers, secure",
    [
        ("127.0.0.1", {}, False),
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, True),  # the reverse proxy on this machine, over HTTPS
        ("127.0.0.2", {"X-Forwarded-Proto": "https"}, False),  # anyone else's word for it is not taken
    ],
)
def test_behind_the_local_proxy_over_https_the_session_cookie_is_secure(guarded_server, source, headers, secure):
    attributes = [part.strip() for part in log_in(guarded_server, source, headers).split(";")]
    assert "HttpOnly" in attributes and "SameSite=Lax" in attributes
    assert ("Secure" in attributes) is secure


@pytest.mark.slow
def test_both_workers_accept_a_session_until_a_logout_in_either_ends_it(guarded_server):
    cookie = {"Cookie": log_in(guarded_server).split(";")[0]}
    # Keep-alive is off: each request is a new connection, taken by whichever worker accepts first.
    assert {send(guarded_server, "GET", "/scoring", headers=cookie)[0] for _ in range(20)} == {200}
    status, answer = send(guarded_server, "POST", "/logout", headers=cookie)
    assert (status, dict(answer)["Location"]) == (302, "/login")
    assert {send(guarded_server, "GET", "/scoring", headers=cookie)[0] for _ in range(20)} == {401}


def test_gunicorn_runs_two_gevent_workers_without_keep_alive_and_restarts_a_silent_one_after_30_s():
    settings = runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))
    assert {key: settings[key] for key in ("workers", "worker_class", "keepalive", "timeout")} == {
        "workers": 2,
        "worker_class": "gevent",
        "keepalive": 0,
        "timeout": 30,
    }


def test_gunicorn_takes_forwarded_headers_from_the_proxy_on_this_machine_only():
    from risk.access import TRUSTED_PROXIES

    settings = runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))
    assert settings["forwarded_allow_ips"].split(",") == list(TRUSTED_PROXIES) == ["127.0.0.1", "::1"]


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
    answers = apicalls.call_api(config)
    assert recording_api.requests == [
        ("POST", "/prediction", header, {"filepath": "testdata/testdata.csv"}),
        ("GET", "/scoring", header, None),
        ("GET", "/summarystats", header, None),
        ("GET", "/diagnostics", header, None),
    ]
    expected = {"prediction": {"rows": 2, "predictions": [0, 1]}, "scoring": {"f1": 0.5}}
    expected |= {"summarystats": {"summary": {}}, "diagnostics": {"missing_data": {}}}
    assert answers == expected
    assert apicalls.read_answers(config.output_model_path / "apireturns.txt") == expected


@pytest.mark.parametrize("token, given", [(None, "no token"), ("wrong", "a token that is not the server's")])
def test_apicalls_refused_by_the_token_says_what_to_give_it(config, monkeypatch, token, given):
    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "missing or wrong token"}')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("API_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("API_TOKEN", token)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(PipelineError) as refused:
            apicalls.call_api(config, url)
    finally:
        server.shutdown()
        server.server_close()
    assert str(refused.value) == (
        f"POST {url}/prediction answered 401: this process sent {given}; give it the API_TOKEN the server has"
        " (for cron: an API_TOKEN= line above the job in the crontab, see docs/operations.md)"
    )
    assert not (config.output_model_path / "apireturns.txt").exists()


def test_apireturns_starts_with_a_one_screen_summary_and_keeps_the_full_answers_below():
    answers = {
        "prediction": {"source": "testdata/testdata.csv", "rows": 4, "release": "r2", "predictions": [0, 1, 1, 0]},
        "scoring": {"f1": 0.596552, "release": "r2"},
        "summarystats": {
            "summary": {
                "lastmonth_activity": {"mean": 95.2723, "median": 50.0, "std": 155.022659},
                "exited": {"mean": 0.2394, "median": 0.0, "std": 0.426739},
            }
        },
        "diagnostics": {
            "execution_time": {"ingestion_seconds": 0.0772, "training_seconds": None},
            "missing_data": {"corporation": 0.0, "exited": 12.5},
            "outdated_packages": [
                {"package": "flask", "installed": "3.1.2", "latest": "3.1.3"},
                {"package": "numpy", "installed": "2.4.6", "latest": "2.4.6"},
                {"package": "pandas", "installed": "3.1.1", "latest": "unknown (pip did not answer within 5 s)"},
            ],
        },
    }
    text = apicalls.format_answers(answers, "http://127.0.0.1:8000", "2026-12-02 05:19:22 UTC")
    summary, full = text.split(apicalls.ANSWERS_MARKER + "\n")
    assert summary.splitlines() == [
        "The API at http://127.0.0.1:8000, called 2026-12-02 05:19:22 UTC: the summary, then the full answers below"
        " the marker.",
        "",
        "POST /prediction   200  testdata/testdata.csv: 2 of 4 predicted to exit (50.0 %); release r2",
        "GET /scoring       200  F1 0.5966 on the test data; release r2",
        "GET /summarystats  200  2 numeric columns of finaldata.csv (mean, median, standard deviation):",
        "                          lastmonth_activity  mean 95.27, median 50.00, std 155.02",
        "                          exited              mean 0.24, median 0.00, std 0.43",
        "GET /diagnostics   200  steps took ingestion 0.08 s, training not run yet; missing values: exited 12.5 %",
        "                        packages: 1 of 3 behind their latest release, 1 not checked (flask)",
        "",
    ]
    assert json.loads(full) == answers
    assert '"predictions": [0, 1, 1, 0]' in full  # a list of numbers on one line


def test_apicalls_url_argument_overrides_the_config(config, recording_api, monkeypatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    config = set_config(config, api_base_url=f"http://127.0.0.1:{free_port()}")  # nothing there
    apicalls.call_api(config, url=recording_api.url)
    assert [path for _, path, _, _ in recording_api.requests] == [
        "/prediction",
        "/scoring",
        "/summarystats",
        "/diagnostics",
    ]


def test_apicalls_takes_a_host_and_port_without_a_scheme_as_http(config, recording_api, monkeypatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    apicalls.call_api(config, url=recording_api.url.removeprefix("http://"))
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
        apicalls.call_api(config, url=url)
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


def test_gunicorn_with_a_missing_config_says_so_in_one_line_and_stops(tmp_path):
    missing = tmp_path / "nowhere.json"
    binary = Path(sys.executable).with_name("gunicorn")
    result = subprocess.run(
        [str(binary), "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=PROJECT_DIR,
        env={**os.environ, "RISK_CONFIG": str(missing)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert f"gunicorn: config file {missing} does not exist" in result.stderr.splitlines()
    assert "Booting worker" not in result.stderr  # stopped in the master, before any worker (no race between two)


def test_gunicorn_with_a_damaged_session_key_says_so_in_one_line_and_stops(config):
    key = config.history_path.parent / "session.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("garbage\n")
    binary = Path(sys.executable).with_name("gunicorn")
    result = subprocess.run(
        [str(binary), "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=PROJECT_DIR,
        env={**os.environ, "RISK_CONFIG": str(config.config_path), "API_TOKEN": "s3cret", "SECRET_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and "Traceback" not in result.stderr and "Booting worker" not in result.stderr
    assert f"gunicorn: session key {key} is damaged (not 64 hex digits): delete it, and a new one is made" in (
        result.stderr.splitlines()
    )
