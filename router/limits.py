"""Refuse, before allocating, an evaluation that cannot fit in memory: one line instead of an OOM kill.

The estimate counts the arrays an evaluation holds at once (bytes, float64): the table itself
(labels, solve rates, answers, latency, agreement), each router's scores on every query (the
evaluated ones and the out-of-fold ones a fitted policy needs) and, for the policies that fit a
regression from the whole confidence vector to every model's label, its models x models coefficients,
and the bootstrap interval's working memory (router.metrics.bootstrap_bytes: one chunk of resamples).
"""

from __future__ import annotations

import os
import resource

from router.data import RoutingInputError
from router.metrics import bootstrap_bytes

TABLE_ARRAYS = 8  # the table's arrays plus their train/test copies
SCORE_COPIES = 4  # per router: test scores, out-of-fold scores, clipped copies
SQUARE_POLICIES = {"stacked": 3}  # models x models matrices its fit holds (ridge coefficients and their solve)


def estimated_bytes(n_queries: int, n_models: int, n_routers: int, policies: list[str] | tuple[str, ...]) -> int:
    """Rough peak bytes of evaluating `n_routers` routers x `policies` on a queries x models table."""
    cells = n_queries * n_models
    squares = sum(SQUARE_POLICIES.get(p, 0) for p in set(policies)) * n_models * n_models
    return 8 * (cells * (TABLE_ARRAYS + SCORE_COPIES * max(n_routers, 1)) + squares * max(n_routers, 1)) + bootstrap_bytes(n_queries)


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


def check_fits(n_queries: int, n_models: int, n_routers: int, policies: list[str] | tuple[str, ...]) -> None:
    """Raise RoutingInputError (one line, with what to drop) when the evaluation would not fit in memory."""
    need, have = estimated_bytes(n_queries, n_models, n_routers, policies), available_bytes()
    if need <= have:
        return
    square = sorted(p for p in set(policies) if p in SQUARE_POLICIES)
    fix = (f"drop --policy {', '.join(square)} (models x models per fit) or " if square and n_models > n_queries else "")
    raise RoutingInputError(
        f"{n_queries} queries x {n_models} models with {n_routers} router(s) and {len(set(policies))} policies need about "
        f"{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB available; {fix}route fewer models or queries at a time"
    )
