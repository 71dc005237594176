"""Step 4: the HTTP API and the dashboard over the deployed model, the data and the history.

Config keys: prod_deployment_path (the model, reloaded when production points elsewhere), the data
folders (input, output, test: the only places a `filepath` may point into), history_path,
expected_interval_minutes, api_host, api_port. `python app.py` serves it on api_host:api_port;
`make serve` with gunicorn (wsgi:app, settings in gunicorn.conf.py). When API_TOKEN is set, every
endpoint but /health needs `Authorization: Bearer <token>` or the session of a login at /login (the
session key and generation beside the history database, risk/access.py); /health then says only whether
it is up and cron late. Errors are {"error": "<one sentence>"}: a 4xx for the caller's mistakes, 429 for
too many wrong tokens or a second timing, 503 when the pipeline has nothing to answer with or the history
cannot be used; never a server path.
"""

import io
import logging
import os
import re
import secrets
import threading
from pathlib import Path

import numpy as np
import orjson
from flask import Flask, Request, Response, abort, redirect, render_template, request, session, url_for
from flask.json.provider import JSONProvider
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge, TooManyRequests
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from risk import access, alerts, artifacts, diagnosis, history, overview, ranking, registry
from risk.config import Config, PipelineError, config_path_from_env, load_config
from risk.contract import DataError, Rows, prediction_rows, prediction_rows_from_csv
from risk.history import closing
from risk.logs import failures_as_one_line, setup_logging
from risk.model import log_odds, score_model, sigmoid

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
TOO_LARGE = f"the request body is larger than 16 MiB ({MAX_BODY_BYTES:,} bytes)"
MAX_FILEPATH_CHARS = 1024
MAX_TOPRISK = 10_000
MAX_HISTORY = 500
# A request waits at most this long for a locked history database, then answers 503. Short: in a gevent
# worker SQLite's wait blocks every connection of the worker, and WAL readers wait only on an abnormal lock.
HISTORY_TIMEOUT_SECONDS = 1
NO_DRIFT_CHECK = {"performance": None, "data_run_id": None, "data_checked_at": None, "features": []}
NO_PIPELINE_STATE = {"late": None, "heartbeat": None, "last_run": None}
TIMING_RETRY_SECONDS = 10  # a fresh timing of ingestion and training takes a few seconds
PAGES = {"dashboard", "toprisk_csv", "trend_svg"}  # for browsers: without a session they go to /login
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s:'\",;()]+")
ASCII_NUMBER = re.compile(r"[0-9]{1,12}")


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


class CappedBody(io.RawIOBase):
    """A request body of unknown length read up to `limit` bytes: a byte more is a 413."""

    def __init__(self, stream, limit: int):
        self.stream, self.limit, self.count = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.stream.read(min(len(buffer), self.limit + 1 - self.count))
        except (OSError, ValueError):
            raise ClientDisconnected() from None
        self.count += len(data)
        if self.count > self.limit:
            raise RequestEntityTooLarge(TOO_LARGE)
        buffer[: len(data)] = data
        return len(data)


class BoundedRequest(Request):
    """Flask's request, but a chunked body (no Content-Length) over MAX_BODY_BYTES is a 413: Werkzeug
    stops reading it at the limit without a word, and a body padded past it was answered 200."""

    @cached_property
    def stream(self):
        if self.content_length is None and self.environ.get("wsgi.input_terminated"):
            return io.BufferedReader(CappedBody(self.environ["wsgi.input"], MAX_BODY_BYTES))
        return get_input_stream(self.environ, max_content_length=self.max_content_length)


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
            model = registry.read_release_model(self.config.history_path, release, HISTORY_TIMEOUT_SECONDS)
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
    """One alert per refused model file (however many requests meet it), recorded and sent in the
    background: no request waits on the history database or the webhook."""
    if config.alert_webhook_url:
        threading.Thread(target=record_refusal, args=(config, release, reason, key), daemon=True).start()


def record_refusal(config: Config, release: str, reason: str, key: tuple) -> None:
    try:
        with closing(history.connect(config.history_path, timeout=HISTORY_TIMEOUT_SECONDS)) as conn:
            alerts.raise_alert(
                conn,
                "release refused",
                "critical",
                f"the API refused to load {public(reason, config)}",
                {"release": release},
                config.api_base_url.rstrip("/") + "/",
                dedupe_key=f"refused:{release}:{key[1]}:{key[2]}",
            )
            alerts.deliver_pending(conn, config.alert_webhook_url)
    except (history.HistoryError, history.sqlite3.Error) as error:
        logger.error("the refusal could not be recorded as an alert: %s", history_problem(error, config))


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


