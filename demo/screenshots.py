"""Screenshots of every page and of the PDF report (`make screenshots`), made from the story they show.

Plays `make run`'s story (demo/story.py) in a temporary copy of the project (its code, and the bundled
data generated afresh by datagen), then `make rollback`, then rolls forward again and lets a month of
shifted data arrive (docs/data.md); after each, serves the copy with gunicorn and writes into --out
(docs/screenshots/, emptied of PNGs first): the whole dashboard 1,280 px wide and a phone's first screen
(390 px; headless Chromium), each page of that moment's report.pdf (pdftoppm), and once the login page.
The repository's own data and model folders are never touched: only the PNGs are written there.
Needs Debian's chromium, chromium-driver and poppler-utils; nothing is downloaded (Selenium Manager
is kept offline, pip asks no package index).
"""

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from PIL import Image  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

from datagen import generate_data  # noqa: E402
from risk import sandbox  # noqa: E402

OUT_DIR = PROJECT_DIR / "docs" / "screenshots"
CODE_FOLDERS = ["risk", "demo", "datagen", "templates", "static"]
CODE_FILES = ["*.py", "*.json", "requirements*.txt"]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTHS = {1280: (900, False), 390: (844, True)}  # width: (window height, a phone)
WHOLE_PAGE = {1280: True, 390: False}  # a phone: its first screen (what shows without scrolling)
PDF_DPI = 60  # an A4 page 496 px wide: the layout shows, the words are read in the PDF
COLOURS = 32  # enough for text, badges and the chart (octree keeps their hues): the PNGs stay small
LOGIN_TOKEN = "screenshot-token"
PERSON = "ann@ops"  # who rolls back by hand in the story


