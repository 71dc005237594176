"""reporting.py: the confusion matrix, the trend chart, the ranked list as CSV and the PDF report.

Expected values are computed here from the data files with scikit-learn and the model's own
predict_proba, or read from the history database with sqlite3: never with the functions under test.
"""

import html
import json
import pickle
import re
import sqlite3
import struct

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, ranked_by_model, seed_outdated_cache
from pypdf import PdfReader
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

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
    "Appendix: the course's sections",
    "Summary statistics of the ingested data",
    "Missing data",
    "Pipeline timings",
    "Dependencies",
    "Data the deployed model learned from",
]
PAGE_ONE = ["Health: ", "What changed since the last report", "The 10 clients to call"]
PAGE_TWO = ["The live model in detail", "Live model", "Last verdict", "Data drift", "The live model's F1 on new data"]
TEST_CAVEAT = (
    "on the fixed test set, never renewed: it tells how the model does on the clients the course set aside,"
    " not on today's (the F1 on new data does)"
)
FEATURE_WORDS = {
    "lastmonth_activity": "activity last month",
    "lastyear_activity": "activity last year",
    "number_of_employees": "employees",
}


def percent_words(probability: float) -> str:
    """How the report writes a probability: a whole percent (half up), the ends said as bounds."""
    whole = int(probability * 100 + 0.5)
    return "over 99 %" if whole >= 100 else ("under 1 %" if whole < 1 else f"{whole} %")


