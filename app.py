"""Step 4: the HTTP API and the dashboard over the deployed model, the data and the history.

Config keys: prod_deployment_path (the model, reloaded when production points elsewhere), the data
folders (input, output, test: the only places a `filepath` may point into), history_path,
expected_interval_minutes, api_host, api_port. `python app.py` serves it on api_host:api_port;
`make serve` with gunicorn (wsgi:app, settings in gunicorn.conf.py). When API_TOKEN is set, every
endpoint but /health needs `Authorization: Bearer <token>` or the session of a login at /login.
Errors are {"error": "<one sentence>"}: a 4xx for the caller's mistakes, 503 when the pipeline has
nothing to answer with; never a server path.
"""

import hashlib
import hmac
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
import orjson
from flask import Flask, Response, abort, redirect, render_template, request, session, url_for
from flask.json.provider import JSONProvider
from werkzeug.exceptions import HTTPException

from risk import alerts, artifacts, diagnosis, history, overview, ranking, registry
from risk.config import Config, PipelineError, load_config, run_cli
from risk.contract import DataError, Rows, prediction_rows, prediction_rows_from_csv
from risk.model import log_odds, score_model, sigmoid

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_FILEPATH_CHARS = 1024
MAX_TOPRISK = 10_000
MAX_HISTORY = 500
PAGES = {"dashboard", "toprisk_csv", "trend_svg"}  # for browsers: without a session they go to /login
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s:'\",;()]+")


class StrictJSON(JSONProvider):
    """orjson: fast, and strict both ways (no NaN or Infinity in or out, nesting bounded)."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(
            orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), mimetype="application/json"
        )


class DeployedModel:
    """The deployed model, loaded once per release and again when production moves, and only once its
    pickle's SHA-256 is the one the history records for it (a pickle is code). A pickle that does not
    match is refused until its file changes: 503, one log line, one alert; one that cannot be verified
    (no history, or one that cannot be read) is tried again at the next request. A model already loaded
    keeps serving while its file is unchanged, whatever happens to the history."""

    def __init__(self, config: Config):
        self.config = config
        self.lock = threading.Lock()
        self.key = None  # the model file last loaded, or refused for good
        self.model = None
        self.release = None
        self.refused = None  # why the file with `key` is not served

    def get(self):
        """(model, release name); raises PipelineError when nothing loadable is deployed."""
        path = os.path.realpath(self.config.prod_deployment_path)
        try:
            stat = os.stat(os.path.join(path, artifacts.MODEL_FILE))
        except OSError:
            raise PipelineError("no model is deployed yet") from None
        key = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self.lock:
            if key != self.key:
                self.load(Path(path), key)
            if self.refused:
                raise PipelineError(self.refused)
            return self.model, self.release

    def load(self, release: Path, key: tuple) -> None:
        try:
            model = registry.read_release_model(self.config.history_path, release)
        except registry.ReleaseRefused as error:
            if str(error) != self.refused:
                logger.error("%s", public(str(error), self.config))
            self.model, self.release, self.refused = None, None, str(error)
            if isinstance(error, registry.ModelMismatch):
                self.key = key  # this file is refused until it changes
                alert_refusal(self.config, release.name, str(error), key)
            return
        self.model, self.release, self.key, self.refused = model, release.name, key, None
        logger.info("loaded the deployed model of release %s", self.release)


def alert_refusal(config: Config, release: str, reason: str, key: tuple) -> None:
    """One alert per refused model file (however many requests meet it), sent in the background."""
    if not config.alert_webhook_url:
        return
    try:
        with history.opened(config.history_path) as conn:
            alerts.raise_alert(
                conn,
                "release refused",
                "critical",
                f"the API refused to load {public(reason, config)}",
                {"release": release},
                config.api_base_url.rstrip("/") + "/",
                dedupe_key=f"refused:{release}:{key[1]}:{key[2]}",
            )
    except history.HistoryError as error:
        logger.error("the refusal could not be recorded as an alert: %s", public(str(error), config))
        return
    threading.Thread(target=send_alerts, args=(config,), daemon=True).start()


class FileCache:
    """Answers computed from files, kept until one of the files changes (size, time or inode)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = {}

    def get(self, name: str, paths, compute):
        key = tuple(file_key(path) for path in paths)
        with self.lock:
            entry = self.entries.get(name)
            if entry and entry[0] == key:
                return entry[1]
        value = compute()
        with self.lock:
            self.entries[name] = (key, value)
        return value


