"""Step 4: the deployed model's confusion matrix, the ranked risk list and a PDF report for people.

Config keys: prod_deployment_path (the deployed model and its file record), test_data_path,
output_folder_path (finaldata.csv, ingestionmetrics.json), history_path (read only: the live model's
record, the newest verdicts and the F1 trend for page 1), output_model_path (writes confusionmatrix.png,
trend.png, riskranking.csv, riskunscored.csv, report.pdf and reportsummary.json there, each atomically).
Page 1 is for a manager: the live model's health verdict, what changed since the last report (read from
reportsummary.json, which each report leaves beside it) and the clients to call with why; page 2 the live
model in detail, for the data scientist; the course's sections follow as an appendix. Their facts come from
overview.page_context, as the dashboard's do.
"""

import argparse
import contextlib
import io
import json
import logging
import time
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    CondPageBreak,
    Image,
    KeepInFrame,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from risk import artifacts, charts, diagnosis, history, overview, ranking, registry
from risk.artifacts import (
    CONFUSION_MATRIX_FILE,
    INGESTEDFILES_FILE,
    INGESTION_METRICS_FILE,
    REPORT_FILE,
)
from risk.config import Config, atomic_write_bytes, atomic_writer
from risk.contract import TARGET
from risk.logs import script_config
from risk.model import complete_rows, predict

logger = logging.getLogger(__name__)


CLASS_NAMES = ["stays (0)", "exits (1)"]
PAGE_ONE_CLIENTS = 10
TEST_CAVEAT = (
    "on the fixed test set, never renewed: it tells how the model does on the clients the course set aside,"
    " not on today's (the F1 on new data does)"
)
HEALTH_COLOURS = {"healthy": "#e3f4e8", "degraded": "#fde4e1", "unproven": "#fff2d6"}
NO_HISTORY = (
    "No history database yet (the steps were run as plain scripts): the deployment record, the verdicts"
    " and the F1 trend start with the first run of fullprocess.py."
)


def plot_confusion_matrix(y_true, y_pred, title: str) -> bytes:
    """A labelled confusion-matrix heatmap with counts, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # headless: cron and servers have no display
    import matplotlib.pyplot as plt
    import seaborn as sns

    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    figure, axes = plt.subplots(figsize=(5.2, 4.4), dpi=150)
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=False,
        xticklabels=CLASS_NAMES,
        yticklabels=CLASS_NAMES,
        annot_kws={"size": 16},
        ax=axes,
    )
    axes.set_xlabel("Predicted")
    axes.set_ylabel("Actual")
    axes.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def model_metrics(y_true, y_pred) -> dict[str, float]:
    return {
        "F1": float(f1_score(y_true, y_pred, zero_division=0.0)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0.0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0.0)),
    }


def ingested_files_table(prod_deployment_path: Path, metrics_path: Path, seen: dict[str, dict]) -> list[list[str]]:
    """Rows of (file, rows, first ingested) for the files the deployed model learned from: from the history
    (`seen`, by name: the version the model card names) or else the latest ingestion's metrics, where
    ingestion writes each file's first_seen_at; a file found in neither says so instead of a value."""
    names = artifacts.read_lines(prod_deployment_path / INGESTEDFILES_FILE)
    try:
        record = json.loads(metrics_path.read_text(encoding="utf-8"))
        details = {item["name"]: item for item in record["files_read"]}
    except (OSError, ValueError, KeyError, TypeError):
        details = {}
    rows = []
    for name in names:
        item = seen.get(name) or details.get(name) or {}
        count = f"{item['rows']:,}" if item.get("rows") is not None else "not recorded"
        first = charts.time_words(item["first_seen_at"]) if item.get("first_seen_at") else "not recorded"
        rows.append([name, count, first])
    return rows


def files_seen(config: Config, card: dict | None) -> dict[str, dict]:
    """The history's record (rows, first_seen_at) of each file the model card says the model learned
    from (its folder, name and SHA-256), by name; {} without a history or a card naming them."""
    files = [file for file in (card or {}).get("training_files") or [] if file.get("sha256")]
    try:
        conn = history.connect_readonly(config.history_path) if files else None
    except history.HistoryError:
        return {}
    if conn is None:
        return {}
    seen = {}
    with contextlib.closing(conn):
        for file in files:
            row = history.select_one(
                conn,
                "SELECT rows, first_seen_at FROM files WHERE folder = ? AND name = ? AND sha256 = ?"
                " ORDER BY id LIMIT 1",
                (file.get("folder"), file["name"], file["sha256"]),
            )
            if row:
                seen[file["name"]] = row
    return seen


