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
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, client_rows, damage_history, history_locked, plant_pickle, set_config
from sklearn.metrics import f1_score

import app as app_module
import deployment
import training
from app import MAX_BODY_BYTES, create_app
from risk import access, diagnosis, history, outdated, registry
from risk.web import readers
from risk.web.answers import TOO_LARGE

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
        (  # 40,000 keys: refused on their number at once (comparing names was quadratic: 23 s)
            {"json": {"records": [{f"k{i}": 1 for i in range(40_000)}]}},
            400,
            "records[0]: 40,000 columns, more than 100 (expected 5 at most)",
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
    if status == 413:
        assert response.get_json() == {"error": TOO_LARGE}


def padded_records(size: int) -> bytes:
    """A valid JSON body of one record, padded with spaces to `size` bytes: cut anywhere in the padding, still valid."""
    body = json.dumps({"records": [RECORD]}).encode()
    return body + b" " * (size - len(body))


@pytest.mark.parametrize(
    "size, status",
    [(MAX_BODY_BYTES, 200), (MAX_BODY_BYTES + 1, 413), (MAX_BODY_BYTES + 1_000_000, 413)],
)
def test_a_chunked_body_over_16_mib_is_a_413_not_cut_short(client, size, status):
    # A chunked body has no Content-Length: the server marks its end (wsgi.input_terminated), as gunicorn does.
    response = client.post(
        "/prediction",
        input_stream=io.BytesIO(padded_records(size)),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == status
    if status == 413:
        assert response.get_json() == {"error": TOO_LARGE}
    else:
        assert response.get_json()["rows"] == 1


def test_a_chunked_upload_over_16_mib_is_a_413(client, config):
    boundary = "b0undary"
    csv = (config.test_data_path / "testdata.csv").read_bytes()
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'.encode()
    body = head + csv + b"\n" * MAX_BODY_BYTES + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        "/prediction",
        input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert (response.status_code, response.get_json()) == (
        413,
        {"error": TOO_LARGE},
    )


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


def test_summarystats_of_a_feature_column_with_no_value_are_null(client, config):
    path = config.output_folder_path / "finaldata.csv"
    finaldata = pd.read_csv(path)
    finaldata.assign(lastyear_activity=None).to_csv(path, index=False)  # every row lacks last year's activity
    response = client.get("/summarystats")
    assert response.status_code == 200
    body = response.get_json()
    assert body["summary"]["lastyear_activity"] == {"mean": None, "median": None, "std": None}
    assert body["summary"]["lastmonth_activity"]["mean"] == pytest.approx(finaldata["lastmonth_activity"].mean())
    assert body["values"][3:6] == [None, None, None]


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

    monkeypatch.setattr(diagnosis, "missing_data_table", missing_data_table)
    monkeypatch.setattr(outdated, "start_refresh", lambda *args: calls.append("refresh started"))
    monkeypatch.setattr(outdated, "latest_versions", lambda *args, **kwargs: calls.append("pip asked"))
    assert client.get("/diagnostics").status_code == 200 and calls == []
    # The stand-ins are the ones a cold cache calls: a changed finaldata.csv, an expired answer.
    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + "zzzz,1,2,3,0\n")
    (config.output_model_path / "outdatedpackages.json").unlink()
    body = client.get("/diagnostics").get_json()
    assert calls == ["missing data", "refresh started"]  # pip is asked in the background, never in the request
    assert {item["latest"] for item in body["outdated_packages"]} == {"not checked yet"}


def test_diagnostics_answer_at_once_whatever_pip_does(client, config, monkeypatch):
    """An expired answer and an index that never answers: the request does not wait for it."""
    cache_path = config.output_model_path / "outdatedpackages.json"
    cache = json.loads(cache_path.read_text())
    cache["checked_at"] -= config.outdated_cache_seconds + 1
    cache_path.write_text(json.dumps(cache))
    hanging = ["python3", "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(outdated, "pip_index_command", lambda name: hanging)
    monkeypatch.setattr(outdated, "start_refresh", lambda *args: None)  # the real one would detach a process
    started = time.monotonic()
    body = client.get("/diagnostics").get_json()
    assert time.monotonic() - started < 5
    assert {item["latest"] for item in body["outdated_packages"]} == {"9.9.9"}  # the expired answer, meanwhile


def test_a_fresh_timing_runs_one_at_a_time_and_meanwhile_others_get_a_429(client, config):
    from risk import artifacts

    lock_path = diagnosis.timing_lock_path(config)  # held as a timing in another request or worker holds it
    fd = artifacts.acquire_lock(lock_path)
    try:
        started = time.monotonic()
        response = client.get("/diagnostics?refresh=1")
        assert time.monotonic() - started < 2  # refused at once, nothing run
    finally:
        os.close(fd)
    assert response.status_code == 429 and response.headers["Retry-After"] == "10"
    assert response.get_json() == {
        "error": "'refresh=1': a fresh timing is already running (one at a time); try again when it ends,"
        " or leave out refresh for the recorded timings"
    }
    body = client.get("/diagnostics?refresh=1").get_json()  # the lock is free again: this one runs
    assert [(row["step"], row["source"]) for row in body["execution_runs"]] == [
        ("ingestion", "fresh run"),
        ("training", "fresh run"),
    ]
    assert artifacts.acquire_lock(lock_path) is not None  # and released after it


def test_a_bad_refresh_argument_is_a_400(client):
    response = client.get("/diagnostics?refresh=yes")
    assert (response.status_code, response.get_json()) == (400, {"error": "'refresh' must be 0 or 1"})


def test_health_is_200_with_the_release_and_the_pipelines_state(client, config):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["release"]) == ("ok", config.prod_deployment_path.resolve().name)
    # The manual deployment was a run by a person: its end left that person's heartbeat, not cron's, so
    # whether cron is late is not known until cron itself runs.
    (run,) = query(config, "SELECT id, decision, exit_code, finished_at FROM runs")
    (beat,) = query(config, "SELECT actor, checked_at, outcome, run_id FROM heartbeats")
    pipeline = body["pipeline"]
    assert (pipeline["heartbeat"], pipeline["by_hand"], pipeline["last_run"], pipeline["late"]) == (
        None,
        beat,
        run,
        None,
    )
    assert beat["outcome"] == "deployed by hand" and beat["actor"] != "cron"
    assert (body["late"], pipeline["seconds_since_heartbeat"]) == (None, None)


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
    training.train(config)
    deployment.deploy(config)
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
    deployment.deploy(config)  # the same model, a new release
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
    assert webhook.bodies[0]["summary"].endswith(
        f": The API serves no model: release {release} is refused: its trainedmodel.pkl is not the model {model_id}"
        " the history records for it. It answers 503 until then."
    )
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

    deployment.deploy(config)  # a deployment records the history again: the new release loads
    assert fresh.get("/scoring").status_code == 200


def test_a_rollback_is_served_without_a_restart(client, config):
    first = client.post("/prediction", json={"records": [RECORD]}).get_json()
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    finaldata.assign(exited=1 - finaldata["exited"]).to_csv(config.output_folder_path / "finaldata.csv", index=False)
    training.train(config)
    deployment.deploy(config)
    assert client.post("/prediction", json={"records": [RECORD]}).get_json()["release"] != first["release"]
    deployment.rollback(config)
    back = client.post("/prediction", json={"records": [RECORD]}).get_json()
    assert back == first


# --- the token ----------------------------------------------------------------------------------


class TestToken:
    @pytest.fixture
    def client(self, trained_project, config, monkeypatch):
        monkeypatch.setenv("API_TOKEN", "s3cret")
        monkeypatch.delenv("SECRET_KEY", raising=False)
        return create_app(config).test_client()

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}, {"Authorization": "Basic s3cret"}],
    )
    @pytest.mark.parametrize("path", ["/scoring", "/toprisk", "/history", "/summarystats"])
    def test_a_missing_or_wrong_token_is_401(self, client, headers, path):
        response = client.get(path, headers=headers)
        assert (response.status_code, response.get_json()) == (
            401,
            {"error": "missing or wrong token: send 'Authorization: Bearer <token>'"},
        )

    @pytest.mark.parametrize("header", ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"])
    def test_the_right_token_is_accepted_whatever_the_schemes_case(self, client, header):
        assert client.get("/scoring", headers={"Authorization": header}).status_code == 200

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
            (None, None, 200),  # unset: the random key kept beside the history, the same in every worker
            (None, "key-two", 401),
        ],
    )
    def test_the_session_cookie_is_signed_with_secret_key_or_a_random_one_kept_beside_the_history(
        self, client, config, monkeypatch, signing_key, serving_key, status
    ):
        browser = self.worker(config, monkeypatch, signing_key)
        assert browser.post("/login", data={"token": "s3cret"}).status_code == 302
        other = self.worker(config, monkeypatch, serving_key)
        other.set_cookie("session", browser.get_cookie("session").value)
        assert other.get("/scoring").status_code == status

    def test_without_secret_key_the_key_is_random_mode_0600_and_no_cookie_can_be_forged_from_the_token(
        self, client, config
    ):
        import hashlib
        import stat

        from flask.sessions import SecureCookieSessionInterface

        key_path = config.history_path.parent / "session.key"
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600 and len(key_path.read_text().strip()) == 64
        # The key the code used to derive from the token, and the mark a session held: anyone knowing the
        # token's digest scheme and one cookie could sign their own.
        mark = hashlib.sha256(b"risk-session:s3cret").hexdigest()
        forger = create_app(config)
        forger.secret_key = mark + "-secret"
        forged = SecureCookieSessionInterface().get_signing_serializer(forger).dumps({"auth": mark})
        client.set_cookie("session", forged)
        assert client.get("/scoring").status_code == 401

    def test_a_cookie_from_before_a_logout_works_nowhere_after_it(self, client, config):
        other_worker = create_app(config).test_client()
        assert client.post("/login", data={"token": "s3cret"}).status_code == 302
        cookie = client.get_cookie("session").value
        other_worker.set_cookie("session", cookie)
        assert other_worker.get("/scoring").status_code == 200
        logout = client.post("/logout")
        assert (logout.status_code, logout.headers["Location"]) == (302, "/login")
        assert client.get("/scoring").status_code == 401  # this browser's cookie is gone
        for browser in (client, other_worker):  # and a copy of it kept from before is refused in every worker
            browser.set_cookie("session", cookie)
            assert browser.get("/scoring").status_code == 401
        assert client.post("/login", data={"token": "s3cret"}).status_code == 302  # a new login works
        assert client.get("/scoring").status_code == 200

    def test_a_logout_that_cannot_end_the_sessions_says_so_and_the_session_still_works(self, client, monkeypatch):
        def refuse(folder_path):
            raise PermissionError(13, "Permission denied")

        assert client.post("/login", data={"token": "s3cret"}).status_code == 302
        monkeypatch.setattr(access, "end_sessions", refuse)
        response = client.post("/logout")
        page = response.get_data(as_text=True)
        assert response.status_code == 503
        assert "The sessions could not be ended (Permission denied): this session still works." in page
        assert client.get("/scoring").status_code == 200  # as the page says

    def test_a_new_token_ends_every_session(self, client, config, monkeypatch):
        assert client.post("/login", data={"token": "s3cret"}).status_code == 302
        cookie = client.get_cookie("session").value
        monkeypatch.setenv("API_TOKEN", "n3w-token")
        restarted = create_app(config).test_client()
        restarted.set_cookie("session", cookie)
        assert restarted.get("/scoring").status_code == 401

    @pytest.mark.parametrize("base_url, secure", [("http://localhost", False), ("https://localhost", True)])
    def test_the_session_cookie_is_httponly_samesite_lax_and_secure_over_https(self, client, base_url, secure):
        response = client.post("/login", data={"token": "s3cret"}, base_url=base_url)
        (cookie,) = response.headers.getlist("Set-Cookie")
        attributes = [part.strip() for part in cookie.split(";")]
        assert "HttpOnly" in attributes and "SameSite=Lax" in attributes
        assert ("Secure" in attributes) is secure

    def test_wrong_tokens_are_slowed_per_address_with_a_429_saying_how_long(self, client):
        wrong = {"Authorization": "Bearer wrong"}
        right = {"Authorization": "Bearer s3cret"}
        for _ in range(5):
            assert client.get("/scoring", headers=wrong).status_code == 401
        response = client.get("/scoring", headers=right)  # even the right token, until the wait is over
        assert response.status_code == 429
        wait = int(response.headers["Retry-After"])
        assert 55 <= wait <= 60
        assert response.get_json() == {"error": f"too many wrong tokens from this address: try again in {wait} s"}
        login = client.post("/login", data={"token": "s3cret"})
        assert login.status_code == 429 and int(login.headers["Retry-After"]) <= wait
        assert "Too many wrong tokens from this address: try again in" in login.get_data(as_text=True)
        elsewhere = {"REMOTE_ADDR": "198.51.100.7"}
        assert client.get("/scoring", headers=right, environ_base=elsewhere).status_code == 200

    def test_wrong_tokens_on_the_login_form_and_on_health_count_too(self, client):
        for _ in range(3):
            assert client.post("/login", data={"token": "guess"}).status_code == 401
        for _ in range(2):  # /health is open, but would tell a right token from a wrong one by its details
            assert "pipeline" not in client.get("/health", headers={"Authorization": "Bearer guess"}).get_json()
        assert client.get("/scoring", headers={"Authorization": "Bearer s3cret"}).status_code == 429
        assert "pipeline" not in client.get("/health", headers={"Authorization": "Bearer s3cret"}).get_json()

    def test_health_without_the_token_says_only_up_ready_late_and_the_live_release(self, client, config):
        response = client.get("/health")
        assert (response.status_code, response.get_json()) == (
            200,
            {"status": "ok", "release": config.prod_deployment_path.resolve().name, "late": None},
        )

    @pytest.mark.parametrize("trouble", ["refused model", "damaged history"])
    def test_health_without_the_token_says_only_not_ready_and_why_only_with_it(self, client, config, trouble):
        release = config.prod_deployment_path.resolve().name
        if trouble == "refused model":
            model = config.prod_deployment_path / "trainedmodel.pkl"
            model.write_bytes(model.read_bytes() + b"\n")  # unpickles the same, but is not the recorded file
        else:
            damage_history(config)
        response = client.get("/health")
        assert (response.status_code, response.get_json()) == (503, {"status": "not ready", "release": release})
        detailed = client.get("/health", headers={"Authorization": "Bearer s3cret"})
        assert detailed.status_code == 503 and release in detailed.get_json()["error"]

    def test_health_with_the_token_gives_the_pipelines_state_without_a_server_path(self, client, config):
        body = client.get("/health", headers={"Authorization": "Bearer s3cret"}).get_json()
        assert (body["status"], body["late"], body["pipeline"]["late"]) == ("ok", None, None)
        assert body["pipeline"]["config_path"] == "config.json"
        assert body["pipeline"]["last_run"]["decision"] == "deployed by hand"


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


