"""The demo's choices: simulate the routing paper's pool as lm-eval logs, pick a cascade, route each dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_routing.data import TRAIN, RoutingData
from lm_routing.judging.evaluate import Evaluation, evaluate
from lm_routing.judging.spec import EvalSpec
from lm_routing.reading.logs import read_harness_logs
from lm_routing.deciding.policies import POLICIES
from lm_routing.reporting.comparison import write_routed_models


@dataclass(frozen=True)
class DemoDataset:
    """One simulated dataset: its logs folder, what was read from it, the cascade and the evaluation."""

    logs: Path
    data: RoutingData
    cascade: tuple[str, str]
    evaluation: Evaluation


def demo_cascade(data: RoutingData) -> tuple[str, str]:
    """The fastest model first, then the one best on the training queries (the demo's cascade)."""
    train = data.split(TRAIN)
    fastest = int(np.nanargmin(train.latency.mean(axis=0)))
    best = int(np.argmax(train.labels.mean(axis=0)))
    if fastest == best:  # the best is also the fastest: escalate from the next fastest instead
        fastest = int(np.argsort(train.latency.mean(axis=0))[1])
    return data.models[fastest], data.models[best]


def run_demo(logs: Path, stamp: str, routers: list[str], seed: int) -> list[DemoDataset]:
    """Simulate the paper's pool under `logs` (a staging folder), route each dataset with `routers` and
    every policy, and write the routed models beside the members' logs as routed-<stamp>/."""
    from lm_routing.reading.simulate import write_simulated_logs

    write_simulated_logs(logs, seed=seed)
    done = []
    for dataset_logs in sorted(p for p in logs.iterdir() if p.is_dir()):
        data = read_harness_logs(dataset_logs)
        cascade = demo_cascade(data)
        result = evaluate(data, EvalSpec(routers=tuple(routers), policies=tuple(POLICIES), seed=seed, cascades=(tuple(cascade),)))
        # beside the members' logs, as lm-eval's --output_path keeps every model: later reads note and skip them
        write_routed_models(dataset_logs / f"routed-{stamp}", result.data, result.routed, stamp)
        done.append(DemoDataset(dataset_logs, data, cascade, result))
    return done