def pages_text(path) -> list[str]:
    """Each page's text, whitespace made single spaces (lines wrap where the PDF wraps them)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(path).pages]


def load_deployed_model(config):
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        return pickle.load(handle)


def history_rows(config, sql, params=()) -> list[dict]:
    with sqlite3.connect(config.history_path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute(sql, params)]
    return [{**row, "detail": json.loads(row["detail"])} if "detail" in row else row for row in rows]


@pytest.fixture
def report_paths(trained_project, config):
    seed_outdated_cache(config)
    return reporting.report(config)


def test_report_returns_every_file_it_writes(report_paths, config):
    assert report_paths == {
        "confusion_matrix": config.output_model_path / "confusionmatrix.png",
        "trend": config.output_model_path / "trend.png",
        "ranking": config.output_model_path / "riskranking.csv",
        "unscored": config.output_model_path / "riskunscored.csv",
        "report": config.output_model_path / "report.pdf",
        "summary": config.output_model_path / "reportsummary.json",
    }
    assert all(path.is_file() for path in report_paths.values())
    assert not list(config.output_model_path.glob(".*.tmp"))  # atomic writes leave no temporary file


@pytest.mark.parametrize("name", ["confusion_matrix", "trend"])
def test_the_charts_are_pngs_of_readable_size(report_paths, name):
    data = report_paths[name].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400


def test_report_contains_every_section(report_paths, config):
    text = "\n".join(pages_text(report_paths["report"]))
    for section in SECTIONS:
        assert section in text, section
    assert "dataset1.csv" in text and "dataset2.csv" in text
    for package in ("pandas", "scikit-learn", "reportlab"):
        assert package in text


def test_the_test_scores_and_the_confusion_matrix_counts_are_in_the_report(report_paths, config):
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    y_true = testdata["exited"]
    y_pred = load_deployed_model(config).predict(testdata[FEATURES].to_numpy(dtype=float))
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, labels=[0, 1])
    text = " ".join(pages_text(report_paths["report"])[1:])
    assert (
        f"Metric Value F1 {f1_score(y_true, y_pred):.4f} precision {precision_score(y_true, y_pred):.4f} "
        f"recall {recall_score(y_true, y_pred):.4f} Scored on {len(testdata)} test clients, {TEST_CAVEAT}."
    ) in text
    assert f"Actual Predicted to stay Predicted to exit stays (0) {tn} {fp} exits (1) {fn} {tp}" in text


def test_page_one_gives_the_health_what_changed_and_the_ten_clients_the_model_ranks_highest(report_paths, config):
    pages = pages_text(report_paths["report"])
    page = pages[0]
    for heading in PAGE_ONE:
        assert heading in page, heading
    for heading in PAGE_TWO:
        assert heading in pages[1] and heading not in page, heading
    assert "Health: UNPROVEN. The risk list comes from a model not measured on new data yet" in page
    assert "This is the first report here (no earlier one to compare with)." in page
    top = ranked_by_model(config).head(10)
    positions = [
        page.index(f"{rank} {code} {percent_words(p)} ")
        for rank, code, p in zip(range(1, 11), top["corporation"], top["probability"], strict=True)
    ]
    assert positions == sorted(positions)


def test_page_two_names_the_live_model_and_its_manual_deployment(report_paths, config):
    page = pages_text(report_paths["report"])[1]
    release = config.prod_deployment_path.resolve().name
    (deployed,) = history_rows(config, "SELECT at, reason, actor, model_id FROM deployments")
    card = json.loads((config.prod_deployment_path / "modelcard.json").read_text())
    assert f"Release {release}" in page and f"Model {deployed['model_id']}" in page
    assert f"{deployed['at'][:16].replace('T', ' ')} UTC: manual, by {deployed['actor']}" in page
    assert (
        f"Validation F1 {card['validation_f1']:.2f} [{card['validation_low']:.2f}, {card['validation_high']:.2f}]"
        in page
    )
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    y_pred = load_deployed_model(config).predict(testdata[FEATURES].to_numpy(dtype=float))
    (tn, fp), (fn, tp) = confusion_matrix(testdata["exited"], y_pred, labels=[0, 1])
    assert f"Test F1 {2 * tp / (2 * tp + fp + fn):.4f} on {len(testdata)} test clients, {TEST_CAVEAT}" in page
    assert "No verdict yet" in page and "No data-drift check yet" in page
    assert "State unproven: not checked on new data yet" in page


def test_without_a_history_the_deployed_model_is_not_loaded_and_no_report_is_written(trained_project, config):
    """A pickle is code: without the history, the release's model cannot be verified, so it is not unpickled."""
    seed_outdated_cache(config)
    for suffix in ("", "-wal", "-shm"):
        config.history_path.with_name(config.history_path.name + suffix).unlink(missing_ok=True)
    release = config.prod_deployment_path.resolve().name
    with pytest.raises(PipelineError) as raised:
        reporting.report(config)
    assert str(raised.value) == (
        f"release {release} is refused: its model cannot be verified without the history database"
        f" {config.history_path} (the next full-process run, or deployment.py, adopts a live release and records"
        " its hash)"
    )
    assert not (config.output_model_path / "report.pdf").exists()
    assert not config.history_path.exists()  # read-only: reporting never creates it


def test_reporting_does_not_wait_for_the_package_index_it_reports_the_last_answer(trained_project, config, monkeypatch):
    from risk import outdated

    seed_outdated_cache(config, latest="8.8.8")
    cache_path = config.output_model_path / "outdatedpackages.json"
    cache = json.loads(cache_path.read_text())
    cache["checked_at"] -= config.outdated_cache_seconds + 1  # expired: the cron run's reporting once asked pip here
    cache_path.write_text(json.dumps(cache))
    started = []
    monkeypatch.setattr(outdated, "start_refresh", lambda *args: started.append(args))
    monkeypatch.setattr(outdated, "latest_versions", lambda *args, **kwargs: pytest.fail("pip asked by reporting"))
    text = " ".join(pages_text(reporting.report(config)["report"]))
    dependencies = text[text.index("Dependencies") :]
    assert "8.8.8" in dependencies and len(started) == 1  # the last answer, and a refresh in the background


def test_the_report_of_a_release_whose_model_was_replaced_is_refused(trained_project, config):
    seed_outdated_cache(config)
    model = config.prod_deployment_path / "trainedmodel.pkl"
    model.write_bytes(model.read_bytes() + b"\n")  # unpickles the same, but is not the recorded file
    with pytest.raises(
        PipelineError, match=r"is refused: its trainedmodel.pkl is not the model \w{12} the history records for it"
    ):
        reporting.report(config)
    assert not (config.output_model_path / "report.pdf").exists()


