import dataclasses
import json
import re
import socket
from pathlib import Path

import pytest

from risk.config import DEFAULT_CONFIG_PATH, PROJECT_DIR, PipelineError, load_config
from risk.logs import one_line, relative_paths


def write_config(tmp_path, data) -> str:
    path = tmp_path / "conf" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


VALID = {
    "input_folder_path": "sourcedata",
    "output_folder_path": "ingesteddata",
    "test_data_path": "testdata",
    "output_model_path": "models",
    "prod_deployment_path": "production_deployment",
}


def test_relative_paths_resolve_against_the_config_folder_not_the_cwd(tmp_path, monkeypatch):
    path = write_config(tmp_path, VALID)
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    assert config.input_folder_path == tmp_path / "conf" / "sourcedata"
    assert config.prod_deployment_path == tmp_path / "conf" / "production_deployment"
    assert config.log_path == tmp_path / "conf" / "logs" / "fullprocess.log"
    assert config.history_path == tmp_path / "conf" / "logs" / "history.db"


def test_optional_keys_have_the_documented_defaults(tmp_path):
    config = load_config(write_config(tmp_path, VALID))
    folder = tmp_path / "conf"
    assert {key: value for key, value in vars(config).items() if key not in VALID and key != "config_path"} == {
        "log_path": folder / "logs" / "fullprocess.log",
        "history_path": folder / "logs" / "history.db",
        "drift_margin": 0.05,
        "drift_confidence": 0.99,
        "min_new_rows": 100,
        "min_new_positives": 30,
        "false_alarm_rate": 0.05,
        "degraded_confidence": 0.9,
        "alert_webhook_url": None,
        "expected_interval_minutes": 10,
        "api_host": "127.0.0.1",
        "api_port": 8000,
        "api_base_url": "http://127.0.0.1:8000",
        "outdated_cache_seconds": 3600,
        "system_name": f"risk@{socket.gethostname()} (config.json)",
    }


@pytest.mark.parametrize(
    "value, name",
    [("risk-prod", "risk-prod"), (None, f"risk@{socket.gethostname()} (settings.json)"), ("x" * 60, "x" * 60)],
)
def test_alerts_name_the_system_by_system_name_or_the_host_and_the_config_files_name(tmp_path, value, name):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({**VALID, "system_name": value}), encoding="utf-8")
    assert load_config(path).system_name == name


@pytest.mark.parametrize("value", ["", "x" * 61, "risk\nprod", 7])
def test_a_system_name_empty_too_long_on_two_lines_or_not_text_is_refused(tmp_path, value):
    path = write_config(tmp_path, {**VALID, "system_name": value})
    with pytest.raises(
        PipelineError, match=r"key 'system_name' must be a name of 1 to 60 printable characters, or null"
    ):
        load_config(path)


def test_absolute_paths_are_kept(tmp_path):
    path = write_config(tmp_path, {**VALID, "output_model_path": str(tmp_path / "elsewhere")})
    assert load_config(path).output_model_path == tmp_path / "elsewhere"


def test_risk_config_environment_variable_selects_the_file(tmp_path, monkeypatch):
    path = write_config(tmp_path, {**VALID, "input_folder_path": "practicedata"})
    monkeypatch.setenv("RISK_CONFIG", str(path))
    assert load_config().input_folder_path.name == "practicedata"


def test_risk_api_base_url_replaces_the_configs_api_base_url_and_is_checked_like_it(tmp_path, monkeypatch):
    path = write_config(tmp_path, {**VALID, "api_base_url": "http://127.0.0.1:8000"})
    monkeypatch.setenv("RISK_API_BASE_URL", "http://127.0.0.1:8010")
    assert load_config(path).api_base_url == "http://127.0.0.1:8010"
    monkeypatch.setenv("RISK_API_BASE_URL", "")  # empty: not set
    assert load_config(path).api_base_url == "http://127.0.0.1:8000"


def test_default_is_config_json_beside_the_scripts(monkeypatch):
    monkeypatch.delenv("RISK_CONFIG", raising=False)
    assert load_config().config_path == Path(DEFAULT_CONFIG_PATH)


