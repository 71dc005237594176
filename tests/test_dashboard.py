"""The dashboard page through Flask's test client, and the trend chart as a pure function.

The expected values come from the files and the history database directly (pandas, pickle, sqlite3),
never from the functions the page calls.
"""

import html
import json
import re
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import FEATURES, damage_history, ranked_by_model

import deployment
from app import create_app
from risk import charts, history, overview
from risk.config import load_config
from risk.web.answers import MAX_FORM_FIELD_BYTES, TOO_LARGE

SECTIONS = [
    "Status",
    "The model's F1 over time",
    "Latest data-drift check",
    "Clients most at risk",
    "Recent runs",
    "Deployment audit",
]
TOKEN = "s3cret-token"


def query(config, sql, params=()) -> list[dict]:
    """Rows of the history database; `detail` is stored as JSON text."""
    with sqlite3.connect(config.history_path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute(sql, params)]
    return [{**row, "detail": json.loads(row["detail"])} if "detail" in row else row for row in rows]


def shown_percent(probability: float) -> str:
    """How the page writes a probability: a whole percent (half up), the ends said as bounds."""
    whole = int(probability * 100 + 0.5)
    return "over 99 %" if whole >= 100 else ("under 1 %" if whole < 1 else f"{whole} %")


def headings(page: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r"<h2[^>]*>(.*?)</h2>", page)]


def first_risk_row(page: str) -> tuple[str, str]:
    """(code, probability text) of the first row of the table of clients most at risk."""
    table = page[page.index('aria-labelledby="top-title"') :]
    match = re.search(
        r"<tbody>\s*<tr>\s*<td class=\"n rank\">1</td>\s*<th scope=\"row\" class=\"client\"><code>(\w+)</code></th>"
        r"\s*<td class=\"n strong risk\">(.*?)</td>",
        table,
    )
    assert match, table[:2000]
    return match.group(1), match.group(2)


@pytest.fixture(scope="module")
def page_client(history_project):
    return create_app(history_project).test_client()


@pytest.fixture(scope="module")
def page(page_client) -> str:
    response = page_client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    return response.get_data(as_text=True)


# --- the page over a real history -------------------------------------------------------------


def test_every_section_is_shown_in_order(page):
    assert headings(page) == SECTIONS


def test_the_status_banner_names_the_live_release_and_why(page, history_project):
    live = history_project.prod_deployment_path.resolve().name
    (deployed,) = query(
        history_project, "SELECT model_id, reason, actor FROM deployments WHERE to_release = ?", (live,)
    )
    status = page[page.index('id="status"') : page.index('id="quality"')]
    assert live in status and deployed["model_id"] in status
    assert deployed["reason"] == "drift" and "<strong>drift</strong>, by cron" in status
    assert "ON TIME" in status  # the last run left a heartbeat just now


def test_the_status_banner_gives_the_last_runs_decision_and_verdict_in_numbers(page, history_project):
    (last,) = query(history_project, "SELECT * FROM runs ORDER BY id DESC LIMIT 1")
    (performance,) = query(
        history_project, "SELECT detail FROM verdicts WHERE run_id = ? AND kind = 'performance'", (last["id"],)
    )
    status = html.unescape(page[page.index('id="status"') : page.index('id="quality"')])
    assert f"Run {last['id']}," in status and last["decision"] in status
    assert f"EXIT {last['exit_code']}" in status
    assert performance["detail"] in status


def test_the_chart_is_inline_svg_in_a_figure_with_its_text_alternative(page, history_project):
    figure = page[page.index('<figure class="chart">') : page.index("</figure>")]
    # twice: wide for a laptop, narrow for a phone (the stylesheet shows one)
    assert '<svg width="100%" class="chart-svg wide" role="img" viewBox="0 0 720 ' in figure
    assert '<svg width="100%" class="chart-svg narrow" role="img" viewBox="0 0 403.2 ' in figure
    checks = query(history_project, "SELECT value, reference FROM verdicts WHERE kind = 'performance' ORDER BY id")
    assert len(checks) == 2
    words = html.unescape(figure[figure.index("<figcaption>") :])
    for check in checks:
        assert f"{check['value']:.2f}" in words and f"expected {check['reference']:.2f}" in words
    assert "bootstrap to model" in words and "drift to model" in words


