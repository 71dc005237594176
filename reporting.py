"""Step 4: the deployed model's confusion matrix and a PDF report for people.

Config keys: prod_deployment_path (the deployed model and its file record), test_data_path,
output_folder_path (finaldata.csv, ingestionmetrics.json), output_model_path (writes
confusionmatrix.png and report.pdf there). Both files are written atomically.
"""

import io
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

import diagnostics
from risk import artifacts, ranking, registry
from risk.artifacts import (
    CONFUSION_MATRIX_FILE,
    INGESTEDFILES_FILE,
    INGESTION_METRICS_FILE,
    MODEL_FILE,
    REPORT_FILE,
)
from risk.config import Config, PipelineError, atomic_write_bytes, load_config, run_cli
from risk.contract import TARGET
from risk.model import complete_rows, load_model, predict

logger = logging.getLogger(__name__)

CLASS_NAMES = ["stays (0)", "exits (1)"]
TOP_RISK_COUNT = 20


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
    if item["latest"].startswith("unknown"):
        return "not checked"
    return "up to date" if item["latest"] == item["installed"] else "update available"


def gather_report_data(config: Config) -> dict:
    """Everything the report shows, computed from the deployed model and the pipeline's files."""
    release = artifacts.live_release(config.prod_deployment_path)
    if release is None:
        raise PipelineError(f"nothing is deployed at {config.prod_deployment_path}; run deployment.py first")
    model = load_model(release / MODEL_FILE)
    testdata = complete_rows(diagnostics.read_data(artifacts.testdata_path(config)))
    y_pred, _ = predict(model, testdata)
    finaldata = diagnostics.read_data(artifacts.finaldata_path(config))
    ranked, _ = ranking.risk_table(finaldata, model, ranking.training_means(registry.read_card(release), finaldata))
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "release": release.name,
        "test_rows": len(testdata),
        "metrics": model_metrics(testdata[TARGET], y_pred),
        "confusion_png": plot_confusion_matrix(
            testdata[TARGET], y_pred, f"Deployed model on the test data ({len(testdata)} clients)"
        ),
        "summary": diagnostics.summarize(finaldata),
        "missing": diagnostics.missing_percentages(finaldata),
        "timings": diagnostics.execution_details(config),
        "outdated": diagnostics.outdated_packages_list(config),
        "ingested": ingested_files_table(release, config.output_folder_path / INGESTION_METRICS_FILE),
        "top_risk": ranked.head(TOP_RISK_COUNT).to_dict("records"),
    }


def pdf_table(rows, widths=None, align_right_from=1):
    """A report table: bold shaded header, banded rows, numbers right-aligned from a column on."""
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    grid = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
    grid.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f7fa")]),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c4")),
                ("ALIGN", (align_right_from, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return grid


def pdf_section(title, *flowables):
    """A heading kept on one page with what follows it."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import KeepTogether, Paragraph, Spacer

    heading = Paragraph(title, getSampleStyleSheet()["Heading2"])
    return KeepTogether([Spacer(1, 0.35 * cm), heading, *flowables])


def report_story(data: dict) -> list:
    """The report's content, top to bottom, as reportlab flowables."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, Spacer

    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=9, leading=11)
    metrics = data["metrics"]
    story = [
        Paragraph("Client exit risk: model report", styles["Title"]),
        Paragraph(f"Generated {data['generated_at']} &middot; deployed release {data['release']}", styles["Normal"]),
        pdf_section(
            "Deployed model on the test data",
            pdf_table(
                [["Metric", "Value"]] + [[name, f"{value:.4f}"] for name, value in metrics.items()],
                widths=[5 * cm, 3 * cm],
            ),
            Spacer(1, 0.2 * cm),
            Paragraph(f"Scored on {data['test_rows']} test clients.", styles["Normal"]),
        ),
        pdf_section("Confusion matrix", Image(io.BytesIO(data["confusion_png"]), width=10.4 * cm, height=8.8 * cm)),
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
                    [str(rank), item["corporation"], f"{item['probability']:.1%}"]
                    for rank, item in enumerate(data["top_risk"], 1)
                ],
                widths=[1.5 * cm, 4 * cm, 4 * cm],
                align_right_from=2,
            ),
        ),
        pdf_section(
            "Summary statistics of the ingested data",
            pdf_table(
                [["Column", "Mean", "Median", "Std. dev."]]
                + [
                    [column, *(f"{stats[key]:,.2f}" for key in ("mean", "median", "std"))]
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
    return story


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


def main(config_path=None) -> dict[str, Path]:
    config = load_config(config_path)
    started = time.perf_counter()
    logger.info("reporting started for %s", config.prod_deployment_path)
    data = gather_report_data(config)
    paths = {
        "confusion_matrix": config.output_model_path / CONFUSION_MATRIX_FILE,
        "report": config.output_model_path / REPORT_FILE,
    }
    atomic_write_bytes(paths["confusion_matrix"], data["confusion_png"])
    atomic_write_bytes(paths["report"], build_pdf(data))
    logger.info(
        "reporting finished in %.2fs: %s, %s",
        time.perf_counter() - started,
        paths["confusion_matrix"],
        paths["report"],
    )
    return paths


if __name__ == "__main__":
    run_cli(main)