def test_page_two_after_a_drift_gives_the_verdicts_in_numbers_and_the_decision_of_the_run_writing_it(history_project):
    """The report the full process wrote when it re-deployed after drift (run 2 of the shared history): the
    run is still going, its decision not recorded yet, and is said from what it did."""
    page = pages_text(history_project.output_model_path / "report.pdf")[1]
    (run,) = history_rows(history_project, "SELECT * FROM runs WHERE decision LIKE 'drift:%'")
    verdicts = history_rows(
        history_project, "SELECT kind, outcome, detail FROM verdicts WHERE run_id = ? ORDER BY id", (run["id"],)
    )
    details = {verdict["kind"]: verdict["detail"] for verdict in verdicts if verdict["kind"] in ("performance", "gate")}
    (release,) = history_rows(history_project, "SELECT to_release FROM deployments WHERE run_id = ?", (run["id"],))
    decided = f"(new data): drift: re-trained and re-deployed (release {release['to_release']})"
    assert f"Run {run['id']}, " in page and decided in page and "in progress" not in page
    assert f"Performance: {details['performance']}" in page and f"Gate: {details['gate']}" in page
    for verdict in verdicts:
        if verdict["kind"] == "exit rate":
            assert f"Exit rate (DRIFT): {verdict['detail']}" in page
    assert ": drift, by cron" in page


def test_page_one_and_the_dashboard_take_their_facts_from_one_function(trained_project, config, monkeypatch):
    """overview.page_context gathers what both show: facts marked in what it returns appear on both."""
    from app import create_app
    from risk import overview

    real, calls = overview.page_context, []

    def marked(conn, config, risk, pipeline=None, query=""):
        context = real(conn, config, risk, pipeline, query)
        calls.append(context)
        context["live"] = {**context["live"], "model_id": "sentinel0001", "evidence": "a sentinel's evidence"}
        sentinel = {"corporation": "zyzx", "reason": "a sentinel's reason", "reason_short": "a sentinel's reason"}
        context["top"] = [{**context["top"][0], **sentinel}]
        return context

    monkeypatch.setattr(overview, "page_context", marked)
    seed_outdated_cache(config)
    page = " ".join(pages_text(reporting.report(config)["report"])[:2])
    dashboard = html.unescape(re.sub(r"<[^>]+>", "", create_app(config).test_client().get("/").get_data(as_text=True)))
    dashboard = " ".join(dashboard.split())
    assert len(calls) == 2  # one each
    assert "Model sentinel0001" in page and ", model sentinel0001." in dashboard
    assert "State unproven: a sentinel's evidence" in page and "Unproven: a sentinel's evidence" in dashboard
    for shown in (page, dashboard):
        assert re.search(r"\b1 zyzx (over |under )?\d+ % a sentinel's reason", shown)


def test_the_ranking_csv_lists_every_client_with_the_models_probability_pushes_and_words(report_paths, config):
    ranking = pd.read_csv(report_paths["ranking"], dtype={"corporation": str})
    push_columns = [f"push_{feature}" for feature in FEATURES]
    points = [f"points_{feature}" for feature in FEATURES]
    columns = ["rank", "corporation", "probability", *FEATURES, *push_columns, "reason", "risk", *points]
    assert list(ranking.columns) == columns
    expected = ranked_by_model(config)
    assert ranking["rank"].tolist() == list(range(1, len(expected) + 1))
    assert ranking["corporation"].tolist() == expected["corporation"].tolist()
    np.testing.assert_allclose(ranking["probability"], expected["probability"], atol=1e-6)
    model = load_deployed_model(config)
    means = json.loads((config.prod_deployment_path / "modelcard.json").read_text())["feature_means"]
    pushes = (ranking[FEATURES].to_numpy(float) - [means[f] for f in FEATURES]) * model.coef_[0]
    np.testing.assert_allclose(ranking[push_columns].to_numpy(), pushes, atol=1e-5)
    medians = ranking[FEATURES].median().to_numpy()  # the reasons: against the usual client, the median
    against_median = (ranking[FEATURES].to_numpy(float) - medians) * model.coef_[0]
    assert ranking["risk"].tolist() == [percent_words(p) for p in expected["probability"]]
    for row, push in zip(ranking.to_dict("records"), against_median, strict=True):
        strongest = FEATURES[int(np.argmax(push))]
        assert row["reason"].startswith(FEATURE_WORDS[strongest]) if push.max() > 0 else "no feature" in row["reason"]
    assert report_paths["unscored"].read_text() == "corporation,reason\n"


