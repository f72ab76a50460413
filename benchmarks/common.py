"""What the benchmark scripts share: where data and results live, loading tables, plotting."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lm_routing.data import RoutingData, concat
from lm_routing.reading.logs import read_score_table
from lm_routing.reporting.plots import pyplot  # noqa: F401  (one home for the Agg backend; benchmarks import it from here)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
SHARED = Path(os.environ.get("LM_ROUTING_SHARED_DATA", REPO.parent / "shared" / "data")) / "routing"
ROUTERDC = SHARED / "routerdc-7llm"
ROUTERBENCH = SHARED / "routerbench"
TABLES = {"gsm8k": ["gsm8k"], "mmlu": ["mmlu"], "mixed": ["gsm8k", "mmlu"], "arc": None}  # arc: RouterBench's ARC-C


def load_routerdc(folder: Path, datasets: list[str]) -> RoutingData:
    """Train and test tables of the given datasets (e.g. ['gsm8k', 'mmlu']) as one RoutingData."""
    return concat([read_score_table(folder / f"{d}_{split}.json", split) for split in ("train", "test") for d in datasets])


def load_table(name: str) -> RoutingData:
    """One of the tables we ship by its `TABLES` name, train and test: RouterDC's (GSM8K, MMLU, both mixed) or
    RouterBench's ARC-Challenge (its rows missing a model's score dropped, as `--on-missing drop` does)."""
    if TABLES[name] is not None:
        return load_routerdc(ROUTERDC, TABLES[name])
    return concat([read_score_table(ROUTERBENCH / f"arc_challenge_{split}.csv", split, on_missing="drop")
                   for split in ("train", "test")])


def markdown_tables(path: Path) -> dict[str, list[dict[str, str]]]:
    """The tables of a results/*.md this folder wrote: heading line (without '#') -> rows as {column: cell}.

    Lets a script redraw its figure from its saved figures (--replot) instead of rerunning.
    """
    tables: dict[str, list[dict[str, str]]] = {}
    heading, header = "", None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip(), None
        elif line.startswith("|") and header is None:
            header = [cell.strip() for cell in line.strip("|").split("|")]
        elif line.startswith("|") and not set(line) <= set("|-: "):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            tables.setdefault(heading, []).append(dict(zip(header, cells)))
    return tables


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: --data (RouterDC folder) and --seed."""
    options = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--data", type=Path, default=ROUTERDC)
    options.add_argument("--seed", type=int, default=0)
    return options
