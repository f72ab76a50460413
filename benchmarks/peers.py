"""Our routers beside a peer library's own routers on the same splits: regenerates results/peers.md and .png.

Peer: LLMRouter (PyPI `llmrouter-lib`), installed only in its own virtual environment, never in
lm-routing's (it pins gradio, litellm, torch-geometric, ...). Set one up once:

    python -m venv /work/venv-peers
    echo "$(/work/venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \\
        > "$(/work/venv-peers/bin/python -c 'import site; print(site.getsitepackages()[0])')/shared.pth"
    /work/venv-peers/bin/pip install --no-deps llmrouter-lib   # or: pip install .[peers] in a fresh venv

(the .pth lets the peer venv read, never write, this venv's torch/transformers/sklearn/pandas).
The peer side runs as a subprocess (benchmarks/peer_adapter.py); the two sides exchange one .npz
per split: queries, the training scores, and the same MiniLM embeddings (lm_routing.learning.features 'minilm')
for both libraries. Without the peer venv, the script still runs and says so.

Splits: ../shared/data/routing/routerdc-7llm, train -> test, a query solved when its score >= 0.5;
GSM8K, MMLU, and the mixed GSM8K+MMLU stream (one router trained on both). Every router routes by
argmax (the peer routers' only policy). Our routers learn the 0/1 labels; the peer's read the raw
scores as its `performance` field (its input format). `auto` (lm_routing.judging.select, when this checkout
has it) chooses its own candidate on the training queries. McNemar: vs the best single model on test.

Run: python benchmarks/peers.py [--data DIR] [--contrastive-epochs 1] [--heavy-streams GSM8K] [--peer-python PATH]
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lm_routing.cli.notes import say
from lm_routing.data import TEST, TRAIN, RoutingData
from lm_routing.judging.evaluate import baseline_rows, choice_row, evaluate
from lm_routing.judging.spec import EvalSpec
from lm_routing.judging.rows import MODEL, ROUTER, Row
from lm_routing.learning.encoders import resolve_encoder
from lm_routing.learning.features import encoder_source, make_features
from lm_routing.judging.metrics import paired_test
from lm_routing.learning.routers import make_router

from common import RESULTS, load_routerdc, parser, pyplot, save_figure

STREAMS = {"GSM8K": ["gsm8k"], "MMLU": ["mmlu"], "Mixed GSM8K+MMLU": ["gsm8k", "mmlu"]}
LIGHT = ("knn", "lr", "rf", "cluster", "mf", "mlp")
FEATURES = ("tfidf", "minilm")
PEER_PYTHON = Path("/work/venv-peers/bin/python")
ADAPTER = Path(__file__).with_name("peer_adapter.py")
DC_BATCH = 32  # queries per step of the peer's RouterDC (its config's batch_size)


@dataclasses.dataclass(frozen=True)
class Result:
    """One router on one stream's test queries."""

    name: str
    library: str  # 'lm-routing', 'LLMRouter', or 'baseline'
    row: Row | None  # None: did not run (see status)
    fit_s: float | None = None  # seconds to fit (embeddings precomputed)
    predict_s: float | None = None  # seconds to route every test query
    status: str = "ok"


def ours(train: RoutingData, test: RoutingData, name: str, params: dict, label: str) -> Result:
    start = time.perf_counter()
    router = make_router(name, **params).fit(list(train.queries), train.labels)
    fitted = time.perf_counter()
    choices = router.predict_proba(list(test.queries)).argmax(axis=1)
    return Result(label, "lm-routing", choice_row(label, test, choices), fitted - start, time.perf_counter() - fitted)


def auto_result(data: RoutingData, seed: int) -> Result:
    """`auto`'s row: its whole selection (inner CV on the training queries) and fit; its note as status."""
    start = time.perf_counter()
    evaluation = evaluate(data, EvalSpec(routers=("auto",), policies=("argmax",), seed=seed))
    row = next(r for r in evaluation.rows if r.kind == ROUTER and r.router == "auto")
    pick = next((say(n) for n in evaluation.notes if n.code.startswith("auto")), "ok")
    return Result("auto", "lm-routing", row, time.perf_counter() - start, None, status=pick)


