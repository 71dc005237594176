"""Benchmark of the pipeline's speed and memory (`make bench`); prints a Markdown table.

Everything runs in a temporary folder against copies of the bundled data: the no-new-data run of
fullprocess.py against `python -c pass`; ingestion of 10k, 100k and 1M rows in 10 files; a full
drift run, per step; the API under gunicorn on loopback, loaded by a second process.
Peak memory is the process's maximum resident set size (os.wait4).
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

PYTHON = sys.executable
NO_NEW_DATA_RUNS = 40


# Measures from a small launcher process: a child forked from this (large) process would report
# this process's memory as its own peak.
LAUNCHER = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def run_measured(command, env=None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one process."""
    result = subprocess.run(
        [PYTHON, "-c", LAUNCHER, *command], env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    seconds, peak_kib, code = result.stdout.split()
    return float(seconds), int(peak_kib) / 1024, int(code)


def make_project(root: Path, input_folder: str = "sourcedata", **extra) -> Path:
    """A config in `root` over copies of the bundled data, with a fresh outdated-packages cache."""
    for folder in ("practicedata", "sourcedata", "testdata"):
        shutil.copytree(PROJECT_DIR / folder, root / folder, dirs_exist_ok=True)
    config = {
        "input_folder_path": input_folder,
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        **extra,
    }
    config_path = root / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    # The report asks pip for the latest versions; a fresh cache keeps that out of the figures.
    from diagnostics import OUTDATED_CACHE_FILE, REQUIREMENTS_PATH, installed_version, requirement_names

    packages = [
        {"package": name, "installed": installed_version(name), "latest": "not checked (benchmark)"}
        for name in requirement_names(REQUIREMENTS_PATH)
    ]
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / OUTDATED_CACHE_FILE).write_text(json.dumps({"checked_at": time.time(), "packages": packages}))
    return config_path


def bench_no_new_data(root: Path) -> list[list[str]]:
    config_path = make_project(root, api_base_url="http://127.0.0.1:9")
    env = {"RISK_CONFIG": str(config_path)}
    run_measured([PYTHON, str(PROJECT_DIR / "fullprocess.py")], env)  # bootstrap
    bare = [run_measured([PYTHON, "-c", "pass"]) for _ in range(NO_NEW_DATA_RUNS)]
    runs = [run_measured([PYTHON, str(PROJECT_DIR / "fullprocess.py")], env) for _ in range(NO_NEW_DATA_RUNS)]
    assert all(code == 0 for _, _, code in runs), "a no-new-data run did not exit 0"
    bare_seconds = statistics.median(seconds for seconds, _, _ in bare)
    run_seconds = statistics.median(seconds for seconds, _, _ in runs)
    return [
        [
            "`python -c pass`",
            f"{bare_seconds * 1000:.1f} ms",
            f"{max(m for _, m, _ in bare):.1f} MiB",
            "1.00×",
        ],
        [
            "fullprocess.py, no new data",
            f"{run_seconds * 1000:.1f} ms",
            f"{max(m for _, m, _ in runs):.1f} MiB",
            f"{run_seconds / bare_seconds:.2f}×",
        ],
    ]


def write_rows(folder: Path, total_rows: int, files: int = 10) -> None:
    import numpy as np

    from datagen.generate_data import REGIMES, draw_clients, make_codes

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    per_file = total_rows // files
    codes = make_codes(rng, min(per_file, 400_000))
    for index in range(files):
        draw_clients(rng, rng.choice(codes, per_file), REGIMES["source"]).to_csv(
            folder / f"part{index:02d}.csv", index=False
        )


