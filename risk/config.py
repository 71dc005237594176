"""The config loader, the expected-failure exception, atomic writes and the scripts' CLI wrapper.

Standard library only, and only os and sys at import: the idle cron run imports it, and every
millisecond of its imports counts (see read_json_object for why the config is parsed by SQLite).
Config: `config.json` beside the scripts, or the file named by the environment variable RISK_CONFIG;
relative paths are resolved against the config file's folder, never the current directory.
"""

import contextlib
import os
import sys
import tempfile

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS_PATH = os.path.join(PROJECT_DIR, "requirements.txt")
DEFAULT_CONFIG_PATH = os.path.join(PROJECT_DIR, "config.json")
CONFIG_ENV_VAR = "RISK_CONFIG"
API_URL_ENV_VAR = "RISK_API_BASE_URL"  # replaces api_base_url: `make run PORT=...` points every URL at its API
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

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


# Optional keys: default and the check a value must pass, with the words that explain the check.
OPTIONAL_KEYS = {
    "log_path": ("logs/fullprocess.log", lambda v: isinstance(v, str) and v != "", "a non-empty path"),
    "history_path": ("logs/history.db", lambda v: isinstance(v, str) and v != "", "a non-empty path"),
    "api_host": ("127.0.0.1", lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "api_port": (8000, lambda v: isinstance(v, int) and 1 <= v <= 65535, "an integer from 1 to 65535"),
    "api_base_url": ("http://127.0.0.1:8000", lambda v: isinstance(v, str) and v != "", "a non-empty URL"),
    "outdated_cache_seconds": (3600, lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "drift_margin": (0.05, _fraction(0.0, 1.0), "a number between 0 and 1"),
    "drift_confidence": (0.99, _fraction(0.5, 1.0), "a number between 0.5 and 1"),
    "min_new_rows": (100, _positive_int, "an integer >= 1"),
    "min_new_positives": (30, _positive_int, "an integer >= 1"),
    "false_alarm_rate": (0.05, _fraction(0.0, 0.5), "a number between 0 and 0.5"),
    "degraded_confidence": (0.9, _fraction(0.5, 1.0), "a number between 0.5 and 1"),
    "alert_webhook_url": (
        None,
        lambda v: v is None or isinstance(v, str) and v.startswith(("http://", "https://")),
        "an http(s) URL or null",
    ),
    "expected_interval_minutes": (10, _positive_int, "an integer >= 1"),
}
PATH_KEYS = [*REQUIRED_PATH_KEYS, "log_path", "history_path"]


class PipelineError(Exception):
    """An expected failure (bad config, bad input, missing file) reported as one line."""


class Config:
    """Resolved configuration: `config_path` and every *_path key an absolute pathlib.Path, plus
    the other keys of OPTIONAL_KEYS with their values (a plain class: `types` is not loaded for it)."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{key}={value!r}" for key, value in vars(self).items()) + ")"


def config_path_from_env() -> str:
    """The config file to use: RISK_CONFIG if set, else config.json beside the scripts."""
    return os.path.abspath(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def check_value(config_path: str, key: str, value, check, expected: str) -> None:
    # bool is an int subclass; a port or a margin of `true` is still a mistake.
    if isinstance(value, bool) or not check(value):
        raise PipelineError(f"config file {config_path}: key '{key}' must be {expected}, got {value!r}")


def read_config(config_path=None) -> dict:
    """Read and check a config file into a dict with absolute path strings.

    Raises PipelineError naming the file and key on any problem. Symbolic links are not resolved:
    prod_deployment_path is one, and must be followed anew at each use.
    """
    config_path = os.path.abspath(config_path) if config_path else config_path_from_env()
    try:
        with open(config_path, encoding="utf-8") as handle:
            raw = read_json_object(handle.read())
    except FileNotFoundError:
        raise PipelineError(f"config file {config_path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise PipelineError(f"config file {config_path} {error}") from None
    values = {"config_path": config_path}
    for key in REQUIRED_PATH_KEYS:
        if key not in raw:
            raise PipelineError(f"config file {config_path} has no key '{key}'")
        check_value(config_path, key, raw[key], lambda v: isinstance(v, str) and v != "", "a non-empty path")
        values[key] = raw[key]
    if os.environ.get(API_URL_ENV_VAR):
        raw["api_base_url"] = os.environ[API_URL_ENV_VAR]
    for key, (default, check, expected) in OPTIONAL_KEYS.items():
        values[key] = raw.get(key, default)
        check_value(config_path, key, values[key], check, expected)
    for key in PATH_KEYS:
        values[key] = os.path.abspath(os.path.join(os.path.dirname(config_path), values[key]))
    return values


def read_json_object(text: str) -> dict:
    """The keys and values of a JSON object, parsed strictly by SQLite's JSON functions.

    The cron path loads sqlite3 for the history anyway, and importing the json module (which brings
    re and enum) would take longer than the rest of an idle run. Nested values come back as JSON text.
    Raises ValueError saying what is wrong.
    """
    from risk.history import sqlite3

    conn = sqlite3.connect(":memory:")
    try:
        kind = conn.execute("SELECT CASE WHEN json_valid(?1) THEN json_type(?1) END", (text,)).fetchone()[0]
        if kind is None:
            raise ValueError("is not readable JSON")
        if kind != "object":
            raise ValueError("must hold a JSON object")
        rows = conn.execute("SELECT key, value, type FROM json_each(?)", (text,)).fetchall()
    finally:
        conn.close()
    constants = {"true": True, "false": False, "null": None}
    return {key: constants[kind] if kind in constants else value for key, value, kind in rows}


def load_config(config_path=None) -> Config:
    """read_config with the paths as pathlib.Path objects."""
    from pathlib import Path

    values = read_config(config_path)
    for key in ["config_path", *PATH_KEYS]:
        values[key] = Path(values[key])
    return Config(**values)


def write_config(config: Config, config_path) -> str:
    """Write `config` as a JSON config file (absolute paths), e.g. a scratch copy for timing runs."""
    import json

    data = {
        key: value if value is None or isinstance(value, int | float | str) else str(value)
        for key, value in vars(config).items()
    }
    del data["config_path"]
    atomic_write_text(config_path, json.dumps(data, indent=2) + "\n")
    return config_path


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
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def one_line(text: str) -> str:
    """`text` as one printable line: a newline, tab, escape, line separator or any other character
    that is not printable is written as its Python escape (`\\n`, `\\x1b`, `\\u2028`), so no file
    name or value can break a log line or forge another."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


PATH_ENDS = frozenset(" \t\n\r\f\v:'\",;()[]")


def relative_paths(text: str, root) -> str:
    """`text` with every absolute path written relative to `root` (the config file's folder) or to the
    project, and any other as its last part: logs and alerts name files, never where the server keeps them.

    A path starts with a slash after no letter, digit, `_.:/~-` (so not a URL's or a relative path's)
    and ends before a space, quote, colon, comma, semicolon or bracket. (Scanned by hand: importing `re`
    would cost the idle cron run more than the rest of its work.)
    """
    start = text.find("/")
    if start < 0:
        return text
    prefixes = [os.path.join(os.fspath(root), ""), os.path.join(PROJECT_DIR, "")]
    pieces, done = [], 0
    while start >= 0:
        before, after = text[start - 1 : start] or " ", text[start + 1 : start + 2]
        if before.isalnum() or before in "_.:/~-" or after in ("", "/") or after.isspace():
            start = text.find("/", start + 1)
            continue
        end = start + 1
        while end < len(text) and text[end] not in PATH_ENDS and not text[end].isspace():
            end += 1
        pieces += [text[done:start], shown_path(text[start:end], prefixes)]
        done, start = end, text.find("/", end)
    return "".join(pieces) + text[done:]


def shown_path(path: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        if path.startswith(prefix) or path == prefix[:-1]:
            return os.path.relpath(path, prefix)
    return os.path.basename(path.rstrip("/")) or path


def log_text(text: str, root) -> str:
    """What a log line or an alert may say: one line, with paths relative to `root`."""
    return one_line(relative_paths(text, root))


def log_filter(root):
    """A logging filter writing each record's message as log_text() does (a handler's, not caplog's)."""

    def rewrite(record) -> bool:
        record.msg, record.args = log_text(record.getMessage(), root), None
        return True

    return rewrite


def setup_logging(level=None, root=None) -> None:
    """Configure logging once, from a script's main(): lines on stderr, written by log_text() with
    paths relative to `root` (default: the folder of the config file the script will read)."""
    import logging

    logging.basicConfig(level=level or logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)
    root = root or os.path.dirname(config_path_from_env())
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter(root))


def run_cli(main) -> None:
    """Run a script's main(); an expected failure, or a history database that cannot be used, becomes
    one line on stderr and exit code 1."""
    import logging

    setup_logging()
    try:
        main()
    except PipelineError as error:
        logging.getLogger("risk").error("%s", error)
        sys.exit(1)


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
    from importlib import metadata  # only diagnostics need it: the idle cron run does not pay for it

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