def int_arg(name: str, default: int | None, highest: int) -> int | None:
    """A positive integer query argument up to `highest`; abort(400) naming it otherwise."""
    text = request.args.get(name)
    if text is None:
        return default
    # ASCII digits only: str.isdigit() and int() also take '²', '١' or '５', and int() refuses 4,301 digits.
    if not ASCII_NUMBER.fullmatch(text) or not 1 <= int(text) <= highest:
        abort(400, f"'{name}' must be a whole number from 1 to {highest:,}, got {text[:20]!r}")
    return int(text)


def register_error_handlers(app: Flask, config: Config) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error):
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        return {"error": public(error.description or error.name, config)}, error.code, headers  # Allow, Retry-After

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        return {"error": TOO_LARGE}, 413

    @app.errorhandler(history.HistoryError)
    @app.errorhandler(history.sqlite3.Error)
    def history_unavailable(error):
        message = history_problem(error, config)
        logger.warning("%s %s: %s", request.method, request.path, message)
        return {"error": message}, 503

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
    app.request_class = BoundedRequest
    app.json = StrictJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    deployed = DeployedModel(config)
    cache = FileCache()
    access_state = Access(os.environ.get("API_TOKEN"), config)
    late_alerts = LateAlerts(config)
    register_error_handlers(app, config)
    register_access(app, access_state)
    register_model_routes(app, config, deployed, cache, access_state, late_alerts)
    register_history_routes(app, config)
    register_risk_routes(app, config, deployed, cache, access_state, late_alerts)
    return app


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie (HttpOnly, SameSite=Lax), marked Secure when the request came over HTTPS:
    directly, or through the reverse proxy on this machine (gunicorn trusts X-Forwarded-Proto from
    forwarded_allow_ips only, see gunicorn.conf.py)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


class Access:
    """Who may read what. With API_TOKEN set: the bearer header (programs) or a login session (browsers),
    a session valid only in the current generation (a logout starts a new one) and for the current token;
    wrong tokens slowed per client address. Without API_TOKEN everything is open."""

    def __init__(self, token: str | None, config: Config):
        self.token = token
        self.folder = config.history_path.parent  # the session key and generation lie beside the history
        self.throttle = access.Throttle()
        if not token:
            self.secret = secrets.token_hex(32)  # no session carries a right: nothing to share between workers
        else:
            self.secret = os.environ.get("SECRET_KEY") or access.session_secret(self.folder)
            try:
                access.session_generation(self.folder)
            except OSError as error:
                raise PipelineError(f"cannot keep the session generation in {self.folder}: {error.strerror}") from None

    def address(self) -> str:
        return access.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))

    def session_valid(self) -> bool:
        """The request's session is a login with the current token, in the current generation."""
        mark = session.get("auth")
        if not self.token or not isinstance(mark, str):
            return False
        try:
            generation = access.session_generation(self.folder)
        except OSError as error:  # fail closed: without the generation no session is known to be current
            logger.warning("cannot read the session generation in %s: %s", self.folder, error.strerror)
            return False
        return access.token_matches(mark, access.session_mark(self.token, generation))

    def bearer(self) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""

    def try_token(self, supplied: str) -> tuple[bool, int]:
        """(right, wait): whether `supplied` is the token (a wrong one counts against the client's address),
        and the whole seconds that address must wait first when it has guessed too often (then nothing is compared)."""
        address = self.address()
        wait = self.throttle.wait_seconds(address)
        if wait:
            return False, wait
        if access.token_matches(supplied, self.token):
            self.throttle.succeeded(address)
            return True, 0
        self.throttle.failed(address)
        logger.warning("wrong token from %s", address)
        return False, 0

    def authorized(self) -> bool:
        """No token is set, or the request has a valid session or the right bearer token (a wrong one counts
        as a guess; while its address must wait, none is compared)."""
        if not self.token or self.session_valid():
            return True
        supplied = self.bearer()
        return supplied is not None and self.try_token(supplied)[0]

    def log_in(self) -> None:
        session.clear()
        session["auth"] = access.session_mark(self.token, access.session_generation(self.folder))

    def end_sessions(self) -> None:
        """Log out every session, in every worker; raises OSError when the generation cannot be written."""
        if self.token:
            access.end_sessions(self.folder)
        session.clear()


def too_many_guesses(wait: int) -> TooManyRequests:
    """A 429 saying how long to wait, with Retry-After."""
    return TooManyRequests(f"too many wrong tokens from this address: try again in {wait} s", retry_after=wait)


