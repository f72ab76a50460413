"""`routing-eval`: evaluate LLM routing over lm-eval logs or score tables.

Thin: parse options, call the `router` library, print. Errors the user can
fix are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from pathlib import Path

import click
import numpy as np

from router.data import RoutingInputError, concat
from router.limits import check_fits
from router.evaluate import PROTOCOLS, evaluate
from router.logs import ReadOptions, read_harness_logs, read_queries, read_score_table
from router.policies import POLICIES, make_policy
from router.routers import ROUTERS, check_new_folder, load_router, save_router
from router.report import format_table, timestamp, to_json, write_routed_models

DEFAULT_POLICIES = tuple(POLICIES)


class DefaultGroup(click.Group):
    """A group whose default subcommand is `evaluate`: `routing-eval --router knn` works."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["evaluate", *args]
        return super().parse_args(ctx, args)


def _parse_declared(values: tuple[str, ...], option: str = "--latency", unit: str = "SECONDS") -> dict[str, float]:
    """MODEL=NUMBER pairs (NUMBER finite, >= 0) of a repeatable option."""
    declared = {}
    for value in values:
        model, sep, amount = value.rpartition("=")
        try:
            number = float(amount)
        except ValueError:
            number = float("nan")
        if not sep or not model or not (math.isfinite(number) and number >= 0):
            raise click.BadParameter(f"{value!r}: expected MODEL={unit} with {unit} >= 0", param_hint=option)
        declared[model] = number
    return declared


def _parse_cascades(values: tuple[str, ...]) -> list[tuple[str, ...]]:
    chains = [tuple(name.strip() for name in value.split(",")) for value in values]
    for value, chain in zip(values, chains):
        if len(chain) < 2 or not all(chain):
            raise click.BadParameter(f"{value!r}: expected 2 or more pool model names, cheapest first: A,B[,C]",
                                     param_hint="--cascade")
    return chains


