"""Parallel work on a Dask cluster: cross-fitting's folds and `auto`'s candidates, beyond one machine.

Every parallel loop of lm-routing goes through joblib (lm_routing.judging.crossfit); `on_scheduler(address)`
connects a dask.distributed Client to the scheduler at `address` and makes joblib's Dask backend
the active one, so the same folds run on the cluster's workers instead of local processes. Fits
are seeded and each fold's inputs travel whole, so the scores are those of a local run. The workers
need lm-routing installed (the same version) in their Python environment. Dask is an optional
extra (`pip install lm-routing[cluster]`), imported only when a scheduler is named.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lm_routing.errors import RoutingInputError

CONNECT_TIMEOUT_S = 30


@contextlib.contextmanager
def on_scheduler(address: str | None) -> Iterator[None]:
    """Within the block, joblib's parallel work runs on the Dask cluster whose scheduler is at `address`
    ('tcp://host:8786'); None: on local processes, as without it. Unreachable or missing Dask: RoutingInputError."""
    if address is None:
        yield
        return
    try:
        from distributed import Client
        from joblib import parallel_config
    except ImportError:
        raise RoutingInputError(f"«scheduler» {address} needs Dask: pip install 'lm-routing[cluster]' "
                                "(dask[distributed]) here and on every worker") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise RoutingInputError(f"cannot reach the Dask scheduler at {address} ({' '.join(str(error).split())[:200]}); "
                                "start one with `dask scheduler` and workers with `dask worker ADDRESS`, "
                                "or leave out «scheduler» to run locally") from None
    with client, parallel_config(backend="dask", client=client):  # joblib's backend, bound to this client
        yield
