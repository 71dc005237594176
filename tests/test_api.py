"""Every endpoint and every error case, through Flask's test client."""

import io
import os

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, client_rows
from sklearn.metrics import f1_score

import deployment
import training
from app import MAX_BODY_BYTES, create_app
from risk.model import load_model

RECORD = {"lastmonth_activity": 5, "lastyear_activity": 100, "number_of_employees": 12}


def test_prediction_for_a_file_in_the_test_data_folder(client, config):
    response = client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert response.status_code == 200
    body = response.get_json()
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    model = load_model(config.prod_deployment_path / "trainedmodel.pkl")
    assert body["rows"] == len(testdata)
    X = testdata[FEATURES].to_numpy(float)
    assert body["predictions"] == model.predict(X).tolist()
    assert body["probabilities"] == [round(float(p), 6) for p in model.predict_proba(X)[:, 1]]
    assert body["corporation"] == testdata["corporation"].tolist()


def test_prediction_for_json_records(client):
    response = client.post("/prediction", json={"records": [RECORD, {**RECORD, "corporation": "abcd"}]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["rows"] == 2 and body["predictions"][0] == body["predictions"][1]


def test_prediction_for_an_uploaded_csv(client, config):
    csv = (config.test_data_path / "testdata.csv").read_bytes()
    response = client.post("/prediction", data={"file": (io.BytesIO(csv), "mine.csv")})
    assert response.status_code == 200
    assert response.get_json()["rows"] == 200 and response.get_json()["source"] == "mine.csv"


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        ({}, 400, "send a JSON body"),
        (
            {"data": "{not json", "content_type": "application/json"},
            400,
            "the body is not valid JSON: unexpected character",
        ),
        ({"json": [1, 2]}, 400, "the JSON body must be an object"),
        ({"json": {"path": "x"}}, 400, "the JSON body needs 'filepath' or 'records'"),
        ({"json": {"filepath": 7}}, 400, "'filepath' must be a non-empty string"),
        ({"json": {"records": "x"}}, 400, "'records' must be a non-empty list of objects"),
        ({"json": {"records": []}}, 400, "'records' must be a non-empty list of objects"),
        (
            {"json": {"records": [{"lastmonth_activity": 1, "lastyear_activity": 2}]}},
            400,
            "records[0]: missing column(s) ['number_of_employees']",
        ),
        (
            {"json": {"records": [RECORD, {**RECORD, "colour": "red"}]}},
            400,
            "records[1]: unexpected column(s) ['colour']",
        ),
        (
            {"json": {"records": [{**RECORD, "lastyear_activity": "lots"}]}},
            400,
            "records[0]: lastyear_activity must be a whole number, got 'lots'",
        ),
        (
            {"json": {"records": [{**RECORD, "lastyear_activity": None}]}},
            400,
            "records[0]: lastyear_activity is missing; the model needs all three features",
        ),
        ({"json": {"filepath": "testdata/nope.csv"}}, 404, "filepath 'testdata/nope.csv' does not exist"),
        ({"json": {"filepath": "/etc/passwd"}}, 403, "is outside the data folders"),
        ({"json": {"filepath": "config.json"}}, 403, "is outside the data folders"),
        ({"json": {"filepath": "testdata/../config.json"}}, 403, "may not contain '..'"),
        (
            {"data": {"file": (io.BytesIO(b"\xff\xfe\x00garbage"), "x.csv")}},
            400,
            "x.csv: line 1: not UTF-8 text (undecodable byte 0xff)",
        ),
    ],
)
def test_prediction_errors_are_json_with_a_4xx_status(client, kwargs, status, message):
    response = client.post("/prediction", **kwargs)
    assert response.status_code == status
    assert response.is_json and message in response.get_json()["error"]


