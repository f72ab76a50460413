"""Cost-aware routing and the cost-quality metrics of RouteLLM and RouterBench.

Cost here is latency in seconds per query (from the logs or declared), or a
declared price per query (e.g. USD); any per-query cost array of the
same shape works the same way.

- Willingness to pay: route query i to argmax_j P(solve)_ij - lam * cost_ij;
  sweeping lam from 0 upward traces the router's accuracy-cost curve.
- APGR (RouteLLM): for a strong/weak pair, the performance gap recovered
  PGR = (acc - acc_weak) / (acc_strong - acc_weak), averaged over the share of
  queries sent to the strong model from 0 to 1. CPT(x): the smallest share of
  strong calls that recovers x of the gap.
- AIQ (RouterBench): area under the non-decreasing convex hull of the
  (cost, accuracy) points, divided by the cost range it spans.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lm_routing.data import RoutingData, RoutingInputError
from lm_routing.errors import check_known, require_latency


@dataclass(frozen=True)
class OperatingPoint:
    """One setting of a cost-aware router: its lam, accuracy (fraction) and mean cost (s/query)."""

    lam: float
    accuracy: float
    cost: float


def _known_cost(data: RoutingData) -> np.ndarray:
    return require_latency(data.latency, "cost-aware routing")


def cost_aware_choices(scores: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """argmax_j scores_ij - lam * cost_ij for each query (ties: pool order)."""
    return np.argmax(scores - lam * cost, axis=1)


def sweep(data: RoutingData, scores: np.ndarray, lambdas: np.ndarray | None = None,
          cost: np.ndarray | None = None) -> list[OperatingPoint]:
    """The router's accuracy and mean cost at each lam (default: 0 and a log grid up to 'always cheapest').
    `cost`: queries x models cost (e.g. `data.cost`, USD); default the latency (s/query)."""
    cost = _known_cost(data) if cost is None else cost
    if lambdas is None:
        lambdas = lambda_grid(cost)
    rows = np.arange(data.n_queries)
    points = []
    for lam in lambdas:
        chosen = cost_aware_choices(scores, cost, lam)
        points.append(OperatingPoint(float(lam), float(data.labels[rows, chosen].mean()), float(cost[rows, chosen].mean())))
    return points


def lambda_grid(cost: np.ndarray) -> np.ndarray:
    """0 and a log grid of lam up to where the cheapest model always wins."""
    spread = max(float(np.ptp(cost)), 1e-9)
    return np.concatenate([[0.0], np.geomspace(1e-4 / spread, 10.0 / spread, 60)])


def require_cost(data: RoutingData, purpose: str) -> np.ndarray:
    """`data.cost` (USD per query, queries x models) when every value is known; else one line naming `purpose`."""
    if not data.cost_known:
        unknown = [m for m, c in zip(data.models, data.model_cost) if np.isnan(c)]
        raise RoutingInputError(f"{purpose} needs every model's cost per query; unknown for {', '.join(unknown) or 'all'}; "
                                "give a table with costs, «price_file» FILE or «prices» MODEL=USD")
    return data.cost


def price_matrix(data: RoutingData, prices: dict[str, float]) -> np.ndarray:
    """(n_queries, n_models) price per query (e.g. USD) from one declared price per pool model."""
    check_known("model", sorted(prices), data.models, source="«prices»")
    missing = [m for m in data.models if m not in prices]
    if missing:
        raise RoutingInputError(f"«budget» needs a price for every model; missing: {', '.join(missing)}; pass «prices» MODEL=USD")
    return np.tile([prices[m] for m in data.models], (data.n_queries, 1)).astype(float)


def lambda_for_budget(scores: np.ndarray, cost: np.ndarray, max_cost: float, option: str = "«max_latency»",
                      unit: str = "s") -> float:
    """The lam whose routing has the highest expected accuracy (mean chosen P(solve)) with mean
    cost <= max_cost. Uses scores and costs only, never labels, so it can be set on test queries.
    `option` and `unit` name the budget in the error when even the cheapest routing exceeds it."""
    rows = np.arange(len(scores))
    best = None
    for lam in lambda_grid(cost):
        chosen = cost_aware_choices(scores, cost, lam)
        if cost[rows, chosen].mean() <= max_cost + 1e-12:
            expected = scores[rows, chosen].mean()
            if best is None or expected > best[0]:
                best = (expected, float(lam))
    if best is None:
        raise RoutingInputError(
            f"{option} {max_cost:g} {unit} is below the cheapest routing ({cost.min(axis=1).mean():.4g} {unit}/query); raise it"
        )
    return best[1]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(cost, accuracy) points not beaten by a cheaper-or-equal, at-least-as-accurate point; by cost."""
    front, best = [], -np.inf
    for cost, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            front.append((cost, accuracy))
            best = accuracy
    return front