def package_status(item: dict) -> str:
    if item["latest"].startswith(("unknown", "not checked")):
        return "not checked"
    return "up to date" if item["latest"] == item["installed"] else "update available"


def gather_report_data(config: Config) -> dict:
    """Everything the report shows, computed from the deployed model and the pipeline's files."""
    model, release = registry.load_live_model(config)  # verified against the history before it is unpickled
    testdata = complete_rows(diagnosis.read_data(artifacts.testdata_path(config)))
    y_pred, _ = predict(model, testdata)
    finaldata = diagnosis.read_data(artifacts.finaldata_path(config))
    card = registry.read_card(release)
    ranked, unscored = ranking.risk_table(finaldata, model, ranking.training_means(card, finaldata))
    page = page_facts(config, (ranked, unscored, release.name))
    now = history.utc_now()
    summary = report_summary(now, page)
    previous = read_summary(config.output_model_path / artifacts.REPORT_SUMMARY_FILE)
    return {
        "generated_at": f"{charts.time_words(now)} UTC",
        "summary_record": summary,
        "changes": changes_since(previous, summary, page["audit"], page["runs"]),
        "release": release.name,
        "test_rows": len(testdata),
        "metrics": model_metrics(testdata[TARGET], y_pred),
        "confusion": confusion_matrix(testdata[TARGET], y_pred, labels=[0, 1]).tolist(),
        "confusion_png": plot_confusion_matrix(
            testdata[TARGET], y_pred, f"Deployed model on the test data ({len(testdata)} clients)"
        ),
        "summary": diagnosis.summarize(finaldata),
        "missing": diagnosis.missing_percentages(finaldata),
        "timings": diagnosis.execution_details(config),
        "outdated": diagnosis.outdated_packages_list(config),
        "ingested": ingested_files_table(
            release, config.output_folder_path / INGESTION_METRICS_FILE, files_seen(config, card)
        ),
        "top_risk": page["top"],
        "ranked": ranked,
        "unscored": unscored,
        "page": page,
        "trend_png": charts.trend_png(page["trend"]),
    }


def report_summary(now: str, page: dict) -> dict:
    """What the next report compares itself with (reportsummary.json): when, the live release and model,
    its health verdict and the clients to call."""
    health = page["live"].get("health") or {}
    return {
        "generated_at": now,
        "release": page["live"].get("release"),
        "model_id": page["live"].get("model_id"),
        "health": health.get("verdict"),
        "to_call": [item["corporation"] for item in page["top"][:PAGE_ONE_CLIENTS]],
    }


