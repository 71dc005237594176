"""The pages for people (blueprint `pages`): GET / (the dashboard, from overview.page_context, the facts
page 1 of the PDF report shows too), GET /charts/trend.svg (the F1 trend alone), GET and POST /login (a
form for the access token) and POST /logout (ends every session)."""

import logging

from flask import Blueprint, Response, redirect, render_template, request, url_for

from risk import access, charts, overview
from risk.config import PipelineError
from risk.registry import ReleaseRefused
from risk.web.answers import public
from risk.web.deployed import risk_list
from risk.web.readers import FAILURES, history_problem, reading
from risk.web.state import get_state
from risk.web.watcher import pipeline_state

logger = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)


@bp.get("/")
def dashboard():
    """The page; what cannot be read is said in its section: nothing deployed yet, no history yet, or a
    history that cannot be read (then the status is 503 and the rest of the page is still shown). A live
    model the history refuses is said first, in the health banner, and the status is 503 too."""
    web = get_state()
    config = web.config
    query = request.args.get("client", "").strip().lower()[:20]
    problems, status, refused = {}, 200, False
    try:
        risk = risk_list(config, web.deployed, web.cache)
    except ReleaseRefused as error:  # the live model cannot be trusted: said first (below), unless no history yet
        risk, problems["risk"], refused = None, public(str(error), config), True
    except PipelineError as error:  # nothing deployed or no data yet: the page says so, and shows the rest
        risk, problems["risk"] = None, public(str(error), config)
    try:
        with reading(config) as conn:
            context = overview.page_context(conn, config, risk, pipeline_state(config), query)
    except FAILURES as error:
        problems["history"], status = history_problem(error, config), 503
        context = overview.page_context(None, config, risk, query=query)
    if refused and context["has_history"]:  # with no history yet, the page says that instead (a first run adopts)
        context["live"]["health"], status = refused_health(problems["risk"]), 503
    trend = context["trend"]
    drawn = trend["checks"] or trend["deployments"]
    trend_svgs = [charts.trend_svg(trend, inline=True, wide=wide) for wide in (True, False)] if drawn else None
    page = render_template(
        "dashboard.html", **context, trend_svgs=trend_svgs, problems=problems, logged_in=web.access.session_valid()
    )
    return page, status


def refused_health(problem: str) -> dict:
    """The health verdict shown first when the live release's model is refused (changed after it was
    recorded, or unverifiable): whatever its checks said, nothing it would rank can be trusted."""
    words = f"There is no risk list: {problem}. Deploy a good model, or roll back to a release that is kept whole."
    return {"verdict": "refused", "words": words}


@bp.get("/charts/trend.svg")
def trend_svg():
    with reading(get_state().config) as conn:
        trend = overview.quality_over_time(conn) if conn else overview.NO_TREND
    return Response(charts.trend_svg(trend), mimetype="image/svg+xml")


@bp.route("/login", methods=["GET", "POST"])
def login():
    access_state = get_state().access
    target = access.local_target(request.values.get("next", "/"))
    error, status, headers = None, 200, {}
    if request.method == "POST" and access_state.token:
        right, wait = access_state.try_token(request.form.get("token", ""))
        if right:
            access_state.log_in()
            return redirect(target)
        error, status = "That token is not the right one.", 401
        if wait:
            error, status = f"Too many wrong tokens from this address: try again in {wait} s.", 429
            headers["Retry-After"] = str(wait)
    elif request.method == "POST":
        error, status = "That token is not the right one.", 401
    page = render_template("login.html", error=error, next=target, needed=bool(access_state.token))
    return page, status, headers


@bp.post("/logout")
def logout():
    access_state = get_state().access
    try:
        access_state.end_sessions()
    except OSError as error:
        logger.error("cannot end the sessions in %s: %s", access_state.folder, error.strerror)
        page = render_template(
            "message.html",
            heading="Not logged out",
            message=(
                f"The sessions could not be ended ({error.strerror}): this session still works. "
                "Ask the team that runs the service to check the folder of the history database."
            ),
            logged_in=True,
        )
        return page, 503
    return redirect(url_for("pages.login"))
