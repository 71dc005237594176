"""Step 4: call the running API's endpoints and keep their answers.

Config keys: api_base_url (where the API is; `--url` overrides it; a bare `host:port` means http),
test_data_path (the file sent to /prediction, named relative to the config's folder), output_model_path
(writes apireturns.txt: the four answers as one JSON document, written atomically). Sends API_TOKEN
when it is set.
"""

import argparse
import json
import logging
import os
import time
import urllib.parse

import requests

from risk.artifacts import APIRETURNS_FILE, TESTDATA_FILE
from risk.config import Config, PipelineError, atomic_write_text
from risk.logs import script_config

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 120  # /diagnostics times real runs of two steps


def api_url(text: str, source: str) -> str:
    """The API's base URL from `text`, `http://` added to a bare host:port; a PipelineError naming
    `source` (the option or config key) says what is wrong with any other."""
    url = text.strip() if "://" in text else "http://" + text.strip()
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as error:
        raise PipelineError(f"{source} {text!r} is not a URL of the API: {error}") from None
    if parts.scheme not in ("http", "https"):
        problem = f"its scheme must be http or https, not {parts.scheme!r}"
    elif not parts.hostname:
        problem = "it names no host"
    elif parts.query or parts.fragment:
        problem = "it may not hold a query (?) or a fragment (#)"
    else:
        return url.rstrip("/")
    raise PipelineError(
        f"{source} {text!r} is not a URL of the API: {problem} (e.g. http://127.0.0.1:8000 or 127.0.0.1:8000)"
    )


def call_endpoint(session: requests.Session, method: str, url: str, **kwargs) -> dict:
    """One call; an unreachable API or an error status is a PipelineError naming the URL."""
    try:
        response = session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as error:
        raise PipelineError(
            f"cannot reach the API at {url} ({type(error).__name__}); is it running? (make serve)"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code != 200:
        raise PipelineError(f"{method} {url} answered {response.status_code}: {body.get('error', body)}")
    return body


def call_endpoints(base_url: str, testdata_filepath: str, token: str | None = None) -> dict:
    """The answers of /prediction (for `testdata_filepath`), /scoring, /summarystats and /diagnostics."""
    base_url = base_url.rstrip("/")
    with requests.Session() as session:
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return {
            "prediction": call_endpoint(
                session, "POST", f"{base_url}/prediction", json={"filepath": testdata_filepath}
            ),
            "scoring": call_endpoint(session, "GET", f"{base_url}/scoring"),
            "summarystats": call_endpoint(session, "GET", f"{base_url}/summarystats"),
            "diagnostics": call_endpoint(session, "GET", f"{base_url}/diagnostics"),
        }


def call_api(config: Config, url: str | None = None) -> dict:
    """Call the API at `url` (default: api_base_url; a bare host:port means http) with testdata.csv's path
    (test_data_path) and keep the answers in apireturns.txt (output_model_path); returns them."""
    if url:
        base_url = api_url(url, "--url")
    else:
        base_url = api_url(config.api_base_url, f"config file {config.config_path}: key 'api_base_url'")
    testdata_filepath = os.path.relpath(config.test_data_path / TESTDATA_FILE, config.config_path.parent)
    output_path = config.output_model_path / APIRETURNS_FILE
    started = time.perf_counter()
    logger.info("calling the API at %s", base_url)
    answers = call_endpoints(base_url, testdata_filepath, os.environ.get("API_TOKEN"))
    atomic_write_text(output_path, json.dumps(answers, indent=2) + "\n")
    logger.info("apicalls finished in %.2fs: %s", time.perf_counter() - started, output_path)
    return answers


def main(argv=None) -> dict:
    """`python apicalls.py [--url URL]` with the config RISK_CONFIG names (or config.json); a failure is one
    line and exit code 1."""
    parser = argparse.ArgumentParser(description="Call the API's endpoints and save the answers.")
    parser.add_argument(
        "--url",
        help="base URL of the API, e.g. http://127.0.0.1:8000 or 127.0.0.1:8000 (default: the config's api_base_url)",
    )
    args = parser.parse_args(argv)
    with script_config() as config:
        return call_api(config, args.url)


if __name__ == "__main__":
    main()
