"""The cron line: cronjob.txt, `make cron-install` / `make cron-remove` against a stand-in crontab, and a
real cron daemon running fullprocess.py from that line (CI installs and starts cron)."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import PROJECT_DIR, make_project, seed_outdated_cache

from risk.config import load_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def read_crontab() -> str:
    result = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def write_crontab(text: str) -> None:
    subprocess.run(["crontab", "-"], input=text, text=True, check=True)


def cron_line(config) -> str:
    """cronjob.txt's line, every minute, with this interpreter and the temporary config."""
    (template,) = [line for line in (PROJECT_DIR / "cronjob.txt").read_text().splitlines() if not line.startswith("#")]
    line = template.replace("*/10 ", "* ", 1)
    line = line.replace("@PROJECT@/.venv/bin/python", f"RISK_CONFIG={config.config_path} {sys.executable}")
    assert "RISK_ACTOR=cron" in line
    line = line.replace("@PROJECT@/logs/fullprocess.log", str(config.log_path))
    return line.replace("@PROJECT@", str(PROJECT_DIR))


def test_the_cron_line_runs_the_full_process_every_10_minutes_from_the_checkout_into_the_log():
    lines = [line for line in (PROJECT_DIR / "cronjob.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines == [
        "*/10 * * * * cd @PROJECT@ && RISK_ACTOR=cron @PROJECT@/.venv/bin/python fullprocess.py"
        " >> @PROJECT@/logs/fullprocess.log 2>&1 # dynamic-risk-assessment @PROJECT@"
    ]


def require_cron() -> None:
    """On a machine without cron the test is skipped with how to get it; under CI=true it must run."""
    missing = None
    if not shutil.which("crontab"):
        missing = "cron is not installed (Debian: apt-get install cron && service cron start)"
    elif subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode != 0:
        missing = "no cron daemon is running (Debian: service cron start)"
    if missing and IN_CI:
        pytest.fail(missing + "; CI must run this test")
    if missing:
        pytest.skip(missing)


@pytest.mark.slow
def test_cron_runs_the_full_process(tmp_path):
    require_cron()
    with socket.socket() as sock:  # a port nothing listens on: apicalls must not find a stray server
        sock.bind(("127.0.0.1", 0))
        unused_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = load_config(make_project(tmp_path, api_base_url=unused_url))
    seed_outdated_cache(config)
    config.log_path.parent.mkdir(parents=True)
    before = read_crontab()
    line = cron_line(config)
    write_crontab(before + line + "\n")
    try:
        deadline = time.monotonic() + 200  # the next minute, plus the run itself
        while time.monotonic() < deadline and "run finished" not in (
            config.log_path.read_text() if config.log_path.exists() else ""
        ):
            time.sleep(2)
    finally:
        write_crontab(before)
    assert read_crontab() == before
    log = config.log_path.read_text()
    assert "bootstrapping" in log and "run finished" in log, log[-3000:]
    assert "step deployment finished" in log
    import sqlite3

    with sqlite3.connect(config.history_path) as conn:
        assert conn.execute("SELECT actor, reason FROM deployments").fetchall() == [("cron", "bootstrap")]
    assert (config.prod_deployment_path / "trainedmodel.pkl").is_file()
    assert (config.output_model_path / "report.pdf").is_file()
    lines = log.splitlines()
    assert len(lines) == len(set(lines)), "cron's redirect and the run's own log wrote the same lines twice"


# --- how a missing cron is reported -------------------------------------------------------------------


@pytest.mark.parametrize(
    "which, running, reason",
    [
        (None, True, "cron is not installed (Debian: apt-get install cron && service cron start)"),
        ("/usr/bin/crontab", False, "no cron daemon is running (Debian: service cron start)"),
    ],
)
@pytest.mark.parametrize("ci", ["", "true"])
def test_without_cron_the_test_is_skipped_with_how_to_get_it_or_fails_under_ci(monkeypatch, which, running, reason, ci):
    monkeypatch.setattr(shutil, "which", lambda name: which)
    real_run = subprocess.run
    fake_pgrep = subprocess.CompletedProcess(["pgrep"], 0 if running else 1)
    monkeypatch.setattr(
        subprocess, "run", lambda args, **kw: fake_pgrep if args[0] == "pgrep" else real_run(args, **kw)
    )
    monkeypatch.setattr(sys.modules[__name__], "IN_CI", bool(ci))
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected) as outcome:
        require_cron()
    assert str(outcome.value) == (reason + "; CI must run this test" if ci else reason)