def auto_verdict(results: list[Result]) -> str:
    """auto against every peer router that ran: at or above it, or below it but within the peer's 95% CI
    (the target: auto >= every peer, or within its CI), with the paired McNemar p of auto vs that peer."""
    auto = next(r for r in results if r.name == "auto")
    parts = []
    for peer in (r for r in results if r.library == "LLMRouter" and r.row is not None):
        gap = 100 * (auto.row.accuracy - peer.row.accuracy)
        p = paired_test(auto.row.correct, peer.row.correct).p_value
        verdict = ">=" if gap >= 0 else ("below, within its 95% CI" if auto.row.accuracy >= peer.row.ci[0] else "BELOW its 95% CI")
        parts.append(f"{peer.name} {verdict} ({gap:+.2f}, p {p:.3f})")
    return f"auto vs each LLMRouter router: {'; '.join(parts)}. auto: {auto.status}"


def export_split(path: Path, train: RoutingData, test: RoutingData, embed) -> None:
    """The .npz the peer adapter reads: no test labels."""
    np.savez(path, models=np.array(train.models), train_queries=np.array(train.queries),
             test_queries=np.array(test.queries), train_performance=train.solve_rates,
             train_embeddings=embed(list(train.queries)), test_embeddings=embed(list(test.queries)))


def peer_results(path: Path, test: RoutingData, python: Path, dc_steps: int | None) -> list[Result]:
    """LLMRouter's routers via the adapter subprocess in the peer venv."""
    if not python.is_file():
        return [Result("LLMRouter (all)", "LLMRouter", None, status=f"not run: no peer venv at {python} (see this script's docstring)")]
    out = path.with_suffix(".peers.json")
    command = [str(python), str(ADAPTER), str(path), str(out), "--dc-steps", str(dc_steps or 0),
               "--encoder", resolve_encoder(encoder_source("minilm")).path, *(["--skip", "dcrouter"] if dc_steps is None else [])]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        return [Result("LLMRouter (all)", "LLMRouter", None, status=f"adapter failed: {done.stderr.strip()[-300:]}")]
    results = []
    for name, result in json.loads(out.read_text()).items():
        if result["choices"] is None:
            results.append(Result(name, "LLMRouter", None, status=result["status"]))
        else:
            row = choice_row(name, test, np.asarray(result["choices"]))
            results.append(Result(name, "LLMRouter", row, result["seconds"], None))
    return results


def run_stream(data: RoutingData, args, work: Path, stream: str) -> tuple[list[Result], Row, str]:
    if args.limit:  # smoke runs only: the first queries of each split
        first = [np.flatnonzero(np.array(data.splits) == split)[:args.limit] for split in (TRAIN, TEST)]
        data = data.take(np.concatenate(first))
    train, test = data.split(TRAIN), data.split(TEST)
    heavy = stream in args.heavy_streams.split(",")
    best = max((r for r in baseline_rows(test, args.seed) if r.kind == MODEL), key=lambda r: r.accuracy)
    minilm = make_features("minilm").fit([])
    split_file = work / f"{stream.split()[0].lower()}.npz"
    export_split(split_file, train, test, minilm.transform)  # also fills the embedding cache our minilm routers read
    jobs = [(f"{n}[{f}]", n, {"features": f}) for f in FEATURES for n in LIGHT]
    if heavy:
        jobs.append(("contrastive[minilm]", "contrastive", {"epochs": args.contrastive_epochs, "max_length": 128}))
    results = [Result(f"best single ({best.model})", "baseline", best)]
    for label, name, params in tqdm(jobs, desc=f"{stream}: our routers"):
        results.append(ours(train, test, name, params, label))
    if not heavy:
        results.append(Result("contrastive[minilm]", "lm-routing", None, status="not run on this split (CPU time; see settings)"))
    results.append(auto_result(data, args.seed))
    # the peer's RouterDC gets as many passes over the training queries as ours
    dc_steps = args.contrastive_epochs * math.ceil(train.n_queries / DC_BATCH) if heavy else None
    results += peer_results(split_file, test, args.peer_python, dc_steps)
    with_tests = [dataclasses.replace(r, row=dataclasses.replace(r.row, vs_best=paired_test(r.row.correct, best.correct)))
                  if r.row is not None and r.library != "baseline" else r for r in results]
    return with_tests, best, f"train ({train.n_queries} queries) -> test ({test.n_queries} queries)"


