"""The routing table as a figure (a PNG file, `plot_path`).

Left: accuracy (%) against mean cost (USD/query, log scale) of every row with its 95% interval, the
frontier of the deployable rows, the zero router (convex hull of the single models) and the best single
model's level, when every cost is known; else against mean latency (s/query) with the Pareto frontier of
the deployable rows (oracle and upper bounds need the labels, so they are drawn but not on it).
Right: the share of queries each model gets under each router row (and the oracle, for reference).
matplotlib is an optional extra (`pip install 'lm-routing[plot]'`), imported only here, on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_routing.deciding.cost import pareto_front, upper_hull
from lm_routing.data import RoutingInputError
from lm_routing.judging.evaluate import Evaluation
from lm_routing.judging.rows import MODEL, ROUTER, Row

NOT_DEPLOYABLE = ("oracle", "oracle-cheapest", "upper-bound")  # rows that read the test labels
MARKERS = "o^sDvP*Xh<>p"


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend; one line saying how to install it when missing."""
    try:
        import matplotlib
    except ImportError:
        raise RoutingInputError("plots need matplotlib: pip install 'lm-routing[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _policy(row: Row) -> str:
    return row.policy or "pick"  # auto's row: its own pick, no policy


def _label(row: Row) -> str:
    return row.model if row.kind == MODEL else row.label


def _draw_accuracy_latency(ax, evaluation: Evaluation) -> list[str]:
    """Scatter of every row with a latency, the frontier, labels; returns the rows it could not place."""
    rows = [r for r in evaluation.rows if r.latency_s is not None]
    unplaced = [r.method for r in evaluation.rows if r.latency_s is None]
    routers = list(dict.fromkeys(r.router for r in rows if r.kind == ROUTER))
    policies = list(dict.fromkeys(_policy(r) for r in rows if r.kind == ROUTER))
    colours = {name: f"C{i % 10}" for i, name in enumerate(routers)}
    for row in rows:
        x, y, kind = row.latency_s, 100 * row.accuracy, row.kind
        if kind == ROUTER:
            policy = _policy(row)
            ax.scatter(x, y, color=colours[row.router], marker=MARKERS[policies.index(policy) % len(MARKERS)], s=55,
                       zorder=3, label=f"router {row.router}: {policy}")
            continue
        style = {"model": dict(color="dimgrey", marker="o"), "cascade": dict(color="tab:purple", marker="D"),
                 "upper-bound": dict(facecolor="none", edgecolor=colours.get(row.router, "black"), marker="o")}
        ax.scatter(x, y, s=45, zorder=3, **style.get(kind, dict(color="black", marker="s")))
        # upper bounds sit near the oracle and cascades near their last member: label them on another side
        bounds = sum(r.kind == "upper-bound" for r in rows[: rows.index(row)])  # several bounds: stack their labels
        offset = {"upper-bound": (-5, -9 - 9 * bounds), "cascade": (5, -10)}.get(kind, (5, 4))
        ax.annotate(_label(row), (x, y), textcoords="offset points", xytext=offset,
                    ha="right" if kind == "upper-bound" else "left", fontsize=7, color="#333333")
    deployable = [(r.latency_s, 100 * r.accuracy) for r in rows if r.kind not in NOT_DEPLOYABLE]
    front = pareto_front(deployable)
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="tab:red", linestyle="--",
                linewidth=1, zorder=2, label="Pareto frontier (deployable rows)")
    latencies = [r.latency_s for r in rows if r.latency_s > 0]
    if latencies and max(latencies) / min(latencies) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("mean latency (s/query)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"accuracy vs latency, {evaluation.data.n_queries} test queries", fontsize=10)
    ax.grid(alpha=0.3)
    return unplaced


def _draw_accuracy_cost(ax, evaluation: Evaluation) -> list[str]:
    """Accuracy against mean USD per query (log) of every row with a cost, with its 95% interval, the frontier
    of the deployable rows, the zero router (convex hull of the single models) and the best single model's
    level; returns the rows it could not place."""
    rows = [r for r in evaluation.rows if r.cost is not None and r.cost > 0]
    colours = {"model": "dimgrey", "cascade": "tab:purple", ROUTER: "tab:blue"}
    for row in rows:
        low, high = row.ci if row.ci is not None else (row.accuracy, row.accuracy)
        ax.errorbar(row.cost, 100 * row.accuracy, yerr=[[100 * (row.accuracy - low)], [100 * (high - row.accuracy)]],
                    fmt={"model": "o", "cascade": "D", ROUTER: "^"}.get(row.kind, "s"),
                    color=colours.get(row.kind, "black"), markersize=5, capsize=2, elinewidth=0.8, zorder=3)
        ax.annotate(_label(row), (row.cost, 100 * row.accuracy), textcoords="offset points", xytext=(4, 3), fontsize=6,
                    color="#333333")
    front = pareto_front([(r.cost, 100 * r.accuracy) for r in rows if r.kind not in NOT_DEPLOYABLE])
    if front:
        ax.step(*zip(*front), where="post", color="tab:red", linestyle="--", linewidth=1, label="frontier (deployable rows)")
    hull = upper_hull([(r.cost, 100 * r.accuracy) for r in rows if r.kind == MODEL])
    if hull:
        ax.plot(*zip(*hull), color="grey", linestyle=":", label="zero router (hull of the single models)")
    best = evaluation.best_single()
    ax.axhline(100 * best.accuracy, color="tab:green", linewidth=0.8, label=f"best single model ({best.model})")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost (USD/query, log)")
    ax.set_ylabel("accuracy (%), 95% interval")
    ax.set_title(f"accuracy vs cost, {evaluation.data.n_queries} test queries", fontsize=10)
    ax.grid(alpha=0.3)
    return [r.method for r in evaluation.rows if r not in rows]


def _draw_accuracy_only(ax, evaluation: Evaluation) -> None:
    """Without any latency (score tables): accuracy per row as bars."""
    rows = evaluation.rows
    ax.barh([_label(r) for r in rows], [100 * r.accuracy for r in rows], color="tab:blue")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("accuracy (%)")
    ax.set_title("accuracy (no latency known: pass «latencies» MODEL=SECONDS for the frontier)", fontsize=10)


def _draw_shares(ax, evaluation: Evaluation) -> None:
    """Stacked bars: per router row (and the oracle), the % of queries sent to each model."""
    models = list(evaluation.data.models)
    rows = [r for r in evaluation.rows if r.kind == ROUTER or r.kind == "oracle"]
    names = [r.method.removeprefix(f"{ROUTER}:") for r in rows]
    left = np.zeros(len(rows))
    for j, model in enumerate(models):
        share = np.array([100 * r.share.get(model, 0.0) for r in rows])
        ax.barh(names, share, left=left, color=f"C{j % 10}" if j < 10 else None, label=model)
        left += share
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of test queries routed to each model (%)")
    ax.set_title("who gets the queries", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    columns = 1 if max(map(len, models)) > 24 else min(3, len(models))  # hub ids are long: one per line
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns, fontsize=7, frameon=False)


def check_plot_path(path: Path | str) -> None:
    """Refuse, before any work, a plot path that is not a .png in an existing folder, or a missing matplotlib.
    (The figure is written as <stem>-<timestamp>.png beside it: never over an earlier one.)"""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise RoutingInputError(f"{path}: «plot_path» writes a PNG; give a file name ending in .png")
    if not path.parent.is_dir():
        raise RoutingInputError(f"{path.parent}: no such folder for «plot_path»; create it or choose another path")
    pyplot()


def plot_evaluation(evaluation: Evaluation, path: Path | str) -> Path:
    """Write the two-panel figure of `evaluation` as PNG into the existing (staged, empty) file `path`."""
    path = Path(path)
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.5), gridspec_kw={"width_ratios": [3, 2]})
    unplaced: list[str] = []
    if evaluation.data.cost_known:
        unplaced = _draw_accuracy_cost(left, evaluation)
        left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=7, frameon=False)
    elif any(r.latency_s is not None for r in evaluation.rows):
        unplaced = _draw_accuracy_latency(left, evaluation)
        left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7, frameon=False)
    else:
        _draw_accuracy_only(left, evaluation)
    _draw_shares(right, evaluation)
    if unplaced:
        what = "cost" if evaluation.data.cost_known else "latency"
        fig.text(0.01, 0.005, f"no {what}, not placed: {', '.join(unplaced)}", fontsize=7, color="dimgrey")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")  # legends sit below the axes: keep them in the file
    plt.close(fig)
    return path
