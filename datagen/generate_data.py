"""Write the bundled, fabricated client data, or one more month of it.

`python datagen/generate_data.py` rewrites practicedata/, sourcedata/ and testdata/ byte for byte
(fixed seed); `python datagen/generate_data.py --month FOLDER [--regime REGIME]` writes one new
month's file into FOLDER to simulate new data arriving. `build_regime_month` gives a month (or its
independent holdout) as a DataFrame, for the simulation benchmark (benchmark/simulate.py).

The model of the data
---------------------
The company has 10,000 corporate clients, each named by a distinct four-letter code. One row is one
client observed at one time:

* number_of_employees ~ round(LogNormal(log M, 1.2)), at least 1, M = 35 (the regime's
  employees_median): most clients are small, a few huge.
* lastyear_activity ~ round(LogNormal(log(120 a) + 0.45 log employees, 0.8)), a = 1 (the regime's
  activity_factor): bigger clients do more.
* lastmonth_activity ~ Poisson(lastyear_activity / 12 * trend), trend ~ LogNormal(0, 0.6): a month
  is about a twelfth of the year, times a client-specific rise or fall.
* exited ~ Bernoulli(sigmoid(logit)), with
  logit = intercept + b * (log(1 + lastmonth_activity) - 4) + c * (log(1 + employees) - 3.5),
  where (intercept, b, c) depend on the period ("regime"):
    - practice (the earlier period): (-3.2, -4.0, 0.0): clients whose recent activity dropped leave.
    - source (the current period):   (-3.0, +0.5, -4.0): the business changed: small companies
      leave, whatever their activity.
    - shifted (a further change, only for `--month --regime shifted`): (-3.0, 0.0, +3.0): large
      companies leave.
  Two more regimes exist for new months only, to simulate changes of other kinds:
    - exodus: the source rule with intercept -1.0: the exit rate rises by about 15 points (about
      23 % -> 38 %), while who leaves (small companies) stays the same.
    - shifted-grown: the shifted rule with M = 120: the client base grows (the median company has
      120 employees instead of 35) while the rule stays; a covariate shift, which under this rule
      also raises the exit rate (to about 60 %).
    - scarce and shifted-scarce: the source and the shifted rule with intercept -4.7: exits grow
      scarce (about 14 % and 13 %).
  A slow change is a blend: `blend(a, b, w)` moves every parameter of regime a a share w of the way
  to regime b's (the medians geometrically), so a rule can turn over several months.
A new month (`--month`) observes every client again, under the regime `--regime` names.

A logistic regression on the raw counts learns each period's rule only partly (the true rule is in
logs), and a model of one period predicts the other badly. The bundled files' exit rate is about
23-27 %.

Files: practicedata/dataset1.csv and dataset2.csv (practice period, a few hundred rows each, 40
rows in both); sourcedata/dataset3.csv and dataset4.csv (the source period, the 10,000 clients
split between them, plus rows repeated within each file and across the two); testdata/testdata.csv
(1,200 clients: half observed in the practice period, half in the source period). The mixed test
set is what makes the pipeline's drift check (deployed model's F1 on new data < its F1 on the test
data) fire for the practice model on the source data, and stay quiet for a model trained on the
source data when another month of the source period arrives.
"""

import argparse
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parent.parent
SEED = 2026
CLIENT_COUNT = 10_000
COLUMNS = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]


@dataclass(frozen=True)
class Regime:
    """How exit risk depends on the features in one period (see the module docstring)."""

    intercept: float
    month_weight: float
    size_weight: float
    employees_median: float = 35.0  # the lognormal median of number_of_employees
    activity_factor: float = 1.0  # multiplies the median of lastyear_activity (lastmonth follows)


REGIMES = {
    "practice": Regime(-3.2, -4.0, 0.0),
    "source": Regime(-3.0, 0.5, -4.0),
    "shifted": Regime(-3.0, 0.0, 3.0),
    "exodus": Regime(-1.0, 0.5, -4.0),
    "shifted-grown": Regime(-3.0, 0.0, 3.0, employees_median=120.0),
    "scarce": Regime(-4.7, 0.5, -4.0),
    "shifted-scarce": Regime(-4.7, 0.0, 3.0),
}
HOLDOUT_STREAM = 1  # appended to a month's seed: the holdout's draws are independent of the file's


def blend(first: Regime, second: Regime, weight: float) -> Regime:
    """The regime a share `weight` (0..1) of the way from `first` to `second`: weights and intercept
    linearly, the medians and the activity factor geometrically."""
    return Regime(
        first.intercept + weight * (second.intercept - first.intercept),
        first.month_weight + weight * (second.month_weight - first.month_weight),
        first.size_weight + weight * (second.size_weight - first.size_weight),
        float(first.employees_median ** (1 - weight) * second.employees_median**weight),
        float(first.activity_factor ** (1 - weight) * second.activity_factor**weight),
    )


