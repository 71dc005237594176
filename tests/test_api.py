"""Every endpoint and every error case, through Flask's test client.

Expected answers come from the data files with pandas, the deployed pickle with scikit-learn's own
predict/predict_proba, or the history database with sqlite3: never from the functions the endpoints call.
"""

import hashlib
import io
import json
import os
import pickle
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, client_rows, plant_pickle, set_config
from sklearn.metrics import f1_score

import app as app_module
import deployment
import training
from app import MAX_BODY_BYTES, create_app
from risk import registry

RECORD = {"lastmonth_activity": 5, "lastyear_activity": 100, "number_of_employees": 12}
EXPECTED_COLUMNS = (
    "expected ['lastmonth_activity', 'lastyear_activity', 'number_of_employees', 'corporation (optional)',"
    " 'exited (optional)']"
)


def deployed_model(config):
    """The live release's pickle, loaded with pickle itself."""
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        return pickle.load(handle)


def sklearn_answer(config, df: pd.DataFrame) -> dict:
    """What /prediction must answer for `df`: scikit-learn's predict and predict_proba, rounded to 6."""
    model = deployed_model(config)
    X = df[FEATURES].to_numpy(float)
    return {
        "predictions": model.predict(X).tolist(),
        "probabilities": [round(float(p), 6) for p in model.predict_proba(X)[:, 1]],
    }


def query(config, sql, params=()) -> list[dict]:
    """Rows of the history database; `detail` is stored as JSON text."""
    with sqlite3.connect(config.history_path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute(sql, params)]
    return [{**row, "detail": json.loads(row["detail"])} if "detail" in row else row for row in rows]


# --- POST /prediction -----------------------------------------------------------------------------


def test_prediction_for_a_file_in_the_test_data_folder(client, config):
    response = client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert response.status_code == 200
    body = response.get_json()
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    assert body == {
        "source": "testdata/testdata.csv",
        "rows": len(testdata),
        "release": config.prod_deployment_path.resolve().name,
        **sklearn_answer(config, testdata),
        "corporation": testdata["corporation"].tolist(),
    }


@pytest.mark.parametrize(
    "filepath",
    ["sourcedata/dataset1.csv", "ingesteddata/finaldata.csv", "testdata/testdata.csv"],
)
def test_prediction_reads_a_file_in_each_of_the_three_data_folders(client, config, filepath):
    response = client.post("/prediction", json={"filepath": filepath})
    assert response.status_code == 200, response.get_json()
    df = pd.read_csv(config.config_path.parent / filepath)
    assert {key: response.get_json()[key] for key in ("rows", "predictions", "probabilities")} == {
        "rows": len(df),
        **sklearn_answer(config, df),
    }


def test_prediction_for_json_records_is_predict_proba_with_each_records_code(client, config):
    response = client.post("/prediction", json={"records": [RECORD, {**RECORD, "corporation": "abcd"}]})
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "source": "records",
        "rows": 2,
        "release": config.prod_deployment_path.resolve().name,
        **sklearn_answer(config, pd.DataFrame([RECORD, RECORD])),
        "corporation": [None, "abcd"],  # a record without a code keeps its place
    }


def test_the_readme_curl_example_answers_these_keys(client):
    body = client.post("/prediction", json={"records": [{"corporation": "abcd", **RECORD}]}).get_json()
    assert list(body) == ["source", "rows", "release", "predictions", "probabilities", "corporation"]
    assert (body["source"], body["rows"], body["corporation"]) == ("records", 1, ["abcd"])


