"""Where every artifact lives, the input folder's files, the releases on disk, and which one production serves.

A deployment is a release folder in `<prod_deployment_path>.releases/`; `prod_deployment_path` is a
symbolic link to the live one, switched by one atomic rename, so a reader (or a kill at any moment) sees
one complete release. The history database (history.py) records why each release went live; this
module knows the files. Standard library only: the idle cron run imports it.
"""

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

from risk.config import Config, PipelineError, fsync_dir
from risk.logs import one_line

EXIT_BUSY = 75  # another run holds the lock, or another process the history database; try again later

# Inputs and outputs of the steps, by folder (config key) and name.
FINALDATA_FILE = "finaldata.csv"  # output_folder_path
INGESTEDFILES_FILE = "ingestedfiles.txt"  # output_folder_path, and each release
INGESTION_METRICS_FILE = "ingestionmetrics.json"  # output_folder_path
TESTDATA_FILE = "testdata.csv"  # test_data_path
MODEL_FILE = "trainedmodel.pkl"  # output_model_path, and each release
SCORE_FILE = "latestscore.txt"  # output_model_path, and each release
MODEL_CARD_FILE = "modelcard.json"  # output_model_path, and each release trained since the registry
CONFUSION_MATRIX_FILE = "confusionmatrix.png"  # output_model_path
REPORT_FILE = "report.pdf"  # output_model_path
REPORT_SUMMARY_FILE = "reportsummary.json"  # output_model_path: what the next report compares itself with
TREND_FILE = "trend.png"  # output_model_path: the F1 trend chart of the report's page 1
RANKING_FILE = "riskranking.csv"  # output_model_path: every scored client, highest risk first, with why
UNSCORED_FILE = "riskunscored.csv"  # output_model_path: the clients that cannot be scored, with why
APIRETURNS_FILE = "apireturns.txt"  # output_model_path
DIAGNOSTIC_PREDICTIONS_FILE = "diagnosticpredictions.csv"  # output_model_path: diagnostics.py's every prediction
OUTDATED_CACHE_FILE = "outdatedpackages.json"  # output_model_path
LOCK_FILE = "fullprocess.lock"  # beside log_path

# What a release holds: the course's three files, and the model card when training wrote one.
RELEASE_FILES = [MODEL_FILE, SCORE_FILE, INGESTEDFILES_FILE]
OPTIONAL_RELEASE_FILES = [MODEL_CARD_FILE]
TMP_PREFIX = ".tmp-"
KEEP_RELEASES = 20
WRITING_SECONDS = 60  # an input file changed this recently without a final line end may still be being written


def finaldata_path(config: Config) -> Path:
    return config.output_folder_path / FINALDATA_FILE


def testdata_path(config: Config) -> Path:
    return config.test_data_path / TESTDATA_FILE


def lock_path(config: Config) -> Path:
    """The full process's lock file, beside the log."""
    return config.log_path.parent / LOCK_FILE


def deployable_files(config: Config) -> list[Path]:
    """The files deployment publishes: the trained model, its score, the ingestion record, the card."""
    files = [
        config.output_model_path / MODEL_FILE,
        config.output_model_path / SCORE_FILE,
        config.output_folder_path / INGESTEDFILES_FILE,
    ]
    card = config.output_model_path / MODEL_CARD_FILE
    return files + ([card] if card.is_file() else [])


def list_csv_names(folder_path) -> list[str]:
    """Names of the input files directly in `folder_path`, sorted (see scan_input)."""
    return scan_input(folder_path)[0]


def scan_input(folder_path) -> tuple[list[str], list[str]]:
    """(names of the input files, sorted; a warning for each entry skipped).

    An input file is a visible regular file named `*.csv` (any case) whose name is printable. Other
    names are not input and are ignored; a symbolic link, a folder or any other entry that is not a
    regular file, or a name holding a control character (a newline could forge a log line), is
    skipped with a warning naming it escaped: the input folder is a boundary, nothing outside it is read.
    """
    try:
        entries = list(os.scandir(folder_path))
    except (FileNotFoundError, NotADirectoryError):
        message = f"input folder {folder_path} does not exist (config key input_folder_path)"
        raise PipelineError(message) from None
    names, warnings = [], []
    for entry in entries:
        if not entry.name.lower().endswith(".csv") or entry.name.startswith("."):
            continue
        problem = input_problem(entry)
        if problem:
            warnings.append(f"skipped {one_line(entry.name)} in the input folder: {problem}")
        else:
            names.append(entry.name)
    return sorted(names), sorted(warnings)