def test_the_drift_section_shows_each_features_latest_statistics(page, history_project):
    section = page[page.index('id="drift"') : page.index('id="clients"')]
    (run,) = query(history_project, "SELECT max(run_id) AS id FROM verdicts WHERE kind = 'data drift'")
    rows = query(
        history_project,
        "SELECT feature, statistic, value FROM verdicts WHERE run_id = ? AND kind = 'data drift'",
        (run["id"],),
    )
    assert {row["feature"] for row in rows} == set(FEATURES)
    for row in rows:
        assert f"{row['value']:.3f}" in section
    (rate,) = query(
        history_project, "SELECT detail FROM verdicts WHERE run_id = ? AND kind = 'exit rate'", (run["id"],)
    )
    assert rate["detail"] in html.unescape(section)


def test_the_top_client_is_the_one_the_model_ranks_first(page, history_project):
    expected = ranked_by_model(history_project).iloc[0]
    assert first_risk_row(page) == (expected["corporation"], shown_percent(expected["probability"]))


def test_the_risk_table_lists_the_20_clients_the_model_ranks_highest_in_order(page, history_project):
    table = page[page.index('aria-labelledby="top-title"') :]
    table = table[: table.index("</tbody>")]
    codes = re.findall(r'<th scope="row" class="client"><code>(\w+)</code></th>', table)
    assert codes == ranked_by_model(history_project)["corporation"].head(20).tolist()


def expected_reasons(config, top: int = 20) -> list[tuple[str, str]]:
    """(feature, side) of each top client's reason, from the pickle and pandas: the feature whose push
    on the log-odds against the median of every ranked client is largest (and positive)."""
    import pickle

    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv", dtype={"corporation": str})
    newest = finaldata.drop_duplicates("corporation", keep="last").dropna(subset=FEATURES).set_index("corporation")
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        coef = pickle.load(handle).coef_[0]
    medians = newest[FEATURES].median()
    reasons = []
    for code in ranked_by_model(config)["corporation"].head(top):
        pushes = coef * (newest.loc[code, FEATURES].to_numpy(float) - medians.to_numpy())
        feature = FEATURES[int(pushes.argmax())]
        side = "above" if newest.loc[code, feature] > medians[feature] else "below"
        reasons.append((feature, side) if pushes.max() > 0 else None)
    return reasons


def test_a_reason_most_of_the_top_clients_share_is_said_once_above_the_list(page, history_project):
    reasons = expected_reasons(history_project)
    (feature, side), count = Counter(reasons).most_common(1)[0]
    assert count > 10  # the flipped rule: busy clients leave, most for last month's activity
    section = " ".join(html.unescape(page[page.index('id="clients"') : page.index('id="runs"')]).split())
    words = {"above": "more", "below": "less"}[side] + " activity last month than usual"
    assert feature == "lastmonth_activity" and section.count(" clients are here mainly for one reason") == 1
    who = "All 20" if count == 20 else f"{count} of these 20"
    assert f"{who} clients are here mainly for one reason: <strong>{words} (" in section
    cells = re.findall(r'<td class="reason" data-label="Why">(.*?)</td>', section)
    assert len(cells) == 20 and sum("the usual" not in cell for cell in cells) == count
    short = r"activity last month [\d,]+: adds (\d+|less than 1) percentage points?"
    assert all(re.fullmatch(short, cell) for cell, why in zip(cells, reasons, strict=True) if why == (feature, side))