def test_prediction_for_an_uploaded_csv_is_predict_proba_of_its_rows(client, config):
    csv = (config.test_data_path / "testdata.csv").read_bytes()
    response = client.post("/prediction", data={"file": (io.BytesIO(csv), "mine.csv")})
    assert response.status_code == 200
    body = response.get_json()
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    assert (body["source"], body["rows"]) == ("mine.csv", 200)
    assert {key: body[key] for key in ("predictions", "probabilities")} == sklearn_answer(config, testdata)


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        (
            {},
            400,
            'send a JSON body {"filepath": ...} or {"records": [...]} with Content-Type application/json, '
            "or upload a CSV as form field 'file'",
        ),
        (
            {"data": "{not json", "content_type": "application/json"},
            400,
            "the body is not valid JSON: unexpected character, expected a string key",
        ),
        ({"json": [1, 2]}, 400, "the JSON body must be an object"),
        ({"json": {"path": "x"}}, 400, "the JSON body needs 'filepath' or 'records'"),
        ({"json": {"filepath": 7}}, 400, "'filepath' must be a non-empty string"),
        ({"json": {"records": "x"}}, 400, "'records' must be a non-empty list of objects, one per row"),
        ({"json": {"records": []}}, 400, "'records' must be a non-empty list of objects, one per row"),
        (
            {"json": {"records": [{"lastmonth_activity": 1, "lastyear_activity": 2}]}},
            400,
            f"records[0]: missing column(s) ['number_of_employees']; {EXPECTED_COLUMNS}",
        ),
        (
            {"json": {"records": [RECORD, {**RECORD, "colour": "red"}]}},
            400,
            f"records[1]: unexpected column(s) ['colour']; {EXPECTED_COLUMNS}",
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
        (
            {"json": {"filepath": "/etc/passwd"}},
            403,
            "filepath 'passwd' is outside the data folders (input, output and test data)",  # no server path shown
        ),
        (
            {"json": {"filepath": "config.json"}},
            403,
            "filepath 'config.json' is outside the data folders (input, output and test data)",
        ),
        ({"json": {"filepath": "testdata/../config.json"}}, 403, "'filepath' may not contain '..'"),
        (
            {"data": {"file": (io.BytesIO(b"\xff\xfe\x00garbage"), "x.csv")}},
            400,
            "x.csv: line 1: not UTF-8 text (undecodable byte 0xff)",
        ),
    ],
)
def test_prediction_errors_are_one_json_sentence_with_a_4xx_status(client, kwargs, status, message):
    response = client.post("/prediction", **kwargs)
    assert (response.status_code, response.get_json()) == (status, {"error": message})


def test_a_symlink_leading_out_of_the_data_folders_is_refused(client, config, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    client_rows(9, 5).to_csv(outside, index=False)
    os.symlink(outside, config.test_data_path / "link.csv")
    response = client.post("/prediction", json={"filepath": "testdata/link.csv"})
    assert (response.status_code, response.get_json()) == (
        403,
        {"error": "filepath 'testdata/link.csv' is outside the data folders (input, output and test data)"},
    )


def test_a_bad_file_in_the_data_folders_is_a_400_naming_it(client, config):
    (config.test_data_path / "bad.csv").write_text("a,b\n1,2\n")
    response = client.post("/prediction", json={"filepath": "testdata/bad.csv"})
    assert response.status_code == 400
    assert response.get_json()["error"] == (
        "testdata/bad.csv: line 1: missing column(s) ['lastmonth_activity', 'lastyear_activity', "
        f"'number_of_employees']; unexpected column(s) ['a', 'b']; {EXPECTED_COLUMNS}"
    )


@pytest.mark.parametrize("size, status", [(16 * 1024 * 1024, 400), (16 * 1024 * 1024 + 1, 413)])
def test_a_body_over_16_mib_is_a_413_and_16_mib_is_read(client, size, status):
    # 16 MiB = 16 x 1024 x 1024 = 16,777,216 bytes: read (and refused as bad JSON); one byte more: 413.
    assert MAX_BODY_BYTES == 16_777_216
    response = client.post("/prediction", data=b"x" * size, content_type="application/json")
    assert response.status_code == status and set(response.get_json()) == {"error"}


# --- the course's other endpoints ------------------------------------------------------------------


def test_scoring_is_the_deployed_models_f1_and_writes_nothing(client, config):
    before = sorted(config.output_model_path.iterdir())
    response = client.get("/scoring")
    assert response.status_code == 200
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    expected = f1_score(testdata["exited"], deployed_model(config).predict(testdata[FEATURES].to_numpy(float)))
    assert response.get_json() == {"f1": round(expected, 6), "release": config.prod_deployment_path.resolve().name}
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


def test_diagnostics_give_the_recorded_timings_missing_percentages_and_packages(client, config):
    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + "zzzz,,5,7,0\n")  # 1 of 701 rows lacks last month's activity
    body = client.get("/diagnostics").get_json()
    recorded = query(config, "SELECT step, seconds, started_at FROM step_runs ORDER BY id")
    last = {row["step"]: row for row in recorded}  # the newest run of each step
    assert body["execution_time"] == {
        "ingestion_seconds": round(last["ingestion"]["seconds"], 4),
        "training_seconds": round(last["training"]["seconds"], 4),
    }
    assert [(row["step"], row["ran_at"], row["source"]) for row in body["execution_runs"]] == [
        ("ingestion", last["ingestion"]["started_at"], "last run"),
        ("training", last["training"]["started_at"], "last run"),
    ]
    expected = pd.read_csv(path).isna().mean().mul(100).round(4).to_dict()  # 1 / 701 = 0.1427 %
    assert body["missing_data"] == expected and expected["lastmonth_activity"] == 0.1427
    assert {item["latest"] for item in body["outdated_packages"]} == {"9.9.9"}


