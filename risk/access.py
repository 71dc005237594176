"""Access to the API and the dashboard when API_TOKEN is set: the session secret, the session generation,
where a login may send a browser, wrong-guess throttling, and which client address a request came from.

Standard library only, no Flask: app.py applies these. The secret and the generation are files beside the
history database (`session.key`, mode 0600, made once; `session.generation`, replaced at each logout), so
every gunicorn worker, and every restart, signs and checks sessions alike.
"""

import collections
import hashlib
import hmac
import math
import os
import re
import secrets
import tempfile
import threading
import time

from risk.config import PipelineError

SECRET_FILE = "session.key"
GENERATION_FILE = "session.generation"
SECRET_RE = re.compile(r"[0-9a-f]{64}")
# A local path: one slash, then printable ASCII without a backslash. Browsers read `//host`, `/\host` and
# `/<tab>/host` (they drop tabs and newlines) as another host; a newline would also break the Location header.
LOCAL_PATH_RE = re.compile(r"/(?![/\\])[!-\[\]-~]*")
MAX_TARGET_CHARS = 2048
MAX_WRONG_GUESSES = 5
GUESS_WINDOW_SECONDS = 60
MAX_ADDRESSES = 10_000
# The reverse proxy on this machine (gunicorn.conf.py's forwarded_allow_ips): only it may say who the client is.
TRUSTED_PROXIES = ("127.0.0.1", "::1")


def create_once(path: str, text: str) -> None:
    """Write `path` (mode 0600) unless it exists; atomic: of two processes racing, one writes and both read its text."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_path, path)  # fails if another process linked its own first: that one is kept
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp_path)


def session_secret(folder_path) -> str:
    """The key that signs session cookies: `session.key` in `folder_path`, 64 random hex digits made on first use."""
    path = os.path.join(folder_path, SECRET_FILE)
    try:
        if not os.path.exists(path):
            create_once(path, secrets.token_hex(32) + "\n")
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as error:
        raise PipelineError(
            f"cannot keep the session key {path}: {error.strerror}; make its folder writable or set SECRET_KEY"
        ) from None
    if not SECRET_RE.fullmatch(secret):
        raise PipelineError(f"session key {path} is damaged (not 64 hex digits): delete it, and a new one is made")
    return secret


def session_generation(folder_path) -> str:
    """The current session generation: sessions made in another one are over."""
    path = os.path.join(folder_path, GENERATION_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        create_once(path, secrets.token_hex(16) + "\n")
        return session_generation(folder_path)


def end_sessions(folder_path) -> None:
    """A new session generation, mode 0600 as the first: every session made before is over, in every
    worker. Raises OSError."""
    path = os.path.join(folder_path, GENERATION_FILE)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{GENERATION_FILE}.", dir=folder_path)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(16) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def session_mark(token: str, generation: str) -> str:
    """What a logged-in session holds: a digest of the token and the generation, never the token."""
    return hashlib.sha256(f"risk-session:{generation}:{token}".encode()).hexdigest()


def token_matches(supplied: str, expected: str) -> bool:
    """The supplied token is the expected one, compared in constant time (digests of equal length)."""
    return hmac.compare_digest(hashlib.sha256(supplied.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def local_target(target) -> str:
    """Where a login may send the browser: `target` when it is a path on this server, else "/"."""
    if isinstance(target, str) and len(target) <= MAX_TARGET_CHARS and LOCAL_PATH_RE.fullmatch(target):
        return target
    return "/"


def client_address(remote_addr: str | None, forwarded_for: str | None) -> str:
    """The client's address: the peer's, or, when the peer is the reverse proxy on this machine, the address
    that proxy appended last to X-Forwarded-For (earlier entries are whatever the client wrote)."""
    if remote_addr in TRUSTED_PROXIES and forwarded_for and forwarded_for.split(",")[-1].strip():
        return forwarded_for.split(",")[-1].strip()[:64]
    return remote_addr or "unknown"


class Throttle:
    """Wrong-token guesses per client address: after MAX_WRONG_GUESSES within GUESS_WINDOW_SECONDS the address
    must wait until the oldest of them is that old. At most MAX_ADDRESSES addresses are remembered (the quietest
    are forgotten first); each process keeps its own count."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.failures: dict[str, collections.deque] = {}

    def recent(self, address: str, now: float) -> collections.deque:
        times = self.failures.get(address, collections.deque())
        while times and times[0] <= now - GUESS_WINDOW_SECONDS:
            times.popleft()
        return times

    def wait_seconds(self, address: str) -> int:
        """0 when `address` may try a token, else the whole seconds it must wait."""
        with self.lock:
            now = self.clock()
            times = self.recent(address, now)
            if len(times) < MAX_WRONG_GUESSES:
                return 0
            return max(1, math.ceil(times[0] + GUESS_WINDOW_SECONDS - now))

    def failed(self, address: str) -> None:
        with self.lock:
            now = self.clock()
            times = self.recent(address, now)
            self.failures.pop(address, None)
            if len(self.failures) >= MAX_ADDRESSES:
                self.forget_quiet(now)
            times.append(now)
            self.failures[address] = times  # last in the dict: the most recently active

    def forget_quiet(self, now: float) -> None:
        for address in [address for address, times in self.failures.items() if not self.recent(address, now)]:
            del self.failures[address]
        while len(self.failures) >= MAX_ADDRESSES:
            del self.failures[next(iter(self.failures))]

    def succeeded(self, address: str) -> None:
        with self.lock:
            self.failures.pop(address, None)
