"""The state of the system for people, read from the history: what is live and why, the model's
quality over time, the latest checks, the recent runs and the deployment audit.

The API's /history, /releases and /drift, the dashboard and page 1 of the report all read it here;
every function takes a connection (a reader's is enough) and returns plain dicts and lists.
"""

from risk import artifacts, history
from risk.config import Config


def live_state(conn, config: Config) -> dict:
    """The live release and model, since when, why and by whom (from the newest deployment), and its
    state after its latest check (unproven before any); with no history (`conn` None) the release's
    name alone, every other value None."""
    release = artifacts.live_release_name(config.prod_deployment_path)
    if release is None:
        return {"release": None}
    deployed = conn and history.select_one(
        conn,
        "SELECT at, reason, actor, model_id FROM deployments WHERE to_release = ? AND state = 'done'"
        " ORDER BY id DESC LIMIT 1",
        (release,),
    )
    record = conn and history.get_release(conn, release)
    model_id = (deployed or record or {}).get("model_id")
    model = history.get_model(conn, model_id) if model_id else None
    reference = history.latest_reference(conn, model_id) if model_id else None
    check = history.latest_check(conn, model_id) if model_id else None
    return {
        "release": release,
        "model_id": model_id,
        "since": deployed["at"] if deployed else None,
        "reason": deployed["reason"] if deployed else None,
        "actor": deployed["actor"] if deployed else None,
        "window": model["window"] if model else None,
        "trained_rows": model["rows"] if model else None,
        "validation_f1": model["validation_f1"] if model else None,
        "validation_low": model["validation_low"] if model else None,
        "validation_high": model["validation_high"] if model else None,
        "test_f1": record["test_f1"] if record else None,
        "reference": {key: reference[key] for key in ("kind", "f1", "low", "high", "rows")} if reference else None,
        "state": (check["state"] if check else "unproven") if conn else None,
        "state_since": check["state_since"] if check else None,
        "evidence": check["evidence"] if check else "not checked on new data yet",
    }


def last_run(conn, config: Config) -> dict | None:
    """The newest finished run of this configuration, with its verdicts' outcomes."""
    run = history.select_one(
        conn,
        "SELECT * FROM runs WHERE config_path = ? AND state = 'finished' ORDER BY id DESC LIMIT 1",
        (str(config.config_path),),
    )
    return with_verdicts(conn, run) if run else None


def with_verdicts(conn, run: dict) -> dict:
    verdicts = history.run_verdicts(conn, run["id"])
    keep = ["kind", "feature", "statistic", "value", "reference", "low", "high", "p_value", "n", "positives"]
    run["verdicts"] = [{key: verdict[key] for key in [*keep, "outcome", "detail"]} for verdict in verdicts]
    return run


def runs(conn, limit: int) -> list[dict]:
    """The newest runs that did work (all configurations), newest first, with their verdicts."""
    return [with_verdicts(conn, run) for run in history.recent_runs(conn, limit)]


def quality_over_time(conn) -> dict:
    """The live models' F1 on each run's new rows (with its interval and what was expected), and the
    deployments and rollbacks, in time order: what the trend chart draws."""
    checks = history.select(
        conn,
        "SELECT v.at, v.value, v.low, v.high, v.reference, v.n, v.outcome, r.release_before"
        " FROM verdicts v JOIN runs r ON r.id = v.run_id WHERE v.kind = 'performance' AND v.value IS NOT NULL"
        " ORDER BY v.id",
    )
    moves = history.select(
        conn,
        "SELECT at, from_release, to_release, reason, actor, model_id FROM deployments"
        " WHERE state = 'done' ORDER BY id",
    )
    return {"checks": checks, "deployments": moves}


def latest_drift(conn) -> dict:
    """The newest run's performance verdict and the newest data-drift checks, feature by feature."""
    performance = history.select_one(conn, "SELECT * FROM verdicts WHERE kind = 'performance' ORDER BY id DESC LIMIT 1")
    last = history.select_one(conn, "SELECT run_id FROM verdicts WHERE kind = 'data drift' ORDER BY id DESC LIMIT 1")
    data = []
    if last:
        data = history.select(
            conn,
            "SELECT * FROM verdicts WHERE run_id = ? AND kind IN ('data drift', 'exit rate') ORDER BY id",
            (last["run_id"],),
        )
    features = {}
    for verdict in data:
        name = verdict["feature"] or ("exit rate" if verdict["kind"] == "exit rate" else "reference rows")
        entry = features.setdefault(name, {"feature": name, "flagged": False, "checks": {}})
        entry["checks"][verdict["statistic"]] = {
            key: verdict[key] for key in ("value", "p_value", "low", "high", "reference", "outcome", "detail")
        }
        entry["flagged"] = entry["flagged"] or verdict["outcome"] == "drift"
    return {
        "performance": performance,
        "data_run_id": last["run_id"] if last else None,
        "data_checked_at": data[0]["at"] if data else None,
        "features": list(features.values()),
    }


def audit(conn, limit: int = 50) -> list[dict]:
    """Who moved the live pointer, when, from which release to which, and why; newest first."""
    return history.select(
        conn,
        "SELECT at, from_release, to_release, model_id, reason, actor, run_id FROM deployments"
        " WHERE state = 'done' ORDER BY id DESC LIMIT ?",
        (limit,),
    )