def aiq(points: list[tuple[float, float]]) -> float:
    """RouterBench's average improvement in quality: area under the upper convex hull of the
    non-dominated (cost, accuracy) points, divided by their cost range (accuracy units)."""
    hull = upper_hull(points)
    if len(hull) == 1:
        return hull[0][1]
    xs, ys = zip(*hull)
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))


def upper_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-decreasing upper convex hull of (cost, accuracy) points, by cost: what mixing the points at
    random reaches (RouterBench's zero router when the points are the single models)."""
    hull: list[tuple[float, float]] = []
    for point in pareto_front(points):  # upper hull by a monotone chain
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return hull


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


@dataclass(frozen=True)
class GapRecovery:
    """RouteLLM's metrics for one router on a strong/weak pair."""

    strong_share: np.ndarray  # fraction of queries sent to the strong model, 0..1
    pgr: np.ndarray  # performance gap recovered at each share
    apgr: float
    cpt50: float  # smallest strong share with PGR >= 0.5
    cpt80: float
    cpt95: float = float("nan")


def gap_recovery(data: RoutingData, scores: np.ndarray, strong: str, weak: str, steps: int = 101) -> GapRecovery:
    """Send the queries where the router favours the strong model most (score_strong - score_weak)
    to it, for every share from 0 to 1; PGR relative to always-weak and always-strong."""
    check_known("model", (strong, weak), data.models)
    s, w = data.models.index(strong), data.models.index(weak)
    acc_s, acc_w = data.labels[:, s].mean(), data.labels[:, w].mean()
    if acc_s <= acc_w:
        raise RoutingInputError(f"{strong} ({100 * acc_s:.2f}%) is not stronger than {weak} ({100 * acc_w:.2f}%); swap them")
    order = np.argsort(-(scores[:, s] - scores[:, w]), kind="stable")
    shares = np.linspace(0.0, 1.0, steps)
    pgr = np.empty(steps)
    for k, share in enumerate(shares):
        to_strong = np.zeros(data.n_queries, dtype=bool)
        to_strong[order[: int(round(share * data.n_queries))]] = True
        accuracy = np.where(to_strong, data.labels[:, s], data.labels[:, w]).mean()
        pgr[k] = (accuracy - acc_w) / (acc_s - acc_w)

    def cpt(target: float) -> float:
        reached = np.flatnonzero(pgr >= target)
        return float(shares[reached[0]]) if len(reached) else float("nan")

    return GapRecovery(shares, pgr, float(np.trapezoid(pgr, shares)), cpt(0.5), cpt(0.8), cpt(0.95))


def weak_partner(data: RoutingData, strong: int, ratio: float = 5.0) -> int:
    """RouteLLM's weak model for `strong` (pool position): the most accurate model at least `ratio` times
    cheaper in mean USD per query (the cheapest model when none is)."""
    cost, accuracy = data.model_cost, data.labels.mean(axis=0)
    cheap = [j for j in range(data.n_models) if j != strong and cost[j] * ratio <= cost[strong]]
    if not cheap:
        return int(np.argmin(np.where(np.arange(data.n_models) == strong, np.inf, cost)))
    return max(cheap, key=lambda j: (accuracy[j], -cost[j]))


PRICE_FIELDS = ("input_price", "output_price")  # USD per 1M tokens, as LLMRouter's llm_candidates JSON has them


def read_prices(path: Path | str) -> dict[str, tuple[float, float]]:
    """Model -> (USD per 1M input tokens, USD per 1M output tokens) from a price file: LLMRouter's
    `llm_candidates` JSON (an object model -> {..., "input_price": x, "output_price": y}), a JSON list of
    {"model", "input_price", "output_price"}, or a CSV with those columns. A wrong shape, a missing,
    non-numeric or negative price raise one line naming the file and the key or line."""
    path = Path(path)
    if not path.is_file():
        raise RoutingInputError(f"{path}: no such file; check «price_file»")
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"model", *PRICE_FIELDS} <= set(reader.fieldnames or ()):
                raise RoutingInputError(f"{path}:1: needs columns model, input_price, output_price; fix the header")
            entries = [(f"line {reader.line_num}", row.get("model"), row) for row in reader]
    else:
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise RoutingInputError(f"{path}: not valid JSON ({str(error)[:60]}); fix the price file") from None
        if isinstance(loaded, dict):
            entries = [(f"key {name!r}", name, item) for name, item in loaded.items()]
        elif isinstance(loaded, list):
            entries = [(f"item {i}", item.get("model") if isinstance(item, dict) else None, item)
                       for i, item in enumerate(loaded)]
        else:
            raise RoutingInputError(f"{path}: expected an object model -> {{input_price, output_price}} (LLMRouter's "
                                    "llm_candidates) or a list of {model, input_price, output_price}")
    prices = {}
    for where, model, item in entries:
        if not isinstance(item, dict) or not isinstance(model, str) or not model.strip():
            raise RoutingInputError(f"{path}: {where}: expected a model name with input_price and output_price; fix the price file")
        if model in prices:
            raise RoutingInputError(f"{path}: {where}: second price for {model}; remove the duplicate")
        prices[model] = tuple(_price(path, where, item, name) for name in PRICE_FIELDS)
    if not prices:
        raise RoutingInputError(f"{path}: no prices in the file; list model, input_price, output_price")
    return prices