def test_the_reason_says_how_the_client_differs_from_the_median_in_its_units_and_the_points_it_adds(client, config):
    coef = dict(zip(FEATURES, deployed_model(config).coef_[0], strict=True))
    assert coef["lastmonth_activity"] < 0  # the toy data: quiet clients leave
    path = config.output_folder_path / "finaldata.csv"
    before = newest_rows_expected(config)
    # zzzz: last month 0, the other two at the median (their push against the usual value is about 0).
    year, employees = before["lastyear_activity"].median(), before["number_of_employees"].median()
    path.write_text(path.read_text() + f"zzzz,0,{year:.0f},{employees:.0f},1\n")
    usual = newest_rows_expected(config)[FEATURES].median()  # 701 clients: each median is one of them
    row = pd.DataFrame([{"lastmonth_activity": 0, "lastyear_activity": year, "number_of_employees": employees}])
    typical = row.assign(lastmonth_activity=usual["lastmonth_activity"])
    probabilities = deployed_model(config).predict_proba(pd.concat([row, typical])[FEATURES].to_numpy(float))[:, 1]
    points = 100 * (probabilities[0] - probabilities[1])
    found = client.get("/clients/zzzz").get_json()["client"]
    month = usual["lastmonth_activity"]
    assert found["reason"] == (
        f"activity last month 0, {month:,.0f} below the usual {month:,.0f}: adds {round(points)} percentage points"
    )
    assert found["points"]["lastmonth_activity"] == round(points, 1)
    assert found["usual"] == {feature: float(usual[feature]) for feature in FEATURES}
    assert found["risk"] == f"{probabilities[0] * 100:.0f} %" and found["probability"] == round(probabilities[0], 6)


