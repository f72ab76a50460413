"""`routing-eval`: evaluate LLM routing over lm-eval logs or score tables.

Thin: parse options, call the `router` library, print. Errors the user can
fix are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
from pathlib import Path

import click

from lm_routing.cli.guard import input_errors, unexpected_error_line
from lm_routing.cli.params import FRACTION, NON_NEGATIVE, POSITIVE, SEED
from lm_routing.deciding.cascade import check_chain, parse_agreement_cascade
from lm_routing.judging.evaluate import PROTOCOLS
from lm_routing.experiment import run
from lm_routing.reading.logs import ReadOptions, read_queries
from lm_routing.deciding.policies import POLICIES, make_policy, unfitted_policies
from lm_routing.reading.publish import Outputs
from lm_routing.learning.routers import ROUTERS
from lm_routing.saved import load_router
from lm_routing.errors import finite_scores, name_settings, rust_panic
from lm_routing.reporting.comparison import dataset_table, render, strict_json, unused_lines, written_lines
from lm_routing.judging.spec import EvalSpec

from lm_routing.cli.notes import say
from lm_routing.cli.names import RegistryChoice, feature_names, names_epilog, router_default

DEFAULT_POLICIES = tuple(POLICIES)


class DefaultGroup(click.Group):
    """A group whose default subcommand is `evaluate`: `routing-eval --router knn` works."""

    def invoke(self, ctx):
        with input_errors(option_names()):  # the library's input errors exit as click's do: one line, code 2
            return super().invoke(ctx)

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
    for chain in chains:
        check_chain(chain)  # the library's rule and error, before any data is read
    return chains


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=names_epilog())
def cli():
    """Evaluate LLM routers on lm-eval logs (default command: evaluate)."""


def takes_spec(command):
    """Click passes options; `command` gets the EvalSpec made of them (eval_spec)."""

    @functools.wraps(command)
    def with_spec(**options):
        return command(eval_spec(**options))

    return with_spec


@cli.command("evaluate", epilog=names_epilog())
@click.option("--logs", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="lm_eval --output_path folder with one subfolder per model.")
@click.option("--scores", multiple=True, type=click.Path(path_type=Path), help="Score table instead of logs (RouterDC .json, or .csv/.jsonl query,model,score). Training queries when --test-scores is given. Repeatable: several tables form one stream, each table's dataset named by its file stem without _train/_test.")
@click.option("--test-scores", multiple=True, type=click.Path(path_type=Path), help="Score table of the test queries (repeatable).")
@click.option("--router", "routers", multiple=True, type=RegistryChoice(ROUTERS, "router"), default=("auto",),
              show_default=True, help="Router name (repeatable). auto: the candidate (best single model, per dataset, or light "
              "router x features x policy) best in inner cross-validation on the training queries.")
@click.option("--policy", "policies", multiple=True, type=RegistryChoice(POLICIES, "policy"), default=DEFAULT_POLICIES,
              show_default=True, help="Policy name (repeatable).")
@click.option("--solved-threshold", type=float, default=0.5, show_default=True, help="Score at or above which a query counts as solved.")
@click.option("--latency", "latencies", multiple=True, metavar="MODEL=SECONDS", help="Declared latency in s/query (repeatable).")
@click.option("--metric", help="Per-sample 0/1 field used as the label (default: the task's maj@k).")
@click.option("--filter", "filter_name", help="lm-eval filter to read when a task logs several.")
@click.option("--on-missing", type=click.Choice(["error", "drop"]), default="error", show_default=True, help="Documents some models lack: stop, or keep only common ones.")
@click.option("--skip-bad-lines", is_flag=True, help="Skip malformed JSONL lines (reported) instead of stopping.")
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (e.g. gsm8k); default: all, as one stream.")
@click.option("--max-latency", type=NON_NEGATIVE, help="Also route each router cost-aware within this mean latency (s/query).")
@click.option("--price", "prices", multiple=True, metavar="MODEL=USD", help="Declared price per query of a model (repeatable): its cost per query everywhere (overrides a table's or --prices').")
@click.option("--prices", "price_file", type=click.Path(path_type=Path), metavar="FILE",
              help="USD per 1M input and output tokens per model (LLMRouter's llm_candidates JSON, or JSON/CSV model, input_price, "
              "output_price): costs from the logs' token counts.")
@click.option("--tokenizer", help="Tokenizer (name or folder) counting the logs' tokens when a run's own cannot load offline "
              "(else characters/4, said in the report).")
@click.option("--budget", type=NON_NEGATIVE, help="Also route each router cost-aware within this mean price per query (USD; needs every model's cost: a table's, --prices or --price).")
@click.option("--cascade", "cascades", multiple=True, metavar="A,B[,C]",
              help="Also score the cascade A>B: escalate when A's own K samples disagree (repeatable; needs harness logs).")
@click.option("--cascade-threshold", type=FRACTION,
              help="Agreement (vote share 0-1) at which a cascade member's answer is accepted. Default: chosen on the training queries, else 0.8.")
@click.option("--agree-cascade", "agree_cascades", multiple=True, metavar="A+B>C",
              help="Also score the agreement cascade: run A and B, accept their answer when they agree, else run C "
              "(stages split by '>', members by '+'; repeatable; needs answers: logs or a table's response column). "
              "With costs and training queries, one is also chosen on the training queries.")
@click.option("--agree-share", type=FRACTION,
              help="Share 0-1 of a stage's members that must give the same answer (default: chosen on the training queries, else 1).")
@click.option("--within", type=NON_NEGATIVE, metavar="POINTS",
              help="auto's objective: the cheapest choice whose accuracy is within POINTS of the best single model's "
              "(inner CV on the training queries; needs every model's cost). Default objective: accuracy.")
@click.option("--max-cost", type=NON_NEGATIVE, metavar="USD",
              help="auto's objective: the most accurate choice whose mean cost per training query is at most USD.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="auto", show_default=True,
              help="auto: train -> test when there are training queries, else k-fold; test-kfold: k-fold inside the test queries.")
@click.option("--folds", type=click.IntRange(2, None), default=5, show_default=True, help="k for k-fold when there is no training split.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--allow-overlap/--refuse-overlap", default=True, show_default=True,
              help="Test queries that are also training queries (same text, case and spacing aside): score them with a "
              "warning naming how many, or refuse to score (exit 2).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:8786): cross-fitting's folds and auto's candidates "
              "run on that cluster's workers, with the scores of a local run (pip install 'lm-routing[cluster]').")
@click.option("--output-path", type=click.Path(path_type=Path), help="Also write each router x policy as an lm-eval model here.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), metavar="FILE.png",
              help="Also draw accuracy vs latency of every row (with the Pareto frontier) and each router's share of queries per model, as FILE-<time>.png (needs matplotlib: the 'plot' extra).")
@click.option("--save", "save_dir", type=click.Path(path_type=Path), help="Save each trained router (fit on the training queries) under this new folder.")
@click.option("--load", "load_dirs", multiple=True, type=click.Path(path_type=Path), help="Also score a router saved with --save (repeatable).")
@click.option("--features", help=f"Text features for light routers: {', '.join(feature_names())} (default: {router_default('features')}).")
@click.option("--encoder", help="HF encoder for transformer routers: 'minilm' (offline package), a local folder or a hub id "
              f"(default: {router_default('encoder')}).")
@click.option("--epochs", type=click.IntRange(1, None), help=f"Training epochs for transformer routers (default: {router_default('epochs')}).")
@click.option("--learning-rate", type=POSITIVE,
              help=f"Learning rate for transformer routers (default: {router_default('lr')}); not the router named lr.")
@click.option("--lr", type=POSITIVE, hidden=True, help="Deprecated name of --learning-rate.")
@click.option("--batch-size", type=click.IntRange(1, None), help=f"Batch size for transformer routers (default: {router_default('batch_size')}).")
@click.option("--max-length", type=click.IntRange(8, None),
              help=f"Max tokens per query for transformer routers (default: {router_default('max_length')}).")
@takes_spec
def evaluate_command(spec: EvalSpec):
    """Print the routing table: baselines, each model, each router x policy."""
    if _later_process_of_a_launch():
        _run_quietly(spec)
        return
    with Outputs() as outputs:  # every file of this run is published at the end, all or nothing; then the table
        experiment = run(spec, outputs)
    click.echo(render(experiment, words(), spec.as_json))
    for line in [f"routing-eval: {line}" for line in unused_lines(experiment.unused, hyper_option_names())]:
        click.echo(line, err=True)
    for line in [f"routing-eval: note: {words()(note)}" for note in outputs.notes] + written_lines(experiment):
        click.echo(line, err=True)


def _later_process_of_a_launch() -> bool:
    """Whether this is a process other than the first of `accelerate launch` / `torchrun` (mlc trains data parallel)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) > 0


