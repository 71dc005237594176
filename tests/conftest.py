"""Shared fixtures and helpers: a temporary project (config over tiny CSVs), a trained deployment,
the Flask app, scripts run as processes, and a real gunicorn server on a free loopback port."""

import contextlib
import ipaddress
import json
import os
import socket
import string
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from risk import sandbox  # noqa: E402
from risk.config import load_config  # noqa: E402
from risk.sandbox import free_port  # noqa: E402,F401 - the tests import it from here

COLUMNS = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
HEADER = ",".join(COLUMNS)
# The model's settings copied from the README's specification (not imported from risk.model).
SPECIFIED = dict(
    C=1.0,
    solver="liblinear",
    random_state=0,
    tol=1e-4,
    max_iter=100,
    fit_intercept=True,
    intercept_scaling=1,
    class_weight=None,
)
FEATURES = COLUMNS[1:4]


def write_csv(path: Path, text: str) -> Path:
    """Write a CSV from its text, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def code(number: int) -> str:
    """The `number`-th four-lowercase-letter client code (aaaa, aaab, ...)."""
    letters = string.ascii_lowercase
    return "".join(letters[(number // 26**power) % 26] for power in (3, 2, 1, 0))


def client_rows(seed: int, n: int, rule: str = "activity") -> pd.DataFrame:
    """`n` clients; under rule "activity" those whose last month was quiet leave (as in the practice
    period), under "size" small companies leave, under "flipped" the opposite of "activity"."""
    rng = np.random.default_rng(seed)
    month = rng.integers(0, 200, n)
    employees = rng.integers(1, 500, n)
    noise = rng.integers(0, 80, n)
    exits = {
        "activity": month + noise < 90,
        "flipped": month + noise >= 90,
        "size": employees + 2 * noise < 120,
    }[rule]
    return pd.DataFrame(
        {
            "corporation": [code(seed * 10_000 + i) for i in range(n)],
            "lastmonth_activity": month,
            "lastyear_activity": rng.integers(0, 3000, n),
            "number_of_employees": employees,
            "exited": exits.astype(int),
        }
    )


def make_project(root: Path, input_folder="sourcedata", **overrides) -> Path:
    """A config over data folders inside `root`, with two small input files and test data."""
    (root / input_folder).mkdir(parents=True, exist_ok=True)
    client_rows(1, 400).to_csv(root / input_folder / "dataset1.csv", index=False)
    client_rows(2, 300).to_csv(root / input_folder / "dataset2.csv", index=False)
    (root / "testdata").mkdir(exist_ok=True)
    client_rows(3, 200).to_csv(root / "testdata" / "testdata.csv", index=False)
    return sandbox.write_config(root, input_folder_path=input_folder, **overrides)


def set_config(config, **changes):
    """Rewrite a project's config file with `changes`; return the reloaded config."""
    data = json.loads(config.config_path.read_text())
    config.config_path.write_text(json.dumps({**data, **changes}))
    return load_config(config.config_path)