def read_summary(path: Path) -> dict | None:
    """The last report's summary, or None when there was none (or it cannot be read: then nothing is compared)."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = {"generated_at", "release", "health", "to_call"}
    return summary if isinstance(summary, dict) and keys <= summary.keys() else None


def changes_since(previous: dict | None, current: dict, audit: list[dict], runs: list[dict]) -> list[str]:
    """What changed since the last report, in sentences: the releases that went live (from the deployment
    audit, newest first), the runs, the health verdict, and the clients to call who are new or gone."""
    if previous is None:
        return ["This is the first report here (no earlier one to compare with)."]
    since = previous["generated_at"]
    lines = [f"Since the last report, {charts.time_words(since)} UTC:"]
    moves = [row for row in audit if row["at"] > since][::-1]
    for row in moves:
        when = charts.time_words(row["at"])
        lines.append(f"{when} UTC: release {row['to_release']} went live ({row['reason']}, by {row['actor']}).")
    if not moves:
        lines.append(f"The same release is live ({current['release']}).")
    done = [run for run in runs if (run.get("started_at") or "") > since and run.get("decision")]
    if done:
        lines.append(f"{len(done)} run(s) of the full process; the latest: {done[0]['decision']}.")
    if previous["health"] != current["health"]:
        lines.append(f"Health: {previous['health'] or 'not known'}, now {current['health'] or 'not known'}.")
    else:
        lines.append(f"Health unchanged: {current['health'] or 'not known'}.")
    new = [code for code in current["to_call"] if code not in previous["to_call"]]
    gone = [code for code in previous["to_call"] if code not in current["to_call"]]
    if not new and not gone:
        lines.append("The same clients to call.")
    if new:
        lines.append(f"New among the clients to call: {', '.join(new)}.")
    if gone:
        lines.append(f"No longer among them: {', '.join(gone)}.")
    return lines


def page_facts(config: Config, risk: tuple) -> dict:
    """Page 1's facts: overview.page_context, the dashboard's own, over the history opened read-only, and
    `note`: why there are none from the history (no history yet, or one that cannot be used), or None."""
    try:
        conn = history.connect_readonly(config.history_path)
    except history.HistoryError as error:
        return {**overview.page_context(None, config, risk), "note": str(error)}
    if conn is None:
        return {**overview.page_context(None, config, risk), "note": NO_HISTORY}
    with contextlib.closing(conn):
        return {**overview.page_context(conn, config, risk), "note": None}


def pdf_table(rows, widths=None, align_right_from=1, header=True):
    """A report table: bold shaded header, banded rows, numbers right-aligned from a column on."""

    grid = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1 if header else 0)
    first = 1 if header else 0
    commands = [
        ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("ROWBACKGROUNDS", (0, first), (-1, -1), [colors.white, colors.HexColor("#f5f7fa")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c4")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    if header:
        commands += [
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
            ("ALIGN", (align_right_from, 1), (-1, -1), "RIGHT"),
        ]
    grid.setStyle(TableStyle(commands))
    return grid


def pdf_section(title, *flowables, level="Heading2") -> list:
    """A heading that starts a new page only when less than 3 cm are left; the rest flows (a long table
    splits, its header repeated on the next page), so that no section leaves a page half empty."""

    heading = getSampleStyleSheet()[level].clone("section", spaceBefore=14)
    return [CondPageBreak(3 * cm), Paragraph(title, heading), *flowables]


def page_one(data: dict) -> list:
    """Page 1, for a manager: the health verdict in words, what changed since the last report, and the ten
    clients to call with why (a reason most of them share said once, above the list)."""

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=9, leading=11.5, spaceBefore=0, spaceAfter=2)
    heading = styles["Heading3"].clone("h3", spaceBefore=8, spaceAfter=3)
    page = data["page"]
    flowables = [
        Paragraph("Client exit risk: model report", styles["Title"]),
        Paragraph(f"Generated {data['generated_at']} &middot; deployed release {data['release']}", styles["Normal"]),
        health_box(page, styles["Normal"]),
        Paragraph("What changed since the last report", heading),
        *[Paragraph(escape(line), small) for line in data["changes"]],
        Paragraph(f"The {PAGE_ONE_CLIENTS} clients to call", heading),
    ]
    top = page["top"][:PAGE_ONE_CLIENTS]
    shared = ranking.shared_reason(top)
    if shared:
        who = f"All {shared['of']}" if shared["count"] == shared["of"] else f"{shared['count']} of these {shared['of']}"
        flowables.append(
            Paragraph(
                f"{who} are here mainly for one reason:"
                f" <b>{escape(shared['words'])}</b>; their line gives just their number and what it adds.",
                small,
            )
        )
    flowables.append(top_clients_table(top, shared, small))
    flowables.append(
        Paragraph(
            "Exit risk: the model's probability that the client leaves. Why: the feature that adds the most to it,"
            " against the usual value (the median of all clients), in percentage points.",
            small,
        )
    )
    if page["unscored"]:
        flowables.append(
            Paragraph(
                f"{len(page['unscored'])} client(s) cannot be scored (a feature is missing): "
                f"see {artifacts.UNSCORED_FILE}.",
                small,
            )
        )
    return [KeepInFrame(17 * cm, 25.4 * cm, flowables, mode="shrink")]


def health_box(page: dict, style):
    """The live model's health verdict in a box coloured by it; without one, why not."""

    health = page["live"].get("health")
    big = style.clone("health", fontSize=11, leading=14.5)
    if health:
        text = f"<b>Health: {health['verdict'].upper()}.</b> {escape(health['words'])}"
        colour = HEALTH_COLOURS.get(health["verdict"], "#eef1f5")
    else:
        text = "<b>Health: NOT KNOWN.</b> " + escape(page["note"] or "The live model has no record in the history.")
        colour = "#eef1f5"
    box = Table([[Paragraph(text, big)]], colWidths=[17 * cm], hAlign="LEFT")
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(colour)),
                ("BOX", (0, 0), (-1, -1), 0.5, colors.HexColor("#8a94a3")),
                ("TOPPADDING", (0, 0), (-1, -1), 7),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    return box