def _price(path: Path, where: str, item: dict, name: str) -> float:
    value = item.get(name)
    try:
        number = float(value) if not isinstance(value, bool) and value not in (None, "") else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        shown = "missing" if value in (None, "") else repr(value)[:30]
        raise RoutingInputError(f"{path}: {where}: {name} is {shown}, not a price >= 0 (USD per 1M tokens); fix the price file")
    return number


def apply_prices(data: RoutingData, prices: dict[str, tuple[float, float]], path: Path | str) -> RoutingData:
    """`data` with cost = (input tokens x input price + output tokens x output price) / 1e6, USD per query, for
    every pool model; a model of the file not in the pool, a pool model not in the file, or tokens unknown raise."""
    check_known("model", sorted(prices), data.models, source=f"{path}")
    missing = [m for m in data.models if m not in prices]
    if missing:
        raise RoutingInputError(f"{path}: no price for {', '.join(missing)}; add input_price and output_price for it")
    unknown = [m for j, m in enumerate(data.models)
               if np.isnan(data.input_tokens[:, j]).any() or np.isnan(data.output_tokens[:, j]).any()]
    if unknown:
        raise RoutingInputError(f"«price_file» {path}: token counts of {', '.join(unknown)} are unknown (a score table?); "
                                "give the table a cost column, or «prices» MODEL=USD")
    per_token = np.array([prices[m] for m in data.models]) / 1e6  # (models, 2) USD per token
    cost = data.input_tokens * per_token[:, 0] + data.output_tokens * per_token[:, 1]
    counted = [source.partition("tokens by ")[2].partition(";")[0] or "counted tokens" for source in data.cost_source]
    sources = tuple(f"{how} x price file {Path(path).name}" for how in counted)
    return replace(data, cost=cost, cost_source=sources)
