"""The state of the system for people, read from the history: what is live and why, the model's
quality over time, the latest checks, the recent runs and the deployment audit, and page_context, which
gathers them with the risk list into the one set of facts the dashboard and page 1 of the report show.

The API's /health, /history, /releases and /drift, the dashboard, page 1 of the report and the alerts all
read it here (the live model's one health verdict: health());
every function takes a connection (a reader's is enough) and returns plain dicts and lists.
"""

import os

from risk import artifacts, charts, history, ranking
from risk.config import Config

NO_TREND = {"checks": [], "deployments": []}
NO_DRIFT_CHECK = {"performance": None, "data_run_id": None, "data_checked_at": None, "features": []}
NO_PIPELINE_STATE = {"late": None, "heartbeat": None, "last_run": None}
TOP_CLIENTS = 20  # the dashboard lists them all, page 1 of the report the first ten
RECENT_RUNS = 10
AUDIT_ROWS = 20


def page_context(conn, config: Config, risk, pipeline: dict | None = None, query: str = "") -> dict:
    """What people see, gathered once: the dashboard renders it, and page 1 of the report, so both say the
    same (the live model and its state, the last run and its verdicts, the data-drift flags, the trend, the
    clients most at risk).

    `conn` is a reader's connection, or None when there is no history (yet, or that can be used); `risk` is
    (ranked, unscored, release) from ranking.risk_table and the live release, or None when there is no risk
    list; `pipeline` is the cron's state (alerts.check_late's), None when unknown; `query` a client's code.
    """
    pipeline = pipeline or NO_PIPELINE_STATE
    heartbeat = pipeline.get("heartbeat") or {}
    live = live_state(conn, config)
    last = last_run(conn, config) if conn else None
    trend = quality_over_time(conn) if conn else NO_TREND
    drift = latest_drift(conn) if conn else NO_DRIFT_CHECK
    runs_shown = runs(conn, RECENT_RUNS) if conn else []
    return {
        "has_history": conn is not None,
        "live": live,
        "pipeline": pipeline,
        "heartbeat": heartbeat,
        "last_run": last,  # the newest finished run: the dashboard's card
        "last_verdicts": {verdict["kind"]: verdict for verdict in (last or {}).get("verdicts", [])},
        # the newest run with verdicts, finished or not: page 1's "Last verdict" (its own run, under fullprocess)
        "judged_run": judged_run(conn, config) if conn else None,
        "ago": {
            "live": charts.ago(live.get("since")),
            "last_run": charts.ago((last or {}).get("finished_at")),
            "heartbeat": charts.ago(heartbeat.get("checked_at")),
            "by_hand": charts.ago((pipeline.get("by_hand") or {}).get("checked_at")),
            "drift": charts.ago(drift.get("data_checked_at")),
        },
        "trend": trend,
        "trend_text": charts.trend_text(trend),
        "drift": drift,
        "data_drift": [entry for entry in drift["features"] if entry["feature"] != "exit rate"],
        "exit_rate": next((entry["checks"] for entry in drift["features"] if entry["feature"] == "exit rate"), {}),
        "runs": [{**run, "config_name": os.path.basename(run["config_path"])} for run in runs_shown],
        "audit": audit(conn, AUDIT_ROWS) if conn else [],
        **clients_at_risk(risk, query),
        "expected_interval_minutes": config.expected_interval_minutes,
    }


def clients_at_risk(risk, query: str) -> dict:
    """The clients most at risk, how many are ranked, those that cannot be scored, and the client searched
    for (its ranked row, or its row apart) from `risk`, (ranked, unscored, release) or None."""
    if risk is None:
        return {
            "top": [],
            "shared": None,
            "usual": {},
            "clients": 0,
            "unscored": [],
            "query": query,
            "found": None,
            "found_apart": None,
        }
    ranked, unscored, _ = risk
    found = ranking.as_records(ranked[ranked["corporation"] == query], for_page=True) if query else []
    apart = unscored[unscored["corporation"] == query].to_dict("records") if query else []
    top = ranking.as_records(ranked.head(TOP_CLIENTS), for_page=True)
    return {
        "top": top,
        "shared": ranking.shared_reason(top),
        "usual": {feature: ranking.number_words(value) for feature, value in top[0]["usual"].items()} if top else {},
        "clients": len(ranked),
        "unscored": unscored.to_dict("records"),
        "query": query,
        "found": found[0] if found else None,
        "found_apart": apart[0] if apart else None,
    }


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
    verdict = health(conn, model_id) if conn and model_id else None
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
        "health": verdict,
        "state": verdict["verdict"] if verdict else None,
        "state_since": verdict["since"] if verdict else None,
        "evidence": verdict["evidence"] if verdict else None,
    }