def page_two(data: dict) -> list:
    """Page 2, for the data scientist: the live model, the last verdict in numbers, the data-drift flags
    and the F1 trend across the page's width."""

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8.5, leading=10.5, spaceBefore=0, spaceAfter=1.5)
    heading = styles["Heading3"].clone("h3", spaceBefore=6, spaceAfter=2)
    page = data["page"]
    flowables = [Paragraph("The live model in detail", styles["Heading2"])]
    if page["note"]:
        flowables.append(Paragraph(f"<b>{escape(page['note'])}</b>", small))
    flowables += [Paragraph("Live model", heading), live_table(data, small)]
    flowables += [Paragraph("Last verdict", heading), *verdict_paragraphs(page["judged_run"], small)]
    flowables += [Paragraph("Data drift", heading), *drift_flowables(page, small)]
    width = 17 * cm
    flowables += [
        Paragraph("The live model's F1 on new data over time", heading),
        Image(io.BytesIO(data["trend_png"]), width=width, height=width * charts.WIDE_SIZE[1] / charts.WIDE_SIZE[0]),
    ]
    return flowables


def escape(text) -> str:
    """Text for a reportlab Paragraph, which reads a little markup."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def f1_words(value, low=None, high=None) -> str:
    if value is None:
        return "not recorded"
    return f"{value:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else "")


def live_table(data: dict, style):

    live = data["page"]["live"]
    since = "not recorded in the history"
    if live.get("since"):
        since = f"{charts.time_words(live['since'])} UTC: {live['reason']}, by {live['actor']}"
    reference = live.get("reference")
    rows = [
        ["Release", live.get("release") or data["release"]],
        ["Model", live.get("model_id") or "unknown"],
        ["Live since", since],
        [
            "Validation F1",
            f1_words(live.get("validation_f1"), live.get("validation_low"), live.get("validation_high"))
            + (f" on {live['window']}" if live.get("window") else ""),
        ],
        ["Test F1", f"{data['metrics']['F1']:.4f} on {data['test_rows']} test clients, {TEST_CAVEAT}"],
    ]
    if reference:
        rows.append(
            [
                "Expected on new data",
                f"F1 {f1_words(reference['f1'])} ({reference['kind']}, "
                + (f"{reference['rows']:,} rows)" if reference["rows"] else "its row count not recorded)"),
            ]
        )
    if live.get("state"):
        since = f" since {charts.time_words(live['state_since'])} UTC" if live.get("state_since") else ""
        rows.append(["State", f"{live['state']}{since}: {live['evidence']}"])
    cells = [[Paragraph(f"<b>{name}</b>", style), Paragraph(escape(value), style)] for name, value in rows]
    return pdf_table(cells, widths=[3.6 * cm, 13.4 * cm], header=False)


def verdict_paragraphs(run: dict | None, style) -> list:

    if run is None:
        return [
            Paragraph("No verdict yet: the first run of fullprocess.py with new data judges the live model.", style)
        ]
    decision = run["decision"] or "none recorded"
    lines = [
        f"Run {run['id']}, {charts.time_words(run['started_at'])} UTC ({run['trigger']}): <b>{escape(decision)}</b>"
    ]
    for verdict in run["verdicts"]:
        if verdict["kind"] in ("performance", "gate"):
            lines.append(f"<b>{verdict['kind'].capitalize()}</b>: {escape(verdict['detail'])}")
    return [Paragraph(line, style) for line in lines]


def drift_flowables(page: dict, style) -> list:

    features = [entry for entry in page["data_drift"] if "ks" in entry["checks"] or "psi" in entry["checks"]]
    if not features:
        return [Paragraph("No data-drift check yet.", style)]

    def number(check, key):
        return "-" if not check or check.get(key) is None else f"{check[key]:.3f}"

    rows = [["Feature", "Flagged", "KS D", "KS p", "PSI"]]
    for entry in features:
        ks, psi = entry["checks"].get("ks"), entry["checks"].get("psi")
        flag = "DRIFT" if entry["flagged"] else "no"
        rows.append([entry["feature"], flag, number(ks, "value"), number(ks, "p_value"), number(psi, "value")])
    drift = page["drift"]
    when = charts.time_words(drift["data_checked_at"])
    flowables = [
        Paragraph(
            f"Run {drift['data_run_id']}, {when} UTC: the new rows against the live model's reference rows.", style
        ),
        pdf_table(rows, widths=[4.5 * cm, 2 * cm, 2 * cm, 2 * cm, 2 * cm], align_right_from=2),
    ]
    rate = page["exit_rate"].get("rate change")
    if rate:
        flag = "DRIFT" if rate["outcome"] == "drift" else "no drift"
        flowables.append(Paragraph(f"<b>Exit rate ({flag})</b>: {escape(rate['detail'])}", style))
    return flowables


def top_clients_table(top: list[dict], shared: dict | None, style):
    """Rank, client, exit risk in words and why; a reason shared by most is given short."""

    rows = [["Rank", "Client", "Exit risk", "Why"]]
    for item in top:
        why = item["reason_short"] if shared and item["reason_key"] == shared["key"] else item["reason"]
        rows.append([str(item["rank"]), item["corporation"], item["risk"], Paragraph(escape(why), style)])
    return pdf_table(rows, widths=[1.2 * cm, 1.8 * cm, 2.2 * cm, 11.8 * cm], align_right_from=2)


def report_story(data: dict) -> list:
    """The report's content, top to bottom, as reportlab flowables: page 1, page 2, then the appendix,
    whose sections follow one another without a page break."""

    styles = getSampleStyleSheet()
    appendix = [
        CondPageBreak(10 * cm),  # with the test scores side by side with the confusion matrix
        Paragraph("Appendix: the course's sections", styles["Heading1"].clone("appendix", spaceBefore=18)),
        Paragraph("The deployed model on the fixed test set, the ingested data and the pipeline.", styles["Normal"]),
    ]
    return [*page_one(data), PageBreak(), *page_two(data), *appendix, *model_sections(data), *data_sections(data)]


def model_sections(data: dict) -> list:
    """The course's sections about the model: scores and confusion matrix on the test data, side by side."""

    styles = getSampleStyleSheet()
    metrics = data["metrics"]
    scores = pdf_table(
        [["Metric", "Value"]] + [[name, f"{value:.4f}"] for name, value in metrics.items()],
        widths=[3 * cm, 2.5 * cm],
    )
    counts = pdf_table(
        [["Actual", "Predicted to stay", "Predicted to exit"]]
        + [[name, str(row[0]), str(row[1])] for name, row in zip(CLASS_NAMES, data["confusion"], strict=True)],
        widths=[2.4 * cm, 2.9 * cm, 2.9 * cm],
    )
    caveat = styles["BodyText"].clone("caveat", fontSize=9, leading=11)
    left = [
        scores,
        Spacer(1, 0.2 * cm),
        Paragraph(f"Scored on {data['test_rows']} test clients, {TEST_CAVEAT}.", caveat),
        Spacer(1, 0.3 * cm),
        Paragraph("Confusion matrix", styles["Heading4"]),
        counts,
    ]
    side_by_side = Table(
        [[left, Image(io.BytesIO(data["confusion_png"]), width=7.6 * cm, height=6.4 * cm)]],
        colWidths=[9.2 * cm, 7.8 * cm],
        hAlign="LEFT",
    )
    side_by_side.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, 0), 0)])
    return pdf_section("Deployed model on the test data", side_by_side)


