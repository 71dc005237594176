"""The model API (blueprint `api`), the course's endpoints: POST /prediction (a CSV upload, JSON records or
a data file named by `filepath`, only inside the data folders), GET /scoring (the live model's F1 on the
test data), /summarystats, /diagnostics (timings, missing data, outdated packages) and /health (open to all)."""

import os
import sqlite3
from pathlib import Path

import numpy as np
import orjson
from flask import Blueprint, abort, request
from werkzeug.exceptions import TooManyRequests

from risk import artifacts, diagnosis, overview
from risk.config import Config, PipelineError
from risk.contract import Rows, prediction_rows, prediction_rows_from_csv
from risk.model import log_odds, score_model, sigmoid
from risk.web.answers import public_data
from risk.web.readers import reading
from risk.web.state import get_state
from risk.web.watcher import pipeline_state

MAX_FILEPATH_CHARS = 1024
TIMING_RETRY_SECONDS = 10  # a fresh timing of ingestion and training takes a few seconds

bp = Blueprint("api", __name__)


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
    name = os.path.relpath(path, config.config_path.parent)  # as the project names it, never a server path
    return prediction_rows_from_csv(path.read_bytes(), name), name


@bp.post("/prediction")
def prediction():
    web = get_state()
    rows, source = rows_from_request(web.config)
    model, release = web.deployed.get()
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


@bp.get("/scoring")
def scoring():
    web = get_state()
    model, release = web.deployed.get()
    testdata_path = artifacts.testdata_path(web.config)
    f1 = web.cache.get(
        "scoring",
        [testdata_path, web.config.prod_deployment_path / artifacts.MODEL_FILE],
        lambda: score_model(model, diagnosis.read_data(testdata_path)),
    )
    return {"f1": round(f1, 6), "release": release}


@bp.get("/summarystats")
def summarystats():
    web = get_state()
    finaldata_path = artifacts.finaldata_path(web.config)
    summary = web.cache.get("summary", [finaldata_path], lambda: diagnosis.summary_table(web.config))
    return {"summary": summary, "values": diagnosis.summary_values(summary)}


@bp.get("/diagnostics")
def diagnostics():
    web = get_state()
    config = web.config
    refresh = request.args.get("refresh", "0")
    if refresh not in ("0", "1"):
        abort(400, "'refresh' must be 0 or 1")
    if refresh == "1":
        try:
            timings = diagnosis.fresh_timings(config)
        except diagnosis.TimingBusy as error:  # a timing costs seconds of CPU and two processes: one at a time
            raise TooManyRequests(str(error), retry_after=TIMING_RETRY_SECONDS) from None
    else:
        with reading(config) as conn:
            timings = diagnosis.recorded_timings(conn, config)
    missing = web.cache.get("missing", [artifacts.finaldata_path(config)], lambda: diagnosis.missing_data_table(config))
    return {
        "execution_time": {f"{row['step']}_seconds": row["seconds"] for row in timings},
        "execution_runs": timings,
        "missing_data": missing,
        "outdated_packages": diagnosis.outdated_packages_list(config),
    }


@bp.get("/health")
def health():
    """Open to all: up and ready (a model deployed), late or not, and the live release; with the token
    (or none set) the pipeline's state in detail too, and why it is not ready when it is not (without
    the token only that it is not: a refused model or a damaged history is not the public's business)."""
    web = get_state()
    authorized = web.access.authorized()
    try:
        _, release = web.deployed.get()
        state = pipeline_state(web.config)
    except (PipelineError, sqlite3.Error):
        if authorized:
            raise
        return {"status": "not ready", "release": artifacts.live_release_name(web.config.prod_deployment_path)}, 503
    answer = {"status": "ok", "release": release, "late": state["late"]}
    if authorized:
        answer["pipeline"] = public_data(state, web.config)
        with reading(web.config) as conn:
            live = overview.live_state(conn, web.config) if conn else {}
        answer["health"] = live.get("health")
    return answer
