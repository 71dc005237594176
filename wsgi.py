"""gunicorn entry point: `gunicorn wsgi:app` serves the API built from RISK_CONFIG or config.json."""

from app import create_app
from risk.config import setup_logging

setup_logging()
app = create_app()
