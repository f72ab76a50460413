"""Quality and cost of routing on real data: regenerates results/quality.md and its PNGs.

Data: ../shared/data/routing/routerdc-7llm (7 open LLMs, RouterDC release), train -> test,
a query solved when its score >= 0.5; GSM8K, MMLU, and the mixed GSM8K+MMLU stream
(one router trained on both). Cost frontier: the simulated pool with the routing
paper's per-model accuracy and latency (the RouterDC files carry no timings).

Run: python benchmarks/quality.py [--data DIR] [--routers knn,lr]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from router.cost import aiq, gap_recovery, sweep
from router.evaluate import Evaluation, evaluate
from router.logs import read_harness_logs
from router.policies import POLICIES
from router.simulate import write_simulated_logs

from common import RESULTS, load_routerdc, parser, pyplot, save_figure



def gap_closed(accuracy: float, best: float, oracle: float) -> float:
    return (accuracy - best) / (oracle - best)


def table(evaluation: Evaluation) -> list[str]:
    best = evaluation.best_single()
    oracle = next(r for r in evaluation.rows if r.method == "oracle")
    lines = [
        f"protocol: {evaluation.protocol}",
        "",
        "| method | accuracy % | 95% CI | vs best single | McNemar p | gap closed |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in evaluation.rows:
        if row.method.startswith("model:") and row is not best:
            continue
        name = f"{row.method}:{row.router}" if row.method == "upper-bound" else row.method
        if row is best:
            name = f"best single ({row.method[6:]})"
        p = "" if row.vs_best is None else f"{row.vs_best.p_value:.3f}"
        lines.append(
            f"| {name} | {100 * row.accuracy:.2f} | {100 * row.ci[0]:.2f}-{100 * row.ci[1]:.2f} | "
            f"{100 * (row.accuracy - best.accuracy):+.2f} | {p} | {100 * gap_closed(row.accuracy, best.accuracy, oracle.accuracy):+.1f}% |"
        )
    return lines


def per_dataset_best(data) -> float:
    """Accuracy of sending each query to the model best on its dataset's test queries (an oracle-ish bar)."""
    test = data.split("test")
    correct = 0.0
    for dataset in sorted(set(test.datasets)):
        part = test.only_datasets([dataset])
        correct += part.labels.mean(axis=0).max() * part.n_queries
    return correct / test.n_queries