def test_diagnostics_with_a_warm_cache_neither_reread_the_data_nor_ask_pip(client, config, monkeypatch):
    client.get("/diagnostics")  # warms the cache
    calls = []

    def missing_data_table(config):
        calls.append("missing data")
        return {}

    def latest_versions(names, deadline_seconds):
        calls.append("pip")
        return dict.fromkeys(names, "1.0")

    monkeypatch.setattr(app_module.diagnosis, "missing_data_table", missing_data_table)
    monkeypatch.setattr(app_module.diagnosis, "latest_versions", latest_versions)
    assert client.get("/diagnostics").status_code == 200 and calls == []
    # The stand-ins are the ones a cold cache calls: a changed finaldata.csv, an expired answer.
    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + "zzzz,1,2,3,0\n")
    (config.output_model_path / "outdatedpackages.json").unlink()
    assert client.get("/diagnostics").status_code == 200 and calls == ["missing data", "pip"]


def test_a_bad_refresh_argument_is_a_400(client):
    response = client.get("/diagnostics?refresh=yes")
    assert (response.status_code, response.get_json()) == (400, {"error": "'refresh' must be 0 or 1"})


def test_health_is_200_with_the_release_and_the_pipelines_state(client, config):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["release"]) == ("ok", config.prod_deployment_path.resolve().name)
    # The manual deployment was a run: its end left the heartbeat, just now, so cron is not late.
    (run,) = query(config, "SELECT id, decision, exit_code, finished_at FROM runs")
    (beat,) = query(config, "SELECT checked_at, outcome, run_id FROM heartbeats")
    pipeline = body["pipeline"]
    assert (pipeline["heartbeat"], pipeline["last_run"], pipeline["late"]) == (beat, run, False)
    assert beat["outcome"] == "deployed by hand" and 0 <= pipeline["seconds_since_heartbeat"] < 60


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("get", "/health", {}),
        ("get", "/scoring", {}),
        ("post", "/prediction", {"json": {"records": [RECORD]}}),
        ("get", "/toprisk", {}),
    ],
)
def test_without_a_deployed_model_the_api_answers_503(config, method, path, kwargs):
    response = getattr(create_app(config).test_client(), method)(path, **kwargs)
    assert (response.status_code, response.get_json()) == (503, {"error": "no model is deployed yet"})


@pytest.mark.parametrize(
    "path, missing, message",
    [
        ("/summarystats", "ingesteddata/finaldata.csv", "data file ingesteddata/finaldata.csv does not exist"),
        ("/toprisk", "ingesteddata/finaldata.csv", "data file ingesteddata/finaldata.csv does not exist"),
        ("/scoring", "testdata/testdata.csv", "data file testdata/testdata.csv does not exist"),
    ],
)
def test_a_missing_pipeline_file_is_a_503_naming_it_relative_to_the_project(client, config, path, missing, message):
    (config.config_path.parent / missing).unlink()
    response = client.get(path)
    assert response.status_code == 503
    assert response.get_json()["error"].startswith(message)  # relative: no absolute server path


