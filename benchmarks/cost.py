"""Cost frontier on RouterBench's ARC-Challenge split (train -> test): what routing saves against GPT-4.

Every choice is made on the training queries only: each router's lam (of argmax P(solve) - lam * USD) is the
cheapest on the routers' out-of-fold training scores within TOLERANCE of the single model most accurate on
the training queries; the agreement cascade (lm_routing.deciding.cascade.choose_agreement_cascade) likewise. Then each is
scored once on the test queries. Also: every router's whole lam frontier on test, the zero router (convex
hull of the single models), the oracle-cheapest point, and the number of interest: test accuracy within 1
point of the best-on-train single model at what % of its cost.

`choice_rows(train, test, choosers)` is the hook for more rows: a chooser takes the training queries and
returns a function from test queries to a (correct, USD) pair; auto --within 0/0.5/1/2/5 is one (`auto_chooser`),
and its five points form a curve whose AIQ is reported beside the zero router's.
Prints the figures and writes results/cost.md and results/cost.png.
Run: nice -n 10 python benchmarks/cost.py [--routers knn lr]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common import RESULTS, parser, pyplot, save_figure
from lm_routing.deciding.cascade import agreement_choices, choose_agreement_cascade
from lm_routing.deciding.cost import aiq, cost_aware_choices, lambda_grid, pareto_front, upper_hull
from lm_routing.judging.crossfit import FitCache
from lm_routing.data import RoutingData
from lm_routing.reading.load import load_routing_data
from lm_routing.judging.evaluate import pick_outcomes
from lm_routing.reading.logs import ReadOptions
from lm_routing.judging.select import Objective, deploy, select

SHARED = Path(os.environ.get("LM_ROUTING_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ROUTERBENCH = SHARED / "routing" / "routerbench"
TOLERANCES = (0.005, 0.01, 0.02)  # accuracy 0-1 a choice may lose, on training queries, to the best single model
AUTO_ONLY = (0.0, 0.05)  # auto's curve also at these (AIQ needs its ends)
FOLDS, SEED = 5, 0

# chooser(train) -> deployable(test) -> (correct 0/1 per query, USD per query)
Deployable = Callable[[RoutingData], tuple[np.ndarray, np.ndarray]]
Chooser = Callable[[RoutingData], tuple[str, Deployable]]


def router_chooser(name: str, tolerance: float, cache: FitCache) -> Chooser:
    """A router whose lam is the cheapest within `tolerance` of the best single model, on out-of-fold training scores."""
    def choose(train: RoutingData) -> tuple[str, Deployable]:
        oof = cache.out_of_fold(name, {}, train, FOLDS, SEED)
        target = train.labels.mean(axis=0).max() - tolerance
        rows = np.arange(train.n_queries)
        best = None
        for lam in lambda_grid(train.cost):
            chosen = cost_aware_choices(oof, train.cost, lam)
            accuracy, usd = train.labels[rows, chosen].mean(), train.cost[rows, chosen].mean()
            if accuracy >= target - 1e-12 and (best is None or usd < best[1]):
                best = (lam, usd)
        lam = best[0] if best else 0.0
        fitted = cache.fitted(name, {}, train)

        def deploy(test: RoutingData) -> tuple[np.ndarray, np.ndarray]:
            chosen = cost_aware_choices(fitted.predict_proba(list(test.queries)), test.cost, lam)
            return test.labels[np.arange(test.n_queries), chosen], test.cost[np.arange(test.n_queries), chosen]
        return f"router {name}, lam {lam:.3g}", deploy
    return choose


def cascade_chooser(tolerance: float) -> Chooser:
    """The agreement cascade cheapest on training queries within `tolerance` of the best single model."""
    def choose(train: RoutingData) -> tuple[str, Deployable]:
        chosen = choose_agreement_cascade(train, tolerance=tolerance).cascade

        def deploy(test: RoutingData) -> tuple[np.ndarray, np.ndarray]:
            correct, usd, _ = agreement_choices(test, chosen)
            return correct, usd
        return f"cascade {chosen.name(train)} @ share {chosen.share:.3g}", deploy
    return choose


def auto_chooser(objective: Objective, cache: FitCache) -> Chooser:
    """`routing-eval --within` / `--max-cost`: auto's whole selection for `objective` on the training queries (TF-IDF)."""
    def choose(train: RoutingData) -> tuple[str, Deployable]:
        deployed = deploy(select(train, FOLDS, SEED, ["tfidf"], cache=cache, objective=objective), train, FOLDS, SEED, cache)
        return f"auto: {deployed.pick}", lambda test: pick_outcomes(deployed, test)[1:]
    return choose


