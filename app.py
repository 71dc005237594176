"""Step 4: the HTTP API over the deployed model and the diagnostics (Flask; JSON in and out).

Config keys: prod_deployment_path (the model, reloaded when a new deployment appears), the data
folders (input, output, test: the only places a `filepath` may point into), api_host, api_port.
`python app.py` serves it on api_host:api_port; `make serve` serves it with gunicorn (wsgi:app).
When API_TOKEN is set, every endpoint but /health needs `Authorization: Bearer <token>`.
"""

import hmac
import logging
import os
import threading
from pathlib import Path

import pandas as pd
from flask import Flask, abort, jsonify, request
from werkzeug.exceptions import HTTPException

import diagnostics
from risk import artifacts
from risk.artifacts import MODEL_FILE
from risk.config import Config, PipelineError, load_config, run_cli
from risk.contract import PREDICTION, DataError, read_csv_bytes, records_frame
from risk.model import load_model, score_model

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


class DeployedModel:
    """The deployed model, loaded on first use and again whenever production points elsewhere."""

    def __init__(self, prod_deployment_path: Path):
        self.prod_deployment_path = prod_deployment_path
        self.lock = threading.Lock()
        self.key = None
        self.model = None

    def get(self):
        """(model, release name); raises PipelineError when nothing loadable is deployed."""
        release = artifacts.live_release(self.prod_deployment_path)
        if release is None:
            raise PipelineError(f"no model is deployed at {self.prod_deployment_path}")
        model_path = release / MODEL_FILE
        try:
            stat = model_path.stat()
        except FileNotFoundError:
            raise PipelineError(f"no model is deployed at {self.prod_deployment_path}") from None
        key = (str(release), stat.st_mtime_ns, stat.st_size)
        with self.lock:
            if key != self.key:
                self.model, self.key = load_model(model_path), key
                logger.info("loaded the deployed model of release %s", release.name)
            return self.model, release.name


def resolve_data_path(filepath, config: Config) -> Path:
    """The file a caller names, if it lies inside a data folder; abort(403/404) otherwise."""
    if not isinstance(filepath, str) or not filepath.strip():
        abort(400, "'filepath' must be a non-empty string")
    if ".." in Path(filepath).parts or "\x00" in filepath:
        abort(403, f"filepath '{filepath}' may not contain '..'")
    candidate = Path(os.path.realpath(config.config_path.parent / filepath))
    folders = [config.input_folder_path, config.output_folder_path, config.test_data_path]
    if not any(candidate.is_relative_to(os.path.realpath(folder)) for folder in folders):
        abort(403, f"filepath '{filepath}' is outside the data folders (input, output and test data)")
    if not candidate.is_file():
        abort(404, f"filepath '{filepath}' does not exist")
    return candidate


def rows_from_request(config: Config) -> tuple[pd.DataFrame, str]:
    """The rows to predict: a file upload, JSON records, or a data file named by `filepath`."""
    if "file" in request.files:
        upload = request.files["file"]
        name = os.path.basename(upload.filename or "") or "upload"
        try:
            return read_csv_bytes(upload.read(), name, PREDICTION), name
        except DataError as error:
            abort(400, str(error))
    body = request.get_json(silent=True)
    if body is None:
        abort(400, 'send a JSON body {"filepath": ...} or {"records": [...]}, or upload a CSV as \'file\'')
    if not isinstance(body, dict):
        abort(400, "the JSON body must be an object")
    if "records" in body:
        try:
            return records_frame(body["records"], PREDICTION), "records"
        except DataError as error:
            abort(400, str(error))
    if "filepath" not in body:
        abort(400, "the JSON body needs 'filepath' or 'records'")
    path = resolve_data_path(body["filepath"], config)
    try:
        return read_csv_bytes(path.read_bytes(), body["filepath"], PREDICTION), body["filepath"]
    except DataError as error:
        abort(400, str(error))


def check_token(expected: str) -> None:
    header = request.headers.get("Authorization", "")
    supplied = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        abort(401, "missing or wrong token: send 'Authorization: Bearer <token>'")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error):
        return jsonify(error=error.description), error.code

    @app.errorhandler(PipelineError)
    def pipeline_error(error):
        # Nothing deployed, or a pipeline file missing: the service is not ready.
        return jsonify(error=str(error)), 503

    @app.errorhandler(Exception)
    def unexpected_error(error):
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error="internal error; see the server log"), 500


def create_app(config: Config | None = None) -> Flask:
    """Build the API for `config` (default: RISK_CONFIG or config.json)."""
    config = config if config is not None else load_config()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    deployed = DeployedModel(config.prod_deployment_path)
    token = os.environ.get("API_TOKEN")
    register_error_handlers(app)

    @app.before_request
    def require_token():
        if token and request.endpoint != "health":
            check_token(token)

    @app.post("/prediction")
    def prediction():
        rows, source = rows_from_request(config)
        model, release = deployed.get()
        return jsonify(
            source=source, rows=len(rows), release=release, **diagnostics.predict_rows(rows, model)
        )

    @app.get("/scoring")
    def scoring():
        model, release = deployed.get()
        f1 = score_model(model, diagnostics.read_data(artifacts.testdata_path(config)))
        return jsonify(f1=round(f1, 6), release=release)

    @app.get("/summarystats")
    def summarystats():
        summary = diagnostics.summary_table(config)
        return jsonify(summary=summary, values=diagnostics.summary_values(summary))

    @app.get("/diagnostics")
    def diagnostics_route():
        ingestion_seconds, training_seconds = diagnostics.execution_time(config)
        return jsonify(
            execution_time={"ingestion_seconds": ingestion_seconds, "training_seconds": training_seconds},
            missing_data=diagnostics.missing_data_table(config),
            outdated_packages=diagnostics.outdated_packages_list(config),
        )

    @app.get("/health")
    def health():
        _, release = deployed.get()
        return jsonify(status="ok", release=release)

    return app


def main(config_path=None) -> None:
    config = load_config(config_path)
    create_app(config).run(host=config.api_host, port=config.api_port, debug=False)


if __name__ == "__main__":
    run_cli(main)
