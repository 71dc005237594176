"""Step 4: the HTTP API over the deployed model and the diagnostics (Flask; strict JSON in and out).

Config keys: prod_deployment_path (the model, reloaded when production points elsewhere), the data
folders (input, output, test: the only places a `filepath` may point into), history_path,
api_host, api_port. `python app.py` serves it on api_host:api_port; `make serve` serves it with
gunicorn (wsgi:app, settings in gunicorn.conf.py). When API_TOKEN is set, every endpoint but /health
needs `Authorization: Bearer <token>`. Errors are {"error": "<one sentence>"} with a 4xx for the
caller's mistakes, 503 when the pipeline has nothing to answer with; never a server path.
"""

import hmac
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
import orjson
from flask import Flask, Response, abort, request
from flask.json.provider import JSONProvider
from werkzeug.exceptions import HTTPException

import diagnostics
from risk import artifacts
from risk.config import Config, PipelineError, load_config, run_cli
from risk.contract import DataError, Rows, prediction_rows, prediction_rows_from_csv
from risk.model import load_model, log_odds, score_model, sigmoid

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_FILEPATH_CHARS = 1024
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
    """The deployed model, loaded and checked once per release, and again when production moves."""

    def __init__(self, prod_deployment_path: Path):
        self.prod_deployment_path = prod_deployment_path
        self.lock = threading.Lock()
        self.key = None
        self.model = None
        self.release = None

    def get(self):
        """(model, release name); raises PipelineError when nothing loadable is deployed."""
        path = os.path.realpath(self.prod_deployment_path)
        try:
            stat = os.stat(os.path.join(path, artifacts.MODEL_FILE))
        except OSError:
            raise PipelineError("no model is deployed yet") from None
        key = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self.lock:
            if key != self.key:
                self.model = load_model(os.path.join(path, artifacts.MODEL_FILE))
                self.key, self.release = key, os.path.basename(path)
                logger.info("loaded the deployed model of release %s", self.release)
            return self.model, self.release


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


def check_token(expected: str) -> None:
    header = request.headers.get("Authorization", "")
    supplied = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        abort(401, "missing or wrong token: send 'Authorization: Bearer <token>'")


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
    """Build the API for `config` (default: RISK_CONFIG or config.json)."""
    config = config if config is not None else load_config()
    app = Flask(__name__)
    app.json = StrictJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    deployed = DeployedModel(config.prod_deployment_path)
    cache = FileCache()
    token = os.environ.get("API_TOKEN")
    register_error_handlers(app, config)

    @app.before_request
    def require_token():
        if token and request.endpoint != "health":
            check_token(token)

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
            lambda: score_model(model, diagnostics.read_data(testdata_path)),
        )
        return {"f1": round(f1, 6), "release": release}

    @app.get("/summarystats")
    def summarystats():
        summary = cache.get("summary", [artifacts.finaldata_path(config)], lambda: diagnostics.summary_table(config))
        return {"summary": summary, "values": diagnostics.summary_values(summary)}

    @app.get("/diagnostics")
    def diagnostics_route():
        refresh = request.args.get("refresh", "0")
        if refresh not in ("0", "1"):
            abort(400, "'refresh' must be 0 or 1")
        timings = diagnostics.execution_details(config, refresh == "1")
        missing = cache.get(
            "missing", [artifacts.finaldata_path(config)], lambda: diagnostics.missing_data_table(config)
        )
        return {
            "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
            "execution_runs": timings,
            "missing_data": missing,
            "outdated_packages": diagnostics.outdated_packages_list(config),
        }

    @app.get("/health")
    def health():
        _, release = deployed.get()
        return {"status": "ok", "release": release}

    return app


def main(config_path=None) -> None:
    config = load_config(config_path)
    create_app(config).run(host=config.api_host, port=config.api_port, debug=False)


if __name__ == "__main__":
    run_cli(main)