def health(conn, model_id: str) -> dict:
    """The one health verdict of a model, from its latest check, whenever it was taken (before a rollback
    brought it back too): healthy (it held its reference), degraded (it showed a drop, and no better
    model replaced it then), or unproven (never measured on new rows enough). With the measurement behind
    it (F1, rows, when), the check's sentence (`evidence`) and a sentence for people (`words`)."""
    reference = history.latest_reference(conn, model_id)
    expected = reference["f1"] if reference else None
    check = history.latest_check(conn, model_id)
    if check is None:
        words = "The risk list comes from a model not measured on new data yet"
        words += f" (its validation promises F1 {expected:.2f})." if expected is not None else "."
        return {
            "verdict": "unproven",
            "since": None,
            "measured_at": None,
            "f1": None,
            "expected": expected,
            "rows": 0,
            "evidence": "not checked on new data yet",
            "words": words,
        }
    measured = history.select_one(
        conn, "SELECT value, n FROM verdicts WHERE run_id = ? AND kind = 'performance' ORDER BY id", (check["run_id"],)
    )
    f1, rows = (measured["value"], measured["n"]) if measured else (None, check["rows"])
    return {
        "verdict": check["state"],
        "since": check["state_since"],
        "measured_at": check["at"],
        "f1": f1,
        "expected": expected,
        "rows": rows,
        "evidence": check["evidence"],
        "words": health_words(check["state"], f1, expected, rows),
    }


def health_words(verdict: str, f1: float | None, expected: float | None, rows: int) -> str:
    """The health verdict for a client manager: what the risk list comes from, and whether to trust it."""
    if f1 is None or expected is None:
        return f"The risk list comes from a model that is {verdict}."
    scored = f"The risk list comes from a model that scored F1 {f1:.2f} on the latest data ({rows:,} clients)"
    if verdict == "degraded":
        return f"{scored}, below its expected {expected:.2f}: treat it with care."
    if verdict == "healthy":
        return f"{scored}, as expected ({expected:.2f}): it can be trusted."
    return f"{scored}; too few clients yet to say it keeps its expected {expected:.2f}."


def last_run(conn, config: Config) -> dict | None:
    """The newest finished run of this configuration, with its verdicts' outcomes."""
    run = history.select_one(
        conn,
        "SELECT * FROM runs WHERE config_path = ? AND state = 'finished' ORDER BY id DESC LIMIT 1",
        (str(config.config_path),),
    )
    return with_verdicts(conn, run) if run else None


def judged_run(conn, config: Config) -> dict | None:
    """The newest run of this configuration with verdicts, finished or not: under the full process, the
    run that writes the report. A run still going has no decision recorded yet: it is said from what the
    run has done (the release it deployed, or the live model kept), as its decision will say."""
    run = history.select_one(
        conn,
        "SELECT * FROM runs r WHERE config_path = ? AND EXISTS (SELECT 1 FROM verdicts v WHERE v.run_id = r.id)"
        " ORDER BY id DESC LIMIT 1",
        (str(config.config_path),),
    )
    if run and run["state"] == "running" and not run["decision"]:
        run["decision"] = decision_so_far(conn, run["id"])
    return with_verdicts(conn, run) if run else None


def decision_so_far(conn, run_id: int) -> str:
    """What a run still going has decided: 'drift: re-trained and re-deployed (release R)', or that the
    live model stays."""
    deployed = history.select_one(
        conn,
        "SELECT to_release, reason FROM deployments WHERE run_id = ? AND state = 'done' ORDER BY id DESC LIMIT 1",
        (run_id,),
    )
    if deployed is None:
        return "no better model: the live model stays"
    if deployed["reason"] == "bootstrap":
        return f"bootstrap (release {deployed['to_release']})"
    return f"drift: re-trained and re-deployed (release {deployed['to_release']})"


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
