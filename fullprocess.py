"""Step 5: the full process that cron runs every 10 minutes; exits with one of the codes below.

New files in input_folder_path (unknown to the history database, or changed)? Ingest, then check
the live model on the new rows, pooled with its earlier checks (risk.monitoring): a confirmed drop
below what it was validated at makes it degraded and starts a challenger search on the evidence
since the change; a degraded model is searched for again at every run with new rows; a data-drift
flag starts a search with a healthy champion's burden. The gate deploys a challenger only with the
burden of proof the champion's state calls for. Nothing deployed: bootstrap. Config keys: those of
every step, history_path, drift_margin, drift_confidence, min_new_rows, min_new_positives,
false_alarm_rate, degraded_confidence (docs/decisions.md). Appends its lines to log_path.
Read top to bottom: main() loads the config once, run() takes the lock, run_once() decides what the run
does (most runs: nothing new, one heartbeat, no pandas or scikit-learn loaded), work() calls the steps.
"""

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field

from risk import alerts, artifacts, history, registry, watchdog
from risk.config import CRON_ACTOR, Config, PipelineError, actor, config_path_from_env, load_config
from risk.logs import log_text, setup_logging
from risk.runs import StepFailed, run_step, timed

logger = logging.getLogger("fullprocess")  # its name when run as a script, too

EXIT_OK = 0  # nothing new; no drift; too few new rows (they wait); or deployed and reported
EXIT_FAILED = 1  # bad config, every new file rejected, or a failing step; production as it was
EXIT_API_UNREACHABLE = 2  # deployed and reports written, but apicalls.py could not reach the API
EXIT_NO_BETTER_MODEL = 3  # the live model is degraded and no challenger beat it: it stays
EXIT_BUSY = artifacts.EXIT_BUSY  # another run holds the lock, or another process the history database
FAILURE_CHARS = 150  # of a failure's reason in the run's alert (the run's record has all of it)


@dataclass
class Run:
    """A run that does work, filled in as it goes: its row of the history's runs table, and what its alerts say."""

    id: int
    trigger: str  # bootstrap, new data, or report (the live release has no reports yet)
    new_files: list[str]
    decision: str
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds, in the order they ran
    release_after: str | None = None
    drift: list[dict] = field(default_factory=list)  # the drift verdicts its alert quotes (only when drift is new)
    newly_degraded: bool = False


