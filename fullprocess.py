"""Step 5: the full process that cron runs every 10 minutes; exits with one of the codes below.

New data in input_folder_path (files not in the deployed ingestedfiles.txt nor already checked)?
Ingest it and check drift: the deployed model's F1 on the new finaldata.csv below its recorded
latestscore.txt means drift -> train, score, deploy, report, apicalls. Nothing deployed -> bootstrap.
Config keys: input_folder_path, prod_deployment_path, log_path, and those of every step. Beside
log_path: fullprocess_state.json (what was checked), fullprocess_runs.jsonl (each working run's
record), fullprocess.lock. The no-new-data path imports no pandas, scikit-learn or matplotlib.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time

from common import INGESTEDFILES_FILE, PipelineError, list_csv_names, read_config, read_lines

EXIT_OK = 0  # nothing new, no drift, or redeployed and reported
EXIT_FAILED = 1  # bad config or a failing step; production left as it was
EXIT_API_UNREACHABLE = 2  # redeployed and reports written, but apicalls.py could not reach the API
EXIT_BUSY = 75  # another run holds the lock; this one changed nothing

STATE_FILE = "fullprocess_state.json"
RUNS_FILE = "fullprocess_runs.jsonl"
LOCK_FILE = "fullprocess.lock"
RETRAIN_STEPS = ["training", "scoring", "deployment"]
REPORT_STEPS = ["reporting", "apicalls"]


class RunLog:
    """Timestamped lines appended to the log file, and to stderr unless stderr is that file."""

    def __init__(self, log_path: str):
        self.log_path = log_path
        self.handle = open(log_path, "a", encoding="utf-8", buffering=1)
        self.echo = not same_file(sys.stderr, log_path)

    def __call__(self, message: str, level: str = "INFO") -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"
        line = f"{stamp} {level} fullprocess: {message}\n"
        self.handle.write(line)
        if self.echo:
            sys.stderr.write(line)

    def attach_step_logging(self) -> None:
        """Send the steps' own log lines (the logging module) to the same places."""
        import logging

        from common import LOG_FORMAT

        handlers = [logging.FileHandler(self.log_path, encoding="utf-8")]
        if self.echo:
            handlers.append(logging.StreamHandler(sys.stderr))
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)


def same_file(stream, path: str) -> bool:
    try:
        opened, named = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def acquire_lock(lock_path: str) -> int | None:
    """A file descriptor holding the run lock, or None when another run holds it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def deployed_release(prod_deployment_path: str) -> tuple[str | None, list[str] | None]:
    """(release folder, files it was trained on), or (None, None) with no complete deployment."""
    if not os.path.isdir(prod_deployment_path):
        return None, None
    release = os.path.realpath(prod_deployment_path)
    try:
        return release, read_lines(os.path.join(release, INGESTEDFILES_FILE))
    except FileNotFoundError:
        return None, None


def read_state(state_path: str) -> dict:
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def find_new_files(input_names: list[str], deployed_names: list[str], checked_names: list[str]) -> list[str]:
    """Input files neither deployed nor already checked against the deployed model."""
    known = set(deployed_names) | set(checked_names)
    return [name for name in input_names if name not in known]


class StepFailed(Exception):
    """A step of the run failed; the message says which and why."""

    def __init__(self, step: str, reason: str):
        super().__init__(f"step {step} failed: {reason}")
        self.reason = reason


def run_step(name: str, config_path: str, log: RunLog, record: dict):
    """Run one step's main() in this process, timed and logged; return its result."""
    import importlib

    started = time.perf_counter()
    log(f"step {name} started")
    try:
        result = importlib.import_module(name).main(config_path)
    except PipelineError as error:
        raise StepFailed(name, str(error)) from None
    except Exception as error:  # a bug, not bad input: keep the traceback in the log
        import traceback

        log.handle.write(traceback.format_exc())
        raise StepFailed(name, f"unexpected {type(error).__name__}: {error}") from None
    seconds = time.perf_counter() - started
    record["steps"][name] = round(seconds, 3)
    log(f"step {name} finished in {seconds:.2f}s")
    return result


def check_drift(config: dict, release: str, log: RunLog, record: dict) -> bool:
    """Compare the deployed model's F1 on the new finaldata.csv with its recorded test F1."""
    from common import FINALDATA_FILE, MODEL_FILE, SCORE_FILE
    from ingestion import load_dataset
    from scoring import load_model, read_score, score_model

    deployed_score = read_score(os.path.join(release, SCORE_FILE))
    finaldata = load_dataset(os.path.join(config["output_folder_path"], FINALDATA_FILE))
    new_score = score_model(load_model(os.path.join(release, MODEL_FILE)), finaldata)
    record.update(deployed_score=deployed_score, new_data_score=new_score, rows_checked=len(finaldata))
    drift = new_score < deployed_score
    comparison = "<" if drift else ">="
    log(
        f"drift check: deployed model F1 {new_score:.4f} on the newly ingested data ({len(finaldata)} rows) "
        f"{comparison} {deployed_score:.4f} recorded on the test data -> "
        + ("drift: re-training" if drift else "no drift: keeping the deployed model")
    )
    return drift