def _run_quietly(spec: EvalSpec) -> None:
    """The same run as the first process (every training step it shares with the others comes in the same order),
    its files written to a scratch folder and dropped, its table not printed: the first process writes and prints."""
    import tempfile
    from dataclasses import replace

    with tempfile.TemporaryDirectory(prefix="routing-eval-rank-") as scratch:
        moved = {}
        for field in ("output_path", "save_dir", "plot_path"):
            if getattr(spec, field) is not None:
                (Path(scratch) / field).mkdir()
                moved[field] = Path(scratch) / field / Path(getattr(spec, field)).name
        with Outputs() as outputs:
            run(replace(spec, **moved), outputs)


def eval_spec(logs, scores, test_scores, routers, policies, solved_threshold, latencies, metric, filter_name, on_missing,
              skip_bad_lines, datasets, prices, budget, cascades, load_dirs, agree_cascades, tokenizer, features, encoder, epochs, learning_rate,
              lr, batch_size, max_length, within, max_cost, **rest) -> EvalSpec:
    """The EvalSpec of the evaluate command's options (`rest`: those that pass through by the same name)."""
    if not 0.0 <= solved_threshold <= 1.0:
        raise click.BadParameter("must be a fraction 0-1", param_hint="--solved-threshold")
    priced = _parse_declared(prices, "--price", "USD")
    if lr is not None:
        click.echo("routing-eval: warning: --lr is deprecated (it reads like the router 'lr'); use --learning-rate", err=True)
    hyper = {"features": features, "encoder": encoder, "epochs": epochs, "lr": learning_rate if learning_rate is not None else lr,
             "batch_size": batch_size, "max_length": max_length, "within": within, "max_cost": max_cost}
    read = ReadOptions(metric=metric, filter=filter_name, on_missing=on_missing, skip_bad_lines=skip_bad_lines,
                       datasets=tuple(datasets), tokenizer=tokenizer)
    explicit = _explicit()
    return EvalSpec(logs=logs, scores=tuple(scores), test_scores=tuple(test_scores), solved_threshold=solved_threshold,
                    read=read, latencies=_parse_declared(latencies), prices=priced, budget=budget,
                    routers=tuple(routers), policies=tuple(policies), routers_named="routers" in explicit,
                    policies_named="policies" in explicit, hyper=hyper, cascades=tuple(_parse_cascades(cascades)),
                    load_dirs=tuple(load_dirs), agree_cascades=tuple(parse_agreement_cascade(c) for c in agree_cascades),
                    **rest)


