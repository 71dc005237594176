"""Every error as {"error": "<one sentence>"} without a server path: the caller's mistakes a 4xx, a
history that cannot be used or nothing to answer with a 503, anything unexpected a 500 and a log line."""

import logging
import sqlite3

from flask import Flask, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from risk import history
from risk.config import Config, PipelineError
from risk.contract import DataError
from risk.web.answers import TOO_LARGE, public
from risk.web.readers import history_problem

logger = logging.getLogger(__name__)


def register_error_handlers(app: Flask, config: Config) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error):
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        return {"error": public(error.description or error.name, config)}, error.code, headers  # Allow, Retry-After

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        return {"error": TOO_LARGE}, 413

    @app.errorhandler(history.HistoryError)
    @app.errorhandler(sqlite3.Error)
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
