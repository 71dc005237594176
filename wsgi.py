"""gunicorn entry point: `gunicorn wsgi:app` serves the API built from RISK_CONFIG or config.json."""

from app import create_app
from risk.config import load_config
from risk.logs import setup_logging

config = load_config()
setup_logging(config.config_path.parent)
app = create_app(config)
