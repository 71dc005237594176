"""The outdated-packages check: each requirement's installed version and the latest on the package index.

The index answers through pip, in seconds or never, so nobody waits for it: outdated_packages() answers the
cached list (outdatedpackages.json) at once, and when that is older than its maximum age, or missing, starts
one refresh in a detached process (`python -m risk.outdated CACHE REQUIREMENTS`) and meanwhile answers the
old list, or "not checked yet". The refresh asks the index about pip first: with no index reachable every
package is "not checked (no package index reachable)" at once. Also the requirements' names and installed
versions. Standard library only.
"""

import json
import os
import subprocess
import sys
import threading
import time
from importlib import metadata

from risk.artifacts import acquire_lock
from risk.config import PROJECT_DIR, atomic_write_text

REQUIREMENTS_PATH = os.path.join(PROJECT_DIR, "requirements.txt")

DEADLINE_SECONDS = 20  # one refresh in all: the probe, then every package at once
PROBE_SECONDS = 5  # the probe alone: an index that cannot name pip's latest version within this is unreachable
START_INTERVAL_SECONDS = (
    60  # a process starts a refresh at most this often (a crashing one is not restarted per request)
)
NOT_CHECKED_YET = "not checked yet"
NO_INDEX = "not checked (no package index reachable)"

_started_lock = threading.Lock()
_started_at: dict[str, float] = {}  # cache path -> when this process last started a refresh of it
_children: list[subprocess.Popen] = []  # the refreshes it started, kept until they end, then reaped


def requirement_names(requirements_path) -> list[str]:
    """Package names pinned in a requirements file (`name==version` lines)."""
    names = []
    with open(requirements_path, encoding="utf-8") as lines:
        text = lines.read()
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(line.split("==")[0].split(">=")[0].strip())
    return names


def installed_version(name: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def read_cache(cache_path) -> tuple[list[dict] | None, float]:
    """(packages, checked_at epoch seconds) from the cache, or (None, 0) when it is missing or unreadable."""
    try:
        with open(cache_path, encoding="utf-8") as handle:
            cached = json.load(handle)
        return list(cached["packages"]), float(cached["checked_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, 0.0


def outdated_packages(cache_path, requirements_path, max_age_seconds: float, start=None) -> list[dict]:
    """{package, installed, latest} per requirement as last checked, at once; an old or missing answer
    starts a refresh in the background (`start`, default start_refresh) and is answered meanwhile."""
    packages, checked_at = read_cache(cache_path)
    if packages is None or time.time() - checked_at >= max_age_seconds:
        (start or start_refresh)(cache_path, requirements_path)
    if packages is not None:
        return packages
    return [
        {"package": name, "installed": installed_version(name), "latest": NOT_CHECKED_YET}
        for name in requirement_names(requirements_path)
    ]


def start_refresh(cache_path, requirements_path) -> bool:
    """Start `python -m risk.outdated` detached (its own session, no inherited output or descriptors), unless
    this process started one within START_INTERVAL_SECONDS; the refresh itself runs one at a time."""
    key = os.path.abspath(cache_path)
    with _started_lock:
        _children[:] = [child for child in _children if child.poll() is None]
        if time.monotonic() - _started_at.get(key, -START_INTERVAL_SECONDS) < START_INTERVAL_SECONDS:
            return False
        _started_at[key] = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "risk.outdated", key, os.path.abspath(requirements_path)],
            cwd=PROJECT_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives a cron run, and its signals
        )
        _children.append(child)
    return True


def lock_path(cache_path) -> str:
    """The lock a refresh holds, beside the cache it writes (not in the shared temporary folder, where
    another user could plant a link at a predictable name)."""
    return f"{cache_path}.lock"


def pip_index_command(name: str) -> list[str]:
    return [sys.executable, "-m", "pip", "index", "versions", name, "--json", "--retries", "0", "--timeout", "10"]


def latest_versions(names: list[str], deadline_seconds: float, command=pip_index_command) -> dict[str, str]:
    """name -> latest version on the package index, or 'unknown (reason)'; all asked at once, bounded."""
    processes = {
        name: subprocess.Popen(command(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    }
    deadline = time.monotonic() + deadline_seconds
    latest = {}
    for name, process in processes.items():
        try:
            stdout, stderr = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            latest[name] = f"unknown (pip did not answer within {deadline_seconds:g} s)"
            continue
        try:
            latest[name] = json.loads(stdout)["latest"]
        except (ValueError, KeyError, TypeError):
            reason = (stderr.strip().splitlines() or [f"pip exited with code {process.returncode}"])[-1]
            latest[name] = f"unknown ({reason.removeprefix('ERROR: ')})"
    return latest


def refresh(cache_path, requirements_path, deadline_seconds=DEADLINE_SECONDS, command=pip_index_command):
    """Ask the index for every requirement's latest version and write the cache; the packages written, or
    None when another refresh of this cache is running. Bounded by `deadline_seconds` in all."""
    fd = acquire_lock(lock_path(cache_path))
    if fd is None:
        return None
    try:
        names = requirement_names(requirements_path)
        deadline = time.monotonic() + deadline_seconds
        probe = latest_versions(["pip"], min(PROBE_SECONDS, deadline_seconds), command)["pip"] if names else ""
        if probe.startswith("unknown"):
            latest = dict.fromkeys(names, NO_INDEX)
        else:
            latest = latest_versions(names, max(0.0, deadline - time.monotonic()), command)
        packages = [{"package": name, "installed": installed_version(name), "latest": latest[name]} for name in names]
        atomic_write_text(cache_path, json.dumps({"checked_at": time.time(), "packages": packages}, indent=2) + "\n")
        return packages
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    """`python -m risk.outdated CACHE REQUIREMENTS`: one refresh (what start_refresh runs, detached)."""
    cache_path, requirements_path = argv
    refresh(cache_path, requirements_path)


if __name__ == "__main__":
    main(sys.argv[1:])