def test_unknown_routes_and_methods_answer_json(client):
    response = client.get("/nope")
    assert (response.status_code, list(response.get_json())) == (404, ["error"])
    response = client.get("/prediction")
    assert (response.status_code, response.get_json()) == (
        405,
        {"error": "The method is not allowed for the requested URL."},
    )


# --- the model follows production without a restart ------------------------------------------------


def test_the_model_is_reloaded_after_a_redeploy_without_a_restart(client, config):
    first = client.post("/prediction", json={"records": [RECORD]}).get_json()
    # A model trained on flipped labels predicts the opposite.
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    finaldata.assign(exited=1 - finaldata["exited"]).to_csv(config.output_folder_path / "finaldata.csv", index=False)
    training.main(config.config_path)
    deployment.main(config.config_path)
    second = client.post("/prediction", json={"records": [RECORD]}).get_json()
    assert second["release"] == config.prod_deployment_path.resolve().name != first["release"]
    assert {key: second[key] for key in ("predictions", "probabilities")} == sklearn_answer(
        config, pd.DataFrame([RECORD])
    )
    assert second["predictions"] != first["predictions"]


def test_the_model_is_loaded_once_per_release(client, config, monkeypatch):
    loads = []
    real_load = registry.read_release_model
    monkeypatch.setattr(registry, "read_release_model", lambda *args: loads.append(args[1]) or real_load(*args))
    app = create_app(config).test_client()
    for _ in range(3):
        app.post("/prediction", json={"records": [RECORD]})
        app.get("/scoring")
    assert len(loads) == 1
    deployment.main(config.config_path)  # the same model, a new release
    for _ in range(3):
        app.post("/prediction", json={"records": [RECORD]})
    assert [path.name for path in loads][1:] == [config.prod_deployment_path.resolve().name]


def test_a_replaced_model_is_refused_with_a_503_and_one_alert_and_is_never_unpickled(client, config, webhook, tmp_path):
    webhook.start()
    api = create_app(set_config(config, alert_webhook_url=webhook.url)).test_client()
    assert api.post("/prediction", json={"records": [RECORD]}).status_code == 200
    model_path = config.prod_deployment_path / "trainedmodel.pkl"
    original = model_path.read_bytes()
    marker = tmp_path / "the planted pickle ran"
    plant_pickle(model_path, marker)
    release, model_id = config.prod_deployment_path.resolve().name, hashlib.sha256(original).hexdigest()[:12]
    answers = [api.post("/prediction", json={"records": [RECORD]}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [503] * 3
    assert (
        answers[0]
        .get_json()["error"]
        .startswith(
            f"release {release} is refused: its trainedmodel.pkl is not the model {model_id} the history records for it"
        )
    )
    assert not marker.exists()
    deadline = time.monotonic() + 10
    while not webhook.bodies and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(body["event"], body["severity"]) for body in webhook.bodies] == [("release refused", "critical")]
    model_path.write_bytes(original)  # put back: served again
    assert api.post("/prediction", json={"records": [RECORD]}).status_code == 200


def test_a_model_the_api_cannot_verify_is_not_loaded_until_the_history_can_say(client, config):
    assert client.get("/scoring").status_code == 200  # loaded and verified: it keeps serving
    for path in config.history_path.parent.glob("history.db*"):
        path.unlink()
    assert client.get("/scoring").status_code == 200  # the same file: nothing to verify again
    fresh = create_app(config).test_client()  # a new worker: it must verify, and cannot
    answer = fresh.get("/scoring")
    assert answer.status_code == 503 and "cannot be verified without the history database" in answer.get_json()["error"]
    import deployment

    deployment.main(config.config_path)  # a deployment records the history again: the new release loads
    assert fresh.get("/scoring").status_code == 200


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


# --- the token ----------------------------------------------------------------------------------


class TestToken:
    @pytest.fixture
    def client(self, trained_project, config, monkeypatch):
        monkeypatch.setenv("API_TOKEN", "s3cret")
        monkeypatch.delenv("SECRET_KEY", raising=False)
        return create_app(config).test_client()

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}])
    @pytest.mark.parametrize("path", ["/scoring", "/toprisk", "/history", "/summarystats"])
    def test_a_missing_or_wrong_token_is_401(self, client, headers, path):
        response = client.get(path, headers=headers)
        assert (response.status_code, response.get_json()) == (
            401,
            {"error": "missing or wrong token: send 'Authorization: Bearer <token>'"},
        )

    def test_the_right_token_is_accepted(self, client):
        assert client.get("/scoring", headers={"Authorization": "Bearer s3cret"}).status_code == 200

    def test_health_needs_no_token(self, client):
        assert client.get("/health").status_code == 200

    @staticmethod
    def worker(config, monkeypatch, secret_key):
        """An app as one gunicorn worker builds it, with SECRET_KEY set to `secret_key` or unset."""
        if secret_key:
            monkeypatch.setenv("SECRET_KEY", secret_key)
        else:
            monkeypatch.delenv("SECRET_KEY", raising=False)
        return create_app(config).test_client()

    @pytest.mark.parametrize(
        "signing_key, serving_key, status",
        [
            ("key-one", "key-one", 200),  # the same SECRET_KEY: another worker accepts the session
            ("key-one", "key-two", 401),  # another SECRET_KEY: the cookie's signature does not hold
            (None, None, 200),  # unset: derived from the token, the same in every worker
            (None, "key-two", 401),
        ],
    )
    def test_the_session_cookie_is_signed_with_secret_key_or_one_derived_from_the_token(
        self, client, config, monkeypatch, signing_key, serving_key, status
    ):
        browser = self.worker(config, monkeypatch, signing_key)
        assert browser.post("/login", data={"token": "s3cret"}).status_code == 302
        other = self.worker(config, monkeypatch, serving_key)
        other.set_cookie("session", browser.get_cookie("session").value)
        assert other.get("/scoring").status_code == status