def test_a_client_without_a_feature_is_listed_apart_with_why(client, config):
    path = config.output_folder_path / "finaldata.csv"
    path.write_text(path.read_text() + "zzzz,,5,7,0\n")
    body = client.get("/toprisk?n=10000").get_json()
    assert body["unscored"] == [{"corporation": "zzzz", "reason": "no value for activity last month"}]
    assert "zzzz" not in [row["corporation"] for row in body["clients"]]
    assert client.get("/clients/zzzz").get_json()["unscored"]["reason"] == "no value for activity last month"


@pytest.mark.parametrize(
    "n",
    [
        "0",
        "-3",
        "abc",
        "10001",
        "1e3",
        "99999999999999999999",
        "\u00b2",  # superscript two: str.isdigit() says yes, int() refuses it
        "\u0661",  # Arabic-Indic one: int() would read it as 1
        "\uff15",  # fullwidth five
        " 5",
        "5\n",
        "9" * 5000,  # beyond int()'s 4,300 digits
    ],
)
def test_a_bad_n_is_a_400_naming_it(client, n):
    response = client.get("/toprisk", query_string={"n": n})
    assert response.status_code == 400
    assert response.get_json() == {"error": f"'n' must be a whole number from 1 to 10,000, got {n[:20]!r}"}


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
        "risk",
        *[f"points_{feature}" for feature in FEATURES],
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


