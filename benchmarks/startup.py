"""What the lm_eval discovery hook costs: interpreter start-up and TaskManager indexing.

Prints medians over repeated runs and writes results/startup.md.
Run: python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def hook_import_us(runs: int) -> list[int]:
    """Cumulative import time of _lm_routing_hook at start-up (python -X importtime), microseconds."""
    values = []
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True).stderr
        match = re.search(r"import time:\s+\d+ \|\s+(\d+) \|\s+_lm_routing_hook$", err, re.MULTILINE)
        if match is None:
            raise SystemExit("_lm_routing_hook is not imported at start-up: is lm-routing installed?")
        values.append(int(match.group(1)))
    return values


def interpreter_start_s(runs: int) -> list[float]:
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        values.append(time.perf_counter() - start)
    return values


def task_manager_s(runs: int) -> tuple[list[float], list[float]]:
    """TaskManager() construction with our tasks (hooked) and without (the original __init__)."""
    from lm_eval.tasks import TaskManager

    original = TaskManager.__init__.__wrapped__
    hooked, plain = [], []
    for _ in range(runs):
        start = time.perf_counter()
        TaskManager()
        hooked.append(time.perf_counter() - start)
        manager = TaskManager.__new__(TaskManager)
        start = time.perf_counter()
        original(manager)
        plain.append(time.perf_counter() - start)
    return hooked, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    hook = statistics.median(hook_import_us(runs))
    start = statistics.median(interpreter_start_s(runs))
    hooked, plain = (statistics.median(v) for v in task_manager_s(max(3, runs // 3)))
    lines = [
        "# Discovery hook cost",
        "",
        f"Medians over {runs} runs (`python benchmarks/startup.py`), Python {sys.version.split()[0]}.",
        "",
        "| what | median |",
        "| --- | --- |",
        f"| `_lm_routing_hook` import at interpreter start (`-X importtime`, cumulative) | {hook:.0f} µs |",
        f"| whole `python -c pass` | {start * 1000:.1f} ms |",
        f"| hook share of start-up | {100 * hook / 1e6 / start:.2f} % |",
        f"| `TaskManager()` with lm-routing's 240 task files | {hooked:.2f} s |",
        f"| `TaskManager()` without them (original `__init__`) | {plain:.2f} s |",
        f"| ratio with / without | {hooked / plain:.3f} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.md").write_text(text)


if __name__ == "__main__":
    main()