def bench_ingestion(root: Path) -> list[list[str]]:
    rows = []
    for total in (10_000, 100_000, 1_000_000):
        project = root / f"ingest{total}"
        project.mkdir()
        write_rows(project / "input", total)
        config_path = project / "config.json"
        config_path.write_text(
            json.dumps(
                {
                    "input_folder_path": "input",
                    "output_folder_path": "out",
                    "test_data_path": "out",
                    "output_model_path": "out",
                    "prod_deployment_path": "prod",
                }
            )
        )
        seconds, peak, code = run_measured(
            [PYTHON, str(PROJECT_DIR / "ingestion.py")], {"RISK_CONFIG": str(config_path)}
        )
        assert code == 0, f"ingestion of {total} rows failed"
        rows.append([f"ingestion.py, {total:,} rows in 10 files", f"{seconds:.2f} s", f"{peak:.0f} MiB", ""])
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(config_path: Path, port: int) -> subprocess.Popen:
    gunicorn = Path(PYTHON).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=PROJECT_DIR,
        env={**os.environ, "RISK_CONFIG": str(config_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except urllib.error.HTTPError:
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def bench_drift_run(config_path: Path) -> list[list[str]]:
    """Deploy from the practice data, then a drift run on the source data; seconds per step."""
    env = {"RISK_CONFIG": str(config_path)}
    run_measured([PYTHON, str(PROJECT_DIR / "fullprocess.py")], env)
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "input_folder_path": "sourcedata"}))
    seconds, peak, code = run_measured([PYTHON, str(PROJECT_DIR / "fullprocess.py")], env)
    record = json.loads((config_path.parent / "logs" / "fullprocess_runs.jsonl").read_text().splitlines()[-1])
    assert record["decision"] == "drift" and code == 0, f"the drift run ended {code} with {record}"
    rows = [[f"drift run: {step}", f"{step_seconds:.2f} s", "", ""] for step, step_seconds in record["steps"].items()]
    rows.append(["drift run: whole process", f"{seconds:.2f} s", f"{peak:.0f} MiB", ""])
    return rows


def load(url: str, body: bytes, requests_total: int, concurrency: int) -> dict:
    """Send `requests_total` POSTs from `concurrency` threads; latencies and throughput."""
    latencies, errors, lock = [], [], threading.Lock()
    remaining = iter(range(requests_total))

    def worker():
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
            except OSError as error:
                errors.append(str(error))
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": len(errors),
        "requests": requests_total,
    }


def bench_api(config_path: Path, port: int) -> list[list[str]]:
    import pandas as pd

    testdata = pd.read_csv(config_path.parent / "testdata" / "testdata.csv")
    finaldata = pd.read_csv(config_path.parent / "ingesteddata" / "finaldata.csv")
    rows = []
    for label, df, total in (("5-row", testdata.head(5), 600), ("10,000-row", finaldata.head(10_000), 40)):
        body = json.dumps({"records": df.drop(columns="exited").to_dict("records")})
        # The load comes from a second process, as a client's would.
        result = subprocess.run(
            [PYTHON, __file__, "--load", f"http://127.0.0.1:{port}/prediction", str(total), "4"],
            input=body,
            capture_output=True,
            text=True,
            check=True,
        )
        stats = json.loads(result.stdout)
        rows.append(
            [
                f"API /prediction, {label} body ({total} requests, 4 concurrent)",
                f"{stats['rps']:.1f} req/s",
                "",
                f"p50 {stats['p50'] * 1000:.1f} ms, p99 {stats['p99'] * 1000:.1f} ms, errors {stats['errors']}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", nargs=3, metavar=("URL", "REQUESTS", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        url, total, concurrency = args.load
        print(json.dumps(load(url, sys.stdin.read().encode(), int(total), int(concurrency))))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="risk-bench-") as folder:
        root = Path(folder)
        (root / "nonew").mkdir()
        rows += bench_no_new_data(root / "nonew")
        rows += bench_ingestion(root)
        port = free_port()
        (root / "drift").mkdir()
        config_path = make_project(root / "drift", input_folder="practicedata", api_base_url=f"http://127.0.0.1:{port}")
        server = start_gunicorn(config_path, port)
        try:
            rows += bench_drift_run(config_path)
            rows += bench_api(config_path, port)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    print("| what | time | peak memory | notes |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