def data_sections(data: dict) -> list:
    """The course's sections about the data and the pipeline: statistics, timings, dependencies, files."""

    cell = getSampleStyleSheet()["BodyText"].clone("cell", fontSize=9, leading=11)
    sections = [
        pdf_section(
            "Summary statistics of the ingested data",
            pdf_table(
                [["Column", "Mean", "Median", "Std. dev."]]
                + [
                    [
                        column,
                        *("–" if stats[key] is None else f"{stats[key]:,.2f}" for key in ("mean", "median", "std")),
                    ]
                    for column, stats in data["summary"].items()
                ],
                widths=[5 * cm, 3 * cm, 3 * cm, 3 * cm],
            ),
        ),
        pdf_section(
            "Missing data",
            pdf_table(
                [["Column", "Missing"]] + [[column, f"{share:.2f} %"] for column, share in data["missing"].items()],
                widths=[5 * cm, 3 * cm],
            ),
        ),
        pdf_section(
            "Pipeline timings",
            pdf_table(
                [["Step", "Seconds", "Last run (UTC)"]]
                + [
                    [
                        row["step"],
                        "-" if row["seconds"] is None else f"{row['seconds']:.2f}",
                        (row["ran_at"] or row["source"])[:19].replace("T", " "),
                    ]
                    for row in data["timings"]
                ],
                widths=[5 * cm, 3 * cm, 5 * cm],
            ),
        ),
        pdf_section(
            "Dependencies",
            pdf_table(
                [["Package", "Installed", "Latest", "Status"]]
                + [
                    [
                        item["package"],
                        item["installed"],
                        Paragraph(item["latest"], cell),
                        package_status(item),
                    ]
                    for item in data["outdated"]
                ],
                widths=[3 * cm, 2.5 * cm, 7.5 * cm, 3 * cm],
                align_right_from=4,
            ),
        ),
        pdf_section(
            "Data the deployed model learned from",
            pdf_table(
                [["File", "Rows", "First ingested (UTC)"]] + data["ingested"],
                widths=[5 * cm, 3 * cm, 5 * cm],
                align_right_from=1,
            ),
        ),
    ]
    return [flowable for section in sections for flowable in section]


