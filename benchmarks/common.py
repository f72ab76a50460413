"""What the benchmark scripts share: where data and results live, loading tables, plotting."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from router.data import RoutingData, concat
from router.logs import read_score_table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
ROUTERDC = Path(os.environ.get("LM_ROUTING_SHARED_DATA", REPO.parent / "shared" / "data")) / "routing" / "routerdc-7llm"


def load_routerdc(folder: Path, datasets: list[str]) -> RoutingData:
    """Train and test tables of the given datasets (e.g. ['gsm8k', 'mmlu']) as one RoutingData."""
    return concat([read_score_table(folder / f"{d}_{split}.json", split) for split in ("train", "test") for d in datasets])


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
