"""Step 4: call the running API's endpoints and keep their answers.

Config keys: api_base_url (where the API is; `--url` overrides it; a bare `host:port` means http),
test_data_path (the file sent to /prediction, named relative to the config's folder), output_model_path
(writes apireturns.txt atomically: a one-screen summary, each endpoint with its status and key numbers,
then the four full answers as one JSON document below the ANSWERS_MARKER line; read_answers reads them
back). Sends API_TOKEN when it is set.
"""

import argparse
import json
import logging
import os
import time
import urllib.parse
from pathlib import Path

import requests

from risk import digest
from risk.artifacts import APIRETURNS_FILE, TESTDATA_FILE
from risk.config import Config, PipelineError, atomic_write_text
from risk.logs import script_config

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 120  # /diagnostics times real runs of two steps
ENDPOINTS = {
    "prediction": "POST /prediction",
    "scoring": "GET /scoring",
    "summarystats": "GET /summarystats",
    "diagnostics": "GET /diagnostics",
}
ANSWERS_MARKER = "===== the full answers, as JSON ====="


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
    if response.status_code == 401:
        given = "a token that is not the server's" if "Authorization" in session.headers else "no token"
        raise PipelineError(
            f"{method} {url} answered 401: this process sent {given}; give it the API_TOKEN the server has (for"
            " cron: an API_TOKEN= line above the job in the crontab, see docs/operations.md)"
        )
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
    atomic_write_text(output_path, format_answers(answers, base_url, utc_text()))
    logger.info("apicalls finished in %.2fs: %s", time.perf_counter() - started, output_path)
    return answers


def format_answers(answers: dict, base_url: str, at: str) -> str:
    """apireturns.txt: the summary, one line per endpoint (more for /summarystats' columns), then the full
    answers below ANSWERS_MARKER. A file is written only when every endpoint answered 200."""
    lines = [f"The API at {base_url}, called {at}: the summary, then the full answers below the marker.", ""]
    width = max(map(len, ENDPOINTS.values()))
    for name, endpoint in ENDPOINTS.items():
        first, *more = SUMMARIES[name](answers.get(name) or {})
        lines.append(f"{endpoint:<{width}}  200  {first}")
        lines.extend(f"{'':<{width}}       {line}" for line in more)
    return "\n".join([*lines, "", ANSWERS_MARKER, compact_json(answers), ""])


def compact_json(value, indent: str = "") -> str:
    """JSON indented like json.dumps(indent=2), but a list of numbers or strings on one line: 1,200
    predictions are one line, not 1,200."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(key)}: {compact_json(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        return "[\n" + ",\n".join(inner + compact_json(item, inner) for item in value) + f"\n{indent}]"
    return json.dumps(value)


def read_answers(path) -> dict:
    """The full answers apireturns.txt keeps below its summary."""
    text = Path(path).read_text(encoding="utf-8")
    return json.loads(text.split(ANSWERS_MARKER + "\n", 1)[1])


def utc_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def prediction_summary(answer: dict) -> list[str]:
    predictions = answer.get("predictions") or []
    return [
        f"{answer.get('source', '?')}: {digest.predictions_text(predictions)}; release {answer.get('release', '?')}"
    ]


def scoring_summary(answer: dict) -> list[str]:
    f1 = answer.get("f1")
    return [f"F1 {'?' if f1 is None else f'{f1:.4f}'} on the test data; release {answer.get('release', '?')}"]


def summarystats_summary(answer: dict) -> list[str]:
    columns = answer.get("summary") or {}
    title = f"{len(columns)} numeric columns of finaldata.csv (mean, median, standard deviation):"
    return [title, *("  " + line for line in digest.column_lines(columns))]


def diagnostics_summary(answer: dict) -> list[str]:
    return [
        f"steps took {digest.timings_text(answer.get('execution_time') or {})};"
        f" missing values: {digest.missing_text(answer.get('missing_data') or {})}",
        f"packages: {digest.packages_text(answer.get('outdated_packages') or [])}",
    ]


SUMMARIES = {
    "prediction": prediction_summary,
    "scoring": scoring_summary,
    "summarystats": summarystats_summary,
    "diagnostics": diagnostics_summary,
}


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
