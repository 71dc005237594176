"""Step 4: the deployed model's confusion matrix, the ranked risk list and a PDF report for people.

Config keys: prod_deployment_path (the deployed model and its file record), test_data_path,
output_folder_path (finaldata.csv, ingestionmetrics.json), history_path (read only: the live model's
record, the newest verdicts and the F1 trend for page 1), output_model_path (writes confusionmatrix.png,
trend.png, riskranking.csv, riskunscored.csv and report.pdf there, each atomically).
Page 1 is for the chief data scientist at a glance, its facts from overview.page_context as the dashboard's
are; the sections after it are the course's report.
"""

import argparse
import contextlib
import io
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

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


def ingested_files_table(prod_deployment_path: Path, metrics_path: Path) -> list[list[str]]:
    """Rows of (file, rows, first ingested) for the files the deployed model learned from."""
    names = artifacts.read_lines(prod_deployment_path / INGESTEDFILES_FILE)
    try:
        record = json.loads(metrics_path.read_text(encoding="utf-8"))
        details = {item["name"]: item for item in record["files_read"]}
    except (OSError, ValueError, KeyError, TypeError):
        details = {}
    return [
        [
            name,
            str(details.get(name, {}).get("rows", "?")),
            details.get(name, {}).get("first_ingested_at", "?").replace("T", " ").removesuffix("+00:00"),
        ]
        for name in names
    ]


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
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
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
        "ingested": ingested_files_table(release, config.output_folder_path / INGESTION_METRICS_FILE),
        "top_risk": page["top"],
        "ranked": ranked,
        "unscored": unscored,
        "page": page,
        "trend_png": charts.trend_png(page["trend"]),
    }


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
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

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


def pdf_section(title, *flowables):
    """A heading kept on one page with what follows it."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import KeepTogether, Paragraph, Spacer

    heading = Paragraph(title, getSampleStyleSheet()["Heading2"])
    return KeepTogether([Spacer(1, 0.35 * cm), heading, *flowables])


def page_one(data: dict) -> list:
    """Page 1, for the chief data scientist in one look: the live model and why, the newest verdicts in
    numbers, the data-drift flags, the F1 trend and the ten clients most at risk with their reasons."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, KeepInFrame, Paragraph, Spacer

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8.5, leading=10.5, spaceBefore=0, spaceAfter=1.5)
    heading = styles["Heading3"].clone("h3", spaceBefore=5, spaceAfter=2)
    page = data["page"]
    flowables = [
        Paragraph("Client exit risk: model report", styles["Title"]),
        Paragraph(f"Generated {data['generated_at']} &middot; deployed release {data['release']}", styles["Normal"]),
    ]
    if page["note"]:
        flowables.append(Paragraph(f"<b>{escape(page['note'])}</b>", small))
    health = page["live"].get("health")
    if health:
        flowables.append(Paragraph(f"<b>{health['verdict'].upper()}.</b> {escape(health['words'])}", styles["Normal"]))
    flowables += [Paragraph("Live model", heading), live_table(data, small)]
    flowables += [Paragraph("Last verdict", heading), *verdict_paragraphs(page["judged_run"], small)]
    flowables += [Paragraph("Data drift", heading), *drift_flowables(page, small)]
    width = 12 * cm
    flowables += [
        Paragraph("The live model's F1 on new data over time", heading),
        Image(io.BytesIO(data["trend_png"]), width=width, height=width * charts.FIGURE_SIZE[1] / charts.FIGURE_SIZE[0]),
        Paragraph(f"The {PAGE_ONE_CLIENTS} clients most at risk", heading),
        top_clients_table(page["top"][:PAGE_ONE_CLIENTS], small),
    ]
    if page["unscored"]:
        flowables.append(
            Paragraph(
                f"{len(page['unscored'])} client(s) cannot be scored (a feature is missing): "
                f"see {artifacts.UNSCORED_FILE}.",
                small,
            )
        )
    flowables.append(Spacer(1, 0.1 * cm))
    return [KeepInFrame(17 * cm, 25.4 * cm, flowables, mode="shrink")]


def percent(probability: float) -> str:
    """A probability for people: one decimal, and the ends as bounds (99.97 % is not 100 %)."""
    if probability >= 0.9995:
        return ">99.9%"
    return "<0.1%" if probability < 0.0005 else f"{probability:.1%}"


