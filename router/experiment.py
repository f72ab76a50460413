"""One evaluation run from an EvalSpec: load the data, check it, evaluate, write the asked-for files.

Returns facts (`RunResult`); lm_routing.reporting.comparison, where it is defined, turns them into text. Every file goes through the
caller's lm_routing.reading.publish.Outputs: published whole at the end, or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from lm_routing.deciding.cost import apply_prices, read_prices
from lm_routing.judging.dask_backend import on_scheduler
from lm_routing.data import TRAIN, RoutingData, RoutingInputError
from lm_routing.judging.evaluate import evaluate
from lm_routing.judging.limits import Estimate, check_fits, estimate_run
from lm_routing.reading.load import load_routing_data
from lm_routing.reading.overlap import check_overlap
from lm_routing.reading.publish import Outputs
from lm_routing.reporting.comparison import RunResult, write_routed_models
from lm_routing.learning.routers import ROUTERS, Router
from lm_routing.saved import check_new_folder, load_router, write_router
from lm_routing.judging.spec import EvalSpec


def load_data(spec: EvalSpec) -> RoutingData:
    """The spec's logs or score tables, with declared latencies, restricted to its datasets."""
    data = load_routing_data(spec.logs, spec.scores, spec.test_scores, spec.solved_threshold, spec.read)
    if spec.latencies:
        data = data.with_latency(spec.latencies)
    if spec.price_file is not None:
        data = apply_prices(data, read_prices(spec.price_file), spec.price_file)
    if spec.prices:
        data = data.with_cost(spec.prices)
    return data.only_datasets(spec.read.datasets) if spec.read.datasets else data


def load_routers(directories: tuple[Path, ...], models: tuple[str, ...]) -> dict[str, Router]:
    """Saved routers by name `loaded:<folder>`; each must have been trained on the pool `models`, in order."""
    loaded = {}
    for directory in directories:
        router, trained_on = load_router(directory)
        if trained_on != models:
            raise RoutingInputError(
                f"{directory}: router trained on models {', '.join(trained_on)}; the input has {', '.join(models)}; "
                "use a router trained on this pool"
            )
        loaded[f"loaded:{directory.name}"] = router
    return loaded


def run_estimate(data: RoutingData, spec: EvalSpec) -> Estimate:
    """lm_routing.judging.limits' estimate of this run: each router to train (a router that selects, auto: each
    candidate it fits at this size, out of fold on every training query), and the local worker processes that
    fit their folds (none on a Dask scheduler)."""
    from lm_routing.judging.crossfit import PARALLEL_MIN_QUERIES

    n_train = 0 if spec.protocol == "test-kfold" else int(sum(s == TRAIN for s in data.splits))
    n_test = data.n_queries - n_train
    local = spec.scheduler is None and max(n_train, n_test) >= PARALLEL_MIN_QUERIES
    workers = (os.cpu_count() or 1) if local else 1
    params, routers, selecting = spec.router_params(), [], False
    for name in spec.trained_routers():
        if ROUTERS[name].selects:
            routers += ROUTERS[name](**params[name], folds=spec.folds).candidates(n_train or n_test, n_test, data.n_models,
                                                                                   workers)
            selecting = True
        else:
            routers.append(name)
    return estimate_run(n_train, n_test, data.n_models, routers, spec.policies, spec.folds, workers=workers,
                        every_query_out_of_fold=selecting)


def run(spec: EvalSpec, outputs: Outputs) -> RunResult:
    """Evaluate as `spec` asks; the routed models, saved routers and plot are staged in `outputs`."""
    data = load_data(spec)
    overlap = [] if spec.protocol == "test-kfold" else check_overlap(data, *_split_sources(spec), allow=spec.allow_overlap)
    check_fits(data.n_queries, data.n_models, len(spec.routers) + len(spec.load_dirs), spec.policies,
               run_estimate(data, spec))  # not an OOM kill: every worker process counted
    if spec.save_dir is not None:
        check_new_folder(spec.save_dir)  # before training, not after
    routed_folder, stamp = outputs.stamped_folder(spec.output_path, "routed") if spec.output_path is not None else (None, None)
    save_folder = outputs.folder(spec.save_dir) if spec.save_dir is not None else None  # reserved before training
    plot_staged, plot = None, None
    if spec.plot_path is not None:
        from lm_routing.reporting.plots import check_plot_path  # matplotlib only when asked for

        check_plot_path(spec.plot_path)
        plot_staged, plot = outputs.stamped_file(spec.plot_path)  # plot-<time>.png, published with the rest
    with on_scheduler(spec.scheduler):  # local worker processes, or the named Dask cluster's workers
        evaluation = evaluate(data, spec, fitted=load_routers(spec.load_dirs, data.models), keep_fitted=spec.save_dir is not None)
    routed = []
    if routed_folder is not None:
        names = write_routed_models(routed_folder, evaluation.data, evaluation.routed, stamp)
        routed = [spec.output_path / f"routed-{stamp}" / name for name in names]
    saved = save_routers(evaluation.fitted, save_folder, spec.save_dir, data.models) if save_folder is not None else []
    if plot_staged is not None:
        from lm_routing.reporting.plots import plot_evaluation

        plot_evaluation(evaluation, plot_staged)
    evaluation.notes.extend(overlap)
    return RunResult(data, evaluation, spec.unused_params(), saved, routed, plot)


def _split_sources(spec: EvalSpec) -> tuple[str, str]:
    """Where the training and the test queries were read from, as the user named them."""
    if spec.test_scores:
        return ", ".join(map(str, spec.scores)), ", ".join(map(str, spec.test_scores))
    return f"{spec.logs}, *_train tasks", f"{spec.logs}, test tasks"


def save_routers(fitted: dict[str, Router], staging: Path, target: Path, models: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Write each router into `staging` (one subfolder each when several); (name, its folder under `target`)."""
    several, saved = len(fitted) > 1, []
    for name, router in fitted.items():
        if several:
            (staging / name).mkdir()
        write_router(router, staging / name if several else staging, models)
        saved.append((name, target / name if several else target))
    return saved