def main(argv=None) -> int:
    """`python fullprocess.py`: one run with the config RISK_CONFIG names (or config.json), its lines
    appended to log_path; returns the exit code."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    config_path = config_path_from_env()
    try:
        config = load_config(config_path)
        setup_logging(config.config_path.parent, config.log_path)
    except (PipelineError, OSError) as error:  # no log to write to: one line on stderr
        sys.stderr.write(f"fullprocess: {log_text(str(error), config_path.parent)}\n")
        return EXIT_FAILED
    return run(config)


def run(config: Config) -> int:
    """One run of the full process, holding its lock (beside log_path); EXIT_BUSY at once when another run holds it."""
    lock_fd = artifacts.acquire_lock(artifacts.lock_path(config))
    if lock_fd is None:
        logger.warning("another run is in progress (lock held); exiting without changes")
        return EXIT_BUSY
    try:
        return run_once(config)
    finally:
        os.close(lock_fd)


def run_once(config: Config) -> int:
    """Decide what this run does, do it, and keep its record; the caller holds the lock."""
    try:
        conn = history.connect(config.history_path)
    except history.HistoryError as error:
        return history_failed(error, config)
    try:
        for run_id in history.interrupt_stale_runs(conn):
            logger.warning("run %s was stopped before it finished; marked interrupted", run_id)
        if config.alert_webhook_url and actor() == CRON_ACTOR:  # before its heartbeat: was cron silent?
            watchdog.note_cron_start(conn, config)
        if needs_reconciling(conn, config, artifacts.live_release_name(config.prod_deployment_path)):
            for line in registry.reconcile(conn, config, actor()):
                logger.warning("%s", line)
        trigger, live, new_names = decide_trigger(conn, config)
        if trigger is None:
            count = len(artifacts.list_csv_names(config.input_folder_path))
            history.beat(conn, str(config.config_path), "no new data", actor())
            logger.info("no new data: the %d file(s) in %s are judged", count, config.input_folder_path)
            code = EXIT_OK
        else:
            code = record_run(conn, config, trigger, live, new_names)
        deliver_alerts(conn, config)
        return code
    except history.FAILURES as error:
        return history_failed(error, config)
    except PipelineError as error:
        logger.error("%s", error)
        beat_failure(conn, config, f"failed: {log_text(str(error), config.config_path.parent)}")
        return EXIT_FAILED
    except Exception as error:  # a bug before any step: one line, the traceback in the log, exit 1
        logger.error("unexpected %s before any step: %s", type(error).__name__, error, exc_info=True)
        beat_failure(conn, config, f"failed: unexpected {type(error).__name__}")
        return EXIT_FAILED
    finally:
        conn.close()


def decide_trigger(conn, config: Config) -> tuple[str | None, str | None, list[str]]:
    """(trigger, live release, new files); trigger None means there is nothing to do."""
    live = artifacts.live_release_name(config.prod_deployment_path)
    if live is None:
        logger.info("nothing is deployed at %s: bootstrapping", config.prod_deployment_path)
        return "bootstrap", None, artifacts.list_csv_names(config.input_folder_path)
    names, warnings = artifacts.scan_input(config.input_folder_path)
    for warning in warnings:
        logger.warning("%s", warning)
    new_names = history.unjudged_files(conn, config.input_folder_path, config.history_path, names)
    if new_names:
        logger.info("new data: %s (not yet judged)", ", ".join(new_names))
        return "new data", live, new_names
    if history.reported_release(conn, str(config.config_path)) != live:
        logger.info("release %s has no reports yet: reporting", live)
        return "report", live, []
    return None, live, []


def record_run(conn, config: Config, trigger: str, live: str | None, new_names: list[str]) -> int:
    """A run that does work (work()): recorded in the history from start to end whatever happens, and
    alerted; returns its exit code."""
    run = Run(history.start_run(conn, str(config.config_path), actor(), trigger, live), trigger, new_names, trigger)
    with conn:
        history.update(conn, "runs", "id", run.id, {"new_files": new_names})
    started = time.perf_counter()
    try:
        code = work(conn, config, run)
    except history.FAILURES:  # the history cannot record the run: run_once says so, and writes nothing more
        raise
    except StepFailed as error:
        outcome = "the current deployment is untouched"
        if "deployment" in run.steps:
            outcome = "the new release is deployed; its reports are retried next run"
        logger.error("%s; %s", error, outcome, exc_info=error.__cause__)  # a bug's traceback goes to the log
        run.decision, code = f"failed: {error}", EXIT_FAILED
    except Exception as error:  # a bug: one line, the traceback in the log, a record, exit 1
        logger.error("unexpected %s: %s; the run stopped", type(error).__name__, error, exc_info=True)
        run.decision, code = f"failed: unexpected {type(error).__name__}: {error}", EXIT_FAILED
    seconds = time.perf_counter() - started
    run.decision = log_text(run.decision, config.config_path.parent)  # shown to people and alerts
    outcome = {"decision": run.decision, "steps": run.steps, "release_after": run.release_after, "exit_code": code}
    history.finish_run(conn, run.id, {**outcome, "seconds": round(seconds, 3)})
    logger.info("run finished in %.2fs with exit code %d (%s)", seconds, code, run.decision)
    if config.alert_webhook_url:
        raise_alerts(conn, config, run, code)
    return code


def work(conn, config: Config, run: Run) -> int:
    """The steps of a run that has something to do, in order; returns the exit code. A step that fails
    raises StepFailed; the history's own failures pass through."""
    # The steps are imported here, and only here: with pandas, pyarrow, scikit-learn and SciPy they take over a
    # second and 200 MiB to load, which the idle run (most cron runs find nothing new) must not pay for.
    import apicalls
    import deployment
    import ingestion
    import reporting
    import scoring
    from risk import decisions

    code = EXIT_OK
    if run.trigger != "report":
        ingested = run_step("ingestion", run.steps, ingestion.ingest, config)
        check = None
        if run.trigger == "new data":
            if every_new_file_rejected(ingested, run):
                return EXIT_FAILED
            check = timed("drift check", run.steps, decisions.check, conn, config, run.id)
            if not note_check(check, run):  # no challenger search: the live model stays
                return EXIT_OK
        search = (check.champion, check.burden, check.since_run_id) if check else (None, None, None)
        choice = timed("training", run.steps, decisions.challenge, conn, config, run.id, *search)
        reason = note_choice(choice, check, run)
        if reason:
            run_step("scoring", run.steps, scoring.score, config)
            run.release_after = run_step("deployment", run.steps, deployment.deploy, config, reason, run.id).name
        else:
            decisions.keep_champion(conn, config, run.id)
            code = note_kept(check, run)
            if code == EXIT_OK:
                return code
    run_step("reporting", run.steps, reporting.report, config)
    run.release_after = run.release_after or artifacts.live_release_name(config.prod_deployment_path)
    if code == EXIT_NO_BETTER_MODEL:  # the kept model's reports; the API has nothing new to answer
        return code
    try:
        run_step("apicalls", run.steps, apicalls.call_api, config)
    except StepFailed as error:
        logger.error(
            "apicalls could not use the API: %s; the reports are written", error.reason, exc_info=error.__cause__
        )
        return EXIT_API_UNREACHABLE
    return EXIT_OK