# --- the risk list, the history and the pipeline's state -------------------------------------


def newest_rows_expected(config) -> pd.DataFrame:
    """Each client's newest row and its probability (scikit-learn), highest first, ties by code."""
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv", keep_default_na=False, na_values=[""])
    newest = finaldata.drop_duplicates(subset="corporation", keep="last").dropna(subset=FEATURES)
    probability = deployed_model(config).predict_proba(newest[FEATURES].to_numpy(float))[:, 1]
    ranked = newest.assign(probability=probability).sort_values(["probability", "corporation"], ascending=[False, True])
    return ranked.reset_index(drop=True).assign(rank=lambda df: df.index + 1)


def test_toprisk_ranks_the_20_riskiest_clients_by_default(client, config):
    body = client.get("/toprisk").get_json()
    expected = newest_rows_expected(config).head(20)
    assert [row["corporation"] for row in body["clients"]] == expected["corporation"].tolist()
    assert [row["rank"] for row in body["clients"]] == list(range(1, 21))
    assert [row["probability"] for row in body["clients"]] == [round(p, 6) for p in expected["probability"]]
    assert (body["n"], body["release"], body["unscored"]) == (20, config.prod_deployment_path.resolve().name, [])


def test_a_client_is_ranked_by_its_newest_row_not_an_older_one(client, config):
    path = config.output_folder_path / "finaldata.csv"
    finaldata = pd.read_csv(path)
    code = finaldata["corporation"].iloc[0]
    # A later file says the client went quiet and small: its newest row is the one that counts.
    path.write_text(path.read_text() + f"{code},0,0,1,1\n")
    newest = pd.DataFrame([{"lastmonth_activity": 0, "lastyear_activity": 0, "number_of_employees": 1}])
    probability = round(float(deployed_model(config).predict_proba(newest.to_numpy(float))[0, 1]), 6)
    found = client.get(f"/clients/{code}").get_json()["client"]
    assert (found["lastmonth_activity"], found["lastyear_activity"], found["number_of_employees"]) == (0, 0, 1)
    assert found["probability"] == probability
    body = client.get("/toprisk?n=10000").get_json()
    assert [row["corporation"] for row in body["clients"]].count(code) == 1 and body["n"] == 700


