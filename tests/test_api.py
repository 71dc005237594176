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