def make_codes(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` distinct four-lowercase-letter codes."""
    numbers = rng.choice(26**4, size=count, replace=False)
    letters = np.array(list(string.ascii_lowercase))
    digits = [(numbers // 26**power) % 26 for power in (3, 2, 1, 0)]
    return np.array(["".join(chars) for chars in zip(*(letters[d] for d in digits), strict=True)])


def draw_clients(rng: np.random.Generator, codes: np.ndarray, regime: Regime) -> pd.DataFrame:
    """One observation of each client in `codes`, its exit drawn under `regime`."""
    n = len(codes)
    median = np.log(regime.employees_median)
    employees = np.maximum(1, np.round(rng.lognormal(median, 1.2, n))).astype(np.int64)
    activity = np.log(120 * regime.activity_factor) + 0.45 * np.log(employees)
    year = np.round(rng.lognormal(activity, 0.8)).astype(np.int64)
    trend = rng.lognormal(0.0, 0.6, n)
    month = rng.poisson(year / 12 * trend).astype(np.int64)
    logit = (
        regime.intercept
        + regime.month_weight * (np.log1p(month) - 4)
        + regime.size_weight * (np.log1p(employees) - 3.5)
    )
    exited = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(dict(zip(COLUMNS, [codes, month, year, employees, exited], strict=True)))


def split_with_duplicates(rng, df, first_size, within, across):
    """Split `df` into two files; repeat `within` rows inside each and `across` rows in both."""
    order = rng.permutation(len(df))
    first, second = df.iloc[order[:first_size]], df.iloc[order[first_size:]]
    shared = first.sample(across, random_state=rng)
    first = pd.concat([first, first.sample(within[0], random_state=rng)])
    second = pd.concat([second, second.sample(within[1], random_state=rng), shared])
    shuffle = lambda part: part.sample(frac=1, random_state=rng)  # noqa: E731
    return shuffle(first), shuffle(second)


def build_datasets(seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The bundled files, keyed by their path relative to the project."""
    rng = np.random.default_rng(seed)
    codes = make_codes(rng, CLIENT_COUNT)
    source = draw_clients(rng, codes, REGIMES["source"])
    dataset3, dataset4 = split_with_duplicates(rng, source, 5_200, within=(60, 40), across=150)
    practice = draw_clients(rng, rng.choice(codes, 650, replace=False), REGIMES["practice"])
    dataset1, dataset2 = split_with_duplicates(rng, practice, 330, within=(0, 0), across=40)
    test_codes = rng.choice(codes, 1_200, replace=False)
    testdata = pd.concat(
        [
            draw_clients(rng, test_codes[:600], REGIMES["practice"]),
            draw_clients(rng, test_codes[600:], REGIMES["source"]),
        ]
    ).sample(frac=1, random_state=rng)
    return {
        "practicedata/dataset1.csv": dataset1,
        "practicedata/dataset2.csv": dataset2,
        "sourcedata/dataset3.csv": dataset3,
        "sourcedata/dataset4.csv": dataset4,
        "testdata/testdata.csv": testdata,
    }


def build_month(seed: int | list[int], regime: str | Regime, rows: int) -> pd.DataFrame:
    """One new month: fresh observations of `rows` of the company's clients under `regime` (a name or a Regime).

    By default a month observes all 10,000 clients, as a monthly export of the client base would.
    """
    codes = make_codes(np.random.default_rng(SEED), CLIENT_COUNT)
    rng = np.random.default_rng(seed)
    regime = REGIMES[regime] if isinstance(regime, str) else regime
    return draw_clients(rng, rng.choice(codes, rows, replace=False), regime)


def build_regime_month(
    seed: int | list[int], regime_name: str | Regime, rows: int = CLIENT_COUNT, holdout: bool = False
) -> pd.DataFrame:
    """A month of `regime_name` (or a Regime) as a DataFrame: `rows` of the clients, freshly observed.

    holdout=True gives that month's holdout instead: an independent draw of the same regime (the
    seed with HOLDOUT_STREAM appended), the labelled rows a simulation scores the live model on and
    never shows the pipeline. The month itself (holdout=False) is what `--month --seed` writes.
    """
    if holdout:
        seed = [*([seed] if isinstance(seed, int) else seed), HOLDOUT_STREAM]
    return build_month(seed, regime_name, rows)


def next_dataset_path(folder_path: Path) -> Path:
    """datasetN.csv with N one more than the highest already in the folder."""
    names = (re.fullmatch(r"dataset(\d+)\.csv", path.name) for path in folder_path.glob("*.csv"))
    numbers = [int(match.group(1)) for match in names if match]
    return folder_path / f"dataset{max(numbers, default=0) + 1}.csv"


def write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_DIR, help="project folder to write into")
    parser.add_argument("--month", type=Path, help="write one new month's file into this folder")
    parser.add_argument(
        "--regime",
        choices=sorted(REGIMES),
        default="source",
        help="period the new month follows: source (no change), exodus, shifted, shifted-grown, scarce, shifted-scarce",
    )
    parser.add_argument("--rows", type=int, default=CLIENT_COUNT, help="rows in the new month's file")
    parser.add_argument("--seed", type=int, default=SEED + 1, help="seed of the new month")
    args = parser.parse_args(argv)
    if args.month:
        path = next_dataset_path(args.month)
        write_csv(build_month(args.seed, args.regime, args.rows), path)
        written = [path]
    else:
        written = []
        for relative_path, df in build_datasets().items():
            write_csv(df, args.out / relative_path)
            written.append(args.out / relative_path)
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
