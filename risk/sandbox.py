"""Scratch projects and servers for the story, the tests, the benchmark and the simulation, in one place.

A scratch project is a config file in a folder of its own over data folders there, with a fresh
outdated-packages cache (so reporting never asks pip, that is the network). `serve()` runs gunicorn
over a config on a free loopback port and waits until it answers; a server that dies or never
answers is a ServerError carrying the end of its log.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from risk.artifacts import OUTDATED_CACHE_FILE
from risk.config import PROJECT_DIR
from risk.outdated import REQUIREMENTS_PATH, installed_version, requirement_names

BUNDLED_FOLDERS = ("practicedata", "sourcedata", "testdata")


class ServerError(RuntimeError):
    """The server exited or did not answer; the message holds the end of its log."""


def write_config(root: Path, **values) -> Path:
    """`root`/config.json with the five folders the pipeline needs (overridable) and `values`."""
    config = {
        "input_folder_path": "sourcedata",
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        **values,
    }
    config_path = Path(root) / "config.json"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return config_path


def copy_bundled_data(root: Path) -> None:
    """The repository's bundled data folders, copied into `root`."""
    for folder in BUNDLED_FOLDERS:
        shutil.copytree(Path(PROJECT_DIR) / folder, Path(root) / folder, dirs_exist_ok=True)


def seed_outdated_cache(output_model_path: Path, latest: str = "not checked (scratch project)") -> None:
    """A fresh outdated-packages cache naming `latest` for every requirement."""
    packages = [
        {"package": name, "installed": installed_version(name), "latest": latest}
        for name in requirement_names(REQUIREMENTS_PATH)
    ]
    Path(output_model_path).mkdir(parents=True, exist_ok=True)
    cache = {"checked_at": time.time(), "packages": packages}
    (Path(output_model_path) / OUTDATED_CACHE_FILE).write_text(json.dumps(cache), encoding="utf-8")


def free_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, bind: str, process: subprocess.Popen, log_path: Path, seconds: float = 60) -> None:
    """Wait until the server we started listens on `bind` (its own log says so: an answer alone could
    come from another server on that port) and answers at `url` (a 503 before a deployment is an
    answer); ServerError otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the server exited with code {process.returncode}:\n{tail(log_path)}")
        if f"Listening at: http://{bind} (" not in tail(log_path, 100_000):
            time.sleep(0.2)
            continue
        try:
            urllib.request.urlopen(f"{url}/health", timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise ServerError(f"the server did not answer {url} within {seconds:g} s:\n{tail(log_path)}")


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on host:port (as gunicorn binds: a connection left in TIME_WAIT is not in use)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tail(log_path: Path, characters: int = 3000) -> str:
    try:
        return Path(log_path).read_text(encoding="utf-8", errors="replace")[-characters:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def serve(config_path: Path, log_path: Path, *args: str, cwd=PROJECT_DIR, host="127.0.0.1", port=None, env=None):
    """gunicorn serving wsgi:app for `config_path` (settings from gunicorn.conf.py in `cwd`, then
    `args`) on `host` (loopback) and `port` (a free one); yields its base URL once it answers, and
    stops it on the way out."""
    port = port or free_port()
    binary = Path(sys.executable).with_name("gunicorn")
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [str(binary), "--bind", f"{host}:{port}", *args, "wsgi:app"],
            cwd=cwd,
            env={**os.environ, "RISK_CONFIG": str(config_path), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        try:
            wait_until_ready(url, f"{host}:{port}", process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
