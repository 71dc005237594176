"""Step 2c: deploy the trained model, its score and the record of the data it learned from; list and
roll back releases.

Config keys: output_model_path (trainedmodel.pkl, latestscore.txt, modelcard.json),
output_folder_path (ingestedfiles.txt), prod_deployment_path (where production is served from),
history_path (the deployment audit), log_path (the full process's lock lies beside it).
`python deployment.py` deploys (reason: manual); `--list` prints the releases; `--rollback` moves
production back to the release live before; `--to RELEASE` to any kept release. Each deployment is
a release folder in `<prod_deployment_path>.releases/`, made live by one atomic symlink switch.
"""

import argparse
import logging
import time
from pathlib import Path

from risk import alerts, artifacts, history, overview, registry
from risk.config import Config, PipelineError, actor
from risk.logs import log_text, script_config

logger = logging.getLogger("deployment")  # its name when run as a script, too


def deploy(config: Config, reason: str = "manual", run_id: int | None = None) -> Path:
    """Deploy the current outputs (trainedmodel.pkl, latestscore.txt, modelcard.json, ingestedfiles.txt) as a
    new live release at prod_deployment_path, recorded in the history with `reason` under the full process's
    run `run_id` (by hand: a run of its own, alerted); return the release. A run of the full process calls
    this inside its own lock; by hand, main() takes the lock first."""
    started = time.perf_counter()
    logger.info("deployment started: %s", ", ".join(map(str, artifacts.deployable_files(config))))
    with history.opened(config.history_path) as conn:
        for line in registry.reconcile(conn, config, actor()):
            logger.warning("%s", line)
        own_run = run_id is None
        if own_run:
            run_id = history.start_run(
                conn,
                str(config.config_path),
                actor(),
                "manual deployment",
                artifacts.live_release_name(config.prod_deployment_path),
            )
        try:
            release = registry.deploy(conn, config, reason, actor(), run_id)
        except PipelineError as error:
            if own_run:  # the run is closed with its refusal, not left "running" for the next run to call killed
                decision = log_text(f"failed: {error}", config.config_path.parent)
                history.finish_run(conn, run_id, {"decision": decision, "exit_code": 1})
            raise
        if own_run:
            history.finish_run(
                conn, run_id, {"decision": "deployed by hand", "release_after": release.name, "exit_code": 0}
            )
            tell(conn, config, "deployment", "info", f"{actor()} deployed release {release.name} by hand.")
    logger.info(
        "deployment finished in %.2fs: %s now serves release %s",
        time.perf_counter() - started,
        config.prod_deployment_path,
        release.name,
    )
    return release


