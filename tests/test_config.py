import json
import re
from pathlib import Path

import pytest

from common import DEFAULT_CONFIG_PATH, PipelineError, load_config


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


def test_absolute_paths_are_kept(tmp_path):
    path = write_config(tmp_path, {**VALID, "output_model_path": str(tmp_path / "elsewhere")})
    assert load_config(path).output_model_path == tmp_path / "elsewhere"


def test_risk_config_environment_variable_selects_the_file(tmp_path, monkeypatch):
    path = write_config(tmp_path, {**VALID, "input_folder_path": "practicedata"})
    monkeypatch.setenv("RISK_CONFIG", str(path))
    assert load_config().input_folder_path.name == "practicedata"


def test_default_is_config_json_beside_the_scripts(monkeypatch):
    monkeypatch.delenv("RISK_CONFIG", raising=False)
    assert load_config().config_path == Path(DEFAULT_CONFIG_PATH)


@pytest.mark.parametrize(
    "data, message",
    [
        ({k: v for k, v in VALID.items() if k != "test_data_path"}, "has no key 'test_data_path'"),
        ({**VALID, "output_model_path": 3}, "key 'output_model_path' must be a non-empty str, got 3"),
        ({**VALID, "input_folder_path": ""}, "key 'input_folder_path' must be a non-empty str"),
        ({**VALID, "api_port": "8000"}, "key 'api_port' must be a non-empty int, got '8000'"),
        ({**VALID, "api_port": True}, "key 'api_port' must be a non-empty int, got True"),
        ("{not json", "is not readable JSON"),
        ("[1, 2]", "must hold a JSON object"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path, data, message):
    path = write_config(tmp_path, data)
    with pytest.raises(PipelineError, match=re.escape(f"config file {path}")) as error:
        load_config(path)
    assert message in str(error.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(
        PipelineError, match=re.escape(f"config file {tmp_path / 'nope.json'} does not exist")
    ):
        load_config(tmp_path / "nope.json")


@pytest.mark.parametrize("name", ["config.json", "practiceconfig.json"])
def test_shipped_configs_load(name):
    from conftest import PROJECT_DIR

    config = load_config(PROJECT_DIR / name)
    assert config.test_data_path == PROJECT_DIR / "testdata"