def run_steps(steps: list[str], config_path: str, log: RunLog, record: dict) -> int:
    """Run steps in order, stopping at the first failure; apicalls failing gives EXIT_API_UNREACHABLE."""
    for name in steps:
        try:
            run_step(name, config_path, log, record)
        except StepFailed as error:
            if name != "apicalls":
                raise
            log(f"apicalls could not reach the API: {error.reason}; the reports are written", "ERROR")
            return EXIT_API_UNREACHABLE
    return EXIT_OK


def run_pipeline(config_path: str, config: dict, log: RunLog, record: dict) -> int:
    """Everything after the cheap checks: ingest, decide, re-train and report as needed."""
    state_path = os.path.join(os.path.dirname(config["log_path"]), STATE_FILE)
    state = read_state(state_path)
    log.attach_step_logging()
    steps = REPORT_STEPS
    if record["trigger"] != "report":
        metrics = run_step("ingestion", config_path, log, record)
        state["checked_files"] = [item["name"] for item in metrics["files_read"] + metrics["files_rejected"]]
        if record["trigger"] == "new data" and not check_drift(config, record["release"], log, record):
            record["decision"] = "no drift"
            write_state(state_path, {**state, "release": os.path.basename(record["release"])})
            return EXIT_OK
        record["decision"] = "drift" if record["trigger"] == "new data" else "bootstrap"
        steps = RETRAIN_STEPS + REPORT_STEPS
    try:
        return run_steps(steps, config_path, log, record)
    finally:
        # Whatever happened, remember what production now serves and whether it has its reports.
        release, _ = deployed_release(config["prod_deployment_path"])
        if release and ("deployment" in record["steps"] or "reporting" in record["steps"]):
            record["new_release"] = state["release"] = os.path.basename(release)
            if "reporting" in record["steps"]:
                state["reported_release"] = state["release"]
            write_state(state_path, state)


def write_state(state_path: str, state: dict) -> None:
    from common import atomic_write_text

    atomic_write_text(state_path, json.dumps(state, indent=2) + "\n")


def decide_trigger(config: dict, log: RunLog) -> tuple[str | None, str | None, list[str]]:
    """(trigger, deployed release, new files); trigger None means there is nothing to do."""
    release, deployed_names = deployed_release(config["prod_deployment_path"])
    if release is None:
        log(f"nothing is deployed at {config['prod_deployment_path']}: bootstrapping")
        return "bootstrap", None, []
    state = read_state(os.path.join(os.path.dirname(config["log_path"]), STATE_FILE))
    same_release = state.get("release") == os.path.basename(release)
    input_names = list_csv_names(config["input_folder_path"])
    new_names = find_new_files(
        input_names, deployed_names, state.get("checked_files", []) if same_release else []
    )
    if new_names:
        log(f"new data: {', '.join(new_names)} not in the deployed ingestedfiles.txt nor checked before")
        return "new data", release, new_names
    if state.get("reported_release") not in (None, os.path.basename(release)):
        log(f"release {os.path.basename(release)} has no reports yet: reporting")
        return "report", release, []
    log(
        f"no new data: the {len(input_names)} file(s) in {config['input_folder_path']} "
        "are deployed or checked"
    )
    return None, release, []


def append_record(runs_path: str, record: dict) -> None:
    with open(runs_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def run_once(config: dict, log: RunLog) -> int:
    """Decide what this run does, do it, and keep its record; the caller holds the lock."""
    started = time.perf_counter()
    try:
        trigger, release, new_names = decide_trigger(config, log)
    except PipelineError as error:
        log(str(error), "ERROR")
        return EXIT_FAILED
    if trigger is None:
        return EXIT_OK
    record = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config["config_path"],
        "trigger": trigger,
        "release": release,
        "new_files": new_names,
        "steps": {},
    }
    try:
        code = run_pipeline(config["config_path"], config, log, record)
    except (StepFailed, PipelineError) as error:
        outcome = "the current deployment is untouched"
        if "deployment" in record["steps"]:
            outcome = "the new release is deployed; its reports are retried next run"
        log(f"{error}; {outcome}", "ERROR")
        code = EXIT_FAILED
    record.update(release=os.path.basename(release) if release else None, exit_code=code)
    record["seconds"] = round(time.perf_counter() - started, 3)
    append_record(os.path.join(os.path.dirname(config["log_path"]), RUNS_FILE), record)
    decision = record.get("decision", trigger)
    log(f"run finished in {record['seconds']:.2f}s with exit code {code} ({decision})")
    return code


def main(config_path=None) -> int:
    """One run of the full process; returns its exit code."""
    try:
        config = read_config(config_path)
        os.makedirs(os.path.dirname(config["log_path"]), exist_ok=True)
    except (PipelineError, OSError) as error:
        sys.stderr.write(f"fullprocess: {error}\n")
        return EXIT_FAILED
    log = RunLog(config["log_path"])
    lock_fd = acquire_lock(os.path.join(os.path.dirname(config["log_path"]), LOCK_FILE))
    if lock_fd is None:
        log("another run is in progress (lock held); exiting without changes", "WARNING")
        return EXIT_BUSY
    try:
        return run_once(config, log)
    finally:
        os.close(lock_fd)


if __name__ == "__main__":
    sys.exit(main())