def frontier_section(routers: list[str], seed: int) -> tuple[list[str], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        logs = write_simulated_logs(Path(tmp) / "logs", seed=seed)
        data = read_harness_logs(logs / "gsm8k")
    evaluation = evaluate(data, routers, ["argmax"], seed=seed)
    test = evaluation.data
    singles = [(float(test.latency[:, j].mean()), float(test.labels[:, j].mean()), m) for j, m in enumerate(test.models)]
    oracle = next(r for r in evaluation.rows if r.method == "oracle-cheapest")
    curves, lines = {}, ["| router | AIQ (accuracy over the cost range) | cheapest point within 1 pt of its best |", "| --- | ---: | ---: |"]
    for routed in evaluation.routed:
        points = sweep(test, routed.scores)
        curves[routed.router] = points
        top = max(p.accuracy for p in points)
        near = min((p for p in points if p.accuracy >= top - 0.01), key=lambda p: p.cost)
        lines.append(f"| {routed.router} | {100 * aiq([(p.cost, p.accuracy) for p in points]):.2f} | "
                     f"{100 * near.accuracy:.2f}% at {near.cost:.2f} s/query |")
    lines.append(f"| single models (AIQ of their hull) | {100 * aiq([(c, a) for c, a, _ in singles]):.2f} | |")
    return lines, {"singles": singles, "curves": curves, "oracle": (oracle.latency_s, oracle.accuracy)}


def plot_frontier(plot: dict, path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in plot["curves"].items():
        ax.plot([p.cost for p in points], [100 * p.accuracy for p in points], marker=".", label=f"router {name} (lam sweep)")
    for cost, accuracy, model in plot["singles"]:
        ax.scatter(cost, 100 * accuracy, color="black")
        ax.annotate(model, (cost, 100 * accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.scatter(*[plot["oracle"][0]], [100 * plot["oracle"][1]], marker="*", s=150, color="gold", label="oracle (cheapest correct)")
    ax.set_xlabel("mean latency (s/query)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy-latency frontier, simulated paper pool (GSM8K)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_pgr(results: dict, path: Path, title: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, result in results.items():
        ax.plot(100 * result.strong_share, result.pgr, label=f"{name} (APGR {result.apgr:.3f})")
    ax.plot([0, 100], [0, 1], color="grey", linestyle="--", label="random split")
    ax.set_xlabel("% of queries sent to the strong model")
    ax.set_ylabel("performance gap recovered")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--routers", default="knn,lr")
    args = options.parse_args()
    routers = args.routers.split(",")
    policies = list(POLICIES)
    started = time.time()
    md = ["# Routing quality on real data", "", f"`python benchmarks/quality.py --routers {args.routers}`; "
          "data: RouterDC 7-LLM release, solved = score >= 0.5; 95% CIs: 1000-draw query bootstrap; "
          "p: McNemar exact test against the best single model on the same queries. "
          "'gap closed' = (accuracy - best single) / (oracle - best single).", ""]
    pgr_results = {}
    for label, datasets in (("GSM8K", ["gsm8k"]), ("MMLU", ["mmlu"]), ("Mixed GSM8K+MMLU", ["gsm8k", "mmlu"])):
        data = load_routerdc(args.data, datasets)
        md += [f"## {label}", ""]
        for protocol in ("train-test", "test-kfold"):
            evaluation = evaluate(data, routers, policies, seed=args.seed, protocol=protocol)
            md += table(evaluation) + [""]
            if protocol == "train-test":
                md += [f"- {note}" for note in evaluation.notes] + [""]
                if label == "GSM8K":
                    pgr_results = {
                        r.router: gap_recovery(evaluation.data, r.scores, "cognitivecomputations/dolphin-2.9-llama3-8b", "mistralai/Mistral-7B-v0.1")
                        for r in evaluation.routed if r.policy == "argmax"
                    }
            md.append("calibration (ECE, 10 bins): " + ", ".join(f"{k} {v:.3f}" for k, v in evaluation.calibration.items()))
            md.append("")
        if len(datasets) > 1:
            best = data.split("test").labels.mean(axis=0).max()
            oracle = data.split("test").labels.max(axis=1).mean()
            bar = per_dataset_best(data)
            md += [f"Best model per dataset (chosen on test): {100 * bar:.2f}% = {100 * gap_closed(bar, best, oracle):.1f}% of the gap.", ""]
    md += ["## Strong/weak pair (RouteLLM metrics), GSM8K", "",
           "strong: dolphin-2.9-llama3-8b, weak: Mistral-7B-v0.1; queries ranked by the router's score difference.", "",
           "| router | APGR | CPT(50%) | CPT(80%) |", "| --- | ---: | ---: | ---: |"]
    for name, result in pgr_results.items():
        md.append(f"| {name} | {result.apgr:.3f} | {100 * result.cpt50:.0f}% | {100 * result.cpt80:.0f}% |")
    md += ["", "A random split has APGR 0.5 and CPT(50%) = 50%.", "", "![PGR](quality_pgr.png)", ""]
    frontier_lines, plot = frontier_section(routers, args.seed)
    md += ["## Accuracy-latency frontier (simulated paper pool, GSM8K)", "",
           "Cost-aware routing: argmax P(solve) - lam * latency, lam swept from 0 up. AIQ (RouterBench): area under "
           "the convex hull of the (latency, accuracy) points over their latency range.", ""] + frontier_lines
    md += ["", "![frontier](quality_frontier.png)", "", f"Wall time: {time.time() - started:.0f} s on this machine."]
    RESULTS.mkdir(exist_ok=True)
    plot_pgr(pgr_results, RESULTS / "quality_pgr.png", "GSM8K: dolphin-2.9-llama3-8b (strong) vs Mistral-7B (weak)")
    plot_frontier(plot, RESULTS / "quality_frontier.png")
    (RESULTS / "quality.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