def format_releases(rows: list[dict]) -> str:
    """The registry as a table for a terminal, live release marked with '*': each release with its model's
    health and its first deployment, then a line for each later move that made it live again."""
    header = ["", "RELEASE", "MODEL", "HEALTH", "VALIDATION F1 [CI]", "TEST F1", "DEPLOYED (UTC)", "WHY", "BY"]
    lines = [header]
    for row in rows:
        validation = "-"
        if row["validation_f1"] is not None:
            validation = f"{row['validation_f1']:.3f} [{row['validation_low']:.3f}, {row['validation_high']:.3f}]"
        lines.append(
            [
                "*" if row["live"] else "",
                row["release"],
                row["model_id"] or "(not in history)",
                health_cell(row["health"]),
                validation,
                "-" if row["test_f1"] is None else f"{row['test_f1']:.4f}",
                utc_text(row["deployed_at"]) if row["deployed_at"] else "never live" if row["known"] else "unknown",
                row["reason"] or "-",
                row["actor"] or "-",
            ]
        )
        for move in row["moves"]:
            lines.append(["", "  live again", "", "", "", "", utc_text(move["at"]), move["reason"], move["actor"]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def utc_text(at: str) -> str:
    """A time of the history (2026-11-27T18:53:18.123Z) as a person reads it: 2026-11-27 18:53:18."""
    return at[:19].replace("T", " ")


def health_cell(health: dict | None) -> str:
    """A model's health verdict in a few characters: `degraded (F1 0.39)`, `unproven`, `-` when unknown."""
    if health is None:
        return "-"
    if health["f1"] is None:
        return health["verdict"]
    return f"{health['verdict']} (F1 {health['f1']:.2f})"


def list_releases(config: Config) -> list[dict]:
    """The kept releases with what the history says of them; what the folders say when it cannot be read."""
    try:
        conn = history.connect_readonly(config.history_path)
        try:
            return registry.list_releases(conn, config)
        finally:
            if conn:
                conn.close()
    except (history.HistoryError, history.sqlite3.Error) as error:
        logger.warning("%s; listing the release folders alone", history.history_error(error, config.history_path))
        return registry.list_releases(None, config)


def rollback(config: Config, target: str | None = None) -> tuple[str, str]:
    """Move production to `target` (default: the release live before); the caller holds the lock.

    A release whose model or files are not what the history recorded is refused, and alerted. When the
    history cannot be written, production still moves (rollback_on_disk) and a warning says it was not recorded.
    """
    live = artifacts.live_release_name(config.prod_deployment_path)
    try:
        with history.opened(config.history_path) as conn:
            try:
                before, after = registry.rollback(conn, config, actor(), target)
            except registry.ReleaseRefused as error:
                text = f"{actor()} tried to move production: {alerts.short_reason(str(error))}. It stays as it was."
                tell(conn, config, "release refused", "critical", text)
                raise registry.ReleaseRefused(f"{error}; production left as it was") from None
            tell(conn, config, "rollback", "warning", f"{actor()} moved production to release {after} (was {before}).")
            health = overview.live_state(conn, config).get("health")
    except history.HistoryError as error:
        before, after = rollback_without_history(config, target, live, error)
        health = None
    logger.info("rolled back: production now serves release %s (was %s)", after, before)
    if health:  # the person who moved production is told what the risk list now comes from, as the pages say
        log = logger.warning if health["verdict"] == "degraded" else logger.info
        log("%s: %s", health["verdict"].upper(), health["words"])
    return before, after


def rollback_without_history(config: Config, target: str | None, live: str | None, error) -> tuple[str, str]:
    """The history failed: production still moves (unless it already did before the failure), unrecorded."""
    now = artifacts.live_release_name(config.prod_deployment_path)
    if now != live:  # the switch was made; the history failed to record the rest
        logger.warning("%s; production moved to %s, but the history could not record all of it", error, now)
        return live, now
    logger.warning("%s; moving production without recording it", error)
    reader = None
    try:
        reader = history.connect_readonly(config.history_path)
    except (history.HistoryError, history.sqlite3.Error):
        pass
    try:
        before, after, verified = registry.rollback_on_disk(config, target, reader)
    finally:
        if reader is not None:
            reader.close()
    if verified:
        logger.warning(
            "production moved to %s, its model verified against the history but the move not recorded there:"
            " the next full-process run records it (as adopted) once the history can be written",
            after,
        )
    else:
        logger.warning(
            "production moved to %s without a record in the history, and its model could not be verified (the"
            " history cannot be read): the API and the full process load it only once the history can be read",
            after,
        )
    return before, after


def tell(conn, config: Config, event: str, severity: str, text: str) -> None:
    """An alert about a move made by hand, with what is live now and its health verdict in words (after a
    rollback to a model measured poor, that it is to be treated with care: one alert per move), sent at once
    when a webhook is configured (bounded: seconds). An alert that cannot be recorded is a warning: it never
    changes what was done."""
    if not config.alert_webhook_url:
        return
    try:
        live = overview.live_state(conn, config)
        details = {"actor": actor(), "release": live["release"], "health": live.get("health")}
        alerts.announce(conn, config, event, severity, f"{text} {alerts.live_words(live)}", details)
        result = alerts.deliver_pending(conn, config.alert_webhook_url)
    except (history.HistoryError, history.sqlite3.Error) as error:
        logger.warning("the alert could not be recorded: %s", history.history_error(error, config.history_path))
        return
    for line in alerts.describe(result):
        logger.warning("%s", line)


def main(argv=None):
    """`python deployment.py [--list | --rollback | --to RELEASE]` with the config RISK_CONFIG names (or
    config.json): deploy (reason manual), print the releases, or move production; a failure is one line and
    exit code 1, a full-process run holding the lock exit code 75."""
    parser = argparse.ArgumentParser(description="Deploy the trained model, list releases, or roll back.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="print the kept releases, the live one marked *")
    group.add_argument("--rollback", action="store_true", help="go back to the release live before this one")
    group.add_argument("--to", metavar="RELEASE", help="make a kept release live")
    args = parser.parse_args(argv)
    if args.to is not None and not args.to.strip():  # `--to "$RELEASE"` with the variable unset
        parser.error("--to needs the name of a kept release (see --list)")
    with script_config() as config:
        if args.list:
            print(format_releases(list_releases(config)))
        elif args.rollback or args.to:
            with artifacts.run_lock(config, "deployment.py"):
                return rollback(config, args.to)
        else:
            with artifacts.run_lock(config, "deployment.py"):
                return deploy(config)


if __name__ == "__main__":
    main()