def escape(text) -> str:
    """Text for a reportlab Paragraph, which reads a little markup."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def f1_words(value, low=None, high=None) -> str:
    if value is None:
        return "not recorded"
    return f"{value:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else "")


def live_table(data: dict, style):
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph

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
        ["Test F1", f"{data['metrics']['F1']:.4f} on {data['test_rows']} test clients"],
    ]
    if reference:
        rows.append(
            [
                "Expected on new data",
                f"F1 {f1_words(reference['f1'])} ({reference['kind']}, {reference['rows'] or '?'} rows)",
            ]
        )
    if live.get("state"):
        since = f" since {charts.time_words(live['state_since'])} UTC" if live.get("state_since") else ""
        rows.append(["State", f"{live['state']}{since}: {live['evidence']}"])
    cells = [[Paragraph(f"<b>{name}</b>", style), Paragraph(escape(value), style)] for name, value in rows]
    return pdf_table(cells, widths=[3.6 * cm, 13.4 * cm], header=False)


def verdict_paragraphs(run: dict | None, style) -> list:
    from reportlab.platypus import Paragraph

    if run is None:
        return [
            Paragraph("No verdict yet: the first run of fullprocess.py with new data judges the live model.", style)
        ]
    decision = run["decision"] or ("in progress: this report is part of it" if run["state"] == "running" else "none")
    lines = [
        f"Run {run['id']}, {charts.time_words(run['started_at'])} UTC ({run['trigger']}): <b>{escape(decision)}</b>"
    ]
    for verdict in run["verdicts"]:
        if verdict["kind"] in ("performance", "gate"):
            lines.append(f"<b>{verdict['kind'].capitalize()}</b>: {escape(verdict['detail'])}")
    return [Paragraph(line, style) for line in lines]


def drift_flowables(page: dict, style) -> list:
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph

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


def top_clients_table(top: list[dict], style):
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph

    rows = [["Rank", "Client", "Exit probability", "Why"]]
    for item in top:
        rows.append(
            [
                str(item["rank"]),
                item["corporation"],
                percent(item["probability"]),
                Paragraph(escape(item["reason"]), style),
            ]
        )
    return pdf_table(rows, widths=[1.3 * cm, 2 * cm, 2.9 * cm, 10.8 * cm], align_right_from=2)


def report_story(data: dict) -> list:
    """The report's content, top to bottom, as reportlab flowables: page 1, then the sections."""
    from reportlab.platypus import PageBreak

    return [*page_one(data), PageBreak(), *model_sections(data), *data_sections(data)]


def model_sections(data: dict) -> list:
    """The course's sections about the model: scores, confusion matrix, the clients most at risk."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, Spacer

    styles = getSampleStyleSheet()
    metrics = data["metrics"]
    return [
        pdf_section(
            "Deployed model on the test data",
            pdf_table(
                [["Metric", "Value"]] + [[name, f"{value:.4f}"] for name, value in metrics.items()],
                widths=[5 * cm, 3 * cm],
            ),
            Spacer(1, 0.2 * cm),
            Paragraph(f"Scored on {data['test_rows']} test clients.", styles["Normal"]),
        ),
        pdf_section(
            "Confusion matrix",
            Image(io.BytesIO(data["confusion_png"]), width=10.4 * cm, height=8.8 * cm),
            pdf_table(
                [["Actual", "Predicted to stay", "Predicted to exit"]]
                + [[name, str(row[0]), str(row[1])] for name, row in zip(CLASS_NAMES, data["confusion"], strict=True)],
                widths=[4 * cm, 4 * cm, 4 * cm],
            ),
        ),
        pdf_section(
            f"The {len(data['top_risk'])} clients most at risk of exiting",
            Paragraph(
                "From each client's latest row in the ingested data, highest risk first.",
                styles["Normal"],
            ),
            Spacer(1, 0.15 * cm),
            pdf_table(
                [["Rank", "Corporation", "Exit probability"]]
                + [
                    [str(rank), item["corporation"], percent(item["probability"])]
                    for rank, item in enumerate(data["top_risk"], 1)
                ],
                widths=[1.5 * cm, 4 * cm, 4 * cm],
                align_right_from=2,
            ),
        ),
    ]


def data_sections(data: dict) -> list:
    """The course's sections about the data and the pipeline: statistics, timings, dependencies, files."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph

    cell = getSampleStyleSheet()["BodyText"].clone("cell", fontSize=9, leading=11)
    return [
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
                widths=[5 * cm, 2.5 * cm, 6 * cm],
                align_right_from=1,
            ),
        ),
    ]


def build_pdf(data: dict) -> bytes:
    """The report as PDF bytes (reportlab)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import cm
    from reportlab.platypus import SimpleDocTemplate

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
    riskunscored.csv, report.pdf, each written atomically); returns their paths by name."""
    started = time.perf_counter()
    logger.info("reporting started for %s", config.prod_deployment_path)
    data = gather_report_data(config)
    paths = {
        "confusion_matrix": config.output_model_path / CONFUSION_MATRIX_FILE,
        "trend": config.output_model_path / artifacts.TREND_FILE,
        "ranking": config.output_model_path / artifacts.RANKING_FILE,
        "unscored": config.output_model_path / artifacts.UNSCORED_FILE,
        "report": config.output_model_path / REPORT_FILE,
    }
    atomic_write_bytes(paths["confusion_matrix"], data["confusion_png"])
    atomic_write_bytes(paths["trend"], data["trend_png"])
    write_csv(paths["ranking"], ranking.csv_table(data["ranked"]))
    write_csv(paths["unscored"], data["unscored"])
    atomic_write_bytes(paths["report"], build_pdf(data))
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
    with script_config() as config:
        return report(config)


if __name__ == "__main__":
    main()