def file_key(path) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (str(os.path.realpath(path)), stat.st_ino, stat.st_mtime_ns, stat.st_size)


def public(message: str, config: Config) -> str:
    """A message for a caller: absolute server paths become paths relative to the project, or a name."""
    root = str(config.config_path.parent)

    def relative(match):
        path = match.group(0)
        return os.path.relpath(path, root) if path.startswith(root + os.sep) else os.path.basename(path)

    return ABSOLUTE_PATH.sub(relative, message)


def resolve_data_path(filepath, config: Config) -> Path:
    """The file a caller names, if it lies inside a data folder; abort(400/403/404) otherwise."""
    if not isinstance(filepath, str) or not filepath.strip():
        abort(400, "'filepath' must be a non-empty string")
    if len(filepath) > MAX_FILEPATH_CHARS or "\x00" in filepath:
        abort(400, f"'filepath' must be a path of at most {MAX_FILEPATH_CHARS} characters")
    if ".." in Path(filepath).parts:
        abort(403, "'filepath' may not contain '..'")
    candidate = Path(os.path.realpath(config.config_path.parent / filepath))
    folders = [config.input_folder_path, config.output_folder_path, config.test_data_path]
    if not any(candidate.is_relative_to(os.path.realpath(folder)) for folder in folders):
        abort(403, f"filepath '{filepath}' is outside the data folders (input, output and test data)")
    try:
        if candidate.is_file():
            return candidate
    except OSError as error:
        abort(400, f"filepath '{filepath}' cannot be used: {error.strerror}")
    abort(404, f"filepath '{filepath}' does not exist")


def json_body():
    """The request's JSON body, parsed strictly; abort(400) naming what is wrong."""
    if request.mimetype != "application/json":
        abort(
            400,
            'send a JSON body {"filepath": ...} or {"records": [...]} with Content-Type '
            "application/json, or upload a CSV as form field 'file'",
        )
    try:
        return orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as error:
        abort(400, f"the body is not valid JSON: {str(error).split(':')[0]}")