@pytest.fixture
def config_path(tmp_path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
def config(config_path):
    return load_config(config_path)


@pytest.fixture
def trained_project(config_path):
    """The project after ingestion, training, scoring and deployment, run as functions."""
    import deployment
    import ingestion
    import scoring
    import training

    config = load_config(config_path)
    for step in (ingestion.ingest, training.train, scoring.score, deployment.deploy):
        step(config)
    return config_path


@pytest.fixture
def root_logging():
    """The root logger as it was: a script's main() (setup_logging) configures it for the whole process."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def refuse_to_delete(monkeypatch, release: str, how: str) -> None:
    """Make deleting a release fail: `release`'s first step (the rename out of the list), or, for every
    release, the removal of its card halfway through."""
    real_rename, real_unlink = os.rename, os.unlink

    def rename(source, *args, **kwargs):
        if how == "rename" and os.path.basename(source) == release:
            raise PermissionError(13, "Permission denied", str(source))
        return real_rename(source, *args, **kwargs)

    def unlink(path, *args, **kwargs):
        if how == "halfway" and os.path.basename(path) == "modelcard.json":
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "unlink", unlink)


def malform_history(config) -> None:
    """Damage the history database's pages but not its header: it opens, and a query of a table fails
    with 'database disk image is malformed' (a disk error, a copy taken mid-write)."""
    import sqlite3

    with sqlite3.connect(config.history_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(config.history_path.read_bytes())
    for start in range(2 * 4096, len(data), 4096):
        data[start : start + 16] = b"\xff" * 16
    config.history_path.write_bytes(bytes(data))


def damage_history(config) -> None:
    """Overwrite the history database (and its write-ahead log) with bytes that are not SQLite."""
    for suffix in ("-wal", "-shm"):
        Path(f"{config.history_path}{suffix}").unlink(missing_ok=True)
    config.history_path.write_bytes(b"this is not an SQLite database\n" * 200)


@contextlib.contextmanager
def history_locked(config):
    """Another connection holds the history database exclusively (as a run stuck in a transaction
    with locking_mode EXCLUSIVE would): every reader waits for its busy timeout, then gets 'database is locked'."""
    import sqlite3

    conn = sqlite3.connect(config.history_path, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


class Planted:
    """A pickle that runs code when it is unpickled: it creates the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def plant_pickle(model_path: Path, marker: Path) -> None:
    """Replace a model file by a pickle that would create `marker` if anything unpickled it."""
    import pickle

    model_path.write_bytes(pickle.dumps(Planted(marker)))


def run_script(script: str, config_path: Path, *args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run a top-level script as a process with this interpreter and RISK_CONFIG set."""
    full_env = {**os.environ, "RISK_CONFIG": str(config_path), **(env or {})}
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / script), *args],
        cwd=cwd or config_path.parent,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def seed_outdated_cache(config, latest="9.9.9") -> None:
    """A fresh outdated-packages cache, so nothing asks pip (and the network) during a test."""
    sandbox.seed_outdated_cache(config.output_model_path, latest)


@pytest.fixture
def app(trained_project, config):
    from app import create_app

    seed_outdated_cache(config)
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@contextlib.contextmanager
def gunicorn(config_path: Path, log_path: Path, *args: str, env=None):
    """gunicorn serving wsgi:app for `config_path` on a free loopback port (risk.sandbox.serve); a
    server that dies or never answers fails the test with its log."""
    try:
        with sandbox.serve(config_path, log_path, *args, env=env) as url:
            yield url
    except sandbox.ServerError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def history_project(tmp_path_factory):
    """A project with a real history, made by the full process as cron runs it (as processes): a bootstrap;
    a month whose exits follow another rule (drift: re-trained and re-deployed), one client of it without
    last year's activity; then a month like it (no drift). Shared by the page tests, which only read it."""
    root = tmp_path_factory.mktemp("history_project")
    config = load_config(make_project(root, api_base_url=f"http://127.0.0.1:{free_port()}"))
    seed_outdated_cache(config)
    month = client_rows(4, 400, "flipped")
    month.loc[len(month)] = ["zzzz", 50, None, 10, 1]
    for new_file in (None, ("dataset3.csv", month), ("dataset4.csv", client_rows(5, 400, "flipped"))):
        if new_file:
            new_file[1].to_csv(config.input_folder_path / new_file[0], index=False)
        result = run_script("fullprocess.py", config.config_path, env={"RISK_ACTOR": "cron"})
        assert result.returncode in (0, 2), result.stderr[-3000:]  # 2: apicalls found no API, as intended
    return config


def ranked_by_model(config) -> pd.DataFrame:
    """Every client's exit probability from its newest complete row in finaldata.csv, by the deployed
    model's own predict_proba, highest first (ties by code): what the risk list must agree with."""
    import pickle

    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv", dtype={"corporation": str})
    newest = finaldata.drop_duplicates("corporation", keep="last").dropna(subset=FEATURES)
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        model = pickle.load(handle)
    probability = model.predict_proba(newest[FEATURES].to_numpy(dtype=float))[:, 1]
    table = pd.DataFrame({"corporation": newest["corporation"].to_numpy(), "probability": probability})
    return table.sort_values(["probability", "corporation"], ascending=[False, True]).reset_index(drop=True)


class Webhook:
    """A webhook on a loopback port: records each POSTed JSON body and answers `statuses` in turn,
    then `status`, after `delay` seconds."""

    def __init__(self, port: int):
        self.port, self.bodies, self.statuses, self.status, self.delay = port, [], [], 200, 0.0
        self.release = threading.Event()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                hook.release.wait(hook.delay)
                status = hook.statuses.pop(0) if hook.statuses else hook.status
                try:
                    self.send_response(status)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class MisbehavingWebhook:
    """A raw loopback server whose every connection is handled by `behaviour(connection)`, e.g. one that
    trickles its answer a byte at a time, or reads the request and never answers. Counts the requests."""

    def __init__(self, behaviour):
        self.behaviour, self.requests, self.stopping = behaviour, 0, threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()

    def handle(self, connection):
        with connection:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                self.requests += 1
                self.behaviour(connection, self.stopping)
            except OSError:  # the client gave up: what a misbehaving server meets
                pass

    def stop(self):
        self.stopping.set()
        self.listener.close()


def trickle(text: bytes, seconds_per_byte: float):
    """A behaviour: answer `text` one byte every `seconds_per_byte`."""

    def answer(connection, stopping):
        for byte in text:
            if stopping.wait(seconds_per_byte):
                return
            connection.sendall(bytes([byte]))

    return answer


def hang(connection, stopping):
    """A behaviour: read the request, then never answer."""
    stopping.wait(60)


@pytest.fixture
def misbehaving():
    """misbehaving(behaviour) starts a MisbehavingWebhook, stopped after the test."""
    servers = []
    yield lambda behaviour: servers.append(MisbehavingWebhook(behaviour)) or servers[-1]
    for server in servers:
        server.stop()


@pytest.fixture
def webhook():
    """A webhook not yet started: start() it, or leave it down."""
    hook = Webhook(free_port())
    yield hook
    hook.stop()


# --- guards for the whole session: loopback only, the repository's own folders untouched -------------

# What a test must never write: the repository's bundled data and the outputs `make run` leaves there.
REPOSITORY_FOLDERS = [
    "practicedata",
    "sourcedata",
    "testdata",
    "ingesteddata",
    "models",
    "practicemodels",
    "production_deployment",
    "production_deployment.releases",
]


class NetworkBlocked(RuntimeError):
    """A test tried to connect beyond loopback (README, Tests: none needs the network)."""


def is_loopback(family, address) -> bool:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # Unix sockets and the like never leave the machine
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name to resolve: somewhere else


@pytest.fixture(scope="session", autouse=True)
def loopback_only():
    """Every connection a test makes in this process goes to loopback; anything else raises NetworkBlocked."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if not is_loopback(sock.family, address):
            raise NetworkBlocked(f"a test connected to {address!r}: tests use loopback only")

    def guarded_connect(self, address):
        check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        check(self, address)
        return connect_ex(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded_connect)
        patch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        yield


@pytest.fixture(scope="session", autouse=True)
def no_package_index():
    """pip, in this process and in every process a test starts, knows no package index (PIP_NO_INDEX): a
    background outdated-packages refresh that a test sets off answers "not checked" at once, off the network."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_NO_INDEX", "1")
        yield


def repository_snapshot() -> dict[str, tuple]:
    """(size, mtime) of every file, and the target of every link, in the repository's own folders."""
    state = {}
    for name in REPOSITORY_FOLDERS:
        top = PROJECT_DIR / name
        if top.is_symlink():
            state[name] = ("link", os.readlink(top))
            continue
        for path in sorted(top.rglob("*")) if top.is_dir() else []:
            if path.is_symlink():
                state[str(path.relative_to(PROJECT_DIR))] = ("link", os.readlink(path))
            elif path.is_file():
                stat = path.stat()
                state[str(path.relative_to(PROJECT_DIR))] = (stat.st_size, stat.st_mtime_ns)
    return state


@pytest.fixture(scope="session", autouse=True)
def repository_untouched():
    """After the session the repository's data and model folders are as they were (README, Tests: tests
    work in temporary folders); a change is an error at the last test's teardown, naming the paths."""
    before = repository_snapshot()
    yield
    after = repository_snapshot()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert changed == [], f"the tests wrote into the repository's own folders: {changed[:20]}"
