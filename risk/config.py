"""The configuration: one frozen `Config`, loaded once with `json` and passed down; the failure every script
turns into one line (PipelineError); atomic writes; who acts.

Config: `config.json` beside the scripts, or the file named by the environment variable RISK_CONFIG;
relative paths are resolved against the config file's folder, never the current directory (cron starts
scripts from elsewhere). Standard library only: the idle cron run imports it.
"""

import contextlib
import dataclasses
import getpass
import json
import os
import socket
import tempfile
import urllib.parse
from pathlib import Path

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG_PATH = os.path.join(PROJECT_DIR, "config.json")
CONFIG_ENV_VAR = "RISK_CONFIG"
API_URL_ENV_VAR = "RISK_API_BASE_URL"  # replaces api_base_url: `make run PORT=...` points every URL at its API

MAX_SYSTEM_NAME = 60  # characters: an alert names the system first, and reads in five seconds
CRON_ACTOR = "cron"  # who the cron line says it is (RISK_ACTOR=cron); any other actor is a person

REQUIRED_PATH_KEYS = [
    "input_folder_path",
    "output_folder_path",
    "test_data_path",
    "output_model_path",
    "prod_deployment_path",
]


def _positive_int(value) -> bool:
    return isinstance(value, int) and value >= 1


def _fraction(low: float, high: float):
    return lambda value: isinstance(value, int | float) and low < value < high


def _non_empty_text(value) -> bool:
    return isinstance(value, str) and value != ""


def _webhook_url(value) -> bool:
    """null, or an http(s) URL with a host, a valid port if any, and printable ASCII only (what a request
    line can carry): a URL that can never be sent is refused here, not retried at every run."""
    if value is None:
        return True
    if not isinstance(value, str) or not value.isascii() or not value.isprintable() or " " in value:
        return False
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _name_or_null(value) -> bool:
    return value is None or isinstance(value, str) and 0 < len(value) <= MAX_SYSTEM_NAME and value.isprintable()


