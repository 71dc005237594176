import struct

import pytest
from conftest import seed_outdated_cache
from pypdf import PdfReader

import diagnostics
import reporting
from risk.config import PipelineError

SECTIONS = [
    "Client exit risk: model report",
    "Generated ",
    "Deployed model on the test data",
    "F1",
    "precision",
    "recall",
    "Confusion matrix",
    "clients most at risk of exiting",
    "Summary statistics of the ingested data",
    "Missing data",
    "Pipeline timings",
    "Dependencies",
    "Data the deployed model learned from",
]


@pytest.fixture
def report_paths(trained_project, config):
    seed_outdated_cache(config)
    return reporting.main(config.config_path)


def test_confusion_matrix_is_a_png_of_readable_size(report_paths):
    data = report_paths["confusion_matrix"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 500


def test_report_contains_every_section(report_paths, config):
    text = "\n".join(page.extract_text() for page in PdfReader(report_paths["report"]).pages)
    for section in SECTIONS:
        assert section in text, section
    assert "dataset1.csv" in text and "dataset2.csv" in text
    for package in ("pandas", "scikit-learn", "reportlab"):
        assert package in text


def test_report_lists_the_20_riskiest_clients_highest_first(trained_project, config):
    seed_outdated_cache(config)
    data = reporting.gather_report_data(config)
    probabilities = [item["probability"] for item in data["top_risk"]]
    assert len(probabilities) == 20 and probabilities == sorted(probabilities, reverse=True)
    assert set(data["metrics"]) == {"F1", "precision", "recall"}
    assert data["summary"] == diagnostics.summary_table(config)
    assert data["missing"] == diagnostics.missing_data_table(config)


def test_reporting_without_a_deployment_names_the_folder(config):
    with pytest.raises(PipelineError, match="nothing is deployed at .*production_deployment"):
        reporting.main(config.config_path)


def test_a_confusion_matrix_counts_every_cell():
    png = reporting.plot_confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], "t")
    assert png[:4] == b"\x89PNG"