def register_access(app: Flask, access_state: Access) -> None:
    """With API_TOKEN set: the bearer header for programs, a login session for browsers."""
    app.secret_key = access_state.secret
    app.session_interface = SessionCookies()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @app.before_request
    def require_token():
        if not access_state.token or request.endpoint in ("health", "login", "static"):
            return None
        if access_state.session_valid():
            return None
        supplied = access_state.bearer()
        if supplied is not None:
            right, wait = access_state.try_token(supplied)
            if right:
                return None
            if wait:
                raise too_many_guesses(wait)
        if request.endpoint == "logout":  # no session to end (ended already, or a cross-site form without the cookie)
            return redirect(url_for("login"))
        if request.endpoint in PAGES:
            return redirect(url_for("login", next=request.full_path))
        abort(401, "missing or wrong token: send 'Authorization: Bearer <token>'")

    @app.route("/login", methods=["GET", "POST"])
    def login():
        target = access.local_target(request.values.get("next", "/"))
        error, status, headers = None, 200, {}
        if request.method == "POST" and access_state.token:
            right, wait = access_state.try_token(request.form.get("token", ""))
            if right:
                access_state.log_in()
                return redirect(target)
            error, status = "That token is not the right one.", 401
            if wait:
                error, status = f"Too many wrong tokens from this address: try again in {wait} s.", 429
                headers["Retry-After"] = str(wait)
        elif request.method == "POST":
            error, status = "That token is not the right one.", 401
        page = render_template("login.html", error=error, next=target, needed=bool(access_state.token))
        return page, status, headers

    @app.post("/logout")
    def logout():
        try:
            access_state.end_sessions()
        except OSError as error:
            logger.error("cannot end the sessions in %s: %s", access_state.folder, error.strerror)
            page = render_template(
                "message.html",
                heading="Not logged out",
                message=(
                    f"The sessions could not be ended ({error.strerror}): this session still works. "
                    "Ask the team that runs the service to check the folder of the history database."
                ),
                logged_in=True,
            )
            return page, 503
        return redirect(url_for("login"))


def reader(config: Config):
    """A read-only connection to the history for this request, or None before the first run.

    A database from an older version of this code is migrated first (what the next run would do). One that
    is damaged, locked for more than HISTORY_TIMEOUT_SECONDS or cannot be migrated raises HistoryError or
    sqlite3.Error: a 503 (history_unavailable) that history_problem words.
    """
    return history.connect_reader(config.history_path, HISTORY_TIMEOUT_SECONDS)


def history_problem(error: Exception, config: Config) -> str:
    """Why the history cannot be read, in one sentence for a caller (no server path)."""
    return public(str(history.history_error(error, config.history_path, HISTORY_TIMEOUT_SECONDS)), config)


def pipeline_state(config: Config, late_alerts) -> dict:
    """The cron's last check and run and whether it is late, read from the history. A late cron raises one
    alert, recorded and sent in the background (the cron that would send it is the one that is late)."""
    conn = reader(config)
    if conn is None:
        return NO_PIPELINE_STATE
    with closing(conn):
        state = alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes, alert=False)
    if state["late"] and config.alert_webhook_url:
        late_alerts.raise_once(state["heartbeat"]["checked_at"])
    return state


class LateAlerts:
    """The late-cron alert the API raises: recorded and delivered by a background thread, one per missed
    heartbeat, so that no request writes to the history or waits for the webhook."""

    def __init__(self, config: Config):
        self.config = config
        self.lock = threading.Lock()
        self.raised_for = None  # the heartbeat (its time) an alert was raised for

    def raise_once(self, heartbeat_at: str) -> None:
        with self.lock:
            if self.raised_for == heartbeat_at:  # raised already, or being raised
                return
            self.raised_for = heartbeat_at
        threading.Thread(target=self.record_and_send, args=(heartbeat_at,), daemon=True).start()

    def record_and_send(self, heartbeat_at: str) -> None:
        config = self.config
        try:
            with closing(history.connect(config.history_path, timeout=HISTORY_TIMEOUT_SECONDS)) as conn:
                state = alerts.check_late(conn, str(config.config_path), config.expected_interval_minutes)
                if state.get("alert_id"):
                    alerts.deliver_pending(conn, config.alert_webhook_url)
        except (history.HistoryError, history.sqlite3.Error) as error:
            logger.warning("cannot record the late-cron alert: %s", history_problem(error, config))
            with self.lock:
                if self.raised_for == heartbeat_at:
                    self.raised_for = None  # the next request tries again


def public_data(value, config: Config):
    """`value` (dicts, lists, text) with every absolute server path in its text made relative, or a name."""
    if isinstance(value, str):
        return public(value, config)
    if isinstance(value, dict):
        return {key: public_data(item, config) for key, item in value.items()}
    if isinstance(value, list):
        return [public_data(item, config) for item in value]
    return value