def test_the_status_shows_three_cards_each_with_a_colour_and_a_word(page, history_project):
    status = page[page.index('id="status"') : page.index('id="quality"')]
    cards = re.findall(
        r'<article class="card (\w+)">\s*<h3>([^<]+?) <strong class="badge (\w+)">([^<]+)</strong>', status
    )
    (last,) = query(history_project, "SELECT exit_code FROM runs ORDER BY id DESC LIMIT 1")
    (check,) = query(history_project, "SELECT state, state_since FROM monitoring ORDER BY id DESC LIMIT 1")
    assert (
        check["state"] == "healthy"
        and f'<strong>Healthy</strong> since <time datetime="{check["state_since"]}">' in status
    )
    assert cards == [
        ("ok", "Live model", "ok", "HEALTHY"),
        ("ok", "Last run", "ok", f"EXIT {last['exit_code']}"),
        ("ok", "Cron", "ok", "ON TIME"),
    ]


def test_the_page_needs_no_javascript_and_its_search_is_a_plain_get_form(page):
    assert re.findall(r"<script|javascript:|\son[a-z]+=", page, flags=re.IGNORECASE) == []
    (form,) = re.findall(r'<form class="search"[^>]*>', page)
    assert 'method="get"' in form and 'action="/#clients"' in form
    assert '<input id="client" name="client" type="search"' in page


def test_a_searched_client_is_shown_with_its_rank(page_client, history_project):
    expected = ranked_by_model(history_project)
    code = expected["corporation"].iloc[41]
    page = page_client.get(f"/?client={code.upper()}").get_data(as_text=True)
    assert f"Client {code}: rank 42 of {len(expected):,}" in page
    row = page[page.index('aria-labelledby="found"') :]
    assert f"<code>{code}</code>" in row[: row.index("</tbody>")]


def test_a_client_not_in_the_data_is_said_not_found(page_client):
    page = page_client.get("/?client=qqqq").get_data(as_text=True)
    assert "NOT FOUND" in page and "No client “qqqq” in the ingested data." in page


def test_a_client_without_a_feature_is_listed_apart_and_found_with_why(page, page_client):
    assert "<li><code>zzzz</code>: no value for activity last year</li>" in page
    found = page_client.get("/?client=zzzz").get_data(as_text=True)
    assert "NOT SCORED" in found and "cannot be scored: no value for activity last year" in found


def test_the_csv_links_download_the_ranked_list(page, page_client, history_project):
    links = re.findall(r'href="(/toprisk\.csv[^"]*)"', page)
    assert links == ["/toprisk.csv?n=20", "/toprisk.csv?n=100", "/toprisk.csv"]
    expected = ranked_by_model(history_project)
    for link, rows in zip(links, (20, 100, len(expected)), strict=True):
        response = page_client.get(link)
        assert response.status_code == 200 and response.mimetype == "text/csv"
        lines = response.get_data(as_text=True).splitlines()
        assert lines[0].startswith("rank,corporation,probability,") and len(lines) == rows + 1
        assert lines[1].split(",")[1] == expected["corporation"].iloc[0]


def test_the_runs_are_listed_newest_first_with_decisions_and_exit_codes(page, history_project):
    section = html.unescape(page[page.index('id="runs"') : page.index('id="deployments"')])
    runs = query(history_project, "SELECT id, decision, exit_code FROM runs ORDER BY id DESC")
    positions = [section.index(run["decision"]) for run in runs]
    assert positions == sorted(positions) and len(runs) == 3
    assert [int(code) for code in re.findall(r'<span class="badge \w+">(\d+)</span>', section)] == [
        run["exit_code"] for run in runs
    ]


def test_the_deployment_audit_lists_who_moved_production_and_why(page, history_project):
    section = page[page.index('id="deployments"') :]
    moves = query(history_project, "SELECT at, reason, actor, model_id, to_release FROM deployments ORDER BY id DESC")
    assert [move["reason"] for move in moves] == ["drift", "bootstrap"]
    for move in moves:
        assert move["to_release"] in section and move["model_id"] in section
    assert re.findall(r'<strong class="badge \w+">(\w+)</strong>', section) == ["drift", "bootstrap"]


@pytest.mark.parametrize("path", ["/", "/?client=qqqq", "/?client=http://evil.example"])
def test_the_page_names_no_url_but_what_the_user_typed(page_client, path):
    page = page_client.get(path).get_data(as_text=True)
    typed = path.partition("client=")[2]
    if typed:
        page = page.replace(html.escape(typed[:20]), "")
    assert re.findall(r"https?://", page) == []
    assert re.findall(r'(?:src|href)="(?!/|#|data:,)', page) == []  # every link stays on this server


