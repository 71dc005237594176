"""Step 4: the HTTP API and the dashboard over the deployed model, the data and the history.

create_app(config) is the factory: it makes the app's shared state (risk/web/state.py) and registers the
blueprints of risk/web/: api (/prediction /scoring /summarystats /diagnostics /health), history (/history
/releases /drift), clients (/toprisk /toprisk.csv /clients/<code>) and pages (/ /login /logout
/charts/trend.svg). Config keys: prod_deployment_path (the model, reloaded when production points
elsewhere), the data folders (input, output, test: the only places a `filepath` may point into),
history_path, expected_interval_minutes (the cron watchdog looks once a minute and alerts a late cron
through alert_webhook_url, risk/web/watcher.py), api_host, api_port. `python app.py` serves it on api_host:api_port;
`make serve` with gunicorn (wsgi:app, settings in gunicorn.conf.py). When API_TOKEN is set, every
endpoint but /health needs `Authorization: Bearer <token>` or the session of a login at /login (the
session key and generation beside the history database, risk/access.py); /health then says only whether
it is up and cron late. Errors are {"error": "<one sentence>"}: a 4xx for the caller's mistakes, 429 for
too many wrong tokens or a second timing, 503 when the pipeline has nothing to answer with or the history
cannot be used; never a server path.
"""

import os

from flask import Flask

from risk.config import Config, config_path_from_env, load_config
from risk.logs import failures_as_one_line, setup_logging
from risk.web import api, clients, history, pages
from risk.web.answers import MAX_BODY_BYTES, MAX_FORM_FIELD_BYTES, MAX_FORM_PARTS, BoundedRequest, StrictJSON
from risk.web.auth import Access, register_access
from risk.web.errors import register_error_handlers
from risk.web.state import init_state

BLUEPRINTS = [api.bp, history.bp, clients.bp, pages.bp]


def create_app(config: Config | None = None, watch: bool = False) -> Flask:
    """Build the API and the dashboard for `config` (default: RISK_CONFIG or config.json); `watch` starts
    the cron watchdog's thread (the served app's: wsgi.py and main(); a test's app looks only when told)."""
    config = config if config is not None else load_config()
    app = Flask(__name__)
    app.request_class = BoundedRequest
    app.json = StrictJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["MAX_FORM_PARTS"] = MAX_FORM_PARTS
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_FORM_FIELD_BYTES
    access_state = Access(os.environ.get("API_TOKEN"), config)
    state = init_state(app, config, access_state)
    register_error_handlers(app, config)
    register_access(app, access_state)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    if watch:
        state.watchdog.start()
    return app


def main(config_path=None) -> None:
    config = load_config(config_path)
    create_app(config, watch=True).run(host=config.api_host, port=config.api_port, debug=False)


if __name__ == "__main__":
    setup_logging(config_path_from_env().parent)
    with failures_as_one_line():
        main()