def rows_from_request(config: Config) -> tuple[Rows, str]:
    """The rows to predict: a CSV upload, JSON records, or a data file named by `filepath`."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            abort(400, "upload the CSV as form field 'file'")
        name = os.path.basename(upload.filename or "") or "upload"
        return prediction_rows_from_csv(upload.read(), name), name
    body = json_body()
    if not isinstance(body, dict):
        abort(400, "the JSON body must be an object")
    if "records" in body:
        return prediction_rows(body["records"]), "records"
    if "filepath" not in body:
        abort(400, "the JSON body needs 'filepath' or 'records'")
    path = resolve_data_path(body["filepath"], config)
    return prediction_rows_from_csv(path.read_bytes(), body["filepath"]), body["filepath"]


def bearer_matches(expected: str) -> bool:
    header = request.headers.get("Authorization", "")
    supplied = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    return hmac.compare_digest(supplied.encode(), expected.encode())


def session_mark(token: str) -> str:
    """What a logged-in session holds: a digest of the token, never the token."""
    return hashlib.sha256(("risk-session:" + token).encode()).hexdigest()


def int_arg(name: str, default: int | None, highest: int) -> int | None:
    """A positive integer query argument up to `highest`; abort(400) naming it otherwise."""
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= highest:
        abort(400, f"'{name}' must be a whole number from 1 to {highest:,}, got {text[:20]!r}")
    return int(text)


def register_error_handlers(app: Flask, config: Config) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error):
        return {"error": public(error.description or error.name, config)}, error.code

    @app.errorhandler(DataError)
    def data_error(error):
        return {"error": public(str(error), config)}, 400

    @app.errorhandler(PipelineError)
    def pipeline_error(error):
        # Nothing deployed, or a pipeline file missing: the service is not ready.
        return {"error": public(str(error), config)}, 503

    @app.errorhandler(Exception)
    def unexpected_error(error):
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return {"error": "internal error; see the server log"}, 500


def create_app(config: Config | None = None) -> Flask:
    """Build the API and the dashboard for `config` (default: RISK_CONFIG or config.json)."""
    config = config if config is not None else load_config()
    app = Flask(__name__)
    app.json = StrictJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    deployed = DeployedModel(config)
    cache = FileCache()
    register_error_handlers(app, config)
    register_access(app, os.environ.get("API_TOKEN"))
    register_model_routes(app, config, deployed, cache)
    register_history_routes(app, config)
    register_risk_routes(app, config, deployed, cache)
    return app


def register_access(app: Flask, token: str | None) -> None:
    """With API_TOKEN set: the bearer header for programs, a login session for browsers."""
    app.secret_key = os.environ.get("SECRET_KEY") or session_mark(token or "no token") + "-secret"
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @app.before_request
    def require_token():
        if not token or request.endpoint in ("health", "login", "static"):
            return None
        if session.get("auth") == session_mark(token) or bearer_matches(token):
            return None
        if request.endpoint in PAGES:
            return redirect(url_for("login", next=request.full_path))
        abort(401, "missing or wrong token: send 'Authorization: Bearer <token>'")

    @app.route("/login", methods=["GET", "POST"])
    def login():
        target = request.values.get("next", "/")
        target = target if target.startswith("/") and not target.startswith("//") else "/"
        error = None
        if request.method == "POST":
            if token and hmac.compare_digest(request.form.get("token", "").encode(), token.encode()):
                session["auth"] = session_mark(token)
                return redirect(target)
            error = "That token is not the right one."
        return render_template("login.html", error=error, next=target, needed=bool(token)), 401 if error else 200

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login"))


def register_model_routes(app: Flask, config: Config, deployed: DeployedModel, cache: FileCache) -> None:
    """The course's endpoints: predictions, the score, summary statistics, diagnostics, health."""

    @app.post("/prediction")
    def prediction():
        rows, source = rows_from_request(config)
        model, release = deployed.get()
        z = log_odds(model, rows.X)
        answer = {
            "source": source,
            "rows": len(rows),
            "release": release,
            "predictions": (z > 0).astype(np.int64),
            "probabilities": np.round(sigmoid(z), 6),
        }
        if rows.corporation is not None:
            answer["corporation"] = rows.corporation
        return answer

    @app.get("/scoring")
    def scoring():
        model, release = deployed.get()
        testdata_path = artifacts.testdata_path(config)
        f1 = cache.get(
            "scoring",
            [testdata_path, config.prod_deployment_path / artifacts.MODEL_FILE],
            lambda: score_model(model, diagnosis.read_data(testdata_path)),
        )
        return {"f1": round(f1, 6), "release": release}

    @app.get("/summarystats")
    def summarystats():
        summary = cache.get("summary", [artifacts.finaldata_path(config)], lambda: diagnosis.summary_table(config))
        return {"summary": summary, "values": diagnosis.summary_values(summary)}

    @app.get("/diagnostics")
    def diagnostics_route():
        refresh = request.args.get("refresh", "0")
        if refresh not in ("0", "1"):
            abort(400, "'refresh' must be 0 or 1")
        timings = diagnosis.execution_details(config, refresh == "1")
        missing = cache.get("missing", [artifacts.finaldata_path(config)], lambda: diagnosis.missing_data_table(config))
        return {
            "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
            "execution_runs": timings,
            "missing_data": missing,
            "outdated_packages": diagnosis.outdated_packages_list(config),
        }

    @app.get("/health")
    def health():
        _, release = deployed.get()
        return {"status": "ok", "release": release, "pipeline": pipeline_state(config)}