@pytest.mark.parametrize("limit", ["0", "501", "x", "\u00b2", "\u0663"])
def test_a_history_limit_outside_1_to_500_is_a_400(client, limit):
    response = client.get("/history", query_string={"limit": limit})
    assert response.get_json() == {"error": f"'limit' must be a whole number from 1 to 500, got {limit!r}"}
    assert response.status_code == 400


SERVER_PATH_ROUTES = ["/health", "/history", "/releases", "/drift", "/diagnostics", "/scoring", "/summarystats"]


@pytest.mark.parametrize("path", [*SERVER_PATH_ROUTES, "/toprisk?n=1", "/clients/nope", "/nope"])
def test_no_answer_shows_an_absolute_server_path(client, config, path):
    text = client.get(path).get_data(as_text=True)
    assert str(config.config_path.parent) not in text and os.sep + "tmp" + os.sep not in text


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

    def test_releases_give_each_models_health_verdict_from_its_latest_check(self, history_client, history_project):
        body = history_client.get("/releases").get_json()["releases"]
        latest = "SELECT state FROM monitoring WHERE model_id = ? ORDER BY id DESC LIMIT 1"
        expected = [query(history_project, latest, (row["model_id"],))[0]["state"] for row in body]
        assert [row["health"]["verdict"] for row in body] == expected == ["healthy", "degraded"]
        assert body[0]["health"]["words"].endswith("it can be trusted.")  # the live one: what the risk list comes from
        assert body[1]["health"]["words"] is None and body[1]["health"]["f1"] is not None  # not live: the numbers only

    @pytest.mark.parametrize("path", SERVER_PATH_ROUTES)
    def test_no_answer_shows_an_absolute_server_path(self, history_client, history_project, path):
        text = history_client.get(path).get_data(as_text=True)
        assert str(history_project.config_path.parent) not in text

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
            "INSERT OR REPLACE INTO heartbeats VALUES (?, ?, 'no new data', NULL, 'cron')",
            (str(config.config_path), checked_at),
        )


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds_ago))


