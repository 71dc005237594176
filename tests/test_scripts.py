"""The scripts as a user and cron run them: imports without side effects, processes from other working
folders, one-line errors, what each main() returns, atomic writes, the package's import rules, and the
make targets the README names (read with `make -n`, run nowhere)."""

import ast
import fcntl
import json
import os
import pickle
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest
from conftest import FEATURES, PROJECT_DIR, client_rows, free_port, make_project, run_script, seed_outdated_cache
from sklearn.metrics import f1_score

from risk.config import load_config

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
    "risk.overview",
    "risk.charts",
    "risk.alerts",
    "risk.runs",
    "risk.sandbox",
    "risk.diagnosis",
    "risk.web.api",
    "risk.web.history",
    "risk.web.clients",
    "risk.web.pages",
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
    "demo/story.py",
    "benchmark/benchmark.py",
    "benchmark/simulate.py",
]
PIPELINE = ["ingestion.py", "training.py", "scoring.py", "deployment.py"]


# One process imports the libraries the scripts use (not under test), then forks a child per script: each
# script is imported in a child of its own, as by a fresh interpreter, without paying for pandas each time.
IMPORT_HARNESS = """
import json, os, sys
project, cwd, out, modules = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.path.insert(0, project)
import flask, matplotlib, numpy, orjson, pandas, pyarrow, requests, scipy.stats, sklearn.linear_model  # noqa
os.chdir(cwd)
results = {}
for index, module in enumerate(modules):
    before = sorted(os.listdir(project))
    stdout, stderr = os.path.join(out, f"{index}.out"), os.path.join(out, f"{index}.err")
    pid = os.fork()
    if pid == 0:
        for fd, path in ((1, stdout), (2, stderr)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        try:
            if module.endswith(".py"):  # a script in a folder that is not a package: imported from its file
                import importlib.util
                spec = importlib.util.spec_from_file_location("under_test", os.path.join(project, module))
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            else:
                __import__(module)
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(0)
        except BaseException:
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    results[module] = {
        "exit_code": code,
        "stdout": open(stdout).read(),
        "stderr": open(stderr).read(),
        "files_in_working_folder": sorted(os.listdir(cwd)),
        "new_in_project": sorted(set(os.listdir(project)) - set(before)),
    }
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def imports(tmp_path_factory) -> dict:
    """What importing each script did: exit code, output, files left in the working folder or the project."""
    cwd, out = tmp_path_factory.mktemp("import-cwd"), tmp_path_factory.mktemp("import-output")
    env = {"RISK_CONFIG": str(cwd / "missing.json"), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_HARNESS, str(PROJECT_DIR), str(cwd), str(out), *SCRIPTS],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("module", SCRIPTS)
def test_importing_a_script_has_no_side_effects(imports, module):
    assert imports[module] == {
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
        "files_in_working_folder": [],
        "new_in_project": [],
    }


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
def test_the_pipeline_on_the_rows_the_full_process_trained_on_registers_the_same_model_under_one_id(tmp_path):
    # The story's two configurations, small: the full process bootstraps on the practice rows, then finds
    # drift in the source rows and deploys a model trained on all of them (one batch); training.py on the
    # same rows fits the same coefficients, in a process of its own, and must find that model, not a new id.
    config_path = make_project(tmp_path, input_folder="practicedata", output_model_path="practicemodels")
    config_path.rename(tmp_path / "practiceconfig.json")
    production = make_project(tmp_path, input_folder="sourcedata")
    for name, seed in (("dataset1.csv", 4), ("dataset2.csv", 5)):
        client_rows(seed, 300, "flipped").to_csv(tmp_path / "sourcedata" / name, index=False)
    for path in (tmp_path / "practiceconfig.json", production):
        result = run_script("fullprocess.py", path)
        assert result.returncode in (0, 2), result.stderr[-3000:]  # 2: no API to call, as intended
    assert run_script("ingestion.py", production).returncode == 0
    training = run_script("training.py", production)
    deployed = (tmp_path / "production_deployment" / "trainedmodel.pkl").read_bytes()
    trained = (tmp_path / "models" / "trainedmodel.pkl").read_bytes()
    assert pickle.loads(trained).coef_.tolist() == pickle.loads(deployed).coef_.tolist()
    assert trained == deployed
    model_id = json.loads((tmp_path / "models" / "modelcard.json").read_text())["id"]
    assert f"model {model_id} is one the history already records (trained " in training.stderr
    with sqlite3.connect(tmp_path / "logs" / "history.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 2  # the practice model and this one


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, message",
    [
        ("training.py", "data file ingesteddata/finaldata.csv does not exist"),
        ("scoring.py", "model file models/trainedmodel.pkl does not exist (training.py trains a model"),
        ("deployment.py", "cannot deploy, missing file(s): models/trainedmodel.pkl"),
    ],
)
def test_a_missing_input_ends_with_one_line_and_exit_code_1(config_path, script, message):
    result = run_script(script, config_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert message in errors[0]  # named from the config's folder: a log line never says where the server keeps files


@pytest.mark.slow
def test_a_bad_config_ends_with_one_line_naming_file_and_key(tmp_path, config_path):
    config_path.write_text('{"input_folder_path": "x"}')
    result = run_script("ingestion.py", config_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("config file config.json has no key 'output_folder_path'")
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


def test_diagnostics_prints_a_summary_writes_every_prediction_to_a_file_and_returns_them(
    trained_project, config, capsys, monkeypatch, root_logging
):
    import diagnostics

    seed_outdated_cache(config)
    capsys.readouterr()
    monkeypatch.setenv("RISK_CONFIG", str(config.config_path))
    report = diagnostics.main([])
    printed = capsys.readouterr().out.splitlines()
    exits = sum(report["model_predictions"])
    rows = len(report["model_predictions"])
    packages = report["outdated_packages"]  # each at 9.9.9, behind
    names = [item["package"] for item in packages]
    assert printed[0] == (
        f"model_predictions: {exits} of {rows} predicted to exit ({100 * exits / rows:.1f} %); every row in"
        " models/diagnosticpredictions.csv"
    )
    assert printed[1:] == [
        "dataframe_summary (mean, median, standard deviation):",
        *(
            f"  {column:<19}  mean {stats['mean']:,.2f}, median {stats['median']:,.2f}, std {stats['std']:,.2f}"
            for column, stats in report["dataframe_summary"].items()
        ),
        "missing_data: none",
        "execution_time: "
        + ", ".join(
            f"{step} {report['execution_time'][step + '_seconds']:.2f} s" for step in ("ingestion", "training")
        ),
        f"outdated_packages: {len(packages)} of {len(packages)} behind their latest release ({', '.join(names)})",
    ]
    written = pd.read_csv(config.output_model_path / "diagnosticpredictions.csv")
    assert list(written.columns) == ["corporation", "prediction", "probability"]
    assert written["prediction"].tolist() == report["model_predictions"]
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    with open(config.prod_deployment_path / "trainedmodel.pkl", "rb") as handle:
        model = pickle.load(handle)
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    assert list(report) == [
        "model_predictions",
        "dataframe_summary",
        "missing_data",
        "execution_time",
        "outdated_packages",
    ]
    assert report["model_predictions"] == model.predict(testdata[FEATURES].to_numpy(float)).tolist()
    assert report["dataframe_summary"]["lastmonth_activity"]["mean"] == round(finaldata["lastmonth_activity"].mean(), 6)
    assert report["missing_data"] == {column: 0.0 for column in finaldata.columns}
    assert list(report["execution_time"]) == ["ingestion_seconds", "training_seconds"]
    assert all(seconds > 0 for seconds in report["execution_time"].values())
    assert {item["latest"] for item in report["outdated_packages"]} == {"9.9.9"}


# --- each step a function of the config, returning what it wrote; how it writes ----------------------------


def test_each_step_is_a_function_of_the_config_returning_what_it_wrote(config):
    import deployment
    import ingestion
    import scoring
    import training

    config.config_path.unlink()  # a step takes the Config it is given and never reads the file again
    ingested = ingestion.ingest(config)
    assert ingested.metrics == json.loads((config.output_folder_path / "ingestionmetrics.json").read_text())
    assert ingested.finaldata_path == config.output_folder_path / "finaldata.csv"
    model = training.train(config)
    with open(config.output_model_path / "trainedmodel.pkl", "rb") as handle:
        saved = pickle.load(handle)
    assert (model.coef_.tolist(), model.intercept_.tolist()) == (saved.coef_.tolist(), saved.intercept_.tolist())
    score = scoring.score(config)
    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    assert score == float((config.output_model_path / "latestscore.txt").read_text())
    assert score == pytest.approx(f1_score(testdata["exited"], saved.predict(testdata[FEATURES].to_numpy(float))))
    release = deployment.deploy(config)
    assert release == config.prod_deployment_path.resolve()


def test_the_full_process_calls_the_steps_with_the_config_it_loaded_once(tmp_path, monkeypatch, root_logging):
    import apicalls
    import deployment
    import fullprocess
    import ingestion
    import reporting
    import scoring
    from risk import config as config_module

    config_path = make_project(tmp_path, api_base_url=f"http://127.0.0.1:{free_port()}")  # no API: exit code 2
    seed_outdated_cache(load_config(config_path))
    monkeypatch.setenv("RISK_CONFIG", str(config_path))
    reads, given = [], []
    real_read = config_module.read_json_object
    monkeypatch.setattr(config_module, "read_json_object", lambda path: reads.append(path) or real_read(path))
    for module, name in [
        (ingestion, "ingest"),
        (scoring, "score"),
        (deployment, "deploy"),
        (reporting, "report"),
        (apicalls, "call_api"),
    ]:
        step = getattr(module, name)
        monkeypatch.setattr(
            module,
            name,
            lambda config, *args, step=step, **kwargs: given.append(config) or step(config, *args, **kwargs),
        )
    assert fullprocess.main([]) == fullprocess.EXIT_API_UNREACHABLE
    assert reads == [config_path]  # the file is read once, by main()
    assert len(given) == 5 and all(config is given[0] for config in given)  # every step got that one Config


def test_every_output_is_written_to_a_temporary_file_then_renamed_over_it(config, monkeypatch):
    import deployment
    import ingestion
    import reporting
    import scoring
    import training

    seed_outdated_cache(config)
    seeded = config.output_model_path / "outdatedpackages.json"
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renames.append((str(src), str(dst))) or real_replace(src, dst))
    for step in (ingestion.ingest, training.train, scoring.score, deployment.deploy, reporting.report):
        step(config)
    written = sorted(
        path
        for folder in (config.output_folder_path, config.output_model_path)
        for path in folder.iterdir()
        if path != seeded
    )
    assert sorted(path.name for path in written) == sorted(
        [
            "finaldata.csv",
            "ingestedfiles.txt",
            "ingestionmetrics.json",
            "trainedmodel.pkl",
            "modelcard.json",
            "latestscore.txt",
            "confusionmatrix.png",
            "trend.png",
            "riskranking.csv",
            "riskunscored.csv",
            "report.pdf",
            "reportsummary.json",
        ]
    )  # and no temporary file left beside them
    for path in written:
        sources = [os.path.basename(src) for src, dst in renames if dst == str(path)]
        assert sources and all(name.startswith(f".{path.name}.") and name.endswith(".tmp") for name in sources), path
    # Production moves by one rename of a link too.
    assert [dst for _, dst in renames if dst == str(config.prod_deployment_path)] == [str(config.prod_deployment_path)]


@pytest.mark.slow
def test_scoring_another_model_file_writes_only_its_score(trained_project, config, tmp_path):
    from sklearn.linear_model import LogisticRegression

    testdata = pd.read_csv(config.test_data_path / "testdata.csv")
    other = LogisticRegression(solver="liblinear").fit(testdata[FEATURES].to_numpy(float), 1 - testdata["exited"])
    other_path = tmp_path / "other.pkl"
    other_path.write_bytes(pickle.dumps(other))
    card = (config.output_model_path / "modelcard.json").read_bytes()
    result = run_script("scoring.py", config.config_path, "--model", str(other_path))
    assert result.returncode == 0, result.stderr
    expected = f1_score(testdata["exited"], other.predict(testdata[FEATURES].to_numpy(float)))
    assert float((config.output_model_path / "latestscore.txt").read_text()) == pytest.approx(expected)
    assert (config.output_model_path / "modelcard.json").read_bytes() == card  # not this model's card


# --- the package's import rules (read from the source: lazy imports inside functions count too) ------

SCRIPT_NAMES = {path.stem for path in PROJECT_DIR.glob("*.py")} | {"datagen", "demo", "benchmark"}
STANDARD_LIBRARY_ONLY = ["config", "logs", "artifacts", "history", "runs", "access", "outdated"]


def imported_modules(path, names_too: bool = False) -> set[str]:
    """The modules a file imports, anywhere in it (inside functions too); with `names_too`, each name of a
    `from x import y` as x.y as well (`from risk import history` imports the module risk.history)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names} if names_too else set()
    return names