def build_pdf(data: dict) -> bytes:
    """The report as PDF bytes (reportlab)."""

    story = report_story(data)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title="Client exit risk: model report",
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=1.8 * cm,
        bottomMargin=1.8 * cm,
    )
    document.build(story)
    return buffer.getvalue()


def write_csv(path: Path, table) -> None:
    with atomic_writer(path) as handle:
        table.to_csv(handle, index=False, lineterminator="\n", float_format="%.6f")


def report(config: Config) -> dict[str, Path]:
    """The deployed model's reports in output_model_path (confusionmatrix.png, trend.png, riskranking.csv,
    riskunscored.csv, report.pdf, each written atomically) and last the report's summary (reportsummary.json),
    which the next report compares itself with; returns their paths by name."""
    started = time.perf_counter()
    logger.info("reporting started for %s", config.prod_deployment_path)
    data = gather_report_data(config)
    paths = {
        "confusion_matrix": config.output_model_path / CONFUSION_MATRIX_FILE,
        "trend": config.output_model_path / artifacts.TREND_FILE,
        "ranking": config.output_model_path / artifacts.RANKING_FILE,
        "unscored": config.output_model_path / artifacts.UNSCORED_FILE,
        "report": config.output_model_path / REPORT_FILE,
        "summary": config.output_model_path / artifacts.REPORT_SUMMARY_FILE,
    }
    atomic_write_bytes(paths["confusion_matrix"], data["confusion_png"])
    atomic_write_bytes(paths["trend"], data["trend_png"])
    write_csv(paths["ranking"], ranking.csv_table(data["ranked"]))
    write_csv(paths["unscored"], data["unscored"])
    atomic_write_bytes(paths["report"], build_pdf(data))
    atomic_write_bytes(paths["summary"], (json.dumps(data["summary_record"], indent=2) + "\n").encode())
    logger.info(
        "reporting finished in %.2fs: %s",
        time.perf_counter() - started,
        ", ".join(str(path) for path in paths.values()),
    )
    return paths


def main(argv=None) -> dict[str, Path]:
    """`python reporting.py`: the reports with the config RISK_CONFIG names (or config.json); a failure is one
    line and exit code 1."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    with script_config() as config, artifacts.run_lock(config, "reporting.py"):
        return report(config)


if __name__ == "__main__":
    main()
