"""Time each admin notebook on a large generated ledger (the goal: under 60 s each at 1M rows).

    .venv/bin/python bench/notebooks_timing.py [--rows 1000000] [--seed 7] [--json FILE]

Generates the ledger once (timed), then executes every notebooks/*.ipynb in a fresh kernel with
AIPIPE_USAGE pointing at it, as an admin would run it. Each figure is wall time for the whole
notebook, kernel start included. Prints a Markdown table; --json also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from relay.demo_data import write_demo_ledger

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "usage.parquet"
        start = time.perf_counter()
        write_demo_ledger(ledger, args.rows, seed=args.seed)
        results: dict[str, object] = {
            "rows": args.rows,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "generate_s": round(time.perf_counter() - start, 2),
            "ledger_mb": round(ledger.stat().st_size / 1e6, 1),
            "notebooks": {},
        }
        os.environ["AIPIPE_USAGE"] = str(ledger)
        os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
        for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            NotebookClient(
                nb, timeout=600, kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()  # fmt: skip
            results["notebooks"][path.name] = round(time.perf_counter() - start, 1)  # type: ignore[index]

    print(f"{args.rows:,} rows: generated in {results['generate_s']} s "
          f"({results['ledger_mb']} MB Parquet), {results['cpus']} CPUs\n")  # fmt: skip
    print("| notebook | seconds |\n|---|---|")
    for name, seconds in results["notebooks"].items():  # type: ignore[union-attr]
        print(f"| {name} | {seconds} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