def load_data(logs, scores, test_scores, threshold, read_options: ReadOptions):
    """RoutingData from harness logs, or from train (+ test) score tables."""
    if scores is None and test_scores is not None:
        raise RoutingInputError("--test-scores needs --scores (the training table)")
    if scores is None:
        return read_harness_logs(logs, read_options)
    def table(path, split):
        return read_score_table(path, split, threshold, read_options.on_missing, read_options.skip_bad_lines)

    if test_scores is None:
        return table(scores, "test")
    return concat([table(scores, "train"), table(test_scores, "test")], sources=[str(scores), str(test_scores)])


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Evaluate LLM routers on lm-eval logs (default command: evaluate)."""


@cli.command("evaluate")
@click.option("--logs", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="lm_eval --output_path folder with one subfolder per model.")
@click.option("--scores", type=click.Path(path_type=Path), help="Score table instead of logs (RouterDC .json, or .csv/.jsonl query,model,score). Training queries when --test-scores is given.")
@click.option("--test-scores", type=click.Path(path_type=Path), help="Score table of the test queries.")
@click.option("--router", "routers", multiple=True, default=("knn",), show_default=True, help="Router name (repeatable).")
@click.option("--policy", "policies", multiple=True, default=DEFAULT_POLICIES, show_default=True, help="Policy name (repeatable).")
@click.option("--solved-threshold", type=float, default=0.5, show_default=True, help="Score at or above which a query counts as solved.")
@click.option("--latency", "latencies", multiple=True, metavar="MODEL=SECONDS", help="Declared latency in s/query (repeatable).")
@click.option("--metric", help="Per-sample 0/1 field used as the label (default: the task's maj@k).")
@click.option("--filter", "filter_name", help="lm-eval filter to read when a task logs several.")
@click.option("--on-missing", type=click.Choice(["error", "drop"]), default="error", show_default=True, help="Documents some models lack: stop, or keep only common ones.")
@click.option("--skip-bad-lines", is_flag=True, help="Skip malformed JSONL lines (reported) instead of stopping.")
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (e.g. gsm8k); default: all, as one stream.")
@click.option("--max-latency", type=click.FloatRange(0, None), help="Also route each router cost-aware within this mean latency (s/query).")
@click.option("--price", "prices", multiple=True, metavar="MODEL=USD", help="Declared price per query of a model (repeatable; for --budget).")
@click.option("--budget", type=click.FloatRange(0, None), help="Also route each router cost-aware within this mean price per query (needs --price for every model).")
@click.option("--cascade", "cascades", multiple=True, metavar="A,B[,C]",
              help="Also score the cascade A>B: escalate when A's own K samples disagree (repeatable; needs harness logs).")
@click.option("--cascade-threshold", type=click.FloatRange(0, 1),
              help="Agreement (vote share 0-1) at which a cascade member's answer is accepted. Default: chosen on the training queries, else 0.8.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="auto", show_default=True,
              help="auto: train -> test when there are training queries, else k-fold; test-kfold: k-fold inside the test queries.")
@click.option("--folds", type=click.IntRange(2, None), default=5, show_default=True, help="k for k-fold when there is no training split.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--output-path", type=click.Path(path_type=Path), help="Also write each router x policy as an lm-eval model here.")
@click.option("--save", "save_dir", type=click.Path(path_type=Path), help="Save each trained router (fit on the training queries) under this new folder.")
@click.option("--load", "load_dirs", multiple=True, type=click.Path(path_type=Path), help="Also score a router saved with --save (repeatable).")
@click.option("--features", help="Text features for light routers: tfidf, minilm, hf:<encoder>.")
@click.option("--encoder", help="HF encoder (hub id or local path) for transformer routers (mlc, sc).")
@click.option("--epochs", type=click.IntRange(1, None), help="Training epochs for transformer routers.")
@click.option("--lr", type=float, help="Learning rate for transformer routers.")
@click.option("--batch-size", type=click.IntRange(1, None), help="Batch size for transformer routers.")
@click.option("--max-length", type=click.IntRange(8, None), help="Max tokens per query for transformer routers.")
def evaluate_command(logs, scores, test_scores, routers, policies, solved_threshold, latencies, metric, filter_name,
                     on_missing, skip_bad_lines, datasets, folds, seed, as_json, output_path, save_dir, load_dirs,
                     features, encoder, epochs, lr, batch_size, max_length, max_latency, protocol, cascades,
                     cascade_threshold, prices, budget):
    """Print the routing table: baselines, each model, each router x policy."""
    if not 0.0 <= solved_threshold <= 1.0:
        raise click.BadParameter("must be a fraction 0-1", param_hint="--solved-threshold")
    declared = _parse_declared(latencies)
    priced = _parse_declared(prices, "--price", "USD")
    if priced and budget is None:
        raise click.UsageError("--price is used by --budget: add --budget USD (mean price per query)")
    chains = _parse_cascades(cascades)
    options = ReadOptions(metric=metric, filter=filter_name, on_missing=on_missing, skip_bad_lines=skip_bad_lines)
    data = load_data(logs, scores, test_scores, solved_threshold, options)
    if declared:
        data = data.with_latency(declared)
    if datasets:
        data = data.only_datasets(datasets)
    check_fits(data.n_queries, data.n_models, len(routers) + len(load_dirs), policies)  # one line, not an OOM kill
    if save_dir is not None:
        check_new_folder(save_dir)  # before training, not after
    loaded = {}
    for directory in load_dirs:
        router, models = load_router(directory)
        if models != data.models:
            raise RoutingInputError(
                f"{directory}: router trained on models {', '.join(models)}; the input has {', '.join(data.models)}; "
                "use a router trained on this pool"
            )
        loaded[f"loaded:{directory.name}"] = router
    given = {"features": features, "encoder": encoder, "epochs": epochs, "lr": lr, "batch_size": batch_size, "max_length": max_length}
    params = {name: router_params(name, given) for name in routers}
    result = evaluate(data, list(routers) if not load_dirs or "routers" in _explicit() else [], list(policies),
                      seed=seed, folds=folds, router_params=params, fitted=loaded, keep_fitted=save_dir is not None,
                      protocol=protocol, max_latency=max_latency, cascades=chains, cascade_threshold=cascade_threshold,
                      prices=priced, budget=budget)
    # files first (all or nothing), then the report: a failed write prints no table
    written = write_routed_models(output_path, result.data, result.routed, timestamp()) if output_path is not None else []
    saved = [(name, save_router(router, save_dir / name if len(result.fitted) > 1 else save_dir, data.models))
             for name, router in result.fitted.items()]
    if as_json:
        click.echo(json.dumps(to_json(result, data), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(data.report.lines() + result.notes))
        click.echo(format_table(result))
    for name, folder in saved:
        click.echo(f"saved router {name} to {folder}", err=True)
    for folder in written:
        click.echo(f"wrote routed model {folder}", err=True)


def _explicit() -> set[str]:
    """Names of the options the user gave on the command line (not defaults)."""
    ctx = click.get_current_context()
    return {name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}


def router_params(name: str, given: dict) -> dict:
    """The given options that router `name` accepts as hyper-parameters."""
    accepted = inspect.signature(ROUTERS[name].__init__).parameters if name in ROUTERS else {}
    return {key: value for key, value in given.items() if value is not None and key in accepted}


@cli.command("predict")
@click.option("--load", "load_dir", required=True, type=click.Path(path_type=Path), help="Folder written by --save.")
@click.option("--query", "queries", multiple=True, help="A query (repeatable).")
@click.option("--queries", "queries_file", type=click.Path(path_type=Path), help="Text file, one query per line, or JSONL with 'question'/'query'.")
@click.option("--policy", type=click.Choice(["argmax", "random"]), default="argmax", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query: query, model, scores.")
def predict_command(load_dir, queries, queries_file, policy, seed, as_json):
    """Print the model a saved router picks for each query."""
    router, models = load_router(load_dir)
    texts = list(queries) + (read_queries(queries_file) if queries_file else [])
    if not texts:
        raise click.UsageError("give queries with --query TEXT or --queries FILE")
    scores = router.predict_proba(texts)
    chosen = make_policy(policy, seed=seed).choose(scores)
    for text, j, row in zip(texts, chosen, scores):
        if as_json:
            click.echo(json.dumps({"query": text, "model": models[j], "scores": dict(zip(models, map(float, row)))}))
        else:
            click.echo(f"{models[j]}\t{text}")


@cli.command("demo")
@click.option("--output-path", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--router", "routers", multiple=True, default=("knn", "lr"), show_default=True)
def demo_command(output_path, seed, routers):
    """Simulate the routing paper's LLM pool as lm-eval logs, then route it end to end."""
    from router.simulate import PAPER_POOL_NOTE, write_simulated_logs

    logs = write_simulated_logs(output_path / f"demo-logs-{timestamp()}", seed=seed)
    click.echo(PAPER_POOL_NOTE)
    click.echo(f"wrote simulated lm-eval logs to {logs}")
    stamp = timestamp()
    routed_dir = output_path / f"demo-routed-{stamp}"
    cascades = {}
    for dataset_logs in sorted(p for p in logs.iterdir() if p.is_dir()):
        data = read_harness_logs(dataset_logs)
        cascades[dataset_logs.name] = _demo_cascade(data)
        result = evaluate(data, list(routers), list(DEFAULT_POLICIES), seed=seed, cascades=[cascades[dataset_logs.name]])
        click.echo(f"\n== {dataset_logs.name} ==\n" + "\n".join(data.report.lines()) + "\n" + format_table(result))
        write_routed_models(routed_dir / dataset_logs.name, result.data, result.routed, stamp)
    click.echo(f"\nwrote the routed models in lm-eval format to {routed_dir}")
    click.echo(f"the same on your own logs: routing-eval --logs {logs / 'gsm8k'} --router knn --router lr "
               f"--cascade {','.join(cascades['gsm8k'])}")


def _demo_cascade(data) -> tuple[str, str]:
    """The fastest model first, then the one best on the training queries (the demo's cascade)."""
    train = data.split("train")
    fastest = int(np.nanargmin(train.latency.mean(axis=0)))
    best = int(np.argmax(train.labels.mean(axis=0)))
    if fastest == best:  # the best is also the fastest: escalate from the next fastest instead
        fastest = int(np.argsort(train.latency.mean(axis=0))[1])
    return data.models[fastest], data.models[best]


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors with exit code 2 for anything the user can fix."""
    try:
        cli.main(args=argv, prog_name="routing-eval", standalone_mode=False)
    except RoutingInputError as error:
        click.echo(f"routing-eval: error: {error}", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"routing-eval: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except OSError as error:  # a folder or disk the user can fix: still one line, never a traceback
        where = f"{error.filename}: " if error.filename else ""
        click.echo(f"routing-eval: error: {where}{error.strerror or error}; check the path, its permissions and free space", err=True)
        sys.exit(2)
    except MemoryError:  # past the estimate (router.limits): still one line, never a traceback
        click.echo("routing-eval: error: ran out of memory; route fewer models or queries at a time, or raise the memory limit",
                   err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("routing-eval: aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)


if __name__ == "__main__":
    main()
