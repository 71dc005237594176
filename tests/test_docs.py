"""The README stays true: every route, config key (with its default), script, module, exit code, make
target and dependency it names exists as it says; what its tables say is compared with the code."""

import json
import re
import socket

import pytest
from conftest import PROJECT_DIR

from app import create_app
from risk.config import OPTIONAL_KEYS, REQUIRED_PATH_KEYS, load_config

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
DOCS = {path.name: path.read_text(encoding="utf-8") for path in (PROJECT_DIR / "docs").glob("*.md")}
API = DOCS["api.md"]  # the API reference
OPERATIONS = DOCS["operations.md"]  # the full process's exit codes, cron, alerts, serving


def table_rows(heading: str) -> list[list[str]]:
    """The cells of the table rows under a README heading (up to the next heading), header rows left out."""
    section = README[README.index(heading) :]
    section = section[: section.find("\n#", len(heading))] if "\n#" in section[len(heading) :] else section
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row] for row in rows]


def test_every_route_is_documented():
    app = create_app(load_config(PROJECT_DIR / "config.json"))
    routes = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert routes == {
        "/prediction",
        "/scoring",
        "/summarystats",
        "/diagnostics",
        "/health",
        "/toprisk",
        "/toprisk.csv",
        "/clients/<code>",
        "/history",
        "/releases",
        "/drift",
        "/",
        "/login",
        "/logout",
        "/charts/trend.svg",
    }
    for route in routes:
        assert re.search(rf"`(GET|POST) {re.escape(route)}`", API), route


BLUEPRINTS = {
    "api": ["/prediction", "/scoring", "/summarystats", "/diagnostics", "/health"],
    "history": ["/history", "/releases", "/drift"],
    "clients": ["/toprisk", "/toprisk.csv", "/clients/<code>"],
    "pages": ["/", "/login", "/logout", "/charts/trend.svg"],
}


def test_every_route_is_served_by_the_blueprint_the_readme_names():
    app = create_app(load_config(PROJECT_DIR / "config.json"))
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        blueprint = rule.endpoint.split(".")[0]
        served.setdefault(blueprint, []).append(rule.rule)
        assert app.view_functions[rule.endpoint].__module__ == f"risk.web.{blueprint}", rule.rule
    assert {name: sorted(routes) for name, routes in served.items()} == {
        name: sorted(routes) for name, routes in BLUEPRINTS.items()
    }
    for name, routes in BLUEPRINTS.items():
        assert f"`{name}` ({', '.join(f'`{route}`' for route in routes)})" in " ".join(API.split()), name


@pytest.mark.parametrize("key", [*REQUIRED_PATH_KEYS, *OPTIONAL_KEYS])
def test_every_config_key_is_documented(key):
    assert f"| `{key}` |" in README


@pytest.mark.parametrize("path", sorted(p.name for p in PROJECT_DIR.glob("*.py")))
def test_every_script_is_documented(path):
    assert f"`{path}`" in README


def test_the_config_table_gives_each_keys_default_as_the_loader_applies_it(tmp_path):
    required = {key: f"folder-{key}" for key in REQUIRED_PATH_KEYS}
    (tmp_path / "config.json").write_text(json.dumps(required))
    loaded = vars(load_config(tmp_path / "config.json"))
    rows = table_rows("## Configuration")
    keys = [row[0].strip("`") for row in rows]
    assert len(keys) == len(set(keys)) and set(keys) == {*REQUIRED_PATH_KEYS, *OPTIONAL_KEYS}
    for key, needed, default, _ in rows:
        key = key.strip("`")
        if needed == "yes":
            assert key in REQUIRED_PATH_KEYS and default.startswith("(`")  # an example, not a default
            continue
        text = default.strip("`").replace("<host>", socket.gethostname()).replace("<config file>", "config.json")
        written = json.loads(text) if re.fullmatch(r"null|\d+(\.\d+)?", text) else text  # `null`, `0.05`; else a string
        if key.endswith("_path"):
            assert loaded[key] == tmp_path / written, key
        else:
            assert loaded[key] == written and type(loaded[key]) is type(written), key


def test_the_scripts_the_readme_lists_exist():
    names = [row[0].strip("`") for row in table_rows("## The scripts")]
    assert [name for name in names if not (PROJECT_DIR / name).is_file()] == []
    assert {path.name for path in PROJECT_DIR.glob("*.py")} <= set(names)


