"""The log's lines (risk/logs.py): one format, one line per message with files named from the config's folder,
tracebacks only in the log file, no line written twice, and a script's expected failure as one line."""

import contextlib
import json
import logging
import re

import pytest

from risk.config import PipelineError
from risk.logs import failures_as_one_line, relative_paths, script_config, setup_logging

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@contextlib.contextmanager
def stderr_to(path):
    """stderr as a file of its own (a terminal, say) for the block; the test reads it back."""
    with open(path, "a", encoding="utf-8", buffering=1) as stream, contextlib.redirect_stderr(stream):
        yield


def raise_and_log(logger: logging.Logger, path: str) -> None:
    try:
        open(path)
    except OSError:
        logger.error("could not read %s", path, exc_info=True)


def test_a_line_is_time_level_logger_and_message_as_the_full_process_wrote_it(tmp_path, root_logging):
    stderr_file = tmp_path / "stderr.txt"
    with stderr_to(stderr_file):
        setup_logging(tmp_path, tmp_path / "logs" / "fullprocess.log")
        logging.getLogger("fullprocess").info("run finished in %.2fs with exit code %d (%s)", 1.5, 0, "no new data")
        logging.getLogger("ingestion").warning("a warning")
    lines = (tmp_path / "logs" / "fullprocess.log").read_text().splitlines()
    assert [re.sub(STAMP, "STAMP", line) for line in lines] == [
        "STAMP INFO fullprocess: run finished in 1.50s with exit code 0 (no new data)",
        "STAMP WARNING ingestion: a warning",
    ]
    assert stderr_file.read_text().splitlines() == lines  # stderr is not the log: the lines are shown there too


@pytest.mark.parametrize(
    "message, shown",
    [
        ("skipped {root}/sourcedata/a\n2026-01-01 00:00:00,000 ERROR x.csv", "skipped sourcedata/a\\n2026-01-01"),
        ("history database {root}/logs/history.db is locked", "history database logs/history.db is locked"),
        ("read /etc/passwd (denied)", "read passwd (denied)"),
        ("tab\there, escape\x1b[31m", "tab\\there, escape\\x1b[31m"),
    ],
)
def test_each_message_is_one_line_naming_files_from_the_config_folder(tmp_path, root_logging, message, shown):
    with stderr_to(tmp_path / "stderr.txt"):
        setup_logging(tmp_path, tmp_path / "fullprocess.log")
        logging.getLogger("fullprocess").info(message.format(root=tmp_path))
    (line,) = (tmp_path / "fullprocess.log").read_text().splitlines()
    assert line.split(" fullprocess: ", 1)[1].startswith(shown)


def test_a_traceback_goes_to_the_log_file_with_relative_paths_and_stderr_gets_the_line_alone(tmp_path, root_logging):
    stderr_file = tmp_path / "stderr.txt"
    with stderr_to(stderr_file):
        setup_logging(tmp_path, tmp_path / "fullprocess.log")
        raise_and_log(logging.getLogger("fullprocess"), str(tmp_path / "missing.csv"))
    logged = (tmp_path / "fullprocess.log").read_text()
    assert "Traceback (most recent call last)" in logged and str(tmp_path) not in logged
    assert "FileNotFoundError: [Errno 2] No such file or directory: 'missing.csv'" in logged
    (line,) = stderr_file.read_text().splitlines()
    assert line.endswith("ERROR fullprocess: could not read missing.csv")


def test_without_a_log_file_the_traceback_goes_to_stderr(tmp_path, root_logging):
    stderr_file = tmp_path / "stderr.txt"
    with stderr_to(stderr_file):
        setup_logging(tmp_path)  # a step script alone, or gunicorn: stderr is where its log is
        raise_and_log(logging.getLogger("app"), str(tmp_path / "missing.csv"))
    text = stderr_file.read_text()
    assert text.splitlines()[0].endswith("ERROR app: could not read missing.csv")
    assert "Traceback (most recent call last)" in text and str(tmp_path) not in text


def test_other_handlers_get_the_record_as_it_came(tmp_path, root_logging, caplog):
    with stderr_to(tmp_path / "stderr.txt"):
        setup_logging(tmp_path, tmp_path / "fullprocess.log")
        logging.getLogger().addHandler(caplog.handler)
        logging.getLogger("fullprocess").info("read %s", tmp_path / "a\nb.csv")
    assert caplog.messages == [f"read {tmp_path}/a\nb.csv"]


def test_an_expected_failure_is_one_line_and_exit_code_1(tmp_path, root_logging):
    stderr_file = tmp_path / "stderr.txt"
    with stderr_to(stderr_file), pytest.raises(SystemExit) as exited:
        setup_logging(tmp_path)
        with failures_as_one_line():
            raise PipelineError(f"data file {tmp_path}/ingesteddata/finaldata.csv does not exist")
    assert exited.value.code == 1
    (line,) = stderr_file.read_text().splitlines()
    assert line.endswith("ERROR risk: data file ingesteddata/finaldata.csv does not exist")


def test_a_script_starts_with_its_config_loaded_and_a_bad_one_is_one_line(tmp_path, root_logging, monkeypatch):
    path, stderr_file = tmp_path / "config.json", tmp_path / "stderr.txt"
    monkeypatch.setenv("RISK_CONFIG", str(path))
    path.write_text(json.dumps({"input_folder_path": "x"}))
    with stderr_to(stderr_file), pytest.raises(SystemExit) as exited, script_config():
        pytest.fail("a bad config is never handed to the script")
    assert exited.value.code == 1
    (line,) = stderr_file.read_text().splitlines()
    assert line.endswith("ERROR risk: config file config.json has no key 'output_folder_path'")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("config /tmp/my secret dir (prod)/proj/config.json is bad", "config config.json is bad"),
        ("no file in /tmp/my secret dir (prod)/proj", "no file in ."),
        ("see /etc/passwd, and ~/x", "see passwd, and ~/x"),
    ],
)
def test_a_folder_whose_name_has_spaces_or_brackets_is_hidden_whole(text, expected):
    assert relative_paths(text, "/tmp/my secret dir (prod)/proj") == expected
