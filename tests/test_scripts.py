"""The scripts as a user and cron run them: processes, other working folders, one-line errors."""

import subprocess
import sys

import pytest
from conftest import PROJECT_DIR, run_script

# wsgi.py is left out on purpose: creating the app when gunicorn imports it is its one job.
SCRIPTS = [
    "risk.config",
    "risk.artifacts",
    "risk.history",
    "risk.registry",
    "risk.contract",
    "risk.model",
    "risk.drift",
    "risk.challenger",
    "risk.decisions",
    "risk.ranking",
    "ingestion",
    "training",
    "scoring",
    "deployment",
    "diagnostics",
    "reporting",
    "app",
    "apicalls",
    "fullprocess",
    "datagen.generate_data",
]
PIPELINE = ["ingestion.py", "training.py", "scoring.py", "deployment.py"]


@pytest.mark.parametrize("module", SCRIPTS)
def test_importing_a_script_has_no_side_effects(tmp_path, module):
    code = f"import sys; sys.path.insert(0, {str(PROJECT_DIR)!r}); import {module}"
    env = {"RISK_CONFIG": str(tmp_path / "missing.json"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_pipeline_runs_as_processes_from_another_working_folder(tmp_path, config_path, config):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for script in PIPELINE:
        result = run_script(script, config_path, cwd=elsewhere)
        assert result.returncode == 0, result.stderr
    assert list(elsewhere.iterdir()) == []
    expected = [
        "logs/history.db",
        "models/modelcard.json",
        "ingesteddata/finaldata.csv",
        "ingesteddata/ingestedfiles.txt",
        "ingesteddata/ingestionmetrics.json",
        "models/trainedmodel.pkl",
        "models/latestscore.txt",
        "production_deployment/trainedmodel.pkl",
        "production_deployment/latestscore.txt",
        "production_deployment/ingestedfiles.txt",
    ]
    assert [name for name in expected if not (config_path.parent / name).is_file()] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, message",
    [
        ("training.py", "data file {root}/ingesteddata/finaldata.csv does not exist"),
        (
            "scoring.py",
            "model file {root}/models/trainedmodel.pkl does not exist (training.py trains a model",
        ),
        ("deployment.py", "cannot deploy, missing file(s): {root}/models/trainedmodel.pkl"),
    ],
)
def test_a_missing_input_ends_with_one_line_and_exit_code_1(config_path, script, message):
    result = run_script(script, config_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert message.format(root=config_path.parent) in errors[0]


@pytest.mark.slow
def test_a_bad_config_ends_with_one_line_naming_file_and_key(tmp_path, config_path):
    config_path.write_text('{"input_folder_path": "x"}')
    result = run_script("ingestion.py", config_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"config file {config_path} has no key 'output_folder_path'")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_ingestion_with_only_bad_files_exits_non_zero_and_names_each(config_path, config):
    for path in config.input_folder_path.iterdir():
        path.write_text("")
    result = run_script("ingestion.py", config_path)
    assert result.returncode == 1
    assert "rejected dataset1.csv: the file is empty" in result.stderr
    assert "no usable CSV file among 2 in" in result.stderr
    assert not (config.output_folder_path / "finaldata.csv").exists()


@pytest.mark.slow
def test_diagnostics_prints_every_diagnostic(trained_project, config):
    from conftest import seed_outdated_cache

    seed_outdated_cache(config)
    result = run_script("diagnostics.py", config.config_path)
    assert result.returncode == 0, result.stderr
    names = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert names == [
        "model_predictions",
        "dataframe_summary",
        "missing_data",
        "execution_time",
        "outdated_packages",
    ]
