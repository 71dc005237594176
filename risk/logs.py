"""Log lines: their one format, where they go (setup_logging), and what they may say.

Every line is `time LEVEL logger: message`, one line per message: a newline or another control character
in a file name or value is written escaped (`\\n`), so nothing can forge a line, and files are named
relative to the config file's folder, never where the server keeps them (log_text; alerts and run
records say things the same way). A script's main() sets logging up once (setup_logging; script_config
does it, loads the config and ends an expected failure as one line and exit code 1). Standard library
only: the idle cron run logs too.
"""

import contextlib
import copy
import logging
import os
import re
import sys

from risk.config import PROJECT_DIR, PipelineError, config_path_from_env, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# An absolute path: a slash after no letter, digit or `_.:/~-` (so not a URL's or a relative path's part) and
# before neither another slash nor a space, up to a space, quote, colon, comma, semicolon or bracket.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?![/\s]|$)[^\s:'\",;()\[\]]*")


def one_line(text: str) -> str:
    """`text` as one printable line: a newline, tab, escape, line separator or any other character
    that is not printable is written as its Python escape (`\\n`, `\\x1b`, `\\u2028`), so no file
    name or value can break a log line or forge another."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def relative_paths(text: str, root) -> str:
    """`text` with every absolute path written relative to `root` (the config file's folder) or to the
    project, and any other as its last part: logs, alerts and answers name files, never where the server
    keeps them. The two folders are replaced first, whole, so a space or a bracket in their names cannot
    cut a path short."""
    prefixes = [os.path.join(os.fspath(root), ""), os.path.join(PROJECT_DIR, "")]
    for prefix in prefixes:
        text = text.replace(prefix, "")
    for prefix in prefixes:
        text = re.sub(rf"(?<![\w./]){re.escape(prefix[:-1])}(?![\w./-])", ".", text)  # the folder itself
    return ABSOLUTE_PATH.sub(lambda match: shown_path(match.group(), prefixes), text)


def shown_path(path: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        if path.startswith(prefix) or path == prefix[:-1]:
            return os.path.relpath(path, prefix)
    return os.path.basename(path.rstrip("/")) or path


def log_text(text: str, root) -> str:
    """What a log line or an alert may say: one line, with paths relative to `root`."""
    return one_line(relative_paths(text, root))


class LineFormatter(logging.Formatter):
    """LOG_FORMAT, each message written by log_text(); a record's traceback, if it carries one and
    `tracebacks` is true, follows on lines of its own with the same relative paths (else it is left out)."""

    def __init__(self, root, tracebacks: bool = True):
        super().__init__(LOG_FORMAT)
        self.root, self.tracebacks = root, tracebacks

    def format(self, record: logging.LogRecord) -> str:
        shown = copy.copy(record)  # the other handlers format the record as it came
        shown.msg, shown.args, shown.exc_text = log_text(record.getMessage(), self.root), None, None
        if not self.tracebacks:
            shown.exc_info = shown.stack_info = None
        return super().format(shown)

    def formatException(self, exc_info) -> str:  # noqa: N802 - logging's name
        return relative_paths(super().formatException(exc_info), self.root)


def setup_logging(root, log_path=None) -> None:
    """Configure logging once, from a script's main(): INFO and above as LineFormatter writes them, paths
    relative to `root` (the config file's folder), on stderr. With `log_path` (the full process's log) the
    lines are appended there too, with the tracebacks (stderr gets the lines alone), and stderr is left out
    when it already is that file (cron's `>> logs/fullprocess.log 2>&1`): no line is written twice."""
    handlers = []
    if log_path is not None:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
        handlers[-1].setFormatter(LineFormatter(root))
    if log_path is None or not same_file(sys.stderr, log_path):
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setFormatter(LineFormatter(root, tracebacks=log_path is None))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)


def same_file(stream, path) -> bool:
    """Whether an open stream writes to the file at `path`."""
    try:
        opened, named = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


@contextlib.contextmanager
def failures_as_one_line(logger_name: str = "risk"):
    """`with failures_as_one_line():` in a script's main(): an expected failure (PipelineError, a history
    that cannot be used included) ends the script with one log line saying what to do, and exit code 1."""
    try:
        yield
    except PipelineError as error:
        logging.getLogger(logger_name).error("%s", error)
        sys.exit(1)


@contextlib.contextmanager
def script_config():
    """`with script_config() as config:` how a step script's main() starts: logging set up on stderr (paths
    relative to the config's folder), the config RISK_CONFIG names (or config.json) loaded, and an expected
    failure, a bad config included, ended as one log line and exit code 1 (failures_as_one_line)."""
    config_path = config_path_from_env()
    setup_logging(config_path.parent)
    with failures_as_one_line():
        yield load_config(config_path)
