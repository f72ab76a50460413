"""Refuse, before allocating, an evaluation that cannot fit in memory: one line instead of an OOM kill.

The estimate counts the arrays an evaluation holds at once (bytes, float64): the table itself
(labels, solve rates, answers, latency, agreement), each router's scores on every query (the
evaluated ones and the out-of-fold ones a fitted policy needs) and, for the policies that fit a
regression from the whole confidence vector to every model's label, its models x models coefficients,
and the bootstrap interval's working memory (lm_routing.judging.metrics.bootstrap_bytes: one chunk of resamples).
It also counts every local worker process that fits folds at once (lm_routing.judging.crossfit: one per core),
each holding its copy of the table and the largest fit among the routers it runs (`fit_bytes`), and
gives an estimate of the CPU time (`fit_seconds`), so that a refusal says what the run would have cost.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from lm_routing.data import RoutingInputError
from lm_routing.deciding.policies import POLICIES
from lm_routing.errors import Note
from lm_routing.judging.metrics import bootstrap_bytes

TABLE_ARRAYS = 8  # the table's arrays plus their train/test copies
SCORE_COPIES = 4  # per router: test scores, out-of-fold scores, clipped copies
WORKER_TABLE_ARRAYS = 3  # a worker's copy of the labels, its fold's slice and the scores it returns
# Measured on 8,000 synthetic queries x 100 models, TF-IDF, one fit and a predict (benchmarks/scale.py's inputs,
# AMD EPYC, one core, shared): CPU seconds per (training query x model); memory as the formulas below, which match
# those fits' peaks above the interpreter's and the 3.0 GB of knn + mf at 10M outcomes (issue 25).
# peak bytes of one fit: fixed (the similarity block, torch), per query (TF-IDF rows, SVD features), per query x model
FIT_BYTES = {"knn": (256 << 20, 600, 8), "lr": (64 << 20, 600, 16), "cluster": (64 << 20, 800, 16),
             "mlp": (350 << 20, 4700, 32), "mf": (350 << 20, 4700, 32)}
FIT_SECONDS_PER_CELL = {"knn": 2.7e-6, "lr": 5.7e-5, "cluster": 4.5e-6, "mlp": 9e-6, "mf": 9e-6, "rf": 6.6e-5}
EMBED_SECONDS_PER_QUERY = 5e-3  # a MiniLM embedding on CPU (features 'minilm' / 'hf:...'), once per query and process
AUTO_CPU_SECONDS = 900  # auto's plan: its candidates' CPU, 15 minutes of one core (2 cores: margin for the estimate's error)
AUTO_BYTES = 8 << 30  # and at most 8 GiB summed over its processes
KNN_SECONDS_PER_PAIR = 1.5e-8  # exact cosine kNN: one (query, indexed query) similarity and its top-k share
FOREST_BYTES_PER_NODE_OUTPUT = 16  # a tree's value array: float64 x (not solved, solved) per output
SECONDS_PER_CELL = 2e-6  # everything else per (query x model): reading the table, baselines, policies


@dataclass(frozen=True)
class Estimate:
    """What a run needs at its peak, summed over its processes, and its CPU time."""

    main_bytes: int  # the main process
    worker_bytes: int  # each local worker process (0: none)
    workers: int  # local worker processes fitting at once
    cpu_seconds: float  # CPU seconds, all processes together (a rough figure: +-50% on the machine measured)

    @property
    def total_bytes(self) -> int:
        return self.main_bytes + self.workers * self.worker_bytes


def fit_bytes(router: str, n_queries: int, n_models: int) -> int:
    """Rough peak bytes of fitting router `router` (default hyper-parameters) on n_queries x n_models labels."""
    if router == "rf":  # every tree keeps one value per node, output and class: ~2 x 0.632 n nodes (bootstrap, leaf 1)
        from lm_routing.learning.routers.forest import ForestRouter

        trees, leaf = ForestRouter().n_estimators, ForestRouter().min_samples_leaf
        return int(trees * 2 * 0.632 * n_queries / leaf * n_models * FOREST_BYTES_PER_NODE_OUTPUT)
    fixed, per_query, per_cell = FIT_BYTES.get(router, FIT_BYTES["mf"])
    return int(fixed + per_query * n_queries + per_cell * n_queries * n_models)


def fit_seconds(router: str, n_queries: int, n_models: int, n_scored: int = 0) -> float:
    """Rough CPU seconds of fitting `router` on n_queries x n_models labels and scoring `n_scored` queries."""
    seconds = FIT_SECONDS_PER_CELL.get(router, max(FIT_SECONDS_PER_CELL.values())) * n_queries * n_models
    return seconds + (KNN_SECONDS_PER_PAIR * n_queries * n_scored if router == "knn" else 0.0)


def estimated_bytes(n_queries: int, n_models: int, n_routers: int, policies: list[str] | tuple[str, ...]) -> int:
    """Rough peak bytes of the main process evaluating `n_routers` routers x `policies` on a queries x models table."""
    cells = n_queries * n_models
    squares = sum(POLICIES[p].square_matrices for p in set(policies) if p in POLICIES) * n_models * n_models
    return 8 * (cells * (TABLE_ARRAYS + SCORE_COPIES * max(n_routers, 1)) + squares * max(n_routers, 1)) + bootstrap_bytes(n_queries)


def estimate_run(n_train: int, n_test: int, n_models: int, routers: list[str], policies: list[str] | tuple[str, ...],
                 folds: int = 5, workers: int = 1, every_query_out_of_fold: bool = False) -> Estimate:
    """Peak bytes (main process, each worker) and CPU seconds of training `routers` on n_train queries (k-fold on the
    n_test ones when n_train is 0), scoring the n_test test queries, and the out-of-fold fits a fitted policy needs
    (lm_routing.judging.crossfit.FitCache.policy_fit_scores; `every_query_out_of_fold`: k-fold on every training query, as
    auto's candidates are scored). `routers` names each fitted router once per feature set (auto: every candidate).
    `workers`: local processes fitting folds at once (1: none besides the main process)."""
    from lm_routing.deciding.policies import POLICIES
    from lm_routing.judging.crossfit import EXACT_POLICY_FIT_MAX, POLICY_SAMPLE

    fit_queries = n_train or n_test * (folds - 1) // folds
    out_of_fold = every_query_out_of_fold or any(getattr(POLICIES.get(p), "needs_fit", False) for p in policies)
    sampled = fit_queries > EXACT_POLICY_FIT_MAX and not every_query_out_of_fold
    held = (POLICY_SAMPLE if sampled else fit_queries) // folds  # held-out queries per out-of-fold fit
    seconds, largest = SECONDS_PER_CELL * (n_train + n_test) * n_models, 0
    for router in routers:
        seconds += fit_seconds(router, fit_queries, n_models, n_test) * (1 if n_train else folds)
        if not out_of_fold:
            continue
        if sampled and router == "knn":  # leave-one-out from the index already fit: no refit
            seconds += KNN_SECONDS_PER_PAIR * fit_queries * POLICY_SAMPLE
            continue
        seconds += folds * fit_seconds(router, fit_queries - held, n_models, held)
        largest = max(largest, fit_bytes(router, fit_queries - held, n_models))
    main = estimated_bytes(n_train + n_test, n_models, len(routers), policies)
    main += max((fit_bytes(r, fit_queries, n_models) for r in routers), default=0)
    if workers <= 1 or not largest:
        return Estimate(main + largest, 0, 1, seconds)
    return Estimate(main, 8 * WORKER_TABLE_ARRAYS * fit_queries * n_models + largest, workers, seconds)


@dataclass(frozen=True)
class PlanNote:
    """What `plan_auto` left out of auto's candidates on a large table, and why: `code` 'auto-plan-dropped', the
    routers and feature sets dropped, the estimate of scoring every candidate (CPU seconds; bytes summed over the
    main and worker processes) and the limits it exceeded (AUTO_CPU_SECONDS, AUTO_BYTES)."""

    code: str
    dropped_routers: tuple[str, ...]
    dropped_features: tuple[str, ...]
    cpu_seconds: float
    total_bytes: int
    cpu_limit: float
    bytes_limit: int

    def as_note(self) -> Note:
        """This plan's note for the run's report (its English: the CLI's)."""
        return Note(self.code, **{k: v for k, v in self.to_json().items() if k != "code"})

    def to_json(self) -> dict:
        return {"code": self.code, "dropped_routers": list(self.dropped_routers),
                "dropped_features": list(self.dropped_features), "cpu_seconds": round(self.cpu_seconds, 1),
                "total_bytes": self.total_bytes, "cpu_limit": self.cpu_limit, "bytes_limit": self.bytes_limit}


def plan_auto(n_train: int, n_test: int, n_models: int, features: list[str], folds: int = 5, workers: int = 1
              ) -> tuple[list[str], list[str], PlanNote | None]:
    """(candidate routers, feature sets, what was dropped and why: None when nothing was) that `auto` scores on a
    table of this size: every light router and feature set while their estimate (estimate_run, every process)
    stays within AUTO_CPU_SECONDS and AUTO_BYTES; beyond, first the embedding features go, then the costliest
    routers, registry order kept. Decided from the sizes alone (the same table gets the same plan on any machine;
    check_fits then compares the plan with the memory there). Below the budgets (the RouterDC tables, any test) it
    is every candidate, as without a plan. Raises RoutingInputError (one line, the estimate) when not even the
    cheapest candidate fits."""
    from lm_routing.judging.select import light_routers

    routers, kept = light_routers(), list(features)

    def cost(names: list[str], kinds: list[str]) -> tuple[float, int]:
        estimate = estimate_run(n_train, n_test, n_models, names * len(kinds), (), folds, workers, True)
        embedded = sum(kind != "tfidf" for kind in kinds) * EMBED_SECONDS_PER_QUERY * (n_train + n_test)
        return estimate.cpu_seconds + embedded, estimate.total_bytes

    def fits(names: list[str], kinds: list[str]) -> bool:
        seconds, total = cost(names, kinds)
        return bool(names) and seconds <= AUTO_CPU_SECONDS and total <= AUTO_BYTES

    while len(kept) > 1 and not fits(routers, kept):
        kept = [kind for kind in kept if kind == "tfidf"] or kept[:1]
        if len(kept) == len(features):
            break
    by_cost = sorted(routers, key=lambda r: -estimate_run(n_train, n_test, n_models, [r], (), folds, workers, True).cpu_seconds)
    for costliest in by_cost:
        if fits(routers, kept):
            break
        routers = [r for r in routers if r != costliest]
    if not fits(routers, kept):
        seconds, total = cost(by_cost[-1:], kept)
        raise RoutingInputError(
            f"auto on {n_train + n_test} queries x {n_models} models: even its cheapest candidate ({by_cost[-1]}) needs "
            f"about {seconds / 60:.0f} min of CPU and {total / 2**30:.1f} GiB over all processes, past auto's limits "
            f"({AUTO_CPU_SECONDS / 60:.0f} min, {AUTO_BYTES / 2**30:.0f} GiB); name routers («routers» knn «policies» argmax), "
            "«scheduler» ADDRESS (a Dask cluster), or route fewer models or queries at a time")
    if len(routers) == len(light_routers()) and len(kept) == len(features):
        return routers, kept, None
    seconds, total = cost(light_routers(), list(features))
    dropped = tuple(r for r in light_routers() if r not in routers), tuple(f for f in features if f not in kept)
    return routers, kept, PlanNote("auto-plan-dropped", *dropped, seconds, total, AUTO_CPU_SECONDS, AUTO_BYTES)


def local_workers() -> int:
    """Local processes that fit folds at once: one per core, or 1 when joblib's Dask backend is active (a Dask scheduler)."""
    from joblib.parallel import get_active_backend

    return 1 if "Dask" in type(get_active_backend()[0]).__name__ else os.cpu_count() or 1


def available_bytes() -> int:
    """Memory this process may still use: the smaller of the address-space limit and the machine's free memory."""
    limits = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        limits.append(int(fields["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return min(limits)


def check_fits(n_queries: int, n_models: int, n_routers: int, policies: list[str] | tuple[str, ...],
               estimate: Estimate | None = None) -> None:
    """Raise RoutingInputError (one line, with what to drop) when the evaluation would not fit in memory.

    `estimate` (estimate_run's, every worker process counted) replaces the main process's arrays alone."""
    need, have = (estimate.total_bytes if estimate else estimated_bytes(n_queries, n_models, n_routers, policies)), available_bytes()
    if need <= have:
        return
    square = sorted(p for p in set(policies) if p in POLICIES and POLICIES[p].square_matrices)
    fix = (f"drop «policies» {', '.join(square)} (models x models per fit) or " if square and n_models > n_queries else "")
    where = ""
    if estimate is not None:
        workers = (f" summed over the main process ({estimate.main_bytes / 2**30:.1f}) and {estimate.workers} worker "
                   f"processes ({estimate.worker_bytes / 2**30:.1f} each)" if estimate.workers > 1 else "")
        where = f"{workers} and about {estimate.cpu_seconds / 60:.0f} min of CPU"
        fix += "name lighter routers («routers» knn «routers» mf), «policies» argmax, «scheduler» ADDRESS (a Dask cluster), or "
    raise RoutingInputError(
        f"{n_queries} queries x {n_models} models with {n_routers} router(s) and {len(set(policies))} policies need about "
        f"{need / 2**30:.1f} GiB{where}, {have / 2**30:.1f} GiB available; {fix}route fewer models or queries at a time"
    )