@pytest.mark.parametrize(
    "module",
    [
        path.relative_to(PROJECT_DIR / "risk").with_suffix("").as_posix()
        for path in sorted((PROJECT_DIR / "risk").rglob("*.py"))
    ],
)
def test_nothing_in_the_package_imports_a_script(module):
    imported = imported_modules(PROJECT_DIR / "risk" / f"{module}.py")
    assert sorted(name for name in imported if name.split(".")[0] in SCRIPT_NAMES) == []


@pytest.mark.parametrize("module", STANDARD_LIBRARY_ONLY)
def test_config_artifacts_history_and_runs_use_the_standard_library_only(module):
    allowed = {"risk"} | {f"risk.{name}" for name in STANDARD_LIBRARY_ONLY}
    imported = imported_modules(PROJECT_DIR / "risk" / f"{module}.py")
    assert (
        sorted(name for name in imported if name.split(".")[0] not in sys.stdlib_module_names and name not in allowed)
        == []
    )


def project_modules() -> dict[str, object]:
    """Every module of the project (the top-level scripts, the package, the scripts in datagen, demo and
    benchmark) by its dotted name, with its file."""
    paths = [*PROJECT_DIR.glob("*.py"), *PROJECT_DIR.glob("risk/*.py")]
    paths += [*PROJECT_DIR.glob("datagen/*.py"), *PROJECT_DIR.glob("demo/*.py"), *PROJECT_DIR.glob("benchmark/*.py")]
    modules = {".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts): path for path in paths}
    modules.pop("risk.__init__", None)
    return modules


def import_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of imports in `graph` (module -> the modules it imports) as [a, b, ..., a], or [] when there is none
    (a depth-first search: a module met again while it is still being visited closes a cycle)."""
    state, trail = {}, []

    def visit(module):
        state[module] = "visiting"
        trail.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "visiting":
                return trail[trail.index(imported) :] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        state[module] = "done"
        trail.pop()
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


@pytest.mark.parametrize(
    "graph, cycle",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),  # two paths to one module: no cycle
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
    ],
)
def test_import_cycle_finds_a_module_that_imports_one_that_imports_it_back(graph, cycle):
    assert import_cycle(graph) == cycle


def test_no_module_imports_one_that_imports_it_back():
    modules = project_modules()
    graph = {name: imported_modules(path, names_too=True) & set(modules) for name, path in modules.items()}
    assert {"fullprocess", "ingestion", "risk.config", "risk.history", "risk.logs"} <= set(graph)
    assert "ingestion" in graph["fullprocess"] and "risk.config" in graph["risk.history"]  # the graph is read
    assert import_cycle(graph) == []


# --- the make targets the README names --------------------------------------------------------------


def make_dry_run(*args: str) -> list[str]:
    """The commands `make` would run, without running them (the virtual environment's rule left out)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(PROJECT_DIR), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [
        line
        for line in result.stdout.splitlines()
        if "pip install" not in line and "-m venv" not in line and "touch" not in line
    ]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run"], [".venv/bin/python demo/story.py --port 8000"]),
        (["run", "PORT=8010"], [".venv/bin/python demo/story.py --port 8010"]),
        (["test"], [".venv/bin/python -m pytest"]),
        (["rollback"], ["RISK_CONFIG=config.json .venv/bin/python deployment.py --rollback"]),
        (["releases"], ["RISK_CONFIG=config.json .venv/bin/python deployment.py --list"]),
        (["serve"], ["RISK_CONFIG=config.json .venv/bin/gunicorn --workers 2 --bind 127.0.0.1:8000 wsgi:app"]),
        (
            ["serve", "HOST=0.0.0.0", "PORT=9000", "CONFIG=practiceconfig.json"],
            ["RISK_CONFIG=practiceconfig.json .venv/bin/gunicorn --workers 2 --bind 0.0.0.0:9000 wsgi:app"],
        ),
        (
            ["pipeline", "CONFIG=practiceconfig.json"],
            [
                f"RISK_CONFIG=practiceconfig.json .venv/bin/python {step}.py"
                for step in ("ingestion", "training", "scoring", "deployment", "reporting")
            ],
        ),
        (["bench"], [".venv/bin/python benchmark/benchmark.py"]),
        (["lint"], [".venv/bin/ruff check .", ".venv/bin/ruff format --check ."]),
        (["format"], [".venv/bin/ruff check --fix .", ".venv/bin/ruff format ."]),
        (
            ["simulate", "ARGS=--seeds 1 --scenarios no-change-150"],
            [".venv/bin/python benchmark/simulate.py --report docs/simulation.md --seeds 1 --scenarios no-change-150"],
        ),
    ],
)
def test_each_make_target_runs_what_the_readme_says(args, expected):
    assert make_dry_run(*args)[-len(expected) :] == expected