def test_health_says_when_cron_is_late_and_leaves_the_alert_to_the_watchdog(trained_project, config, webhook):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    client = create_app(config).test_client()
    set_heartbeat(config, stamp(19 * 60))  # within twice the 10 minutes expected
    assert client.get("/health").get_json()["pipeline"]["late"] is False
    set_heartbeat(config, stamp(21 * 60))
    for _ in range(3):
        assert client.get("/health").get_json()["pipeline"]["late"] is True
    time.sleep(0.3)  # an alert sent in the background would have arrived by now
    assert webhook.bodies == [] and query(config, "SELECT COUNT(*) AS n FROM alerts") == [{"n": 0}]
    assert create_app(config).extensions["risk"].watchdog.look() == [1]  # its timer tells, once a minute
    assert [body["event"] for body in webhook.bodies] == ["late cron"]


# --- a history database that cannot be read ------------------------------------------------------

HISTORY_ROUTES = ["/health", "/history", "/drift", "/releases", "/charts/trend.svg", "/diagnostics"]


def make_history_read_only(monkeypatch) -> None:
    """Every connection to SQLite opens read-only, as for an API user who may read the history but not write it."""
    real_connect = history.sqlite3.connect

    def connect(database, *args, **kwargs):
        if not str(database).startswith("file:"):
            database, kwargs["uri"] = f"file:{database}?mode=ro", True
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(history.sqlite3, "connect", connect)