def reader(config: Config):
    """A read-only connection to the history for this request, or None before the first run.

    A database from an older version of this code is migrated first (what the next run would do).
    """
    try:
        return history.connect_readonly(config.history_path)
    except history.HistoryError:
        try:
            history.connect(config.history_path).close()
            return history.connect_readonly(config.history_path)
        except history.HistoryError as error:
            raise PipelineError(str(error)) from None


def pipeline_state(config: Config) -> dict:
    """The cron's last check and run and whether it is late. A late cron raises one alert, sent from
    here in the background (the cron that would send it is the one that is late)."""
    if not os.path.isfile(config.history_path):
        return {"late": None, "heartbeat": None, "last_run": None}
    if not config.alert_webhook_url:  # nothing to raise: a reader's connection is enough
        with closing(reader(config)) as conn:
            return alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes, alert=False)
    with history.opened(config.history_path) as conn:
        state = alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes)
    if state.get("alert_id") and config.alert_webhook_url:
        threading.Thread(target=send_alerts, args=(config,), daemon=True).start()
    return state


def send_alerts(config: Config) -> None:
    with history.opened(config.history_path) as conn:
        alerts.deliver_pending(conn, config.alert_webhook_url)


def register_history_routes(app: Flask, config: Config) -> None:
    """The history database over HTTP: runs, releases, the latest drift checks."""

    @app.get("/history")
    def history_route():
        limit = int_arg("limit", 20, MAX_HISTORY)
        conn = reader(config)
        if conn is None:
            return {"runs": []}
        with closing(conn):
            return {"runs": overview.runs(conn, limit)}

    @app.get("/releases")
    def releases():
        conn = reader(config)
        with closing(conn):
            return {"releases": registry.list_releases(conn, config)}

    @app.get("/drift")
    def drift_route():
        conn = reader(config)
        if conn is None:
            return {"performance": None, "features": []}
        with closing(conn):
            return overview.latest_drift(conn)


class closing:  # noqa: N801 - a context manager that accepts None
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc_info):
        if self.conn is not None:
            self.conn.close()
        return False


def risk_list(config: Config, deployed: DeployedModel, cache: FileCache):
    """(ranked clients, unscored clients, release) from finaldata.csv and the live model, cached."""
    model, release = deployed.get()
    finaldata_path = artifacts.finaldata_path(config)

    def compute():
        finaldata = diagnosis.read_data(finaldata_path)
        card = registry.read_card(config.prod_deployment_path)
        return ranking.risk_table(finaldata, model, ranking.training_means(card, finaldata))

    ranked, unscored = cache.get(
        "ranking", [finaldata_path, config.prod_deployment_path / artifacts.MODEL_FILE], compute
    )
    return ranked, unscored, release