def _explicit() -> set[str]:
    """Names of the options the user gave on the command line (not defaults)."""
    ctx = click.get_current_context()
    return {name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}


@cli.command("predict")
@click.option("--load", "load_dir", required=True, type=click.Path(path_type=Path), help="Folder written by --save.")
@click.option("--query", "queries", multiple=True, help="A query (repeatable).")
@click.option("--queries", "queries_file", type=click.Path(path_type=Path),
              help="Text file, one query per line, or JSONL with 'question'/'query' (and optionally 'dataset').")
@click.option("--dataset", default=None, help="The dataset of the --query queries (and of --queries rows that name none), "
              "e.g. gsm8k: auto's best single model per dataset then serves it without guessing.")
@click.option("--policy", type=click.Choice(unfitted_policies()), default="argmax", show_default=True,
              help="A policy that needs no labels: a saved router alone runs it.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query: query, model, scores.")
def predict_command(load_dir, queries, queries_file, dataset, policy, seed, as_json):
    """Print the model a saved router picks for each query."""
    router, models = load_router(load_dir)
    given = [(text, dataset) for text in queries] + [
        (text, named or dataset) for text, named in (read_queries(queries_file) if queries_file else [])]
    texts, datasets = [text for text, _ in given], [named for _, named in given]
    if not texts:
        raise click.UsageError("give queries with --query TEXT or --queries FILE")
    empty = [i for i, text in enumerate(texts, 1) if not text.strip()]
    if empty:
        raise click.BadParameter(f"query {empty[0]} of {len(texts)} is empty: a router has nothing to route on; "
                                 "give the query's text", param_hint="--query/--queries")
    scores = finite_scores(router.predict_proba(texts, datasets), str(load_dir))
    chosen = make_policy(policy, seed=seed).choose(scores)
    if getattr(router, "expected_accuracy", None) is not None:  # a saved auto: what its selection expects of it
        cost = "" if router.expected_cost is None else f", {router.expected_cost:.3g} USD/query"
        click.echo(f"routing-eval: note: auto's pick {router.pick}: expected accuracy {100 * router.expected_accuracy:.2f}% "
                   f"(+/- {196 * router.expected_se:.1f} points{cost}), estimated on its training queries", err=True)
    for text, j, row in zip(texts, chosen, scores):
        if as_json:
            click.echo(strict_json({"query": text, "model": models[j], "scores": dict(zip(models, map(float, row)))}))
        else:
            click.echo(f"{models[j]}\t{text}")


