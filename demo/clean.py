"""`make clean`: remove everything the project generated, and say what was removed.

Removes the pipeline's outputs (GENERATED: what `make run` resets first), a release a stopped deployment
left half built (.production_deployment.tmp-*), mutation testing's mutants/, and the data months
`datagen/generate_data.py --month` wrote into the bundled data folders (every datasetN.csv there that is not
bundled, e.g. sourcedata/dataset5.csv and dataset6.csv from docs/data.md). The bundled data stays, and so
does any file not named datasetN.csv. Standard library only: it runs without the virtual environment.
"""

import argparse
import re
import shutil
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
GENERATED = [
    "ingesteddata",
    "models",
    "practicemodels",
    "production_deployment",
    "production_deployment.releases",
    "logs",
]
TOOL_OUTPUTS = ["mutants"]
UNFINISHED_RELEASES = ".production_deployment.tmp-*"
BUNDLED_DATA = {  # datagen/generate_data.py's build_datasets()
    "practicedata": ["dataset1.csv", "dataset2.csv"],
    "sourcedata": ["dataset3.csv", "dataset4.csv"],
    "testdata": ["testdata.csv"],
}
MONTH_NAME = re.compile(r"dataset\d+\.csv")  # generate_data.next_dataset_path's names


def generated_months(root: Path) -> list[Path]:
    """The months generate_data.py --month wrote into the bundled data folders: datasetN.csv not bundled."""
    return [
        path
        for folder, bundled in BUNDLED_DATA.items()
        for path in sorted((root / folder).glob("*.csv"))
        if MONTH_NAME.fullmatch(path.name) and path.name not in bundled
    ]


def generated_paths(root: Path) -> list[Path]:
    """Everything under `root` the project generated, that exists: outputs, leftovers, generated months."""
    outputs = [root / name for name in [*GENERATED, *TOOL_OUTPUTS]]
    leftovers = sorted(root.glob(UNFINISHED_RELEASES))
    return [path for path in [*outputs, *leftovers] if path.exists() or path.is_symlink()] + generated_months(root)


def remove(path: Path) -> str:
    """Remove a file, a folder or a symbolic link (not what it points to); its name, a folder's with '/'."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        return f"{path.name}/"
    path.unlink()
    return path.name


def main(argv=None) -> list[Path]:
    """`python demo/clean.py [ROOT]`: remove what generated_paths finds in ROOT (default: this project),
    print each path removed (relative to ROOT), or that there was nothing to remove; returns them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`: "))
    parser.add_argument("root", nargs="?", type=Path, default=PROJECT_DIR, help="the project folder")
    root = parser.parse_args(argv).root
    removed = generated_paths(root)
    for path in removed:
        name = remove(path)
        print(f"removed {path.parent.relative_to(root) / name if path.parent != root else name}")
    if not removed:
        print("nothing to remove: no generated output, no generated data month")
    else:
        print(f"kept the bundled data: {', '.join(f'{folder}/' for folder in BUNDLED_DATA)}")
    return removed


if __name__ == "__main__":
    main()
