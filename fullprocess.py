"""Step 5: the full process that cron runs every 10 minutes; exits with one of the codes below.

New files in input_folder_path (unknown to the history database, or changed)? Ingest, then check
the live model on the new rows, pooled with its earlier checks (risk.monitoring): a confirmed drop
below what it was validated at makes it degraded and starts a challenger search on the evidence
since the change; a degraded model is searched for again at every run with new rows; a data-drift
flag starts a search with a healthy champion's burden. The gate deploys a challenger only with the
burden of proof the champion's state calls for. Nothing deployed: bootstrap. Config keys: those of
every step, history_path, drift_margin, drift_confidence, min_new_rows, min_new_positives,
false_alarm_rate, degraded_confidence (docs/decisions.md). The idle run (nothing new) imports no
pandas or scikit-learn and writes one heartbeat.
"""

import os
import sys
import time

from risk import artifacts, history
from risk.config import Config, PipelineError, actor, config_path_from_env, load_config
from risk.logs import log_text
from risk.runs import RunLog, StepFailed, run_step, timed

EXIT_OK = 0  # nothing new; no drift; too few new rows (they wait); or deployed and reported
EXIT_FAILED = 1  # bad config, every new file rejected, or a failing step; production as it was
EXIT_API_UNREACHABLE = 2  # deployed and reports written, but apicalls.py could not reach the API
EXIT_NO_BETTER_MODEL = 3  # the live model is degraded and no challenger beat it: it stays
EXIT_BUSY = 75  # another run holds the lock, or another process the history database; try again later


def decide_trigger(conn, config: Config, log: RunLog) -> tuple[str | None, str | None, list[str]]:
    """(trigger, live release, new files); trigger None means there is nothing to do."""
    live = artifacts.live_release_name(config.prod_deployment_path)
    if live is None:
        log(f"nothing is deployed at {config.prod_deployment_path}: bootstrapping")
        return "bootstrap", None, artifacts.list_csv_names(config.input_folder_path)
    names, warnings = artifacts.scan_input(config.input_folder_path)
    for warning in warnings:
        log(warning, "WARNING")
    new_names = history.unjudged_files(conn, config.input_folder_path, config.history_path, names)
    if new_names:
        log(f"new data: {', '.join(new_names)} (not yet judged)")
        return "new data", live, new_names
    if history.reported_release(conn, str(config.config_path)) != live:
        log(f"release {live} has no reports yet: reporting")
        return "report", live, []
    return None, live, []


def publish(config: Config, log: RunLog, run: dict, reason: str) -> int:
    """Score, deploy and report the model in output_model_path; the exit code."""
    path = config.config_path
    run_step("scoring", path, log, run["steps"])
    release = run_step("deployment", path, log, run["steps"], reason=reason, run_id=run["id"])
    run["release_after"] = release.name
    return report(config, log, run)


def report(config: Config, log: RunLog, run: dict, apicalls: bool = True) -> int:
    run_step("reporting", config.config_path, log, run["steps"])
    run["release_after"] = run.get("release_after") or artifacts.live_release_name(config.prod_deployment_path)
    if not apicalls:
        return EXIT_OK
    try:
        run_step("apicalls", config.config_path, log, run["steps"])
    except StepFailed as error:
        log(f"apicalls could not reach the API: {error.reason}; the reports are written", "ERROR")
        return EXIT_API_UNREACHABLE
    return EXIT_OK


def bootstrap(conn, config: Config, log: RunLog, run: dict) -> int:
    from risk import decisions

    run_step("ingestion", config.config_path, log, run["steps"])
    choice = timed("training", log, run["steps"], lambda: decisions.challenge(conn, config, run["id"], champion=None))
    for line in choice.lines:
        log(line)
    if not choice.deploy:
        raise StepFailed("training", choice.lines[-1])
    run["decision"] = "bootstrap"
    return publish(config, log, run, "bootstrap")