def input_problem(entry: os.DirEntry) -> str | None:
    """Why a `*.csv` entry of the input folder is not read, or None."""
    try:
        if entry.is_symlink():
            return "a symbolic link; only regular files are read"
        if not entry.is_file(follow_symlinks=False):
            return "not a regular file"
        if not entry.name.isprintable():
            return "its name holds a control character; rename it to read it"
        return being_written(entry.path)
    except OSError as error:
        return f"cannot be examined ({error.strerror})"


def being_written(path) -> str | None:
    """Why a file may still be being written, or None: it changed within WRITING_SECONDS and does not end
    with a line end yet (a copy in progress stops anywhere; a finished export ends its last line)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        status = os.fstat(fd)
        age = time.time() - status.st_mtime
        if age >= WRITING_SECONDS or not status.st_size or os.pread(fd, 1, status.st_size - 1) == b"\n":
            return None  # (an empty file is rejected, and read again when it changes, as any rejected one)
    finally:
        os.close(fd)
    return (
        f"it may still be being written (no line end at its end, changed {max(age, 0):.0f} s ago); it is read once it"
        f" ends with one, or has not changed for {WRITING_SECONDS} s"
    )


def read_input(path) -> tuple[bytes, os.stat_result]:
    """The bytes and status of an input file, opened without following a symbolic link and without
    waiting on a pipe; OSError when it is not a regular file (it may have changed since it was listed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{os.path.basename(path)} is not a regular file")
        with open(fd, "rb", closefd=False) as handle:
            return handle.read(), status
    finally:
        os.close(fd)


def releases_path(prod_deployment_path) -> Path:
    prod_deployment_path = Path(prod_deployment_path)
    return prod_deployment_path.with_name(prod_deployment_path.name + ".releases")


def live_release(prod_deployment_path) -> Path | None:
    """The release folder production points to, if it holds a model; None when nothing is deployed."""
    path = os.path.realpath(prod_deployment_path)
    if not os.path.isfile(os.path.join(path, MODEL_FILE)):
        return None
    return Path(path)


def live_release_name(prod_deployment_path) -> str | None:
    path = os.path.realpath(prod_deployment_path)
    return os.path.basename(path) if os.path.isfile(os.path.join(path, MODEL_FILE)) else None


def kept_releases(prod_deployment_path) -> list[Path]:
    """The complete release folders on disk, oldest first (names start with their UTC time)."""
    folder = releases_path(prod_deployment_path)
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if not path.name.startswith(".") and path.is_dir() and (path / MODEL_FILE).is_file()
    )


def release_path(prod_deployment_path, name: str) -> Path | None:
    """The kept release called `name`, or None (a name is never a path: no separators)."""
    if not name or "/" in name or name.startswith("."):
        return None
    path = releases_path(prod_deployment_path) / name
    return path if (path / MODEL_FILE).is_file() else None


