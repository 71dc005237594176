"""What the blueprints share, made once per app by the factory (app.create_app) and kept on the app in
app.extensions["risk"]: the configuration, the deployed model, the file cache, who may read what, and
the cron watchdog. Views reach it through get_state(), as the Flask tutorial's reach get_db()."""

from dataclasses import dataclass

from flask import Flask, current_app

from risk.config import Config
from risk.web.auth import Access
from risk.web.deployed import DeployedModel
from risk.web.filecache import FileCache
from risk.web.watcher import Watchdog

EXTENSION = "risk"


@dataclass(frozen=True)
class WebState:
    config: Config
    deployed: DeployedModel
    cache: FileCache
    access: Access
    watchdog: Watchdog


def init_state(app: Flask, config: Config, access_state: Access) -> WebState:
    """The app's shared state for `config`, kept in app.extensions; nothing is loaded until a request needs it."""
    state = WebState(config, DeployedModel(config), FileCache(), access_state, Watchdog(config))
    app.extensions[EXTENSION] = state
    return state


def get_state() -> WebState:
    """The shared state of the app serving this request."""
    return current_app.extensions[EXTENSION]