def judge_new_data(conn, config: Config, log: RunLog, run: dict) -> int:
    from risk import decisions

    metrics = run_step("ingestion", config.config_path, log, run["steps"])
    rejected = [file for file in metrics["files_rejected"] if file["name"] in run["new_files"]]
    for file in rejected:
        log(f"rejected {file['reason']}; a corrected or completed file is read again", "ERROR")
    if rejected and len(rejected) == len(run["new_files"]):
        run["decision"] = "rejected: " + "; ".join(file["reason"] for file in rejected)
        return EXIT_FAILED
    check = timed("drift check", log, run["steps"], lambda: decisions.check(conn, config, run["id"]))
    for line in check.lines:
        log(line)
    run["decision"] = check.decision
    if check.newly_degraded or check.newly_flagged:
        run["drift"] = [v.detail for v in check.verdicts if v.outcome == "drift" and v.kind != "course"]
    if not check.challenge:
        return EXIT_OK
    choice = timed(
        "training",
        log,
        run["steps"],
        lambda: decisions.challenge(conn, config, run["id"], check.champion, check.burden, check.since_run_id),
    )
    for line in choice.lines:
        log(line)
    if choice.deploy:
        run["decision"] = "drift: re-trained and re-deployed"
        return publish(config, log, run, "drift")
    decisions.keep_champion(conn, config, run["id"])
    if check.state != "degraded":
        run["decision"] = f"{check.decision.split(':')[0]}, no better model: the live model stays ({check.state})"
        log(f"{run['decision']}; its reference is unchanged")
        return EXIT_OK
    run["decision"] = "drift, no better model: the live model stays (degraded)"
    run["newly_degraded"] = check.newly_degraded
    log(f"{run['decision']}; its reference is unchanged, the search continues with the next new data")
    report(config, log, run, apicalls=False)
    return EXIT_NO_BETTER_MODEL


def work(conn, config: Config, log: RunLog, trigger: str, live: str | None, new_names: list[str]) -> int:
    """A run that does work: recorded from start to end in the history, whatever happens."""
    run = {"steps": {}, "decision": trigger, "release_after": None, "new_files": new_names}
    run["id"] = history.start_run(conn, str(config.config_path), actor(), trigger, live)
    with conn:
        history.update(conn, "runs", "id", run["id"], {"new_files": new_names})
    started = time.perf_counter()
    log.attach_step_logging()
    try:
        if trigger == "bootstrap":
            code = bootstrap(conn, config, log, run)
        elif trigger == "new data":
            code = judge_new_data(conn, config, log, run)
        else:
            code = report(config, log, run)
    except history.FAILURES:  # the history cannot record the run: run_once says so, and writes nothing more
        raise
    except StepFailed as error:
        outcome = "the current deployment is untouched"
        if "deployment" in run["steps"]:
            outcome = "the new release is deployed; its reports are retried next run"
        log(f"{error}; {outcome}", "ERROR")
        run["decision"], code = f"failed: {error}", EXIT_FAILED
    except Exception as error:  # a bug: one line, the traceback in the log, a record, exit 1
        log.write_traceback()
        log(f"unexpected {type(error).__name__}: {error}; the run stopped", "ERROR")
        run["decision"], code = f"failed: unexpected {type(error).__name__}: {error}", EXIT_FAILED
    seconds = time.perf_counter() - started
    run["decision"] = log_text(run["decision"], config.config_path.parent)  # shown to people and alerts
    history.finish_run(
        conn,
        run["id"],
        {
            "decision": run["decision"],
            "steps": run["steps"],
            "release_after": run["release_after"],
            "exit_code": code,
            "seconds": round(seconds, 3),
        },
    )
    log(f"run finished in {seconds:.2f}s with exit code {code} ({run['decision']})")
    if config.alert_webhook_url:
        raise_alerts(conn, config, run, code)
    return code


def raise_alerts(conn, config: Config, run: dict, code: int) -> None:
    """Tell people what this run did that matters: drift, a deployment, no better model, a failure
    (recorded in the history, sent by deliver_alerts; only with a webhook configured)."""
    from risk import alerts

    link, details = config.api_base_url.rstrip("/") + "/", {"run_id": run["id"], "decision": run["decision"]}
    raised = []
    if run.get("drift"):
        raised.append(("drift", "warning", f"drift: {run['drift'][0]}", {**details, "verdicts": run["drift"]}))
    if code == EXIT_FAILED:
        raised.append(("failed run", "critical", f"run {run['id']} {run['decision']}", details))
    elif code == EXIT_NO_BETTER_MODEL and run.get("newly_degraded"):  # once, when the model turns degraded
        raised.append(("no better model", "warning", f"run {run['id']}: {run['decision']}", details))
    elif "deployment" in run["steps"]:
        summary = f"release {run['release_after']} is live ({run['decision']})"
        raised.append(("deployment", "info", summary, {**details, "release": run["release_after"]}))
    for event, severity, summary, extra in raised:
        alerts.raise_alert(conn, event, severity, summary, extra, link, run_id=run["id"])