# --- empty states -----------------------------------------------------------------------------


def test_with_nothing_deployed_and_no_history_the_page_says_so(config):
    response = create_app(config).test_client().get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert headings(page) == SECTIONS
    for words in (
        "NOTHING DEPLOYED",
        "NO RUNS YET",
        "NO CRON RUN YET",
        "No F1 check and no deployment yet",
        "No drift check yet",
        "No risk list yet: no model is deployed yet",
        "No runs yet",
        "Nothing deployed yet",
    ):
        assert words in page, words
    assert "<svg" not in page


def test_after_plain_scripts_the_page_shows_the_deployment_without_checks(trained_project, config):
    page = create_app(config).test_client().get("/").get_data(as_text=True)
    assert config.prod_deployment_path.resolve().name in page
    assert "No F1 check yet" in page and "No drift check yet" in page  # the chart shows the deployment alone
    assert "manual to model" in html.unescape(page)


def test_without_a_history_database_the_page_shows_the_live_release_and_says_there_is_no_history_yet(
    trained_project, config
):
    for suffix in ("", "-wal", "-shm"):
        Path(f"{config.history_path}{suffix}").unlink(missing_ok=True)
    response = create_app(config).test_client().get("/")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert headings(page) == SECTIONS
    assert config.prod_deployment_path.resolve().name in page and "LIVE" in page
    assert "No history yet: the history database is made by the first run of fullprocess.py" in re.sub(
        r"</?code>", "", page
    )
    assert "NO RUNS YET" in page and "NO CRON RUN YET" in page


def test_a_damaged_history_is_a_503_page_that_says_so_and_shows_what_the_release_says(trained_project, config):
    damage_history(config)
    response = create_app(config).test_client().get("/")
    assert response.status_code == 503 and response.mimetype == "text/html"
    page = html.unescape(response.get_data(as_text=True))
    text = re.sub(r"<[^>]+>", "", page)
    assert headings(page) == SECTIONS
    problem = (
        "History database logs/history.db is damaged (file is not a database): restore it from a backup, or move it"
        " aside"
    )
    assert f"HISTORY UNAVAILABLE {problem}." in text
    # no model is loaded unverified (a pickle is code): the risk list says why it is missing
    release = config.prod_deployment_path.resolve().name
    assert f"release {release} is refused: its model cannot be verified: h{problem[1:]}." in text
    status = page[page.index('id="status"') : page.index('id="quality"')]
    assert re.findall(r"<h3>(Last run|Cron) <strong class=\"badge unknown\">(\w+)</strong>", status) == [
        ("Last run", "UNKNOWN"),
        ("Cron", "UNKNOWN"),
    ]
    assert page.count("Not shown: the history cannot be used (see Status).") == 4  # chart, drift, runs, audit


# --- with a token: a login for browsers ---------------------------------------------------------


@pytest.fixture
def guarded(history_project, monkeypatch):
    monkeypatch.setenv("API_TOKEN", TOKEN)
    return create_app(history_project).test_client()


def test_with_a_token_the_page_sends_a_browser_to_the_login_form(guarded):
    response = guarded.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/")
    form = guarded.get(response.headers["Location"]).get_data(as_text=True)
    assert '<form class="login" method="post" action="/login">' in form
    assert 'name="token" type="password"' in form


def test_a_wrong_token_is_refused(guarded):
    response = guarded.post("/login", data={"token": "wrong", "next": "/"})
    assert response.status_code == 401 and "That token is not the right one." in response.get_data(as_text=True)
    assert guarded.get("/").status_code == 302


def test_a_login_form_over_a_form_fields_limit_is_a_413_before_any_token_is_compared(guarded):
    response = guarded.post("/login", data={"token": "x" * MAX_FORM_FIELD_BYTES, "next": "/"})
    assert (response.status_code, response.get_json()) == (413, {"error": TOO_LARGE})
    assert guarded.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 302  # no wrong guess counted