def test_clients_without_a_feature_are_written_apart(trained_project, config):
    seed_outdated_cache(config)
    finaldata_path = config.output_folder_path / "finaldata.csv"
    finaldata = pd.read_csv(finaldata_path)
    code = finaldata["corporation"].iloc[0]
    extra = pd.DataFrame(
        [
            {
                "corporation": code,
                "lastmonth_activity": 10,
                "lastyear_activity": None,
                "number_of_employees": 3,
                "exited": 0,
            }
        ]
    )
    pd.concat([finaldata, extra]).to_csv(finaldata_path, index=False)
    paths = reporting.report(config)
    assert paths["unscored"].read_text() == f"corporation,reason\n{code},no value for activity last year\n"
    ranking = pd.read_csv(paths["ranking"], dtype={"corporation": str})
    assert code not in set(ranking["corporation"]) and len(ranking) == finaldata["corporation"].nunique() - 1
    assert "1 client(s) cannot be scored" in pages_text(paths["report"])[0]


def test_report_data_holds_the_20_riskiest_clients_the_test_scores_the_summary_and_missing_data(
    trained_project, config
):
    seed_outdated_cache(config)
    data = reporting.gather_report_data(config)
    assert [item["corporation"] for item in data["top_risk"]] == ranked_by_model(config)["corporation"].head(
        20
    ).tolist()
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    y_pred = load_deployed_model(config).predict(testdata[FEATURES].to_numpy(dtype=float))
    assert data["metrics"] == pytest.approx(
        {
            "F1": f1_score(testdata["exited"], y_pred),
            "precision": precision_score(testdata["exited"], y_pred),
            "recall": recall_score(testdata["exited"], y_pred),
        }
    )
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    numeric = finaldata.drop(columns="corporation")
    assert list(data["summary"]) == list(numeric.columns)
    for column in numeric:
        expected = {"mean": numeric[column].mean(), "median": numeric[column].median(), "std": numeric[column].std()}
        assert data["summary"][column] == pytest.approx(expected, abs=1e-6), column
    assert data["missing"] == {column: 0.0 for column in finaldata.columns}


def test_reporting_without_a_deployment_names_the_folder(config):
    with pytest.raises(PipelineError, match="nothing is deployed at .*production_deployment"):
        reporting.report(config)