# --- make cron-install and make cron-remove, against a stand-in crontab -------------------------------

FAKE_CRONTAB = """\
#!/bin/sh
# crontab -l prints the table (exit 1 when there is none); crontab - replaces it with stdin once read
# (as the real one does: `crontab -l | ... | crontab -` reads the old table while the new one is written).
if [ "$1" = "-l" ]; then
    [ -f "$FAKE_CRONTAB_FILE" ] || { echo "no crontab for $USER" >&2; exit 1; }
    cat "$FAKE_CRONTAB_FILE"
elif [ "$1" = "-" ]; then
    cat > "$FAKE_CRONTAB_FILE.new" && mv "$FAKE_CRONTAB_FILE.new" "$FAKE_CRONTAB_FILE"
else
    exit 2
fi
"""
OTHER_LINE = "0 3 * * * /usr/local/bin/backup.sh # someone else's job"


def checkout(root, name: str):
    """A copy of the Makefile and the cron line in `root`/`name`, its virtual environment marked built."""
    folder = root / name
    folder.mkdir()
    for file in ("Makefile", "cronjob.txt"):
        shutil.copy(PROJECT_DIR / file, folder / file)
    for file in ("requirements.txt", "requirements-dev.txt"):  # older than .installed: nothing to install
        (folder / file).touch()
        os.utime(folder / file, (1_000_000_000, 1_000_000_000))
    (folder / ".venv").mkdir()
    (folder / ".venv" / ".installed").touch()
    return folder


@pytest.fixture
def crontab(tmp_path, monkeypatch):
    """A stand-in `crontab` first on PATH, keeping the table in a file; returns a reader of that table."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "crontab").write_text(FAKE_CRONTAB)
    (bin_folder / "crontab").chmod(0o755)
    table = tmp_path / "crontab.txt"
    monkeypatch.setenv("PATH", f"{bin_folder}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(table))
    return table


def make(folder, target: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(folder), target], capture_output=True, text=True, timeout=60
    )


def installed_line(folder) -> str:
    return (
        f"*/10 * * * * cd {folder} && RISK_ACTOR=cron {folder}/.venv/bin/python fullprocess.py"
        f" >> {folder}/logs/fullprocess.log 2>&1 # dynamic-risk-assessment {folder}"
    )


def test_make_cron_install_replaces_this_checkouts_line_and_keeps_the_others(tmp_path, crontab):
    folder = checkout(tmp_path, "project")
    earlier = f"*/5 * * * * cd {folder} && old command # dynamic-risk-assessment {folder}"
    crontab.write_text(f"{OTHER_LINE}\n{earlier}\n")
    for _ in range(2):  # installing again changes nothing
        result = make(folder, "cron-install")
        assert result.returncode == 0, result.stderr
        assert crontab.read_text() == f"{OTHER_LINE}\n{installed_line(folder)}\n"
    assert result.stdout.strip().endswith(installed_line(folder))  # it shows the line it installed
    assert (folder / "logs").is_dir()  # cron appends its output there


def test_make_cron_install_into_an_empty_crontab_and_cron_remove_takes_only_its_line(tmp_path, crontab):
    folder = checkout(tmp_path, "project")
    assert make(folder, "cron-install").returncode == 0
    assert crontab.read_text() == installed_line(folder) + "\n"
    crontab.write_text(f"{OTHER_LINE}\n{installed_line(folder)}\n")
    result = make(folder, "cron-remove")
    assert result.returncode == 0, result.stderr
    assert crontab.read_text() == OTHER_LINE + "\n"


def test_make_cron_install_keeps_the_line_of_a_checkout_whose_path_extends_this_ones(tmp_path, crontab):
    folder, sibling = checkout(tmp_path, "risk"), checkout(tmp_path, "risk-2")
    crontab.write_text(installed_line(sibling) + "\n")
    assert make(folder, "cron-install").returncode == 0
    assert crontab.read_text() == f"{installed_line(sibling)}\n{installed_line(folder)}\n"