@cli.command("demo")
@click.option("--output-path", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Folder for the demo's output, demo-<time>/ (simulated logs and, beside them, the routed models).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the simulated labels and of the routers.")
@click.option("--router", "routers", multiple=True, type=RegistryChoice(ROUTERS, "router"), default=("auto", "knn", "lr"),
              show_default=True, help="Router to train and score (repeatable).")
def demo_command(output_path, seed, routers):
    """Simulate the routing paper's LLM pool as lm-eval logs, then route it end to end."""
    from lm_routing.reporting.demo import run_demo
    from lm_routing.reading.simulate import PAPER_POOL_NOTE

    with Outputs() as outputs:  # logs and routed models appear together as demo-<time>/, or not at all
        staging, stamp = outputs.stamped_folder(output_path, "demo")
        datasets = run_demo(staging / "logs", stamp, list(routers), seed)
    tables = [dataset_table(d.logs.name, d.data, d.evaluation, words()) for d in datasets]
    cascades = {d.logs.name: d.cascade for d in datasets}
    logs = output_path / f"demo-{stamp}" / "logs"
    for note in outputs.notes:
        click.echo(f"routing-eval: note: {words()(note)}", err=True)
    click.echo(PAPER_POOL_NOTE)
    click.echo(f"wrote simulated lm-eval logs to {logs}")
    click.echo("\n".join(tables))
    click.echo(f"\nwrote the routed models in lm-eval format to {logs}/*/routed-{stamp}")
    click.echo(f"the same on your own logs: routing-eval --logs {logs / 'gsm8k'} --router knn --router lr "
               f"--cascade {','.join(cascades['gsm8k'])}")


@cli.command("audit")
@click.option("--logs", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="lm-eval --output_path folder (searched recursively).")
@click.option("--tokenizer", help="Tokenizer (name or path) for the max_gen_toks check when a run's own cannot load offline.")
def audit_command(logs, tokenizer):
    """Label audit per model and task: invalid answers, completions cut at max_gen_toks, run-on exemplars."""
    from lm_routing.reading.audit import audit_logs, format_audit

    click.echo(name_settings(format_audit(audit_logs(logs, tokenizer=tokenizer)), option_names()))


@functools.cache
def option_names() -> dict[str, str]:
    """The option of each setting the library's messages name (`«field»`, an EvalSpec / ReadOptions field): each
    command's options by their parameter names, and the two the spec names otherwise."""
    names = {}
    for command in cli.commands.values():
        for param in command.params:
            if isinstance(param, click.Option):
                names.setdefault(param.name, param.opts[0])
                for opposite in param.secondary_opts:  # --allow-overlap/--refuse-overlap: the spec's refuse_overlap
                    names.setdefault(opposite.lstrip("-").replace("-", "_"), opposite)
    names["filter"] = names["filter_name"]  # ReadOptions.filter
    return names


def words():
    """How this command words the library's notes and join-report lines: lm_routing.cli.notes, each setting
    named as its option."""
    return functools.partial(say, names=option_names())


def hyper_option_names() -> dict[str, str]:
    """The option of each router hyper-parameter (EvalSpec.hyper's names): its setting's, but `lr` is set by
    --learning-rate (--lr is its deprecated name)."""
    return {**option_names(), "lr": option_names()["learning_rate"]}


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors with exit code 2 for anything the user can fix."""
    as_script, argv = argv is None, sys.argv[1:] if argv is None else argv
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # from here Ctrl-C cleans up (lm_routing.reading.publish)
    try:
        _run(argv)
    finally:  # the outcome is decided and said: a late Ctrl-C must not turn the process's exit into a signal death
        signal.signal(signal.SIGINT, signal.SIG_IGN if as_script else previous)
        _end_process_group()


def _end_process_group() -> None:
    """Close a data parallel launch's process group (mlc) before exit: left open, gloo aborts the process at exit."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


def _run(argv: list[str]) -> None:
    """The command, with every way it can end mapped to one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="routing-eval", standalone_mode=False)
    except click.ClickException as error:
        click.echo(f"routing-eval: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except OSError as error:  # a folder or disk the user can fix: still one line, never a traceback
        where = f"{error.filename}: " if error.filename else ""
        click.echo(f"routing-eval: error: {where}{error.strerror or error}; check the path, its permissions and free space", err=True)
        sys.exit(2)
    except MemoryError:  # past the estimate (lm_routing.judging.limits): still one line, never a traceback
        click.echo("routing-eval: error: ran out of memory; route fewer models or queries at a time, or raise the memory limit",
                   err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt) as stop:  # Ctrl-C, SIGTERM: temporary outputs are gone
        signum = getattr(stop.__cause__ or stop, "signum", signal.SIGINT)
        click.echo(f"routing-eval: interrupted ({signal.Signals(signum).name}); outputs are all or nothing: "
                   "no partial file was left", err=True)
        sys.exit(128 + signum)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except Exception as error:  # noqa: BLE001  (the last guard: one line, never a traceback)
        click.echo(f"routing-eval: error: {unexpected_error_line(error, argv)}", err=True)
        sys.exit(2)
    except BaseException as error:  # a Rust library's panic (pyo3's PanicException) is a BaseException: still one line
        if not rust_panic(error):
            raise
        click.echo(f"routing-eval: error: {unexpected_error_line(error, argv)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