def copy_project(root: Path) -> None:
    """The code the story runs, copied into `root`, and the bundled data written there afresh (the same
    bytes as the repository's, without any month generated since)."""
    for folder in CODE_FOLDERS:
        shutil.copytree(PROJECT_DIR / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for pattern in CODE_FILES:
        for path in PROJECT_DIR.glob(pattern):
            shutil.copy2(path, root / path.name)
    for relative_path, df in generate_data.build_datasets().items():
        generate_data.write_csv(df, root / relative_path)


def environment(**values: str) -> dict:
    """The environment of the story's processes: no package index (nothing downloads), none of the
    caller's own configuration or token."""
    own = ("RISK_CONFIG", "RISK_API_BASE_URL", "API_TOKEN", "RISK_ACTOR")
    env = {key: value for key, value in os.environ.items() if key not in own}
    return {**env, "PIP_NO_INDEX": "1", **values}


def run(root: Path, log, *args: str, **env: str) -> None:
    """A command of the project, in `root`; its output goes to the log; a failure stops the script."""
    log.write(f"\n$ {' '.join(args)}\n")
    log.flush()
    result = subprocess.run(
        [sys.executable, *args], cwd=root, env=environment(**env), stdout=log, stderr=subprocess.STDOUT
    )
    if result.returncode not in (0, 2):  # 2: the API was not reachable, which the story's runs can say
        sys.exit(f"{' '.join(args)} failed with exit code {result.returncode}: see {log.name}")


def play_story(root: Path, log) -> None:
    """`make run`: demo/story.py in the copy, its API on a free port."""
    run(root, log, "demo/story.py", "--port", str(sandbox.free_port()), RISK_ACTOR="cron")


def roll_back(root: Path, log) -> None:
    """`make rollback` by a person, then the report they would read next."""
    run(root, log, "deployment.py", "--rollback", RISK_CONFIG="config.json", RISK_ACTOR=PERSON)
    run(root, log, "reporting.py", RISK_CONFIG="config.json", RISK_ACTOR=PERSON)


def shifted_month(root: Path, log, url: str) -> None:
    """Back to the model the story deployed (`make rollback` again), then a month in which the business
    changed (large companies leave), judged by the full process as cron runs it."""
    run(root, log, "deployment.py", "--rollback", RISK_CONFIG="config.json", RISK_ACTOR=PERSON)
    run(root, log, "datagen/generate_data.py", "--month", "sourcedata", "--regime", "shifted", "--seed", "99")
    run(root, log, "fullprocess.py", RISK_CONFIG="config.json", RISK_ACTOR="cron", RISK_API_BASE_URL=url)


@contextlib.contextmanager
def serving(root: Path, log_path: Path, **env: str):
    """gunicorn over the copy's config.json (one worker), its base URL."""
    with sandbox.serve(root / "config.json", log_path, "--workers", "1", cwd=root, env=environment(**env)) as url:
        yield url


@contextlib.contextmanager
def chromium():
    """A headless Chromium that fetches nothing but what the pages ask for."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for (or fetch) a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for option in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(option)
    for option in ("--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(option)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def shoot_page(driver, url: str, width: int, path: Path) -> Path:
    """The page at `url` as a browser `width` px wide shows it: whole on a laptop, a phone's (390) first screen."""
    height, mobile = WIDTHS[width]
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.get(url)
    if WHOLE_PAGE[width]:
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": full})
    save_png(driver.get_screenshot_as_png(), path)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def shoot_pdf(pdf_path: Path, prefix: Path) -> list[Path]:
    """Each page of the PDF as prefix-p1.png, prefix-p2.png, ... (pdftoppm)."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["pdftoppm", "-r", str(PDF_DPI), "-png", str(pdf_path), f"{folder}/page"], check=True)
        pages = sorted(Path(folder).glob("page-*.png"), key=lambda page: int(page.stem.split("-")[-1]))
        return [save_png(page.read_bytes(), Path(f"{prefix}-p{number}.png")) for number, page in enumerate(pages, 1)]


def save_png(data: bytes, path: Path) -> Path:
    """A PNG in COLOURS colours, not dithered (a fraction of the bytes; text on flat colours loses nothing visible)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.quantize(colors=COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def shoot_moment(driver, root: Path, url: str, name: str, out_dir: Path) -> list[Path]:
    """The dashboard at both widths and the report's pages, as they are at this moment of the story."""
    shots = [shoot_page(driver, url + "/", width, out_dir / f"{name}-dashboard-{width}.png") for width in WIDTHS]
    return shots + shoot_pdf(root / "models" / "report.pdf", out_dir / f"{name}-report")


def shoot_login(driver, root: Path, out_dir: Path) -> list[Path]:
    """The login page, as a browser sees it when API_TOKEN is set."""
    with serving(root, root / "logs" / "gunicorn-login.log", API_TOKEN=LOGIN_TOKEN) as url:
        return [shoot_page(driver, url + "/login", width, out_dir / f"login-{width}.png") for width in WIDTHS]


def make_screenshots(out_dir: Path, work_dir: Path) -> list[Path]:
    """Every screenshot, in the order of the story; returns their paths."""
    root = work_dir / "project"
    copy_project(root)
    shots = []
    with open(work_dir / "story.log", "w", encoding="utf-8") as log, chromium() as driver:
        play_story(root, log)
        with serving(root, root / "logs" / "gunicorn-1.log") as url:
            shots += shoot_moment(driver, root, url, "1-after-run", out_dir)
        roll_back(root, log)
        with serving(root, root / "logs" / "gunicorn-2.log") as url:
            shots += shoot_moment(driver, root, url, "2-after-rollback", out_dir)
            shifted_month(root, log, url)
            shots += shoot_moment(driver, root, url, "3-after-shifted-month", out_dir)
        shots += shoot_login(driver, root, out_dir)
    return shots


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the PNGs (default docs/screenshots)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and name it")
    args = parser.parse_args(argv)
    for tool in (CHROMIUM, CHROMEDRIVER, shutil.which("pdftoppm") or "pdftoppm"):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is not installed (Debian: apt-get install chromium chromium-driver poppler-utils)")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()
    work_dir = Path(tempfile.mkdtemp(prefix="risk-screenshots-"))
    try:
        shots = make_screenshots(args.out, work_dir)
    finally:
        if args.keep:
            print(f"the story's copy is kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    for path in shots:
        print(path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path)
    return shots


if __name__ == "__main__":
    main()