def every_new_file_rejected(ingested, run: Run) -> bool:
    """Log each new file ingestion rejected; True, with the run's decision saying why, when it rejected them all."""
    rejected = [file for file in ingested.metrics["files_rejected"] if file["name"] in run.new_files]
    for file in rejected:
        logger.error("rejected %s; a corrected or completed file is read again", file["reason"])
    if rejected and len(rejected) == len(run.new_files):
        run.decision = "rejected: " + "; ".join(file["reason"] for file in rejected)
        return True
    return False


def note_check(check, run: Run) -> bool:
    """Log the check of the live model and keep its decision in the run; whether a challenger search follows."""
    for line in check.lines:
        logger.info("%s", line)
    run.decision = check.decision
    if check.newly_degraded or check.newly_flagged:
        run.drift = [v.row() for v in check.verdicts if v.outcome == "drift" and v.kind != "course"]
    return check.challenge


def note_choice(choice, check, run: Run) -> str | None:
    """Log the challenger search; the reason to deploy its model ("bootstrap", "drift"), or None when the live
    model stays. A bootstrap (no `check`) that found no model to deploy fails the run."""
    for line in choice.lines:
        logger.info("%s", line)
    if check is None and not choice.deploy:
        raise StepFailed("training", choice.lines[-1])
    if not choice.deploy:
        return None
    run.decision = "bootstrap" if check is None else "drift: re-trained and re-deployed"
    return "bootstrap" if check is None else "drift"


def note_kept(check, run: Run) -> int:
    """The live model stays: EXIT_OK, or EXIT_NO_BETTER_MODEL when it is degraded (the search goes on)."""
    if check.state != "degraded":
        run.decision = f"{check.decision.split(':')[0]}, no better model: the live model stays ({check.state})"
        logger.info("%s; its reference is unchanged", run.decision)
        return EXIT_OK
    run.decision = "drift, no better model: the live model stays (degraded)"
    run.newly_degraded = check.newly_degraded
    logger.info("%s; its reference is unchanged, the search continues with the next new data", run.decision)
    return EXIT_NO_BETTER_MODEL


ALERT_SEVERITY = {"failed run": "critical", "no better model": "warning", "drift": "warning", "deployment": "info"}


def raise_alerts(conn, config: Config, run: Run, code: int) -> None:
    """Tell people what this run did that matters, in one message: what it found, what it did, what is live
    now and the live model's health in words (recorded in the history, sent by deliver_alerts; only with a
    webhook configured). Its event is the weightiest: a failure, "no better model" (once, when the model
    turns degraded), drift, a deployment; a run that found and changed nothing says nothing."""
    event = alert_event(run, code)
    if event is None:
        return
    if event == "failed run" and (earlier := same_failure_before(conn, run)):
        logger.info("the same failure as run %d before it: told when it began, not alerted again", earlier)
        return
    # overview imports the risk list's modules (pandas): loaded already, since this run did work (work())
    from risk import overview

    live = overview.live_state(conn, config)
    text = f"{run_words(run, code)} {alerts.live_words(live)}"
    details = {
        "run_id": run.id,
        "decision": run.decision,
        "exit_code": code,
        "verdicts": [verdict["detail"] for verdict in run.drift],
        "release": live["release"],
        "health": live.get("health"),
    }
    alerts.announce(conn, config, event, ALERT_SEVERITY[event], text, details, run_id=run.id)