def test_the_modules_the_readme_names_in_the_package_exist():
    sentence = README[README.index("a module per concept: `config`") : README.index("Nothing in it imports")]
    named = re.findall(r"`(\w+)`", sentence)
    modules = {path.stem for path in (PROJECT_DIR / "risk").glob("*.py")} - {"__init__"}
    assert sorted(named) == sorted(modules)


def test_the_exit_code_table_is_the_full_processs():
    import fullprocess

    documented = [
        int(row.split(" | ")[0].strip("| ")) for row in OPERATIONS.splitlines() if re.match(r"\| \d+ \|", row)
    ]
    codes = {name: value for name, value in vars(fullprocess).items() if name.startswith("EXIT_")}
    assert documented == sorted(codes.values()) == [0, 1, 2, 3, 75]


def test_every_make_command_the_readme_names_is_a_makefile_target():
    makefile = (PROJECT_DIR / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make ([a-z-]+)", README))
    assert named >= {
        "run",
        "test",
        "serve",
        "rollback",
        "releases",
        "pipeline",
        "cron-install",
        "cron-remove",
        "bench",
        "simulate",
        "lint",
        "format",
        "clean",
    }
    assert named <= targets


def test_every_dependency_the_readme_explains_is_pinned():
    pinned = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (PROJECT_DIR / name).read_text().splitlines():
            if "==" in line:
                package, version = line.split("==")
                pinned[package.strip()] = version.strip()
    explained = [name for row in table_rows("## Dependencies") for name in re.findall(r"`([\w-]+)`", row[0])]
    assert explained == [
        "scipy",
        "pyarrow",
        "orjson",
        "gevent",
        "greenlet",
        "hypothesis",
        "selenium",
        "pypdf",
        "mutmut",
        "ruff",
    ]
    started_with = [
        "pandas",
        "scikit-learn",
        "numpy",
        "matplotlib",
        "seaborn",
        "flask",
        "requests",
        "gunicorn",
        "reportlab",
    ]
    assert sorted(pinned) == sorted([*started_with, "pytest", *explained])  # nothing pinned goes unexplained


@pytest.mark.parametrize("name", ["README.md", *sorted(DOCS)])
def test_no_placeholder_is_left_in_the_readme_or_the_docs(name):
    text = README if name == "README.md" else DOCS[name]
    assert re.findall(r"^[A-Z][A-Z_]+$", text, flags=re.MULTILINE) == []  # a line that is only a NAME_LIKE_THIS


def test_the_readme_is_for_a_newcomer_at_most_about_200_lines_and_links_the_rest():
    assert len(README.splitlines()) <= 210
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", README))
    assert linked == {f"docs/{name}" for name in DOCS}  # every document linked, and only those that exist


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_link_between_the_docs_names_a_file_and_a_heading_that_exist(name):
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?(?:#([\w-]+))?\)", DOCS[name]):
        text = DOCS[target] if target else DOCS[name]
        if anchor:
            headings = [
                re.sub(r"[^\w -]", "", line.lstrip("#").strip()).lower().replace(" ", "-")
                for line in text.splitlines()
                if line.startswith("#")
            ]
            assert anchor in headings, f"{name}: {target}#{anchor}"


def test_the_word_course_is_explained_where_the_readme_first_uses_it():
    first = README.index("the course")
    assert "Udacity" in README[max(0, first - 200) : first + 60]


def test_pytest_settings_make_warnings_errors_and_mark_the_slow_tests():
    import tomllib

    settings = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert settings["testpaths"] == ["tests"] and settings["filterwarnings"] == ["error"]
    assert [marker.split(":")[0] for marker in settings["markers"]] == ["slow"]


def defined_tests() -> set[str]:
    """`file::test` and `file::Class::test` of every test function in tests/, read from the source."""
    import ast

    names = set()
    for path in (PROJECT_DIR / "tests").glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(f"{path.name}::{node.name}")
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name.startswith("test_"):
                        names.add(f"{path.name}::{node.name}::{item.name}")
    return names


def test_the_map_of_promises_names_only_tests_that_exist():
    text = (PROJECT_DIR / "tests" / "README.md").read_text()
    table = text[: text.index("## Mutation testing")] if "## Mutation testing" in text else text
    named = set(re.findall(r"`(test_\w+\.py::[\w:]+)`", table))
    assert len(named) > 100 and sorted(named - defined_tests()) == []