def register_risk_routes(app: Flask, config: Config, deployed: DeployedModel, cache: FileCache) -> None:
    """The ranked risk list with reasons, as JSON and CSV, one client, and the dashboard page."""

    @app.get("/toprisk")
    def toprisk():
        n = int_arg("n", 20, MAX_TOPRISK)
        ranked, unscored, release = risk_list(config, deployed, cache)
        return {
            "release": release,
            "n": min(n, len(ranked)),
            "clients": ranking.as_records(ranked.head(n)),
            "unscored": unscored.to_dict("records"),
        }

    @app.get("/toprisk.csv")
    def toprisk_csv():
        n = int_arg("n", None, MAX_TOPRISK)  # without n: every client
        ranked, _, release = risk_list(config, deployed, cache)
        body = (ranked if n is None else ranked.head(n)).to_csv(index=False, lineterminator="\n", float_format="%.6f")
        headers = {"Content-Disposition": f"attachment; filename=riskranking-{release}.csv"}
        return Response(body, mimetype="text/csv", headers=headers)

    @app.get("/clients/<code>")
    def client(code: str):
        ranked, unscored, release = risk_list(config, deployed, cache)
        found = ranked[ranked["corporation"] == code]
        if len(found):
            return {"release": release, "client": ranking.as_records(found)[0]}
        apart = unscored[unscored["corporation"] == code]
        if len(apart):
            return {"release": release, "client": None, "unscored": apart.to_dict("records")[0]}
        abort(404, f"no client {code[:20]!r} in the ingested data")

    @app.get("/")
    def dashboard():
        from risk import charts

        query = request.args.get("client", "").strip().lower()[:20]
        problems = {}
        try:
            risk = risk_list(config, deployed, cache)
        except PipelineError as error:  # nothing deployed or no data yet: the page says so, and shows the rest
            risk, problems["risk"] = None, public(str(error), config)
        try:
            conn = reader(config)
        except PipelineError as error:
            conn, problems["history"] = None, public(str(error), config)
        with closing(conn):
            context = page_context(conn, config, query, risk, problems)
        trend = context["trend"]
        context["trend_svg"] = charts.trend_svg(trend, inline=True) if trend["checks"] or trend["deployments"] else None
        return render_template("dashboard.html", **context)

    @app.get("/charts/trend.svg")
    def trend_svg():
        from risk import charts

        conn = reader(config)
        with closing(conn):
            trend = overview.quality_over_time(conn) if conn else {"checks": [], "deployments": []}
        return Response(charts.trend_svg(trend), mimetype="image/svg+xml")


def page_context(conn, config: Config, query: str, risk, problems: dict | None = None) -> dict:
    """What the dashboard shows, gathered from the history, the pipeline's state and the risk list.

    `risk` is risk_list()'s (ranked, unscored, release), or None when it could not be made; `problems`
    holds what went wrong, in words, by section ("risk", "history"), for the page to say instead.
    """
    from risk import charts

    ranked, unscored, release = risk or (None, None, None)
    pipeline = pipeline_state(config)
    heartbeat = pipeline.get("heartbeat") or {}
    last = overview.last_run(conn, config) if conn else None
    live = overview.live_state(conn, config) if conn else {"release": release}
    found = ranking.as_records(ranked[ranked["corporation"] == query]) if query and risk else []
    apart = unscored[unscored["corporation"] == query].to_dict("records") if query and risk else []
    trend = overview.quality_over_time(conn) if conn else {"checks": [], "deployments": []}
    drift = overview.latest_drift(conn) if conn else {"performance": None, "features": []}
    runs = (
        [{**run, "config_name": os.path.basename(run["config_path"])} for run in overview.runs(conn, 10)]
        if conn
        else []
    )
    return {
        "live": live,
        "pipeline": pipeline,
        "heartbeat": heartbeat,
        "last_run": last,
        "last_verdicts": {verdict["kind"]: verdict for verdict in (last or {}).get("verdicts", [])},
        "ago": {
            "live": charts.ago(live.get("since")),
            "last_run": charts.ago((last or {}).get("finished_at")),
            "heartbeat": charts.ago(heartbeat.get("checked_at")),
            "drift": charts.ago(drift.get("data_checked_at")),
        },
        "trend": trend,
        "trend_text": charts.trend_text(trend),
        "drift": drift,
        "data_drift": [entry for entry in drift["features"] if entry["feature"] != "exit rate"],
        "exit_rate": next((entry["checks"] for entry in drift["features"] if entry["feature"] == "exit rate"), {}),
        "runs": runs,
        "audit": overview.audit(conn, 20) if conn else [],
        "top": ranking.as_records(ranked.head(20)) if risk else [],
        "clients": len(ranked) if risk else 0,
        "unscored": unscored.to_dict("records") if risk else [],
        "query": query,
        "found": found[0] if found else None,
        "found_apart": apart[0] if apart else None,
        "problems": problems or {},
        "logged_in": "auth" in session,
        "expected_interval_minutes": config.expected_interval_minutes,
    }


def main(config_path=None) -> None:
    config = load_config(config_path)
    create_app(config).run(host=config.api_host, port=config.api_port, debug=False)


if __name__ == "__main__":
    run_cli(main)