def same_failure_before(conn, run: Run) -> int | None:
    """The id of the run before this one when it failed the same way (a failure that persists is told once,
    at its first run, not every 10 minutes); None otherwise."""
    before = history.select_one(
        conn, "SELECT id, decision, exit_code FROM runs WHERE id < ? AND state = 'finished' ORDER BY id DESC", (run.id,)
    )
    if before and before["exit_code"] == EXIT_FAILED and before["decision"] == run.decision:
        return before["id"]
    return None


def alert_event(run: Run, code: int) -> str | None:
    """The event a run's one alert is about, None when there is nothing to tell."""
    if code == EXIT_FAILED:
        return "failed run"
    if code == EXIT_NO_BETTER_MODEL and run.newly_degraded:
        return "no better model"
    if run.drift:
        return "drift"
    return "deployment" if "deployment" in run.steps else None


def run_words(run: Run, code: int) -> str:
    """What a run found and did, in a sentence."""
    found = alerts.found_words(run.drift)
    if code == EXIT_FAILED:
        done = "deployed a new model, then failed" if "deployment" in run.steps else "failed"
        return f"Run {run.id} {done}: {failure_words(run)}."
    if "deployment" in run.steps:
        if found:
            return f"Run {run.id} found drift ({found}) and deployed a better model."
        return f"Run {run.id} deployed {'a first' if run.trigger == 'bootstrap' else 'a better'} model."
    if found:
        return f"Run {run.id} found drift ({found}); no better model was found, so the live model stays."
    return f"Run {run.id}: {run.decision}."


def failure_words(run: Run) -> str:
    """Why a run failed, short: the files it rejected by name (their reasons are on the dashboard), or the
    failure's first words."""
    if run.decision.startswith("rejected: "):
        names = run.new_files[:3] + ([f"{len(run.new_files) - 3} more"] if len(run.new_files) > 3 else [])
        return f"every new file was rejected ({', '.join(names)})"
    return alerts.clip(run.decision.removeprefix("failed: "), FAILURE_CHARS)


def deliver_alerts(conn, config: Config) -> None:
    """Send the alerts not yet delivered (this run's, and earlier ones a webhook missed)."""
    if not config.alert_webhook_url:
        return
    if conn.execute("SELECT 1 FROM alerts WHERE delivered_at IS NULL AND given_up_at IS NULL").fetchone() is None:
        return
    result = alerts.deliver_pending(conn, config.alert_webhook_url)  # within seconds, whatever the webhook does
    if result["delivered"]:
        logger.info("alerts: %d delivered", result["delivered"])
    for line in alerts.describe(result):
        logger.warning("%s", line)


def beat_failure(conn, config: Config, outcome: str) -> None:
    """The heartbeat of a run that failed before any step; a history that fails too is one more line."""
    try:
        history.beat(conn, str(config.config_path), outcome, actor())
    except history.FAILURES as error:
        logger.error("%s", history.history_error(error, config.history_path))


def needs_reconciling(conn, config: Config, live: str | None) -> bool:
    """Do the history and the release folders disagree (an intent left pending, another release live, a
    leftover of a stopped deployment, a recorded release whose folder is gone)? Cheap: the idle run asks."""
    if history.disagrees_with(conn, live) or artifacts.leftovers(config.prod_deployment_path):
        return True
    return not set(history.unpruned_releases(conn)) <= artifacts.release_names(config.prod_deployment_path)


def history_failed(error: Exception, config: Config) -> int:
    """The history database cannot be used: one line, nothing more written to it; exit 75 when another
    process holds it (it will be free again: the next run retries, as when a run holds the lock), else 1."""
    problem = history.history_error(error, config.history_path)
    logger.error("%s", problem)
    return EXIT_BUSY if isinstance(problem, history.HistoryBusy) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