def test_the_pushes_are_coefficient_times_distance_from_the_training_mean_and_add_up_to_the_log_odds(client, config):
    card = json.loads((config.prod_deployment_path / "modelcard.json").read_text())
    model = deployed_model(config)
    means = np.array([card["feature_means"][f] for f in FEATURES])
    expected = newest_rows_expected(config).head(50)
    rows = client.get("/toprisk?n=50").get_json()["clients"]
    pushes = model.coef_[0] * (expected[FEATURES].to_numpy(float) - means)
    np.testing.assert_allclose([[row["push"][f] for f in FEATURES] for row in rows], pushes, atol=1e-6)
    log_odds = model.intercept_[0] + model.coef_[0] @ means + pushes.sum(axis=1)  # intercept at the means
    np.testing.assert_allclose([row["probability"] for row in rows], 1 / (1 + np.exp(-log_odds)), atol=1e-6)
    np.testing.assert_allclose([row["probability"] for row in rows], expected["probability"], atol=1e-6)


def test_the_reason_names_the_strongest_upward_push_in_words(client, config):
    card = json.loads((config.prod_deployment_path / "modelcard.json").read_text())
    means = card["feature_means"]
    coef = dict(zip(FEATURES, deployed_model(config).coef_[0], strict=True))
    assert coef["lastmonth_activity"] < 0  # the toy data: quiet clients leave
    # zzzz: last month 0 (0 / mean < 0.5: "far below usual"), the other two at their means (push 0).
    year, employees = round(means["lastyear_activity"]), round(means["number_of_employees"])
    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + f"zzzz,0,{year},{employees},1\n")
    reason = client.get("/clients/zzzz").get_json()["client"]["reason"]
    assert reason == f"activity last month 0, far below usual ({means['lastmonth_activity']:,.0f}): raises risk most"


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
    assert response.get_json() == {"error": f"'n' must be a whole number from 1 to 10,000, got {n!r}"}


def test_n_of_10000_is_allowed(client):
    assert client.get("/toprisk?n=10000").get_json()["n"] == 700  # every client there is


def test_the_risk_list_downloads_as_csv_every_client_by_default(client, config):
    response = client.get("/toprisk.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    release = config.prod_deployment_path.resolve().name
    assert response.headers["Content-Disposition"] == f"attachment; filename=riskranking-{release}.csv"
    downloaded = pd.read_csv(io.StringIO(response.get_data(as_text=True)), dtype={"corporation": str})
    assert list(downloaded.columns) == [
        "rank",
        "corporation",
        "probability",
        *FEATURES,
        *[f"push_{feature}" for feature in FEATURES],
        "reason",
    ]
    expected = newest_rows_expected(config)
    assert downloaded["corporation"].tolist() == expected["corporation"].tolist()  # all 700, in order
    np.testing.assert_allclose(downloaded["probability"], expected["probability"], atol=1e-6)
    top3 = client.get("/toprisk.csv?n=3").get_data(as_text=True).splitlines()[1:]
    assert [line.split(",")[1] for line in top3] == expected["corporation"].head(3).tolist()


def test_the_csv_download_holds_every_client_even_beyond_10000(client, config):
    from conftest import code

    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + "".join(f"{code(50_000 + i)},1,2,3,0\n" for i in range(9_301)))
    lines = client.get("/toprisk.csv").get_data(as_text=True).splitlines()
    assert len(lines) - 1 == 10_001  # 700 + 9,301 clients