def choice_rows(train: RoutingData, test: RoutingData, choosers: dict[str, Chooser]) -> list[dict]:
    """One row per chooser: chosen on `train`, scored on `test` (accuracy %, USD/query, % of the reference's cost)."""
    reference = int(np.argmax(train.labels.mean(axis=0)))
    ref_acc, ref_cost = test.labels[:, reference].mean(), test.cost[:, reference].mean()
    rows = []
    for label, chooser in choosers.items():
        start = time.perf_counter()
        pick, deploy = chooser(train)
        correct, usd = deploy(test)
        rows.append({"method": label, "pick": pick, "accuracy": 100 * correct.mean(), "usd": usd.mean(),
                     "vs_ref": 100 * (correct.mean() - ref_acc), "cost_pct": 100 * usd.mean() / ref_cost,
                     "within_1": correct.mean() >= ref_acc - 0.01, "seconds": time.perf_counter() - start})
    return rows


def frontier(test: RoutingData, scores: np.ndarray) -> list[tuple[float, float]]:
    """(USD/query, accuracy %) of argmax P - lam * cost over the lam grid, on test (for the plot and AIQ)."""
    rows = np.arange(test.n_queries)
    return [(test.cost[rows, c].mean(), 100 * test.labels[rows, c].mean())
            for c in (cost_aware_choices(scores, test.cost, lam) for lam in lambda_grid(test.cost))]


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--routers", nargs="+", default=["knn", "lr"])
    args = options.parse_args()
    data = load_routing_data("", [ROUTERBENCH / "arc_challenge_train.csv"], [ROUTERBENCH / "arc_challenge_test.csv"],
                             options=ReadOptions(on_missing="drop"))
    train, test = data.split("train"), data.split("test")
    cache = FitCache()
    choosers: dict[str, Chooser] = {}
    for tolerance in TOLERANCES:
        choosers[f"agreement cascade, within {100 * tolerance:g} pt on train"] = cascade_chooser(tolerance)
        for name in args.routers:
            choosers[f"{name} + lam, within {100 * tolerance:g} pt on train"] = router_chooser(name, tolerance, cache)
    for tolerance in TOLERANCES + AUTO_ONLY:
        choosers[f"auto --within {100 * tolerance:g}"] = auto_chooser(Objective(within=tolerance), cache)
    rows = choice_rows(train, test, choosers)
    curves_auto = [(r["usd"], r["accuracy"]) for r in rows if r["method"].startswith("auto")]
    singles = [(float(c), 100 * float(a)) for c, a in zip(test.model_cost, test.labels.mean(axis=0))]
    curves = {name: frontier(test, cache.fitted(name, {}, train).predict_proba(list(test.queries))) for name in args.routers}
    cheapest = test.cost.copy()
    cheapest[test.labels == 0] = np.inf
    solver = np.where(np.isfinite(cheapest).any(axis=1), np.argmin(cheapest, axis=1), np.argmin(test.cost, axis=1))
    oracle = (test.cost[np.arange(test.n_queries), solver].mean(), 100 * test.labels[np.arange(test.n_queries), solver].mean())
    reference = test.models[int(np.argmax(train.labels.mean(axis=0)))]
    write_report(rows, singles, {**curves, "auto (--within 0, 0.5, 1, 2, 5)": curves_auto}, oracle, test, reference)
    plot(rows, singles, curves, oracle, test, reference)


