"""gunicorn entry point: `gunicorn wsgi:app` serves the API built from RISK_CONFIG or config.json, with the
cron watchdog looking once a minute in each worker; a bad or missing config is one line on stderr (and
gunicorn's own that the worker failed to boot), not a traceback."""

import sys

from app import create_app
from risk.config import PipelineError, load_config
from risk.logs import setup_logging

try:
    config = load_config()
except PipelineError as error:
    sys.stderr.write(f"wsgi: {error}\n")
    raise SystemExit(3) from None  # gunicorn's "worker failed to boot": it stops instead of starting another
setup_logging(config.config_path.parent)
app = create_app(config, watch=True)  # each worker's watchdog; the alerts' keys make one per spell