def test_a_symlink_leading_out_of_the_data_folders_is_refused(client, config, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    client_rows(9, 5).to_csv(outside, index=False)
    os.symlink(outside, config.test_data_path / "link.csv")
    response = client.post("/prediction", json={"filepath": "testdata/link.csv"})
    assert response.status_code == 403


def test_a_bad_file_in_the_data_folders_is_a_400_naming_it(client, config):
    (config.test_data_path / "bad.csv").write_text("a,b\n1,2\n")
    response = client.post("/prediction", json={"filepath": "testdata/bad.csv"})
    assert response.status_code == 400 and "bad.csv: line 1: missing column(s)" in response.get_json()["error"]


def test_a_body_over_the_size_limit_is_refused(client):
    response = client.post("/prediction", data=b"x" * (MAX_BODY_BYTES + 1), content_type="application/json")
    assert response.status_code == 413 and response.is_json


def test_scoring_is_the_deployed_models_f1_and_writes_nothing(client, config):
    before = sorted(config.output_model_path.iterdir())
    response = client.get("/scoring")
    assert response.status_code == 200
    model = load_model(config.prod_deployment_path / "trainedmodel.pkl")
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    expected = f1_score(testdata["exited"], model.predict(testdata[FEATURES].to_numpy(float)))
    assert response.get_json()["f1"] == round(expected, 6)
    assert sorted(config.output_model_path.iterdir()) == before


def test_summarystats_are_mean_median_and_std_of_finaldata(client, config):
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    body = client.get("/summarystats").get_json()
    assert list(body["summary"]) == [*FEATURES, "exited"]
    for column in [*FEATURES, "exited"]:
        values = finaldata[column].to_numpy(float)
        expected = {"mean": values.mean(), "median": float(np.median(values)), "std": values.std(ddof=1)}
        assert body["summary"][column] == pytest.approx(expected, abs=1e-6)
    assert body["values"] == [v for stats in body["summary"].values() for v in stats.values()]


def test_diagnostics_report_timings_missing_data_and_packages(client, config):
    response = client.get("/diagnostics")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body["execution_time"]) == {"ingestion_seconds", "training_seconds"}
    assert all(value > 0 for value in body["execution_time"].values())
    assert body["missing_data"] == {column: 0.0 for column in ["corporation", *FEATURES, "exited"]}
    assert {item["latest"] for item in body["outdated_packages"]} == {"9.9.9"}


def test_health_is_200_with_a_deployed_model(client, config):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["release"] == config.prod_deployment_path.resolve().name


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("get", "/health", {}),
        ("get", "/scoring", {}),
        ("post", "/prediction", {"json": {"records": [RECORD]}}),
    ],
)
def test_without_a_deployed_model_the_api_answers_503(config, method, path, kwargs):
    response = getattr(create_app(config).test_client(), method)(path, **kwargs)
    assert response.status_code == 503
    assert "no model is deployed" in response.get_json()["error"]


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/nope").status_code == 404 and client.get("/nope").is_json
    response = client.get("/prediction")
    assert response.status_code == 405 and response.is_json


def test_the_model_is_reloaded_after_a_redeploy_without_a_restart(client, config):
    first = client.post("/prediction", json={"records": [RECORD]}).get_json()
    # A model trained on flipped labels predicts the opposite.
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    finaldata.assign(exited=1 - finaldata["exited"]).to_csv(config.output_folder_path / "finaldata.csv", index=False)
    flipped = training.main(config.config_path)
    deployment.main(config.config_path)
    second = client.post("/prediction", json={"records": [RECORD]}).get_json()
    assert second["release"] != first["release"]
    X = pd.DataFrame([RECORD])[FEATURES].to_numpy(float)
    assert second["probabilities"][0] == round(float(flipped.predict_proba(X)[0, 1]), 6)
    assert second["predictions"] != first["predictions"]


def test_a_rollback_is_served_without_a_restart(client, config):
    first = client.post("/prediction", json={"records": [RECORD]}).get_json()
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    finaldata.assign(exited=1 - finaldata["exited"]).to_csv(config.output_folder_path / "finaldata.csv", index=False)
    training.main(config.config_path)
    deployment.main(config.config_path)
    assert client.post("/prediction", json={"records": [RECORD]}).get_json()["release"] != first["release"]
    deployment.rollback(config.config_path)
    back = client.post("/prediction", json={"records": [RECORD]}).get_json()
    assert back == first


class TestToken:
    @pytest.fixture
    def client(self, trained_project, config, monkeypatch):
        monkeypatch.setenv("API_TOKEN", "s3cret")
        return create_app(config).test_client()

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}])
    def test_a_missing_or_wrong_token_is_401(self, client, headers):
        response = client.get("/scoring", headers=headers)
        assert response.status_code == 401 and "token" in response.get_json()["error"]

    def test_the_right_token_is_accepted(self, client):
        assert client.get("/scoring", headers={"Authorization": "Bearer s3cret"}).status_code == 200

    def test_health_needs_no_token(self, client):
        assert client.get("/health").status_code == 200


# --- the risk list, the history and the pipeline's state -------------------------------------


def newest_rows_expected(config):
    """Each client's newest row and its probability, computed here with scikit-learn."""
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv", keep_default_na=False, na_values=[""])
    newest = finaldata.drop_duplicates(subset="corporation", keep="last").dropna(subset=FEATURES)
    model = load_model(config.prod_deployment_path / "trainedmodel.pkl")
    return newest.assign(probability=model.predict_proba(newest[FEATURES].to_numpy(float))[:, 1])