def register_model_routes(
    app: Flask, config: Config, deployed: DeployedModel, cache: FileCache, access_state: Access, late_alerts: LateAlerts
) -> None:
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
        if refresh == "1":
            try:
                timings = diagnosis.fresh_timings(config)
            except diagnosis.TimingBusy as error:  # a timing costs seconds of CPU and two processes: one at a time
                raise TooManyRequests(str(error), retry_after=TIMING_RETRY_SECONDS) from None
        else:
            with closing(reader(config)) as conn:
                timings = diagnosis.recorded_timings(conn, config)
        missing = cache.get("missing", [artifacts.finaldata_path(config)], lambda: diagnosis.missing_data_table(config))
        return {
            "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
            "execution_runs": timings,
            "missing_data": missing,
            "outdated_packages": diagnosis.outdated_packages_list(config),
        }

    @app.get("/health")
    def health():
        """Open to all: up and ready (a model deployed), late or not, and the live release; with the token
        (or none set) the pipeline's state in detail too."""
        _, release = deployed.get()
        state = pipeline_state(config, late_alerts)
        answer = {"status": "ok", "release": release, "late": state["late"]}
        if access_state.authorized():
            answer["pipeline"] = public_data({key: value for key, value in state.items() if key != "alert_id"}, config)
        return answer


def register_history_routes(app: Flask, config: Config) -> None:
    """The history database over HTTP: runs, releases, the latest drift checks (server paths made relative)."""

    @app.get("/history")
    def history_route():
        limit = int_arg("limit", 20, MAX_HISTORY)
        with closing(reader(config)) as conn:
            return {"runs": public_data(overview.runs(conn, limit), config) if conn else []}

    @app.get("/releases")
    def releases():
        with closing(reader(config)) as conn:
            return {"releases": public_data(registry.list_releases(conn, config), config)}

    @app.get("/drift")
    def drift_route():
        with closing(reader(config)) as conn:
            return public_data(overview.latest_drift(conn), config) if conn else NO_DRIFT_CHECK


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


def register_risk_routes(
    app: Flask, config: Config, deployed: DeployedModel, cache: FileCache, access_state: Access, late_alerts: LateAlerts
) -> None:
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
        """The page; what cannot be read is said in its section: nothing deployed yet, no history yet, or a
        history that cannot be read (then the status is 503 and the rest of the page is still shown)."""
        from risk import charts

        query = request.args.get("client", "").strip().lower()[:20]
        problems, status = {}, 200
        try:
            risk = risk_list(config, deployed, cache)
        except PipelineError as error:  # nothing deployed or no data yet: the page says so, and shows the rest
            risk, problems["risk"] = None, public(str(error), config)
        try:
            with closing(reader(config)) as conn:
                context = page_context(conn, config, query, risk, pipeline_state(config, late_alerts))
        except (history.HistoryError, history.sqlite3.Error) as error:
            problems["history"], status = history_problem(error, config), 503
            context = page_context(None, config, query, risk, NO_PIPELINE_STATE)
        trend = context["trend"]
        context["trend_svg"] = charts.trend_svg(trend, inline=True) if trend["checks"] or trend["deployments"] else None
        context.update(problems=problems, logged_in=access_state.session_valid())
        return render_template("dashboard.html", **context), status

    @app.get("/charts/trend.svg")
    def trend_svg():
        from risk import charts

        with closing(reader(config)) as conn:
            trend = overview.quality_over_time(conn) if conn else {"checks": [], "deployments": []}
        return Response(charts.trend_svg(trend), mimetype="image/svg+xml")


def page_context(conn, config: Config, query: str, risk, pipeline: dict) -> dict:
    """What the dashboard shows, gathered from the history, the pipeline's state and the risk list.

    `conn` is a reader's connection, or None when there is no history (yet, or readable); `risk` is
    risk_list()'s (ranked, unscored, release), or None when it could not be made; `pipeline` is pipeline_state()'s.
    """
    from risk import charts

    ranked, unscored, _ = risk or (None, None, None)
    heartbeat = pipeline.get("heartbeat") or {}
    last = overview.last_run(conn, config) if conn else None
    live = overview.live_state(conn, config)
    found = ranking.as_records(ranked[ranked["corporation"] == query]) if query and risk else []
    apart = unscored[unscored["corporation"] == query].to_dict("records") if query and risk else []
    trend = overview.quality_over_time(conn) if conn else {"checks": [], "deployments": []}
    drift = overview.latest_drift(conn) if conn else NO_DRIFT_CHECK
    runs = (
        [{**run, "config_name": os.path.basename(run["config_path"])} for run in overview.runs(conn, 10)]
        if conn
        else []
    )
    return {
        "has_history": conn is not None,
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
        "expected_interval_minutes": config.expected_interval_minutes,
    }


def main(config_path=None) -> None:
    config = load_config(config_path)
    create_app(config).run(host=config.api_host, port=config.api_port, debug=False)


if __name__ == "__main__":
    setup_logging(config_path_from_env().parent)
    with failures_as_one_line():
        main()