def test_the_right_token_logs_in_until_logout(guarded):
    response = guarded.post("/login", data={"token": TOKEN, "next": "/?client=qqqq"})
    assert response.status_code == 302 and response.headers["Location"] == "/?client=qqqq"
    page = guarded.get("/")
    assert page.status_code == 200 and "Log out" in page.get_data(as_text=True)
    assert guarded.get("/toprisk.csv?n=5").get_data(as_text=True).count("\n") == 6
    assert guarded.post("/logout").status_code == 302
    assert guarded.get("/").status_code == 302
    assert guarded.get("/toprisk.csv?n=5").status_code == 302


@pytest.mark.parametrize(
    "target, location",
    [
        ("/?client=qqqq", "/?client=qqqq"),
        ("/toprisk.csv?n=20", "/toprisk.csv?n=20"),
        ("//evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\n/evil.example/", "/"),  # was a 500
        ("/\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_a_login_sends_the_browser_to_next_only_when_it_is_a_local_path(guarded, target, location):
    form = guarded.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert f'<input type="hidden" name="next" value="{html.escape(location)}">' in form
    response = guarded.post("/login", data={"token": TOKEN, "next": target})
    assert (response.status_code, response.headers["Location"]) == (302, location)


def test_after_logout_the_page_offers_no_logout_and_the_old_cookie_is_sent_to_the_login(guarded):
    guarded.post("/login", data={"token": TOKEN, "next": "/"})
    cookie = guarded.get_cookie("session").value
    assert "Log out" in guarded.get("/").get_data(as_text=True)
    assert guarded.post("/logout").headers["Location"] == "/login"
    guarded.set_cookie("session", cookie)
    response = guarded.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/")
    again = guarded.post("/logout")  # a second click, or another tab: nothing left to end, back to the form
    assert (again.status_code, again.headers["Location"]) == (302, "/login")


# --- the chart, as a pure function ------------------------------------------------------------


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def synthetic_trend(checks: int, step: timedelta, start=datetime(2026, 11, 27, 18, 30, tzinfo=UTC)) -> dict:
    """`checks` F1 checks `step` apart (every fifth one a drift), a bootstrap before, a redeploy mid-way."""
    rows = [
        {
            "at": at(start + (i + 1) * step),
            "value": 0.5 if i % 5 == 4 else 0.8,
            "low": 0.45 if i % 5 == 4 else 0.75,
            "high": 0.55 if i % 5 == 4 else 0.85,
            "reference": 0.8,
            "n": 500,
            "outcome": "drift" if i % 5 == 4 else "no drift",
            "release_before": "r1",
        }
        for i in range(checks)
    ]
    moves = [
        {
            "at": at(start),
            "from_release": None,
            "to_release": "r1",
            "reason": "bootstrap",
            "actor": "cron",
            "model_id": "m1",
        }
    ]
    if checks >= 5:
        moves.append(
            {
                "at": at(start + 5.5 * step),
                "from_release": "r1",
                "to_release": "r2",
                "reason": "rollback",
                "actor": "ann",
                "model_id": "m0",
            }
        )
    return {"checks": rows, "deployments": moves}


def svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [element.text for element in root.iter("{http://www.w3.org/2000/svg}text") if element.text]


@pytest.mark.parametrize("checks", [0, 1, 2, 60])
def test_the_trend_svg_is_a_small_scalable_svg_with_text_as_text(checks):
    svg = charts.trend_svg(synthetic_trend(checks, timedelta(days=7)))
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "100%" and root.get("height") is None and len(root.get("viewBox").split()) == 4
    assert "<image" not in svg and "<font" not in svg and "DejaVuSans-" not in svg  # no embedded glyphs
    assert "F1" in svg_texts(svg) and len(svg) < 120_000


def test_with_no_check_the_chart_says_so_and_keeps_the_deployments():
    trend = synthetic_trend(0, timedelta(days=1))
    assert "No F1 check yet: the first run with new data adds a point" in svg_texts(charts.trend_svg(trend))
    assert (
        charts.trend_text(trend)
        == "F1 on new data: no check yet; deployments: 2026-11-27 18:30 bootstrap to model m1 by cron."
    )
    empty = {"checks": [], "deployments": []}
    assert charts.trend_text(empty) == "F1 on new data: no check yet; no deployment yet."


def test_one_check_is_said_with_its_interval_and_what_was_expected():
    text = charts.trend_text(synthetic_trend(1, timedelta(days=1)))
    assert text == (
        "F1 on new data: 0.80 [0.75, 0.85] on 2026-11-28 18:30 (expected 0.80: no drift); "
        "deployments: 2026-11-27 18:30 bootstrap to model m1 by cron."
    )


def test_many_checks_are_summed_up_and_the_last_ten_listed():
    text = charts.trend_text(synthetic_trend(60, timedelta(days=7)))
    assert text.startswith(
        "F1 on new data over 60 checks, lowest 0.50 on 2027-01-01 18:30, highest 0.80 on 2026-12-04 18:30; "
    )
    assert text.count(" then ") == 9 and "rollback to model m0 by ann" in text


def test_checks_seconds_apart_get_whole_times_on_the_axis_and_in_words():
    trend = synthetic_trend(6, timedelta(seconds=3))
    labels = svg_texts(charts.trend_svg(trend))
    assert any(re.fullmatch(r"18:30:\d\d", label) for label in labels), labels
    assert "2026-11-27 18:30:03 (expected 0.80: no drift)" in charts.trend_text(trend)


def test_a_burst_of_checks_after_a_long_pause_is_drawn_in_order():
    trend = synthetic_trend(1, timedelta(days=1))
    burst = synthetic_trend(5, timedelta(seconds=10), start=datetime(2027, 3, 1, tzinfo=UTC))["checks"]
    trend["checks"] += burst
    labels = svg_texts(charts.trend_svg(trend))
    assert "runs in time order (UTC; spacing not to scale)" in labels


def test_deployments_and_rollbacks_are_labelled_on_the_chart_by_their_reason():
    labels = svg_texts(charts.trend_svg(synthetic_trend(6, timedelta(days=1))))
    assert [label for label in labels if label in ("bootstrap", "rollback", "drift", "manual")] == [
        "bootstrap",
        "rollback",
    ]


@pytest.mark.parametrize(
    "spans, levels",
    [
        ([(0.1, 0.2), (0.5, 0.6)], [0, 0]),  # apart: both on the top level
        ([(0.1, 0.3), (0.25, 0.4)], [0, 1]),  # overlapping: the second below
        ([(0.1, 0.3), (0.2, 0.4), (0.28, 0.45)], [0, 1, None]),  # no room left: thinned
        ([(0.1, 0.3), (0.2, 0.4), (0.35, 0.5)], [0, 1, 0]),  # room again on the top level
        ([(0.6, 0.8), (0.7, 0.9)], [0, 1]),
    ],
)
def test_deployment_labels_take_the_first_level_where_they_overlap_no_other(spans, levels):
    assert charts.label_levels(spans) == levels


@pytest.mark.parametrize("size", [charts.FIGURE_SIZE, charts.WIDE_SIZE])
def test_many_deployments_close_together_never_overlap_their_labels_and_the_words_name_them_all(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    trend = synthetic_trend(4, timedelta(days=1))
    start = datetime(2026, 12, 1, tzinfo=UTC)
    trend["deployments"] += [
        {"at": (start + timedelta(minutes=i)).isoformat(), "reason": "rollback", "model_id": f"r{i}", "actor": "ann"}
        for i in range(8)
    ]
    figure = charts.trend_figure(trend, size)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in figure.axes[0].texts if text.get_text() == "rollback"]
    assert 2 <= len(boxes) < 8  # some drawn, the crowded ones thinned
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert charts.trend_text(trend).count(" rollback to model") == 8  # the words name every one


def test_the_inline_svg_names_no_url_and_the_png_is_a_png():
    trend = synthetic_trend(6, timedelta(days=1))
    inline = charts.trend_svg(trend, inline=True)
    assert inline.startswith("<svg ") and "http" not in inline and "xlink:" not in inline
    png = charts.trend_png(trend)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000


def test_the_chart_route_serves_a_standalone_svg(page_client):
    response = page_client.get("/charts/trend.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert ET.fromstring(response.get_data(as_text=True)).tag == "{http://www.w3.org/2000/svg}svg"


def cron_card(page: str) -> str:
    status = page[page.index('id="status"') : page.index('id="quality"')]
    return re.sub(r"\s+", " ", status[status.index("<h3>Cron") :])


def test_a_run_by_hand_is_not_crons_heartbeat_the_card_says_no_cron_run_yet_and_who_ran_it(
    trained_project, config, monkeypatch
):
    import deployment

    monkeypatch.setenv("RISK_ACTOR", "ann@box")
    deployment.deploy(config)  # a run by hand: it leaves ann's heartbeat, not cron's
    (beat,) = query(config, "SELECT checked_at FROM heartbeats WHERE actor = 'ann@box'")
    card = cron_card(create_app(config).test_client().get("/").get_data(as_text=True))
    assert card.startswith('<h3>Cron <strong class="badge unknown">NO CRON RUN YET</strong></h3>')
    assert (
        f'Last run by hand: ann@box, <time datetime="{beat["checked_at"]}">{beat["checked_at"][:16].replace("T", " ")}'
        "</time> UTC (just now): deployed by hand." in card
    )
    with history.opened(config.history_path) as conn:
        history.beat(conn, str(config.config_path), "no new data", "cron")
    card = cron_card(create_app(config).test_client().get("/").get_data(as_text=True))
    assert card.startswith('<h3>Cron <strong class="badge ok">ON TIME</strong></h3>') and "ann@box" not in card


def test_a_late_cron_is_said_in_words_as_well_as_colour(config):
    from risk import history

    with history.opened(config.history_path) as conn, conn:
        conn.execute(
            "INSERT INTO heartbeats (config_path, checked_at, outcome, actor) VALUES (?, ?, ?, 'cron')",
            (str(config.config_path), "2026-01-01T00:00:00.000Z", "no new data"),
        )
    page = create_app(config).test_client().get("/").get_data(as_text=True)
    status = page[page.index('id="status"') : page.index('id="quality"')]
    assert '<article class="card bad">\n      <h3>Cron <strong class="badge bad">LATE</strong></h3>' in status
    assert 'No check since <time datetime="2026-01-01T00:00:00.000Z">2026-01-01 00:00</time> UTC' in status


@pytest.mark.parametrize(
    "before, words",
    [
        (timedelta(seconds=-120), "in the future (is a clock wrong?)"),
        (timedelta(seconds=59), "just now"),
        (timedelta(minutes=5, seconds=59), "5 min ago"),
        (timedelta(hours=3), "3 h ago"),
        (timedelta(days=1, hours=23), "1 day ago"),
        (timedelta(days=40), "40 days ago"),
    ],
)
def test_ages_are_said_in_words(before, words):
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert charts.ago(at(now - before), now) == words


# --- the one health verdict ------------------------------------------------------------------------


def test_the_page_says_the_live_models_health_first_in_words_a_manager_reads(page, history_project):
    (check,) = query(history_project, "SELECT run_id, state FROM monitoring ORDER BY id DESC LIMIT 1")
    (measured,) = query(
        history_project, "SELECT value, n FROM verdicts WHERE run_id = ? AND kind = 'performance'", (check["run_id"],)
    )
    (reference,) = query(history_project, "SELECT f1 FROM model_references ORDER BY id DESC LIMIT 1")
    words = (
        f"The risk list comes from a model that scored F1 {measured['value']:.2f} on the latest data"
        f" ({measured['n']:,} clients), as expected ({reference['f1']:.2f}): it can be trusted."
    )
    status = html.unescape(page[page.index('id="status"') : page.index('id="quality"')])
    banner = re.sub(r"<[^>]+>", "", status[status.index('id="health"') :].split("</p>")[0])
    assert check["state"] == "healthy" and banner.split(">", 1)[1].strip() == f"HEALTHY {words}"


def test_a_model_measured_poor_is_degraded_in_words_even_after_a_rollback_brought_it_back(tmp_path):
    conn = history.connect(tmp_path / "history.db")
    with conn:
        history.record_model(conn, {"id": "m1", "trained_at": "t", "origin": "trained"})
        history.add_reference(conn, {"model_id": "m1", "kind": "validation", "f1": 0.79})
        run_id = history.insert(conn, "runs", {"started_at": "t", "config_path": "c", "actor": "a", "trigger": "t"})
        history.record_verdicts(
            conn,
            run_id,
            [{"kind": "performance", "statistic": "f1", "outcome": "drift", "detail": "d", "value": 0.39, "n": 10_000}],
        )
        file_id = history.insert(
            conn,
            "files",
            {
                "folder": "f",
                "name": "a.csv",
                "sha256": "s",
                "size": 1,
                "mtime_ns": 1,
                "first_seen_at": "t",
                "status": "accepted",
            },
        )
        history.decide_files(conn, [file_id], run_id, "decided")
        history.record_check(
            conn,
            {
                "run_id": run_id,
                "model_id": "m1",
                "files": [file_id],
                "rows": 10_000,
                "counts": [1, 1, 1, 1],
                "cusum": 1.0,
                "window_checks": 1,
                "window_counts": [1, 1, 1, 1],
                "flagged": 0,
                "state": "degraded",
                "state_since": "2026-12-01T10:00:00.000Z",
                "evidence": "degraded: the sentence",
            },
        )
    health = overview.health(conn, "m1")
    conn.close()
    assert (health["verdict"], health["f1"], health["expected"], health["since"]) == (
        "degraded",
        0.39,
        0.79,
        "2026-12-01T10:00:00.000Z",
    )
    assert health["words"] == (
        "The risk list comes from a model that scored F1 0.39 on the latest data (10,000 clients), below its"
        " expected 0.79: treat it with care."
    )


def test_a_refused_live_model_is_said_first_and_the_page_is_a_503(trained_project, config):
    model = config.prod_deployment_path / "trainedmodel.pkl"
    model.write_bytes(model.read_bytes() + b"\n")  # unpickles the same, but is not the recorded file
    response = create_app(config).test_client().get("/")
    page = html.unescape(response.get_data(as_text=True))
    banner = re.sub(r"<[^>]+>", "", page[page.index('id="health"') :].split("</p>")[0]).split(">", 1)[1].strip()
    release = config.prod_deployment_path.resolve().name
    assert response.status_code == 503 and banner.startswith(f"REFUSED There is no risk list: release {release} is")
    assert banner.endswith("Deploy a good model, or roll back to a release that is kept whole.")


def test_after_a_rollback_the_last_run_card_says_its_release_is_no_longer_live_and_is_not_green(
    history_project, tmp_path
):
    root = tmp_path / "copy"
    shutil.copytree(history_project.config_path.parent, root, symlinks=True)
    config = load_config(root / "config.json")
    with sqlite3.connect(config.history_path) as conn:  # the runs of this copy's config, as they were of the original
        conn.execute("UPDATE runs SET config_path = ?", (str(config.config_path),))
        conn.execute("UPDATE heartbeats SET config_path = ?", (str(config.config_path),))
    left = config.prod_deployment_path.resolve().name
    deployment.rollback(config)
    page = html.unescape(create_app(config).test_client().get("/").get_data(as_text=True))
    card = page[page.index("<h3>Last run") : page.index("<h3>Cron")]
    card_class = page[: page.index("<h3>Last run")].rsplit('<article class="card ', 1)[1].split('"')[0]
    text = re.sub(r"<[^>]+>", "", card)
    assert card_class == "unknown" and "NO LONGER LIVE" in text and f"the release it left, {left}, is not" in text
    assert 'class="badge ok">BETTER' not in card  # no green gate verdict for a release that is not live
