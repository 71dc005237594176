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
import os
import time
from pathlib import Path

from risk import alerts, artifacts, history, registry
from risk.config import actor, load_config, run_cli

logger = logging.getLogger(__name__)

EXIT_BUSY = 75


def main(config_path=None, reason: str = "manual", run_id=None) -> Path:
    """Deploy the current outputs as a new live release; return it. A run of the full process calls
    this inside its own lock; by hand, cli() takes the lock first."""
    config = load_config(config_path)
    started = time.perf_counter()
    logger.info("deployment started: %s", ", ".join(map(str, artifacts.deployable_files(config))))
    with history.opened(config.history_path) as conn:
        registry.reconcile(conn, config, actor())
        own_run = run_id is None
        if own_run:
            run_id = history.start_run(
                conn,
                str(config.config_path),
                actor(),
                "manual deployment",
                artifacts.live_release_name(config.prod_deployment_path),
            )
        release = registry.deploy(conn, config, reason, actor(), run_id)
        if own_run:
            history.finish_run(
                conn, run_id, {"decision": "deployed by hand", "release_after": release.name, "exit_code": 0}
            )
            tell(conn, config, "deployment", "info", f"release {release.name} deployed by hand by {actor()}")
    logger.info(
        "deployment finished in %.2fs: %s now serves release %s",
        time.perf_counter() - started,
        config.prod_deployment_path,
        release.name,
    )
    return release


def format_releases(rows: list[dict]) -> str:
    """The registry as a table for a terminal, live release marked with '*'."""
    header = ["", "RELEASE", "MODEL", "VALIDATION F1 [CI]", "TEST F1", "DEPLOYED (UTC)", "WHY", "BY"]
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
                validation,
                "-" if row["test_f1"] is None else f"{row['test_f1']:.4f}",
                (row["deployed_at"] or "never live")[:19].replace("T", " "),
                row["reason"] or "-",
                row["actor"] or "-",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def list_releases(config_path=None) -> list[dict]:
    config = load_config(config_path)
    conn = history.connect_readonly(config.history_path)
    try:
        return registry.list_releases(conn, config)
    finally:
        if conn:
            conn.close()


def rollback(config_path=None, target: str | None = None) -> tuple[str, str]:
    """Move production to `target` (default: the release live before); the caller holds the lock."""
    config = load_config(config_path)
    with history.opened(config.history_path) as conn:
        before, after = registry.rollback(conn, config, actor(), target)
        tell(
            conn,
            config,
            "rollback",
            "warning",
            f"production rolled back to release {after} (was {before}) by {actor()}",
        )
    logger.info("rolled back: production now serves release %s (was %s)", after, before)
    return before, after


def tell(conn, config, event: str, severity: str, summary: str) -> None:
    """An alert about a move made by hand, sent at once when a webhook is configured (bounded: seconds)."""
    if not config.alert_webhook_url:
        return
    alerts.raise_alert(conn, event, severity, summary, {"actor": actor()}, config.api_base_url.rstrip("/") + "/")
    result = alerts.deliver_pending(conn, config.alert_webhook_url)
    if result["pending"]:
        logger.warning("the alert webhook did not answer; %d alert(s) wait for the next run", result["pending"])


def with_lock(config_path, action):
    """Run `action` holding the full process's lock; refuse at once while a run holds it."""
    config = load_config(config_path)
    lock = artifacts.lock_path(config)
    fd = artifacts.acquire_lock(lock)
    if fd is None:
        logging.getLogger("deployment").error(
            "a full-process run holds the lock (%s); production left unchanged: try again when it finishes",
            lock,
        )
        raise SystemExit(EXIT_BUSY)
    try:
        return action()
    finally:
        os.close(fd)


def cli() -> None:
    parser = argparse.ArgumentParser(description="Deploy the trained model, list releases, or roll back.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="print the kept releases, the live one marked *")
    group.add_argument("--rollback", action="store_true", help="go back to the release live before this one")
    group.add_argument("--to", metavar="RELEASE", help="make a kept release live")
    args = parser.parse_args()
    if args.list:
        run_cli(lambda: print(format_releases(list_releases())))
    elif args.rollback or args.to:
        run_cli(lambda: with_lock(None, lambda: rollback(target=args.to)))
    else:
        run_cli(lambda: with_lock(None, main))


if __name__ == "__main__":
    cli()