def test_a_confusion_matrix_counts_every_cell(monkeypatch):
    import seaborn

    drawn = []
    real_heatmap = seaborn.heatmap
    monkeypatch.setattr(
        seaborn, "heatmap", lambda data, **kw: drawn.append((data.tolist(), kw)) or real_heatmap(data, **kw)
    )
    png = reporting.plot_confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], "t")
    # By hand: row 0 (stays) predicted 0 once (TN) and 1 once (FP); row 1 (exits) predicted 0 once (FN), 1 twice (TP).
    ((matrix, options),) = drawn
    assert matrix == [[1, 1], [1, 2]]
    assert (options["annot"], options["fmt"]) == (True, "d")  # every cell written as its count
    assert (options["xticklabels"], options["yticklabels"]) == (["stays (0)", "exits (1)"], ["stays (0)", "exits (1)"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_one_text_fits_on_page_one(report_paths):
    pages = pages_text(report_paths["report"])
    assert "The 10 clients to call" in pages[0] and "Deployed model on the test data" not in pages[0]
    assert re.search(r"\b10 \w{4} (over |under )?\d+ %", pages[0])  # the tenth client is on page 1, not pushed over


@pytest.mark.parametrize("latest_ingestion", ["as it was", "of other files"])
def test_the_files_the_model_learned_from_show_when_ingestion_first_saw_them(trained_project, config, latest_ingestion):
    """From the history, by the version the model card names: also after a rollback to a model whose
    files the latest ingestion no longer reads."""
    seed_outdated_cache(config)
    if latest_ingestion == "of other files":
        metrics_path = config.output_folder_path / "ingestionmetrics.json"
        metrics_path.write_text(json.dumps({**json.loads(metrics_path.read_text()), "files_read": []}))
    text = " ".join(pages_text(reporting.report(config)["report"]))
    section = text[text.index("Data the deployed model learned from") :]
    files = history_rows(config, "SELECT name, rows, first_seen_at FROM files WHERE status = 'accepted' ORDER BY id")
    assert files and "?" not in section and "not recorded" not in section
    for file in files:
        assert f"{file['name']} {file['rows']:,} {file['first_seen_at'][:16].replace('T', ' ')}" in section


def test_the_stale_test_f1_carries_its_caveat_wherever_it_appears(report_paths):
    text = " ".join(pages_text(report_paths["report"]))
    assert text.count(TEST_CAVEAT) == 2  # page 2's Test F1, and the appendix's scores
    assert text.count("Test F1") == 1


def test_the_next_report_says_what_changed_since_the_last(report_paths, config):
    summary = json.loads((config.output_model_path / "reportsummary.json").read_text())
    codes = ranked_by_model(config)["corporation"].head(10).tolist()
    release = config.prod_deployment_path.resolve().name
    assert (summary["release"], summary["health"], summary["to_call"]) == (release, "unproven", codes)
    summary["to_call"] = ["gone", *codes[1:]]
    (config.output_model_path / "reportsummary.json").write_text(json.dumps(summary))
    page = pages_text(reporting.report(config)["report"])[0]
    changed = page[page.index("What changed since the last report") : page.index("The 10 clients to call")]
    assert changed == (
        f"What changed since the last report Since the last report, {summary['generated_at'][:16].replace('T', ' ')}"
        f" UTC: The same release is live ({release}). Health unchanged: unproven."
        f" New among the clients to call: {codes[0]}. No longer among them: gone. "
    )


@pytest.mark.parametrize(
    "audit, runs, health, to_call, expected",
    [
        (
            [{"at": "2026-01-02T09:00:00Z", "to_release": "r2", "reason": "rollback", "actor": "ann@ops"}],
            [],
            "degraded",
            ["a", "b"],
            [
                "2026-01-02 09:00 UTC: release r2 went live (rollback, by ann@ops).",
                "Health: healthy, now degraded.",
                "The same clients to call.",
            ],
        ),
        (
            [{"at": "2025-12-31T09:00:00Z", "to_release": "r1", "reason": "drift", "actor": "cron"}],  # before
            [{"started_at": "2026-01-03T00:00:00Z", "decision": "no new data"}],
            "healthy",
            ["b", "c"],
            [
                "The same release is live (r1).",
                "1 run(s) of the full process; the latest: no new data.",
                "Health unchanged: healthy.",
                "New among the clients to call: c.",
                "No longer among them: a.",
            ],
        ),
    ],
)
def test_what_changed_since_the_last_report_in_sentences(audit, runs, health, to_call, expected):
    previous = {"generated_at": "2026-01-01T00:00:00Z", "release": "r1", "health": "healthy", "to_call": ["a", "b"]}
    current = {"generated_at": "2026-01-04T00:00:00Z", "release": "r1", "health": health, "to_call": to_call}
    lines = reporting.changes_since(previous, current, audit, runs)
    assert lines == ["Since the last report, 2026-01-01 00:00 UTC:", *expected]
