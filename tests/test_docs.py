"""The README stays true: every route, config key and script is described there."""

import re

import pytest
from conftest import PROJECT_DIR

from app import create_app
from risk.config import OPTIONAL_KEYS, REQUIRED_PATH_KEYS, load_config

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")


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
        assert re.search(rf"`(GET|POST) {re.escape(route)}`", README), route


@pytest.mark.parametrize("key", [*REQUIRED_PATH_KEYS, *OPTIONAL_KEYS])
def test_every_config_key_is_documented(key):
    assert f"| `{key}` |" in README


@pytest.mark.parametrize("path", sorted(p.name for p in PROJECT_DIR.glob("*.py")))
def test_every_script_is_documented(path):
    assert f"`{path}`" in README