def write_report(rows, singles, curves, oracle, test: RoutingData, reference: str) -> None:
    j = test.models.index(reference)
    lines = ["# Cost: routing against GPT-4 on RouterBench ARC-Challenge", "",
             f"Train {ROUTERBENCH.name}/arc_challenge_train.csv -> test arc_challenge_test.csv ({test.n_queries} test "
             "queries with every score; rows missing a score dropped). Costs: RouterBench's `total_cost` (USD per query). "
             "Every choice below is made on the training queries only, then scored once on test. "
             f"Reference: {reference}, the single model most accurate on the training queries: "
             f"{100 * test.labels[:, j].mean():.2f}% on test at ${test.model_cost[j]:.5f}/query.", "",
             "## Chosen on training queries, scored on test", "",
             "| method | pick | accuracy % | vs reference (pt) | $/query | % of reference cost | within 1 pt |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['pick']} | {r['accuracy']:.2f} | {r['vs_ref']:+.2f} | {r['usd']:.6f} | "
              f"{r['cost_pct']:.1f} | {'yes' if r['within_1'] else 'no'} |" for r in rows]
    good = [r for r in rows if r["within_1"]]
    best = min(good, key=lambda r: r["cost_pct"]) if good else None
    lines += ["", "## Frontiers on test (AIQ: accuracy averaged over the cost range of the convex hull, %)", "",
              "| curve | AIQ |", "|---|---|", f"| zero router (hull of the single models) | {aiq(singles):.2f} |"]
    lines += [f"| {name}{'' if name.startswith('auto') else ' (lam sweep)'} | {aiq(points):.2f} |" for name, points in curves.items()]
    lines += ["", f"Oracle-cheapest (labels of test, a ceiling): {oracle[1]:.2f}% at ${oracle[0]:.6f}/query "
              f"({100 * oracle[0] / test.model_cost[j]:.1f}% of the reference's cost).", "",
              "## The number of interest", "",
              (f"Within 1 point of {reference} on test at {best['cost_pct']:.1f}% of its cost: {best['method']} "
               f"({best['pick']}), {best['accuracy']:.2f}%. Goal: <= 40%." if best else
               f"No choice made on training queries stays within 1 point of {reference} on test.")]
    (RESULTS / "cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows, singles, curves, oracle, test: RoutingData, reference: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.scatter(*zip(*singles), color="dimgrey", zorder=3, label="single models")
    for (x, y), name in zip(singles, test.models):
        ax.annotate(name.split("/")[-1], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    hull = upper_hull(singles)
    ax.plot(*zip(*hull), color="grey", linestyle=":", label="zero router (convex hull of the single models)")
    for name, points in curves.items():
        front = pareto_front(points)
        ax.step(*zip(*front), where="post", label=f"router {name}: lam frontier (test)")
    for i, row in enumerate(rows):
        ax.scatter(row["usd"], row["accuracy"], marker="D" if "cascade" in row["method"] else "^", s=50, zorder=4,
                   color=f"C{(i % 7) + 3}", label=row["method"])
    ax.scatter(*oracle, marker="*", s=120, color="gold", edgecolor="black", zorder=5, label="oracle-cheapest")
    level = 100 * test.labels[:, test.models.index(reference)].mean()
    ax.axhline(level, color="tab:red", linewidth=0.8, label=f"{reference} accuracy")
    ax.axhline(level - 1, color="tab:red", linewidth=0.8, linestyle="--", label="1 point below it")
    ax.set_xscale("log")
    ax.set_xlabel("USD per query (log)")
    ax.set_ylabel("test accuracy %")
    ax.set_ylim(85, 100)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title("RouterBench ARC-Challenge: accuracy vs cost (chosen on train)")
    save_figure(fig, RESULTS / "cost.png")


if __name__ == "__main__":
    main()