def test_toprisk_ranks_every_client_by_its_newest_row(client, config):
    body = client.get("/toprisk?n=5").get_json()
    expected = newest_rows_expected(config).sort_values(["probability", "corporation"], ascending=[False, True])
    assert [row["corporation"] for row in body["clients"]] == expected["corporation"].head(5).tolist()
    assert [row["rank"] for row in body["clients"]] == [1, 2, 3, 4, 5]
    assert [row["probability"] for row in body["clients"]] == [round(p, 6) for p in expected["probability"].head(5)]
    assert body["n"] == 5 and body["release"] == config.prod_deployment_path.resolve().name


def test_the_pushes_add_up_to_the_log_odds(client, config):
    import json

    card = json.loads((config.prod_deployment_path / "modelcard.json").read_text())
    model = load_model(config.prod_deployment_path / "trainedmodel.pkl")
    means = np.array([card["feature_means"][f] for f in FEATURES])
    intercept_at_means = model.intercept_[0] + model.coef_[0] @ means
    for row in client.get("/toprisk?n=50").get_json()["clients"]:
        log_odds = intercept_at_means + sum(row["push"].values())
        assert 1 / (1 + np.exp(-log_odds)) == pytest.approx(row["probability"], abs=2e-5)
        strongest = max(row["push"], key=row["push"].get)
        if row["push"][strongest] > 0:
            words = {"lastmonth_activity": "activity last month", "lastyear_activity": "activity last year"}
            assert row["reason"].startswith(words.get(strongest, "employees"))


def test_a_client_without_a_feature_is_listed_apart_with_why(client, config):
    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + "zzzz,,5,7,0\n")
    body = client.get("/toprisk?n=10000").get_json()
    assert body["unscored"] == [{"corporation": "zzzz", "reason": "no value for activity last month"}]
    assert "zzzz" not in [row["corporation"] for row in body["clients"]]
    assert client.get("/clients/zzzz").get_json()["unscored"]["reason"] == "no value for activity last month"


@pytest.mark.parametrize("n", ["0", "-3", "abc", "10001", "1e3", "99999999999999999999"])
def test_a_bad_n_is_a_400_naming_it(client, n):
    response = client.get(f"/toprisk?n={n}")
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("'n' must be a whole number from 1 to 10,000")


def test_the_risk_list_downloads_as_csv(client, config):
    response = client.get("/toprisk.csv?n=3")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment; filename=riskranking-" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == (
        "rank,corporation,probability,lastmonth_activity,lastyear_activity,number_of_employees,"
        "push_lastmonth_activity,push_lastyear_activity,push_number_of_employees,reason"
    )
    top = client.get("/toprisk?n=3").get_json()["clients"]
    assert [line.split(",")[1] for line in lines[1:]] == [row["corporation"] for row in top]


def test_one_client_is_found_by_its_code_and_an_unknown_one_is_a_404(client):
    first = client.get("/toprisk?n=1").get_json()["clients"][0]
    assert client.get(f"/clients/{first['corporation']}").get_json()["client"] == first
    response = client.get("/clients/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "no client 'nope' in the ingested data"


def test_history_releases_and_drift_read_the_history(client, config):
    runs = client.get("/history?limit=5").get_json()["runs"]
    assert [run["trigger"] for run in runs] == ["manual deployment"]
    assert runs[0]["decision"] == "deployed by hand" and runs[0]["verdicts"] == []
    (release,) = client.get("/releases").get_json()["releases"]
    assert release["live"] is True and release["reason"] == "manual"
    assert release["release"] == config.prod_deployment_path.resolve().name
    assert client.get("/drift").get_json() == {
        "performance": None,
        "data_run_id": None,
        "data_checked_at": None,
        "features": [],
    }
    assert client.get("/history?limit=0").status_code == 400


def set_heartbeat(config, checked_at: str) -> None:
    import sqlite3

    with sqlite3.connect(config.history_path) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO heartbeats VALUES (?, ?, 'no new data', NULL)",
            (str(config.config_path), checked_at),
        )


def test_health_says_when_cron_is_late_and_raises_one_alert(trained_project, config):
    import sqlite3
    import time

    from conftest import set_config

    config = set_config(config, alert_webhook_url="http://127.0.0.1:9/hook")  # nothing listens: stays pending
    client = create_app(config).test_client()
    set_heartbeat(config, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
    assert client.get("/health").get_json()["pipeline"]["late"] is False
    set_heartbeat(config, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 21 * 60)))
    for _ in range(3):
        assert client.get("/health").get_json()["pipeline"]["late"] is True
    with sqlite3.connect(config.history_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM alerts WHERE event = 'late cron'").fetchone()[0] == 1