def read_lines(path) -> list[str]:
    """Non-empty, stripped lines of a text file, e.g. ingestedfiles.txt."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def copy_durably(source_path: Path, target_path: Path) -> None:
    shutil.copy2(source_path, target_path)
    with open(target_path, "rb") as handle:
        os.fsync(handle.fileno())


def remove_leftovers(prod_deployment_path: Path) -> None:
    """Remove half-built releases, half-deleted ones and links that a killed deployment may have left
    (the caller holds the full process's lock: no deployment is under way)."""
    for path in releases_path(prod_deployment_path).glob(TMP_PREFIX + "*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in prod_deployment_path.parent.glob(f".{prod_deployment_path.name}{TMP_PREFIX}*"):
        path.unlink(missing_ok=True)


def new_release_name() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(2)


def build_release(source_paths: list[Path], prod_deployment_path: Path) -> tuple[Path, Path]:
    """Copy the files into a new, complete release, still hidden (a kill leaves only a leftover that
    remove_leftovers clears, never a release that counts as kept); return (where it is, where
    publish_release puts it once the history records the intent to deploy it)."""
    releases = releases_path(prod_deployment_path)
    releases.mkdir(parents=True, exist_ok=True)
    name = new_release_name()
    staging = releases / (TMP_PREFIX + name)
    staging.mkdir()
    for source_path in source_paths:
        copy_durably(source_path, staging / source_path.name)
    fsync_dir(staging)
    return staging, releases / name


def publish_release(staging: Path, release: Path) -> None:
    """A built release joins the kept ones, in one rename."""
    os.rename(staging, release)
    fsync_dir(release.parent)


def leftovers(prod_deployment_path) -> list[str]:
    """Names of what a stopped deployment or deletion left: hidden folders among the releases, and
    temporary links beside production (os only: the idle cron run asks)."""
    prod = os.fspath(prod_deployment_path)
    found = []
    for folder, prefix in (
        (prod + ".releases", TMP_PREFIX),
        (os.path.dirname(prod), f".{os.path.basename(prod)}{TMP_PREFIX}"),
    ):
        try:
            found += [name for name in os.listdir(folder) if name.startswith(prefix)]
        except OSError:
            pass
    return found


def release_names(prod_deployment_path) -> set[str]:
    """Names of the release folders on disk, kept or hidden (os only: the idle cron run asks)."""
    try:
        return set(os.listdir(os.fspath(prod_deployment_path) + ".releases"))
    except OSError:
        return set()


def adopt_plain_folder(prod_deployment_path: Path) -> Path | None:
    """Move a deployment folder from before releases existed into the releases; return its new place."""
    if prod_deployment_path.is_dir() and not prod_deployment_path.is_symlink():
        target = releases_path(prod_deployment_path) / "00000000T000000000000Z-adopted"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(prod_deployment_path, target)
        return target
    return None


def switch_to(release: Path, prod_deployment_path: Path) -> None:
    """Point production at `release` with one atomic rename of a symbolic link."""
    link = prod_deployment_path.with_name(f".{prod_deployment_path.name}{TMP_PREFIX}{release.name}")
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(release, prod_deployment_path.parent), target_is_directory=True)
    os.replace(link, prod_deployment_path)
    fsync_dir(prod_deployment_path.parent)


def prune_releases(
    prod_deployment_path: Path, protect: set[str], keep: int = KEEP_RELEASES
) -> tuple[list[str], list[str]]:
    """Delete all but the newest `keep` releases, never the live one nor one in `protect`.

    Returns the names deleted and, for the caller to log, "name (error)" for each that could not be.
    """
    live = live_release_name(prod_deployment_path)
    deleted, failures = [], []
    for old in kept_releases(prod_deployment_path)[:-keep]:
        if old.name != live and old.name not in protect:
            try:
                discard_release(old)
            except OSError as error:
                failures.append(f"{old.name} ({error})")
                continue
            deleted.append(old.name)
    return deleted, failures


def discard_release(release: Path) -> None:
    """Take a release out of the list in one rename (OSError if that fails), then delete it.

    A deletion that fails halfway leaves a hidden leftover, which the next reconciliation's or deployment's
    remove_leftovers clears, never a half-release that would still look kept.
    """
    trash = release.parent / f"{TMP_PREFIX}discarded-{release.name}"
    os.rename(release, trash)
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def run_lock(config: Config, what: str):
    """`with run_lock(config, "ingestion.py"):` a step run by hand holds the full process's lock while it
    writes what a cron run reads and writes; while a run holds it, one line and exit code 75 (EXIT_BUSY), at
    once, with nothing written."""
    path = lock_path(config)
    fd = acquire_lock(path)
    if fd is None:
        logging.getLogger(what.removesuffix(".py")).error(
            "a full-process run holds the lock (%s); %s did nothing: try again when it finishes", path, what
        )
        raise SystemExit(EXIT_BUSY)
    try:
        yield
    finally:
        os.close(fd)


def acquire_lock(path) -> int | None:
    """A file descriptor holding the lock at `path` (the full process's, a timing's, a refresh's), or None
    when another process holds it. A symbolic link at `path` is not followed (OSError)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def read_model_file(model_path) -> bytes:
    """A model file's bytes; a missing or unreadable file is a PipelineError saying so."""
    model_path = Path(model_path)
    try:
        return model_path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(
            f"model file {model_path} does not exist (training.py trains a model, deployment.py deploys it)"
        ) from None
    except OSError as error:
        raise PipelineError(f"model file {model_path} cannot be read: {error.strerror}") from None
