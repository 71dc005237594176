"""The history API (blueprint `history`), the history database over HTTP with server paths made relative:
GET /history (the newest runs with their verdicts), /releases (the registry, the live release marked, each
release's model with its health verdict) and /drift (the newest performance verdict and data-drift checks);
empty answers before the first run."""

from flask import Blueprint

from risk import overview, registry
from risk.web.answers import int_arg, public_data
from risk.web.readers import reading
from risk.web.state import get_state

MAX_HISTORY = 500

bp = Blueprint("history", __name__)


@bp.get("/history")
def runs():
    config = get_state().config
    limit = int_arg("limit", 20, MAX_HISTORY)
    with reading(config) as conn:
        return {"runs": public_data(overview.runs(conn, limit), config) if conn else []}


@bp.get("/releases")
def releases():
    config = get_state().config
    with reading(config) as conn:
        return {"releases": public_data(registry.list_releases(conn, config), config)}


@bp.get("/drift")
def drift():
    config = get_state().config
    with reading(config) as conn:
        return public_data(overview.latest_drift(conn), config) if conn else overview.NO_DRIFT_CHECK