def fmt_seconds(result: Result) -> str:
    parts = [f"{s:.1f}" if s is not None else "" for s in (result.fit_s, result.predict_s)]
    return " / ".join(parts) if result.predict_s is not None else parts[0]


def stream_table(results: list[Result], best: Row) -> list[str]:
    lines = ["| router | library | accuracy % | 95% CI | vs best single | McNemar p | seconds (fit / route) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    ran = sorted((r for r in results if r.row is not None), key=lambda r: -r.row.accuracy)
    for r in ran:
        p = "" if r.row.vs_best is None else f"{r.row.vs_best.p_value:.3f}"
        lines.append(f"| {r.name} | {r.library} | {100 * r.row.accuracy:.2f} | {100 * r.row.ci[0]:.2f}-{100 * r.row.ci[1]:.2f} | "
                     f"{100 * (r.row.accuracy - best.accuracy):+.2f} | {p} | {fmt_seconds(r)} |")
    for r in results:
        if r.row is None:
            lines.append(f"| {r.name} | {r.library} | | | | | {r.status} |")
    return lines


def headline(all_results: dict[str, list[Result]]) -> list[str]:
    """One row per router: accuracy (and difference to the best single) on every stream."""
    names = list(dict.fromkeys(r.name if r.library != "baseline" else "best single"
                               for results in all_results.values() for r in results if r.row is not None))
    lines = ["| router | library | " + " | ".join(all_results) + " |", "| --- | --- |" + " ---: |" * len(all_results)]
    for name in names:
        cells, library = [], ""
        for results in all_results.values():
            best = next(r for r in results if r.library == "baseline")
            match = [r for r in results if (r.name == name or (name == "best single" and r.library == "baseline")) and r.row]
            if not match:
                cells.append("")
                continue
            library, acc = match[0].library, match[0].row.accuracy
            cells.append(f"{100 * acc:.2f}" + ("" if match[0] is best else f" ({100 * (acc - best.row.accuracy):+.2f})"))
        lines.append(f"| {name} | {library} | " + " | ".join(cells) + " |")
    return lines


def plot(all_results: dict[str, list[Result]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(all_results), figsize=(5 * len(all_results), 7), squeeze=False)
    colours = {"lm-routing": "tab:blue", "LLMRouter": "tab:orange", "baseline": "tab:gray"}
    for ax, (stream, results) in zip(axes[0], all_results.items()):
        ran = sorted((r for r in results if r.row is not None), key=lambda r: r.row.accuracy)
        best = next(r for r in results if r.library == "baseline").row.accuracy
        y = np.arange(len(ran))
        acc = np.array([100 * r.row.accuracy for r in ran])
        errors = [acc - [100 * r.row.ci[0] for r in ran], [100 * r.row.ci[1] for r in ran] - acc]
        ax.barh(y, acc, xerr=errors, color=[colours[r.library] for r in ran], capsize=2)
        ax.axvline(100 * best, color="black", linestyle="--", linewidth=1)
        ax.set_yticks(y, ["best single" if r.library == "baseline" else r.name for r in ran], fontsize=8)
        ax.set_xlim(max(0, acc.min() - 8), min(100, acc.max() + 4))
        ax.set_title(f"{stream}\n(dashed: best single model)", fontsize=10)
        ax.set_xlabel("test accuracy %, 95% CI (argmax routing)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    axes[0, -1].legend(handles, list(colours), loc="lower right", fontsize=8)
    save_figure(fig, path)


def write_report(args, all_results: dict[str, list[Result]], sections: list[str], minutes: float) -> None:
    """results/peers.md (at --out) and its PNG beside it, from the streams done so far."""
    png = args.out.with_suffix(".png")
    plot(all_results, png)
    regenerate = f"python benchmarks/peers.py --contrastive-epochs {args.contrastive_epochs} --heavy-streams '{args.heavy_streams}'"
    lines = [
        "# lm-routing beside LLMRouter (llmrouter-lib 0.4.0): same splits, same MiniLM embeddings",
        "",
        f"Regenerate: `{regenerate}`{f' --limit {args.limit}' if args.limit else ''} "
        f"({minutes:.1f} min on a shared, busy 2-core CPU, torch on 1 thread). Data: RouterDC 7-LLM release, "
        "train -> test, solved = score >= 0.5; argmax routing for every router."
        + (f" SMOKE RUN: only the first {args.limit} train and test queries." if args.limit else ""),
        "",
        "Test accuracy % (difference to the best single model on test, points):",
        "",
        *headline(all_results),
        "",
        "- Features: `[tfidf]` word 1-2 gram TF-IDF; `[minilm]` all-MiniLM-L6-v2 mean-pooled unit embeddings, "
        "the very vectors handed to every LLMRouter router that takes embeddings (knn, svm, mlp, mf).",
        f"- Heavy routers, on {args.heavy_streams} only (CPU time): contrastive (ours) fine-tunes MiniLM for "
        f"{args.contrastive_epochs} epoch(s) (RouterDC losses, 128 tokens); the peer's dcrouter gets as many passes "
        f"({args.contrastive_epochs} x ceil(train/{DC_BATCH}) steps of {DC_BATCH} queries), with MiniLM swapped in for its "
        "hard-coded mDeBERTa-v3-base backbone (not available offline), 128 tokens, its config's losses (cluster "
        "loss 1.0, sample loss 0), and its last step's weights: its trainer also saves a checkpoint chosen on test "
        "accuracy, which we do not use. Both are far below RouterDC's published budget (hundreds of steps on a GPU).",
        "- Peer hyper-parameters: its configs/model_config_train/*.yaml (knn: 5 cosine neighbours; svm: rbf, C=1; "
        "mlp: 128-64, 100 epochs; mf: latent 128, 5 epochs). The peer reads each model's raw score as `performance` "
        "and learns the best model per query; ours learn the 0/1 solved labels.",
        "- Seconds: ours fit / route with embeddings precomputed; the peer's fit + route together, from its own "
        "trainers (they also write their files). auto: its whole selection (inner CV) and fit.",
        "",
        f"![peers]({png.name})",
        "",
        *sections,
    ]
    args.out.write_text("\n".join(lines) + "\n")


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--contrastive-epochs", type=int, default=1)
    options.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    options.add_argument("--streams", default=",".join(STREAMS), help="comma-separated subset of: " + ", ".join(STREAMS))
    options.add_argument("--heavy-streams", default="GSM8K", help="streams where contrastive and the peer's dcrouter run")
    options.add_argument("--limit", type=int, default=0, help="smoke runs: only the first N train and N test queries")
    options.add_argument("--out", type=Path, default=RESULTS / "peers.md")
    args = options.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine: a second thread mostly waits
    all_results: dict[str, list[Result]] = {}
    sections: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for stream in args.streams.split(","):
            data = load_routerdc(args.data, STREAMS[stream])
            results, best, described = run_stream(data, args, Path(tmp), stream)
            all_results[stream] = results
            table = stream_table(results, best)
            sections += [f"## {stream}", "", described, "", *table, "", f"- {auto_verdict(results)}", ""]
            print(f"{stream}: {described}", *table, sep="\n", flush=True)
            write_report(args, all_results, sections, (time.perf_counter() - started) / 60)  # partial results survive
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}", file=sys.stderr)


if __name__ == "__main__":
    main()
