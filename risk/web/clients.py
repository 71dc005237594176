"""The risk list (blueprint `clients`): GET /toprisk (the clients most at risk with their probability,
pushes and reason, and those that cannot be scored), /toprisk.csv (the same as CSV, every client by
default) and /clients/<code> (one client's row, or 404), from the live model over finaldata.csv."""

from flask import Blueprint, Response, abort

from risk import ranking
from risk.web.answers import int_arg
from risk.web.deployed import risk_list
from risk.web.state import get_state

MAX_TOPRISK = 10_000

bp = Blueprint("clients", __name__)


@bp.get("/toprisk")
def toprisk():
    web = get_state()
    n = int_arg("n", 20, MAX_TOPRISK)
    ranked, unscored, release = risk_list(web.config, web.deployed, web.cache)
    return {
        "release": release,
        "n": min(n, len(ranked)),
        "clients": ranking.as_records(ranked.head(n)),
        "unscored": unscored.to_dict("records"),
    }


@bp.get("/toprisk.csv")
def toprisk_csv():
    web = get_state()
    n = int_arg("n", None, MAX_TOPRISK)  # without n: every client
    ranked, _, release = risk_list(web.config, web.deployed, web.cache)
    table = ranking.csv_table(ranked if n is None else ranked.head(n))
    body = table.to_csv(index=False, lineterminator="\n", float_format="%.6f")
    headers = {"Content-Disposition": f"attachment; filename=riskranking-{release}.csv"}
    return Response(body, mimetype="text/csv", headers=headers)


@bp.get("/clients/<code>")
def client(code: str):
    web = get_state()
    ranked, unscored, release = risk_list(web.config, web.deployed, web.cache)
    found = ranked[ranked["corporation"] == code]
    if len(found):
        return {"release": release, "client": ranking.as_records(found)[0]}
    apart = unscored[unscored["corporation"] == code]
    if len(apart):
        return {"release": release, "client": None, "unscored": apart.to_dict("records")[0]}
    abort(404, f"no client {code[:20]!r} in the ingested data")