@pytest.mark.parametrize(
    "data, message",
    [
        ({k: v for k, v in VALID.items() if k != "test_data_path"}, "has no key 'test_data_path'"),
        ({**VALID, "output_model_path": 3}, "key 'output_model_path' must be a non-empty path, got 3"),
        ({**VALID, "input_folder_path": ""}, "key 'input_folder_path' must be a non-empty path, got ''"),
        ({**VALID, "api_port": "8000"}, "key 'api_port' must be an integer from 1 to 65535, got '8000'"),
        ({**VALID, "api_port": True}, "key 'api_port' must be an integer from 1 to 65535, got True"),
        ({**VALID, "api_port": 70000}, "key 'api_port' must be an integer from 1 to 65535, got 70000"),
        ({**VALID, "history_path": ""}, "key 'history_path' must be a non-empty path, got ''"),
        ({**VALID, "drift_margin": 1.5}, "key 'drift_margin' must be a number between 0 and 1, got 1.5"),
        (
            {**VALID, "drift_margin": "0.05"},
            "key 'drift_margin' must be a number between 0 and 1, got '0.05'",
        ),
        (
            {**VALID, "drift_confidence": 0.5},
            "key 'drift_confidence' must be a number between 0.5 and 1, got 0.5",
        ),
        (
            {**VALID, "drift_confidence": 1},
            "key 'drift_confidence' must be a number between 0.5 and 1, got 1",
        ),
        ({**VALID, "min_new_rows": 0}, "key 'min_new_rows' must be an integer >= 1, got 0"),
        ({**VALID, "false_alarm_rate": 0.5}, "key 'false_alarm_rate' must be a number between 0 and 0.5, got 0.5"),
        ({**VALID, "false_alarm_rate": 0}, "key 'false_alarm_rate' must be a number between 0 and 0.5, got 0"),
        (
            {**VALID, "degraded_confidence": 1.0},
            "key 'degraded_confidence' must be a number between 0.5 and 1, got 1.0",
        ),
        ({**VALID, "min_new_positives": 2.5}, "key 'min_new_positives' must be an integer >= 1, got 2.5"),
        (
            {**VALID, "outdated_cache_seconds": -1},
            "key 'outdated_cache_seconds' must be an integer >= 0, got -1",
        ),
        (
            {**VALID, "alert_webhook_url": "ftp://hooks.example"},
            "key 'alert_webhook_url' must be an http(s) URL with a host (printable ASCII) or null, got"
            " 'ftp://hooks.example'",
        ),
        (
            {**VALID, "expected_interval_minutes": 0},
            "key 'expected_interval_minutes' must be an integer >= 1, got 0",
        ),
        ({**VALID, "log_path": ""}, "key 'log_path' must be a non-empty path, got ''"),
        ({**VALID, "api_base_url": ""}, "key 'api_base_url' must be a non-empty URL, got ''"),
        ({**VALID, "min_new_rows": True}, "key 'min_new_rows' must be an integer >= 1, got True"),
        ("{not json", "is not readable JSON"),
        ("", "is not readable JSON"),
        ('{"drift_margin": NaN}', "is not readable JSON"),  # strict JSON: NaN and Infinity are not JSON
        ('{"input_folder_path": "sourcedata",}', "is not readable JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ("null", "must hold a JSON object"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path, data, message):
    path = write_config(tmp_path, data)
    with pytest.raises(PipelineError) as error:
        load_config(path)
    assert str(error.value) in (f"config file {path}: {message}", f"config file {path} {message}")


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(PipelineError, match=re.escape(f"config file {tmp_path / 'nope.json'} does not exist")):
        load_config(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "value", ["https://", "http://[::1/x", "http://127.0.0.1:99999/hook", "http://127.0.0.1:41701/hö", "http://a b/"]
)
def test_a_webhook_url_that_can_never_be_sent_is_refused_when_the_config_is_read(tmp_path, value):
    with pytest.raises(PipelineError, match="key 'alert_webhook_url' must be an http\\(s\\) URL with a host"):
        load_config(write_config(tmp_path, {**VALID, "alert_webhook_url": value}))


@pytest.mark.parametrize("name", ["config.json", "practiceconfig.json"])
def test_shipped_configs_load(name):
    from conftest import PROJECT_DIR

    config = load_config(PROJECT_DIR / name)
    assert config.test_data_path == PROJECT_DIR / "testdata"


@pytest.mark.parametrize("value", ["http://127.0.0.1:9/hook", "https://hooks.slack.com/services/T/B/X", None])
def test_a_webhook_url_may_be_http_https_or_null(tmp_path, value):
    assert load_config(write_config(tmp_path, {**VALID, "alert_webhook_url": value})).alert_webhook_url == value


def test_the_practice_config_reads_practicedata_into_practicemodels_and_shares_the_rest():
    from conftest import PROJECT_DIR

    practice, production = load_config(PROJECT_DIR / "practiceconfig.json"), load_config(PROJECT_DIR / "config.json")
    assert (practice.input_folder_path, practice.output_model_path) == (
        PROJECT_DIR / "practicedata",
        PROJECT_DIR / "practicemodels",
    )
    assert (production.input_folder_path, production.output_model_path) == (
        PROJECT_DIR / "sourcedata",
        PROJECT_DIR / "models",
    )
    shared = ["history_path", "prod_deployment_path", "log_path", "output_folder_path", "test_data_path"]
    assert [getattr(practice, key) for key in shared] == [getattr(production, key) for key in shared]
    assert practice.history_path == PROJECT_DIR / "logs" / "history.db"


@pytest.mark.parametrize(
    "text, shown",
    [
        ("dataset1.csv", "dataset1.csv"),
        ("a\n2026-01-01 00:00:00,000 ERROR forged.csv", "a\\n2026-01-01 00:00:00,000 ERROR forged.csv"),
        ("tab\there, bell\x07, escape\x1b[31m", "tab\\there, bell\\x07, escape\\x1b[31m"),
        ("line\u2028separator, right-to-left\u202e", "line\\u2028separator, right-to-left\\u202e"),
        ("déjà vu", "déjà vu"),  # printable letters of any script stay as they are
    ],
)
def test_one_line_escapes_every_character_that_is_not_printable(text, shown):
    assert one_line(text) == shown


@pytest.mark.parametrize(
    "text, shown",
    [
        ("input folder /srv/risk/sourcedata does not exist", "input folder sourcedata does not exist"),
        (
            "moved /srv/risk/production_deployment to /srv/risk/p.releases/x",
            "moved production_deployment to p.releases/x",
        ),
        (
            "[Errno 13] Permission denied: '/srv/risk/logs/history.db'",
            "[Errno 13] Permission denied: 'logs/history.db'",
        ),
        ("read /etc/passwd (denied)", "read passwd (denied)"),
        ("the project folder /srv/risk itself", "the project folder . itself"),
        (
            "calling http://127.0.0.1:8000/hook and sourcedata/a.csv",
            "calling http://127.0.0.1:8000/hook and sourcedata/a.csv",
        ),
        ("a ratio 3/4, a lone / and nothing else", "a ratio 3/4, a lone / and nothing else"),
    ],
)
def test_relative_paths_name_files_from_the_config_folder_and_others_by_their_last_part(text, shown):
    assert relative_paths(text, "/srv/risk") == shown


def test_a_project_file_in_a_traceback_is_named_from_the_project():
    assert (
        relative_paths(f'File "{PROJECT_DIR}/risk/decisions.py", line 3', "/srv/risk")
        == 'File "risk/decisions.py", line 3'
    )


def test_the_config_is_one_frozen_dataclass_of_paths_and_typed_values(tmp_path):
    config = load_config(write_config(tmp_path, {**VALID, "drift_margin": 0.1, "api_port": 8010}))
    assert dataclasses.is_dataclass(config)
    paths = [field.name for field in dataclasses.fields(config) if field.name.endswith("_path")]
    assert all(isinstance(getattr(config, name), Path) and getattr(config, name).is_absolute() for name in paths)
    assert (config.drift_margin, config.api_port) == (0.1, 8010)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.drift_margin = 0.5  # passed down to every step: none can change it for the others


def test_a_folder_named_as_the_config_file_is_named_with_the_reason(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(
        PipelineError, match=re.escape(f"config file {tmp_path / 'config.json'} [Errno 21] Is a directory")
    ):
        load_config(tmp_path / "config.json")


def test_unknown_keys_are_ignored_and_a_repeated_key_keeps_its_last_value(tmp_path):
    text = json.dumps(VALID)[:-1] + ', "comment": "ours", "api_port": 1, "api_port": 8001}'
    assert load_config(write_config(tmp_path, text)).api_port == 8001


@pytest.mark.parametrize(
    "changes, first, second, named",
    [
        (
            {"prod_deployment_path": "practicedata"},
            "prod_deployment_path",
            "input_folder_path",
            "practicedata and practicedata",
        ),
        (
            {"output_folder_path": "practicedata"},
            "output_folder_path",
            "input_folder_path",
            "practicedata and practicedata",
        ),
        (
            {"prod_deployment_path": "models/live"},
            "prod_deployment_path",
            "output_model_path",
            "models/live and models",
        ),
    ],
    ids=["production over the data", "outputs in the input folder", "production inside the models folder"],
)
def test_paths_that_would_overwrite_or_read_one_another_are_refused(tmp_path, changes, first, second, named):
    path = write_config(
        tmp_path, {**VALID, "input_folder_path": "practicedata", "output_model_path": "models", **changes}
    )
    with pytest.raises(PipelineError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"config file {path}: keys '{first}' and '{second}' must name folders apart, neither in the other: they name"
        f" {named}"
    )


def test_the_log_and_the_history_must_be_different_files(tmp_path):
    path = write_config(tmp_path, {**VALID, "log_path": "logs/x", "history_path": "logs/x"})
    with pytest.raises(PipelineError, match="keys 'log_path' and 'history_path' must name different files"):
        load_config(path)
