"""Shared plumbing for the pipeline scripts: the config loader, atomic writes and the CLI wrapper.

Standard library only, and only json, os and sys at import: `fullprocess.py` imports it on its
no-new-data path, which cron runs 144 times a day (pathlib, logging and tempfile load on first use).
Config: `config.json` beside this file, or the file named by the environment variable RISK_CONFIG.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from types import SimpleNamespace

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG_PATH = os.path.join(PROJECT_DIR, "config.json")
CONFIG_ENV_VAR = "RISK_CONFIG"

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
TARGET = "exited"
ID_COLUMN = "corporation"
COLUMNS = [ID_COLUMN, *FEATURES, TARGET]

FINALDATA_FILE = "finaldata.csv"
INGESTEDFILES_FILE = "ingestedfiles.txt"
INGESTION_METRICS_FILE = "ingestionmetrics.json"
INGESTION_HISTORY_FILE = "ingestionhistory.jsonl"
MODEL_FILE = "trainedmodel.pkl"
SCORE_FILE = "latestscore.txt"
TESTDATA_FILE = "testdata.csv"

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

REQUIRED_PATH_KEYS = [
    "input_folder_path",
    "output_folder_path",
    "test_data_path",
    "output_model_path",
    "prod_deployment_path",
]
# Optional keys and their defaults; a relative `log_path` is resolved like the folders.
OPTIONAL_KEYS = {
    "log_path": "logs/fullprocess.log",
    "api_host": "127.0.0.1",
    "api_port": 8000,
    "api_base_url": "http://127.0.0.1:8000",
    "outdated_cache_seconds": 3600,
}
PATH_KEYS = [*REQUIRED_PATH_KEYS, "log_path"]


class PipelineError(Exception):
    """An expected failure (bad config, bad input, missing file) reported as one line."""


class Config(SimpleNamespace):
    """Resolved configuration: `config_path` and every *_path key an absolute pathlib.Path
    (relative ones taken from the config file's folder), plus api_host, api_port, api_base_url and
    outdated_cache_seconds."""


def config_path_from_env() -> str:
    """The config file to use: RISK_CONFIG if set, else config.json beside the scripts."""
    return os.path.abspath(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def read_config(config_path=None) -> dict:
    """Read and check a config file into a dict with absolute path strings.

    Raises PipelineError naming the file and key on any problem. Symbolic links are not resolved:
    prod_deployment_path is one, and must be followed anew at each use.
    """
    config_path = os.path.abspath(config_path) if config_path else config_path_from_env()
    try:
        with open(config_path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise PipelineError(f"config file {config_path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise PipelineError(f"config file {config_path} is not readable JSON: {error}") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"config file {config_path} must hold a JSON object")
    values = {"config_path": config_path}
    for key in REQUIRED_PATH_KEYS:
        if key not in raw:
            raise PipelineError(f"config file {config_path} has no key '{key}'")
        values[key] = raw[key]
    for key, default in OPTIONAL_KEYS.items():
        values[key] = raw.get(key, default)
    for key in [*REQUIRED_PATH_KEYS, *OPTIONAL_KEYS]:
        value, expected = values[key], type(OPTIONAL_KEYS.get(key, ""))
        # bool is an int subclass; a port of `true` is still a mistake.
        if not isinstance(value, expected) or isinstance(value, bool) or value == "":
            raise PipelineError(
                f"config file {config_path}: key '{key}' must be a non-empty {expected.__name__}, "
                f"got {value!r}"
            )
    for key in PATH_KEYS:
        values[key] = os.path.abspath(os.path.join(os.path.dirname(config_path), values[key]))
    return values


def load_config(config_path=None) -> Config:
    """read_config with the paths as pathlib.Path objects."""
    from pathlib import Path

    values = read_config(config_path)
    for key in ["config_path", *PATH_KEYS]:
        values[key] = Path(values[key])
    return Config(**values)


def write_config(config: Config, config_path) -> str:
    """Write `config` as a JSON config file (absolute paths), e.g. a scratch copy for timing runs."""
    data = {key: value if isinstance(value, int | str) else str(value) for key, value in vars(config).items()}
    del data["config_path"]
    atomic_write_text(config_path, json.dumps(data, indent=2) + "\n")
    return config_path


def list_csv_names(folder_path) -> list[str]:
    """Names of the visible `.csv` files directly in `folder_path`, sorted."""
    try:
        entries = list(os.scandir(folder_path))
    except (FileNotFoundError, NotADirectoryError):
        message = f"input folder {folder_path} does not exist (config key input_folder_path)"
        raise PipelineError(message) from None
    return sorted(
        entry.name
        for entry in entries
        if entry.name.lower().endswith(".csv") and not entry.name.startswith(".") and entry.is_file()
    )


def find_csv_files(folder_path) -> list:
    """Paths of the visible `.csv` files directly in `folder_path`, sorted by name."""
    from pathlib import Path

    return [Path(folder_path) / name for name in list_csv_names(folder_path)]


def read_lines(path) -> list[str]:
    """Non-empty, stripped lines of a text file, e.g. ingestedfiles.txt."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


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


@contextmanager
def atomic_writer(path, mode="w"):
    """Open a temporary file beside `path`; on success rename it over `path`, else remove it."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), default_file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def setup_logging(level=None) -> None:
    """Configure logging once, from a script's main()."""
    import logging

    logging.basicConfig(level=level or logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)


def run_cli(main) -> None:
    """Run a script's main(); an expected failure becomes one line on stderr and exit code 1."""
    import logging

    setup_logging()
    try:
        main()
    except PipelineError as error:
        logging.getLogger("common").error("%s", error)
        sys.exit(1)