DAMAGED = (
    "history database logs/history.db is damaged (file is not a database): restore it from a backup, or move it aside"
)
LOCKED = "history database logs/history.db is locked by another process (waited 1 s): try again when it is free"
READ_ONLY = (
    "history database logs/history.db is read-only (attempt to write a readonly database): make it writable for"
    " this user"
)


def refused_or(path: str, config, problem: str) -> str:
    """The 503's sentence: /health loads the model first, and a model is not loaded unverified."""
    if path != "/health":
        return problem
    release = config.prod_deployment_path.resolve().name
    return f"release {release} is refused: its model cannot be verified: {problem}"


@pytest.mark.parametrize("path", HISTORY_ROUTES)
def test_a_damaged_history_is_a_503_naming_it(client, config, path):
    damage_history(config)
    response = client.get(path)
    assert (response.status_code, response.get_json()) == (
        503,
        {
            "error": refused_or(
                path,
                config,
                DAMAGED,
            )
        },
    )


@pytest.mark.parametrize("path", ["/history", "/drift", "/releases"])
def test_a_history_path_that_is_a_folder_is_a_503_as_the_scripts_refuse_it_not_an_empty_history(client, config, path):
    for suffix in ("", "-wal", "-shm"):
        Path(f"{config.history_path}{suffix}").unlink(missing_ok=True)
    config.history_path.mkdir()
    response = client.get(path)
    assert (response.status_code, response.get_json()) == (
        503,
        {"error": "history database logs/history.db cannot be used: unable to open database file (not a regular file)"},
    )