def deliver_alerts(conn, config: Config, log: RunLog) -> None:
    """Send the alerts not yet delivered (this run's, and earlier ones a webhook missed)."""
    if not config.alert_webhook_url:
        return
    if conn.execute("SELECT 1 FROM alerts WHERE delivered_at IS NULL AND given_up_at IS NULL").fetchone() is None:
        return
    from risk import alerts

    result = alerts.deliver_pending(conn, config.alert_webhook_url)  # within seconds, whatever the webhook does
    if result["delivered"]:
        log(f"alerts: {result['delivered']} delivered")
    for line in alerts.describe(result):
        log(line, "WARNING")


def run_once(config: Config, log: RunLog) -> int:
    """Decide what this run does, do it, and keep its record; the caller holds the lock."""
    try:
        conn = history.connect(config.history_path)
    except history.HistoryError as error:
        return history_failed(error, config, log)
    try:
        for run_id in history.interrupt_stale_runs(conn):
            log(f"run {run_id} was stopped before it finished; marked interrupted", "WARNING")
        live = artifacts.live_release_name(config.prod_deployment_path)
        if needs_reconciling(conn, config, live):
            from risk import registry

            for line in registry.reconcile(conn, config, actor()):
                log(line, "WARNING")
        trigger, live, new_names = decide_trigger(conn, config, log)
        if trigger is None:
            count = len(artifacts.list_csv_names(config.input_folder_path))
            history.beat(conn, str(config.config_path), "no new data")
            log(f"no new data: the {count} file(s) in {config.input_folder_path} are judged")
            code = EXIT_OK
        else:
            code = work(conn, config, log, trigger, live, new_names)
        deliver_alerts(conn, config, log)
        return code
    except history.FAILURES as error:
        return history_failed(error, config, log)
    except PipelineError as error:
        log(str(error), "ERROR")
        beat_failure(conn, config, log, f"failed: {log_text(str(error), config.config_path.parent)}")
        return EXIT_FAILED
    except Exception as error:  # a bug before any step: one line, the traceback in the log, exit 1
        log.write_traceback()
        log(f"unexpected {type(error).__name__} before any step: {error}", "ERROR")
        beat_failure(conn, config, log, f"failed: unexpected {type(error).__name__}")
        return EXIT_FAILED
    finally:
        conn.close()


def beat_failure(conn, config: Config, log: RunLog, outcome: str) -> None:
    """The heartbeat of a run that failed before any step; a history that fails too is one more line."""
    try:
        history.beat(conn, str(config.config_path), outcome)
    except history.FAILURES as error:
        log(str(history.history_error(error, config.history_path)), "ERROR")


def needs_reconciling(conn, config: Config, live: str | None) -> bool:
    """Do the history and the release folders disagree (an intent left pending, another release live, a
    leftover of a stopped deployment, a recorded release whose folder is gone)? Cheap: the idle run asks."""
    if history.disagrees_with(conn, live) or artifacts.leftovers(config.prod_deployment_path):
        return True
    return not set(history.unpruned_releases(conn)) <= artifacts.release_names(config.prod_deployment_path)


def history_failed(error: Exception, config: Config, log: RunLog) -> int:
    """The history database cannot be used: one line, nothing more written to it; exit 75 when another
    process holds it (it will be free again: the next run retries, as when a run holds the lock), else 1."""
    problem = history.history_error(error, config.history_path)
    log(str(problem), "ERROR")
    return EXIT_BUSY if isinstance(problem, history.HistoryBusy) else EXIT_FAILED


def main(config_path=None) -> int:
    """One run of the full process; returns its exit code."""
    try:
        config = load_config(config_path)
        os.makedirs(os.path.dirname(config.log_path), exist_ok=True)
    except (PipelineError, OSError) as error:
        folder = os.path.dirname(os.path.abspath(config_path) if config_path else config_path_from_env())
        sys.stderr.write(f"fullprocess: {log_text(str(error), folder)}\n")
        return EXIT_FAILED
    log = RunLog(config.log_path, config.config_path.parent)
    lock_fd = artifacts.acquire_lock(artifacts.lock_path(config))
    if lock_fd is None:
        log("another run is in progress (lock held); exiting without changes", "WARNING")
        return EXIT_BUSY
    try:
        return run_once(config, log)
    finally:
        os.close(lock_fd)


if __name__ == "__main__":
    sys.exit(main())