def load_story():
    """demo/story.py (a folder that is not a package), imported from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("story", PROJECT_DIR / "demo" / "story.py")
    story = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(story)
    return story


def test_make_clean_runs_the_cleaner_with_the_systems_python():
    (line,) = make_dry_run("clean")
    assert line.endswith(" demo/clean.py") and ".venv" not in line  # works without the environment


def test_make_clean_removes_every_generated_output_and_the_generated_months_and_no_bundled_data(tmp_path, capsys):
    from datagen import generate_data
    from demo import clean

    bundled = [f"{folder}/{name}" for folder, names in clean.BUNDLED_DATA.items() for name in names]
    assert sorted(bundled) == sorted(generate_data.build_datasets())  # what datagen writes, no more
    for name in bundled:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("corporation\n")
    for name in load_story().GENERATED + ["mutants", ".production_deployment.tmp-20261202T0510Z"]:
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "file.txt").write_text("x")
    for folder in ["sourcedata", "sourcedata", "practicedata"]:  # dataset5.csv, dataset6.csv, dataset3.csv
        generate_data.next_dataset_path(tmp_path / folder).write_text("corporation\n")
    (tmp_path / "sourcedata" / "clients-from-crm.csv").write_text("corporation\n")  # not one datagen writes
    capsys.readouterr()
    removed = clean.main([str(tmp_path)])
    assert capsys.readouterr().out.splitlines() == [
        "removed ingesteddata/",
        "removed models/",
        "removed practicemodels/",
        "removed production_deployment/",
        "removed production_deployment.releases/",
        "removed logs/",
        "removed mutants/",
        "removed .production_deployment.tmp-20261202T0510Z/",
        "removed practicedata/dataset3.csv",
        "removed sourcedata/dataset5.csv",
        "removed sourcedata/dataset6.csv",
        "kept the bundled data: practicedata/, sourcedata/, testdata/",
    ]
    assert len(removed) == 11
    left = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert left == sorted([*bundled, "sourcedata/clients-from-crm.csv"])
    assert clean.main([str(tmp_path)]) == []
    assert capsys.readouterr().out == "nothing to remove: no generated output, no generated data month\n"


# --- deployment.py keeps the 20 newest releases, the live one and the rollback target --------------------


def test_deployment_keeps_the_20_newest_releases_the_live_one_and_the_rollback_target(trained_project, config):
    import deployment
    from risk import artifacts

    def kept() -> list[str]:
        return sorted(path.name for path in artifacts.releases_path(config.prod_deployment_path).iterdir())

    first = config.prod_deployment_path.resolve().name
    names = [first] + [deployment.deploy(config).name for _ in range(21)]  # 22 deployments
    assert kept() == names[-20:]  # the 2 oldest are gone
    deployment.rollback(config, target=names[2])  # live: the oldest release kept
    names.append(deployment.deploy(config).name)  # live: the newest; a rollback returns to names[2]
    assert kept() == names[2:]  # 21 folders: the 20 newest, and names[2], older, kept as the rollback target
    names.append(deployment.deploy(config).name)  # the rollback target is now names[22]
    assert kept() == names[-20:]
    with sqlite3.connect(config.history_path) as conn:
        pruned = sorted(row[0] for row in conn.execute("SELECT name FROM releases WHERE pruned_at IS NOT NULL"))
    assert pruned == sorted(names[:4])  # each deletion recorded


@pytest.mark.slow
@pytest.mark.parametrize("script", ["ingestion.py", "training.py", "scoring.py", "reporting.py"])
def test_a_step_run_by_hand_waits_for_no_one_and_writes_nothing_while_a_run_holds_the_lock(
    trained_project, config, script
):
    outputs = [*config.output_folder_path.iterdir(), *config.output_model_path.iterdir()]
    before = {path: path.read_bytes() for path in outputs if path.is_file()}
    with open(config.log_path.parent / "fullprocess.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_script(script, config.config_path)
    assert result.returncode == 75
    assert f"a full-process run holds the lock (logs/fullprocess.lock); {script} did nothing" in result.stderr
    assert {path: path.read_bytes() for path in outputs if path.is_file()} == before