@pytest.mark.parametrize("path", HISTORY_ROUTES)
def test_a_locked_history_is_a_503_after_at_most_a_second(client, config, path):
    assert readers.HISTORY_TIMEOUT_SECONDS == 1  # the README's bound
    with history_locked(config):
        started = time.monotonic()
        response = client.get(path)
        waited = time.monotonic() - started
    problem = LOCKED
    assert (response.status_code, response.get_json()) == (503, {"error": refused_or(path, config, problem)})
    assert waited < 5  # one wait of 1 s per request; before, 10 s (readers) or 30 s (/health with a webhook)


@pytest.mark.parametrize("path", HISTORY_ROUTES)
def test_a_read_only_history_of_an_older_schema_is_a_503(client, config, monkeypatch, path):
    with sqlite3.connect(config.history_path) as conn:  # as a version 1 database: the API would migrate it
        conn.execute("DROP TABLE alerts")
        conn.execute("PRAGMA user_version = 1")
    make_history_read_only(monkeypatch)
    response = client.get(path)
    assert (response.status_code, response.get_json()) == (
        503,
        {
            "error": refused_or(
                path,
                config,
                READ_ONLY,
            )
        },
    )


def test_a_late_cron_over_a_read_only_history_is_still_said(trained_project, config, webhook, monkeypatch, caplog):
    webhook.start()
    config = set_config(config, alert_webhook_url=webhook.url)
    set_heartbeat(config, stamp(21 * 60))
    make_history_read_only(monkeypatch)
    app = create_app(config)
    response = app.test_client().get("/health")
    assert (response.status_code, response.get_json()["late"]) == (200, True)
    assert app.extensions["risk"].watchdog.look() == []  # the watchdog cannot record it: it says why, and looks again
    assert f"cannot look at cron's heartbeat: {READ_ONLY}" in caplog.text
    assert webhook.bodies == []


@pytest.mark.parametrize("path", ["/health", "/history", "/drift", "/releases", "/charts/trend.svg", "/diagnostics"])
def test_without_a_history_database_the_answers_say_there_is_none_yet(client, config, path):
    for suffix in ("", "-wal", "-shm"):
        Path(f"{config.history_path}{suffix}").unlink(missing_ok=True)
    response = client.get(path)
    if path == "/health":  # the live model is not loaded until the history records its hash: not ready
        release = config.prod_deployment_path.resolve().name
        assert (response.status_code, response.get_json()["error"]) == (
            503,
            f"release {release} is refused: its model cannot be verified without the history database "
            "logs/history.db (the next full-process run, or deployment.py, adopts a live release and records its hash)",
        )
        return
    assert response.status_code == 200
    if path == "/history":
        assert response.get_json() == {"runs": []}
    if path == "/releases":  # from the release folders alone
        (release,) = response.get_json()["releases"]
        assert (release["release"], release["live"], release["known"]) == (
            config.prod_deployment_path.resolve().name,
            True,
            False,
        )


def test_python_app_py_serves_on_api_host_and_api_port(trained_project, config, monkeypatch):
    config = set_config(config, api_host="127.0.0.2", api_port=8123)
    served = []
    monkeypatch.setattr(app_module.Flask, "run", lambda self, **kwargs: served.append(kwargs))
    app_module.main(config.config_path)
    assert served == [{"host": "127.0.0.2", "port": 8123, "debug": False}]


def test_a_data_file_named_by_its_absolute_path_is_named_back_as_the_project_names_it(client, config):
    absolute = str(config.test_data_path / "testdata.csv")
    response = client.post("/prediction", json={"filepath": absolute})
    assert response.status_code == 200
    assert response.get_json()["source"] == "testdata/testdata.csv" and absolute not in response.get_data(as_text=True)


def test_a_form_of_too_many_parts_is_a_413_that_says_which_limit(client):
    fields = {f"f{i}": "x" for i in range(1_001)}
    response = client.post("/prediction", data=fields, content_type="multipart/form-data")
    assert (response.status_code, response.get_json()) == (413, {"error": TOO_LARGE})
    assert "at most 1,000 parts" in TOO_LARGE