def test_one_client_is_found_by_its_code_with_its_rank_and_an_unknown_one_is_a_404(client, config):
    expected = newest_rows_expected(config).iloc[41]
    found = client.get(f"/clients/{expected['corporation']}").get_json()
    assert found["release"] == config.prod_deployment_path.resolve().name
    assert (found["client"]["rank"], found["client"]["corporation"], found["client"]["probability"]) == (
        42,
        expected["corporation"],
        round(expected["probability"], 6),
    )
    assert [found["client"][feature] for feature in FEATURES] == expected[FEATURES].tolist()
    response = client.get("/clients/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "no client 'nope' in the ingested data"


def test_history_releases_and_drift_after_plain_scripts(client, config):
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


@pytest.mark.parametrize("limit", ["0", "501", "x"])
def test_a_history_limit_outside_1_to_500_is_a_400(client, limit):
    response = client.get(f"/history?limit={limit}")
    assert response.get_json() == {"error": f"'limit' must be a whole number from 1 to 500, got {limit!r}"}
    assert response.status_code == 400


@pytest.fixture(scope="module")
def history_client(history_project):
    return create_app(history_project).test_client()


@pytest.mark.slow  # reads the history the full process made as processes (conftest's history_project)
class TestOverARealHistory:
    def test_history_lists_the_newest_runs_first_with_their_verdicts(self, history_client, history_project):
        runs = query(history_project, "SELECT id, decision, exit_code FROM runs ORDER BY id DESC")
        body = history_client.get("/history?limit=2").get_json()["runs"]
        assert [(run["id"], run["decision"], run["exit_code"]) for run in body] == [
            (run["id"], run["decision"], run["exit_code"]) for run in runs[:2]
        ]
        for run in body:
            recorded = query(
                history_project, "SELECT kind, detail FROM verdicts WHERE run_id = ? ORDER BY id", (run["id"],)
            )
            assert [(verdict["kind"], verdict["detail"]) for verdict in run["verdicts"]] == [
                (verdict["kind"], verdict["detail"]) for verdict in recorded
            ]
        assert len(history_client.get("/history").get_json()["runs"]) == len(runs) == 3  # default 20: all three

    def test_releases_are_the_registry_with_the_live_one_marked(self, history_client, history_project):
        body = history_client.get("/releases").get_json()["releases"]
        moves = query(history_project, "SELECT to_release, reason FROM deployments ORDER BY id DESC")
        assert [(row["release"], row["reason"]) for row in body] == [(m["to_release"], m["reason"]) for m in moves]
        assert [row["live"] for row in body] == [True, False]
        assert body[0]["release"] == history_project.prod_deployment_path.resolve().name

    def test_drift_is_the_newest_performance_verdict_and_each_features_checks(self, history_client, history_project):
        body = history_client.get("/drift").get_json()
        (performance,) = query(
            history_project, "SELECT * FROM verdicts WHERE kind = 'performance' ORDER BY id DESC LIMIT 1"
        )
        assert (body["performance"]["id"], body["performance"]["detail"]) == (performance["id"], performance["detail"])
        checks = query(
            history_project,
            "SELECT feature, statistic, value FROM verdicts WHERE run_id = ? AND kind = 'data drift' ORDER BY id",
            (body["data_run_id"],),
        )
        shown = {
            (entry["feature"], statistic, check["value"])
            for entry in body["features"]
            for statistic, check in entry["checks"].items()
            if entry["feature"] != "exit rate"
        }
        assert shown == {(check["feature"], check["statistic"], check["value"]) for check in checks}
        assert {entry["feature"] for entry in body["features"]} == {*FEATURES, "exit rate"}


def set_heartbeat(config, checked_at: str) -> None:
    with sqlite3.connect(config.history_path) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO heartbeats VALUES (?, ?, 'no new data', NULL)",
            (str(config.config_path), checked_at),
        )


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds_ago))


def test_health_says_when_cron_is_late_and_sends_one_alert(trained_project, config, webhook):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    client = create_app(config).test_client()
    set_heartbeat(config, stamp(19 * 60))  # within twice the 10 minutes expected
    assert client.get("/health").get_json()["pipeline"]["late"] is False
    set_heartbeat(config, stamp(21 * 60))
    for _ in range(3):
        assert client.get("/health").get_json()["pipeline"]["late"] is True
    deadline = time.monotonic() + 10  # sent in the background, not in the request
    while not webhook.bodies and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a second alert, if one were sent, would have arrived by now
    assert [body["event"] for body in webhook.bodies] == ["late cron"]
    assert webhook.bodies[0]["text"].startswith("[WARNING] no cron heartbeat for config.json since ")
    assert query(config, "SELECT COUNT(*) AS n FROM alerts WHERE event = 'late cron'") == [{"n": 1}]


def test_python_app_py_serves_on_api_host_and_api_port(trained_project, config, monkeypatch):
    config = set_config(config, api_host="127.0.0.2", api_port=8123)
    served = []
    monkeypatch.setattr(app_module.Flask, "run", lambda self, **kwargs: served.append(kwargs))
    app_module.main(config.config_path)
    assert served == [{"host": "127.0.0.2", "port": 8123, "debug": False}]
