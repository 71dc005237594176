"""Shared plumbing for the pipeline scripts: the config loader, atomic writes and the CLI wrapper.

Standard library only, so that `fullprocess.py` can import it on its cheap no-new-data path.
Config: `config.json` beside this file, or the file named by the environment variable RISK_CONFIG.
"""

import json
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = PROJECT_DIR / "config.json"
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

logger = logging.getLogger(__name__)


class PipelineError(Exception):
    """An expected failure (bad config, bad input, missing file) reported as one line."""


@dataclass(frozen=True)
class Config:
    """Resolved configuration: every path absolute, relative ones taken from the config's folder."""

    config_path: Path
    input_folder_path: Path
    output_folder_path: Path
    test_data_path: Path
    output_model_path: Path
    prod_deployment_path: Path
    log_path: Path
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_base_url: str = "http://127.0.0.1:8000"
    outdated_cache_seconds: int = 3600


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


def config_path_from_env() -> Path:
    """The config file to use: RISK_CONFIG if set, else config.json beside the scripts."""
    return Path(os.path.abspath(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH))


def load_config(config_path=None) -> Config:
    """Read and check a config file; raise PipelineError naming the file and key on any problem."""
    config_path = Path(os.path.abspath(config_path)) if config_path else config_path_from_env()
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"config file {config_path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PipelineError(f"config file {config_path} is not readable JSON: {error}") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"config file {config_path} must hold a JSON object")
    values = {}
    for key in REQUIRED_PATH_KEYS:
        if key not in raw:
            raise PipelineError(f"config file {config_path} has no key '{key}'")
        values[key] = raw[key]
    for key, default in OPTIONAL_KEYS.items():
        values[key] = raw.get(key, default)
    for key, value in values.items():
        expected = type(OPTIONAL_KEYS.get(key, ""))
        # bool is an int subclass; a port of `true` is still a mistake.
        if not isinstance(value, expected) or isinstance(value, bool) or value == "":
            raise PipelineError(
                f"config file {config_path}: key '{key}' must be a non-empty {expected.__name__}, "
                f"got {value!r}"
            )
    for key in PATH_KEYS:
        # abspath, not resolve(): prod_deployment_path is a symlink that must be followed anew each time.
        values[key] = Path(os.path.abspath(config_path.parent / values[key]))
    return Config(config_path=config_path, **values)


def write_config(config: Config, config_path) -> Path:
    """Write `config` as a JSON config file (absolute paths), e.g. a scratch copy for timing runs."""
    data = {
        field.name: str(getattr(config, field.name))
        if field.name in PATH_KEYS
        else getattr(config, field.name)
        for field in fields(config)
        if field.name != "config_path"
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


@contextmanager
def atomic_writer(path, mode="w"):
    """Open a temporary file beside `path`; on success rename it over `path`, else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), default_file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def read_lines(path) -> list[str]:
    """Non-empty, stripped lines of a text file, e.g. ingestedfiles.txt."""
    text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def setup_logging(level=logging.INFO) -> None:
    """Configure logging once, from a script's main()."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


def run_cli(main) -> None:
    """Run a script's main(); an expected failure becomes one line on stderr and exit code 1."""
    setup_logging()
    try:
        main()
    except PipelineError as error:
        logger.error("%s", error)
        sys.exit(1)