# Optional keys: default and the check a value must pass, with the words that explain the check.
OPTIONAL_KEYS = {
    "log_path": ("logs/fullprocess.log", _non_empty_text, "a non-empty path"),
    "history_path": ("logs/history.db", _non_empty_text, "a non-empty path"),
    "api_host": ("127.0.0.1", _non_empty_text, "a non-empty string"),
    "api_port": (8000, lambda v: isinstance(v, int) and 1 <= v <= 65535, "an integer from 1 to 65535"),
    "api_base_url": ("http://127.0.0.1:8000", _non_empty_text, "a non-empty URL"),
    "outdated_cache_seconds": (3600, lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "drift_margin": (0.05, _fraction(0.0, 1.0), "a number between 0 and 1"),
    "drift_confidence": (0.99, _fraction(0.5, 1.0), "a number between 0.5 and 1"),
    "min_new_rows": (100, _positive_int, "an integer >= 1"),
    "min_new_positives": (30, _positive_int, "an integer >= 1"),
    "false_alarm_rate": (0.05, _fraction(0.0, 0.5), "a number between 0 and 0.5"),
    "degraded_confidence": (0.9, _fraction(0.5, 1.0), "a number between 0.5 and 1"),
    "alert_webhook_url": (None, _webhook_url, "an http(s) URL with a host (printable ASCII) or null"),
    "expected_interval_minutes": (10, _positive_int, "an integer >= 1"),
    "system_name": (None, _name_or_null, f"a name of 1 to {MAX_SYSTEM_NAME} printable characters, or null"),
}
PATH_KEYS = [*REQUIRED_PATH_KEYS, "log_path", "history_path"]


class PipelineError(Exception):
    """An expected failure (bad config, bad input, missing file) reported as one line."""


@dataclasses.dataclass(frozen=True)
class Config:
    """A checked configuration: every *_path an absolute Path (symbolic links not resolved: production is
    one, followed anew at each use), every other key with its value or its default (OPTIONAL_KEYS)."""

    config_path: Path
    input_folder_path: Path
    output_folder_path: Path
    test_data_path: Path
    output_model_path: Path
    prod_deployment_path: Path
    log_path: Path
    history_path: Path
    api_host: str
    api_port: int
    api_base_url: str
    outdated_cache_seconds: int
    drift_margin: float
    drift_confidence: float
    min_new_rows: int
    min_new_positives: int
    false_alarm_rate: float
    degraded_confidence: float
    alert_webhook_url: str | None
    expected_interval_minutes: int
    system_name: str  # how alerts name this system; default risk@<host> (<config file>)


def config_path_from_env() -> Path:
    """The config file to use: RISK_CONFIG if set, else config.json beside the scripts."""
    return Path(os.path.abspath(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH))


def load_config(path=None) -> Config:
    """Read and check the config file at `path` (default: config_path_from_env()).

    Relative paths are resolved against the file's folder; RISK_API_BASE_URL, when set, replaces
    api_base_url. Raises PipelineError naming the file and the key on any problem.
    """
    config_path = Path(os.path.abspath(path)) if path else config_path_from_env()
    raw = read_json_object(config_path)
    values = {"config_path": config_path}
    for key in REQUIRED_PATH_KEYS:
        if key not in raw:
            raise PipelineError(f"config file {config_path} has no key '{key}'")
        values[key] = checked_value(config_path, key, raw[key], _non_empty_text, "a non-empty path")
    if os.environ.get(API_URL_ENV_VAR):
        raw["api_base_url"] = os.environ[API_URL_ENV_VAR]
    for key, (default, check, expected) in OPTIONAL_KEYS.items():
        values[key] = checked_value(config_path, key, raw.get(key, default), check, expected)
    for key in PATH_KEYS:
        values[key] = Path(os.path.abspath(config_path.parent / values[key]))
    values["system_name"] = values["system_name"] or default_system_name(config_path)
    check_paths_apart(config_path, values)
    return Config(**values)


def default_system_name(config_path: Path) -> str:
    """risk@<host> (<config file's name>): which machine and which configuration an alert comes from."""
    return f"risk@{socket.gethostname()} ({config_path.name})"[:MAX_SYSTEM_NAME]


def check_paths_apart(config_path: Path, values: dict) -> None:
    """Refuse paths that would make one part of the pipeline overwrite or read another's: outputs in the
    input folder (they would be ingested), production in or over a data folder (a deployment replaces
    it), the log in the history database. PipelineError naming the file and both keys."""
    folders = ["input_folder_path", "output_folder_path", "test_data_path", "output_model_path"]
    clashes = [("output_folder_path", "input_folder_path"), ("output_model_path", "input_folder_path")]
    clashes += [("prod_deployment_path", key) for key in folders]
    for first, second in clashes:
        a, b = values[first], values[second]
        if a.is_relative_to(b) or b.is_relative_to(a):
            named = f"{os.path.relpath(a, config_path.parent)} and {os.path.relpath(b, config_path.parent)}"
            raise PipelineError(
                f"config file {config_path}: keys '{first}' and '{second}' must name folders apart, neither in the"
                f" other: they name {named}"
            )
    if values["log_path"] == values["history_path"]:
        raise PipelineError(f"config file {config_path}: keys 'log_path' and 'history_path' must name different files")


def read_json_object(config_path: Path) -> dict:
    """The keys and values of the JSON object in the file; PipelineError when it is missing, unreadable,
    not strict JSON (NaN and Infinity are not JSON) or not an object."""
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"config file {config_path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"config file {config_path} {error}") from None
    try:
        raw = json.loads(text, parse_constant=refuse_constant)
    except ValueError:
        raise PipelineError(f"config file {config_path} is not readable JSON") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"config file {config_path} must hold a JSON object")
    return raw


def refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def checked_value(config_path: Path, key: str, value, check, expected: str):
    """`value` when it passes `check`; else PipelineError naming the file, the key and what it must be."""
    # bool is an int subclass; a port or a margin of `true` is still a mistake.
    if isinstance(value, bool) or not check(value):
        raise PipelineError(f"config file {config_path}: key '{key}' must be {expected}, got {value!r}")
    return value


def write_config(config: Config, config_path) -> Path:
    """Write `config` as a JSON config file (absolute paths), e.g. a scratch copy for timing runs."""
    data = {
        key: value if value is None or isinstance(value, int | float | str) else str(value)
        for key, value in dataclasses.asdict(config).items()
        if key != "config_path"
    }
    atomic_write_text(config_path, json.dumps(data, indent=2) + "\n")
    return Path(config_path)


def fsync_dir(dir_path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    fd = os.open(dir_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_file_mode() -> int:
    """0o666 less the process umask: what open() would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path, mode="w"):
    """`with atomic_writer(path) as handle:` writes a temporary file beside `path`, renamed over it on
    success (flushed to disk, with the mode a new file gets) and removed on failure."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else "utf-8", newline=None if binary else "") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), default_file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        fsync_dir(folder)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def atomic_write_text(path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def actor() -> str:
    """Who acts: RISK_ACTOR when set (the cron line sets `cron`), else user@host."""
    if os.environ.get("RISK_ACTOR"):
        return os.environ["RISK_ACTOR"]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"
