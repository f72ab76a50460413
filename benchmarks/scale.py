"""Scale: `routing-eval` on 10k to 10M (query, model) outcomes (10M: 100 models), on a Dask cluster, log reading
against json.loads, predict and start-up.

Builds its own inputs (seeded): distinct, realistic query texts (math word problems, multiple-choice
knowledge questions, code and writing requests from templates and word lists), RouterDC-format
train/test tables of 10 models whose scores depend on the query's kind (a routing signal) plus
noise, and lm-eval 0.4 `--log_samples` logs shaped like real MMLU runs (prompt in `arguments`, 10
sampled CoT responses per document). Runs the CLI as a user would, in a child process, and reads
its CPU time from `os.wait4` and its peak RSS summed over its process tree (worker processes too).

Writes results/scale.md and results/scale.png. Run: nice -n 10 python benchmarks/scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jsonlines
import numpy as np
from tqdm.auto import tqdm

from common import RESULTS, SHARED, pyplot, save_figure
from lm_routing_tasks.scoring import majority_vote
from lm_routing.reading.harness import doc_hash, results_name, samples_name, text_hash

MODELS = 10
POOL = 100  # models from POOL_FROM outcomes on: pools of a hundred models (issue 25)
POOL_FROM = 10_000_000
AUTO_LIMIT_S = 15 * 60  # 10M outcomes with `auto`: finish within 15 minutes or be refused up front (issue 25)
RSS_LIMIT_GB = 10.0  # the benchmark stops a run whose processes together pass this (a shared machine)
TRAIN_SHARE = 0.8

NAMES = ("Ava Ben Chloe Dan Eli Fay Gus Hana Ivan Jade Kai Lena Max Nia Omar Pia Quinn Rosa Sam Tara Uma Vic Wes "
         "Xena Yuri Zoe Amir Bea Cato Dina").split()
ITEMS = ("apples pencils marbles books stickers cookies tickets shells coins cards cupcakes bottles flowers boxes "
         "eggs oranges stamps candles ribbons seeds").split()
PLACES = "store market school park library bakery farm garage museum station harbour fair".split()
SUBJECTS = ("photosynthesis", "the French Revolution", "plate tectonics", "supply and demand", "the immune system",
            "Roman law", "the water cycle", "quantum tunnelling", "game theory", "the Silk Road", "enzymes", "inflation",
            "volcanoes", "the Renaissance", "natural selection", "electric circuits")
LANGS = "Python Rust Go JavaScript C++ Java Haskell SQL".split()
TASKS = ("reverses a linked list", "parses a CSV file", "finds the median of a stream", "validates an email address",
         "merges two sorted arrays", "counts word frequencies", "detects a cycle in a graph", "caches function results")
TEMPLATES = {
    "math": (
        "{a} buys {n} {i} at the {p} and gives {m} to {b}. Then {a} finds {r} more. How many {i} does {a} have now?",
        "A {p} sells {i} in boxes of {k}. {a} needs {n} {i}. How many boxes must {a} buy, and how many {i} are left over?",
        "{a} had ${n} and spent ${m} on {i} at the {p}, then earned ${r} helping {b}. How much money does {a} have?",
        "If {k} friends share {n} {i} equally and {b} eats {r} of them first, how many {i} does each friend get?",
    ),
    "knowledge": (
        "Which statement about {s} is correct? A) it began in year {n} B) it involves {i} C) it was described by {a} "
        "D) none of these",
        "In the study of {s}, what is the main role of {i}? Choose the best answer out of {k} options.",
        "A student at the {p} claims that {s} explains {i}. Which evidence, found by {a} in {n}, supports the claim?",
    ),
    "code": (
        "Write a {l} function that {t}; it should handle {n} items in under {m} milliseconds.",
        "Explain why this {l} code that {t} fails for inputs larger than {n}, and fix it for {a}.",
    ),
    "writing": (
        "Write a {k}-sentence story about {a} and {b} at the {p}, mentioning {i} and the number {n}.",
        "Summarise {s} for a student named {a} in at most {m} words, with an example about {i}.",
    ),
}
KINDS = tuple(TEMPLATES)
REASONING = ("First we restate what is given and what is asked. Then we recall the relevant definition and check each "
             "option against it, ruling out the ones that contradict a known fact. The remaining option agrees with the "
             "facts and with the example in the question, so it is the best answer.")  # ~300 characters of CoT


def synthetic_queries(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`n` distinct query texts and the kind index (into KINDS) of each."""
    rng = np.random.default_rng(seed)
    texts, kinds, seen = [], [], set()
    pick = lambda words: words[int(rng.integers(len(words)))]  # noqa: E731
    while len(texts) < n:
        kind = int(rng.integers(len(KINDS)))
        text = pick(TEMPLATES[KINDS[kind]]).format(
            a=pick(NAMES), b=pick(NAMES), i=pick(ITEMS), p=pick(PLACES), s=pick(SUBJECTS), l=pick(LANGS), t=pick(TASKS),
            n=int(rng.integers(2, 5000)), m=int(rng.integers(2, 500)), k=int(rng.integers(2, 30)), r=int(rng.integers(1, 90)))
        if text not in seen:
            seen.add(text)
            texts.append(text)
            kinds.append(kind)
    return texts, np.array(kinds)


def models_for(outcomes: int) -> int:
    return POOL if outcomes >= POOL_FROM else MODELS


def synthetic_scores(kinds: np.ndarray, seed: int, models: int = MODELS) -> np.ndarray:
    """(queries, models) scores 0-1 in steps of 0.1 (10 samples): each model is stronger on some kinds."""
    rng = np.random.default_rng(seed + 1)
    skill = rng.normal(0.0, 1.0, size=(len(KINDS), models))
    difficulty = rng.normal(0.0, 1.0, size=len(kinds))
    p = 1 / (1 + np.exp(-(skill[kinds] - difficulty[:, None])))
    return rng.binomial(10, p) / 10


def write_tables(folder: Path, outcomes: int, seed: int) -> tuple[Path, Path]:
    """RouterDC train and test tables with `outcomes` (query, model) scores in all."""
    n_models = models_for(outcomes)
    queries, kinds = synthetic_queries(outcomes // n_models, seed)
    scores = synthetic_scores(kinds, seed, n_models)
    models = [f"model-{j}" for j in range(n_models)]
    cut = int(TRAIN_SHARE * len(queries))
    paths = []
    for name, part in (("train", slice(0, cut)), ("test", slice(cut, None))):
        path = folder / f"synthetic_{name}.json"
        with path.open("w") as handle:
            json.dump([{"question": q, "scores": dict(zip(models, map(float, s)))}
                       for q, s in zip(queries[part], scores[part])], handle)
        paths.append(path)
    return paths[0], paths[1]


@dataclass(frozen=True)
class ChildRun:
    cpu_s: float  # user + system CPU seconds of the child and its workers (os.wait4, or /proc samples of the tree if more)
    wall_s: float
    peak_rss_gb: float  # summed over the child's process tree (and a Dask cluster's workers)
    refused: str = ""  # why it did not finish: the one line of an up-front refusal (exit code 2), or the benchmark's stop


def tree_rss_bytes(root: int, cpu_seen: dict[int, float] | None = None) -> int:
    """Resident bytes of process `root` and every descendant (worker processes too), read from /proc; `cpu_seen`
    (pid -> user + system CPU seconds so far) is updated for each process of the tree, so that the CPU of workers
    that are killed, never waited for, is still counted."""
    parents, rss, cpu = {}, {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    if cpu_seen is not None:
        cpu_seen.update({pid: max(cpu_seen.get(pid, 0.0), cpu[pid]) for pid in tree if pid in cpu})
    return sum(rss.get(pid, 0) for pid in tree)


def run_child(command: list[str], rss_limit_gb: float = RSS_LIMIT_GB, allowed_exit: tuple[int, ...] = (0,),
              extra_pids: list[int] = (), timeout_s: float | None = None) -> tuple[ChildRun, int, str]:
    """Run `command`, fail loudly on an exit code outside `allowed_exit`, and measure it: CPU from os.wait4 (the
    child and the workers it waited for), peak RSS summed over the child's process tree (sampled every 0.2 s;
    the child's own peak when larger; plus the trees of `extra_pids`, a cluster's workers). Stopped when the tree
    passes `rss_limit_gb` or runs past `timeout_s` (exit code -9, the reason last in stderr). (run, exit code, stderr)."""
    import threading

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done, stopped, cpu_seen = [0], threading.Event(), [], {}

    def watch() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss_bytes(process.pid, cpu_seen) + sum(tree_rss_bytes(pid) for pid in extra_pids))
            over_time = timeout_s is not None and time.perf_counter() - start > timeout_s
            if (peak[0] > rss_limit_gb * 1e9 or over_time) and not stopped:
                stopped.append(f"stopped by the benchmark: {'past ' + str(timeout_s) + ' s' if over_time else 'past ' + str(rss_limit_gb) + ' GB'}")
                process.kill()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stderr = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    watcher.join()
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    stderr += "\n".join(["", *stopped])
    if code not in allowed_exit and not stopped:
        raise SystemExit(f"{' '.join(command)} failed ({code}, peak {peak[0] / 1e9:.1f} GB): {stderr[-2000:]}")
    cpu = max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values()))  # workers killed with a stopped run count too
    return ChildRun(cpu, wall, max(peak[0], usage.ru_maxrss * 1024) / 1e9), code, stderr


def routing_eval() -> str:
    found = shutil.which("routing-eval") or str(Path(sys.executable).with_name("routing-eval"))
    if not Path(found).exists():
        raise SystemExit("routing-eval is not installed (pip install -e .)")
    return found


def cli_runs(folder: Path, outcomes: int, runs: int, seed: int, only: list[str] | None = None) -> dict[str, list[ChildRun]]:
    """Below POOL_FROM: `--router knn` with the default policies and with argmax. From it (100 models): the default
    command (`auto`: finishes within AUTO_LIMIT_S or is refused, exit 2) and `--router knn --router mf --policy argmax`."""
    train, test = write_tables(folder, outcomes, seed)
    base = [routing_eval(), "--scores", str(train), "--test-scores", str(test), "--seed", str(seed)]
    modes = ({"auto": base, "knn+mf argmax": base + ["--router", "knn", "--router", "mf", "--policy", "argmax"]}
             if outcomes >= POOL_FROM else
             {"argmax": base + ["--router", "knn", "--policy", "argmax"], "default": base + ["--router", "knn"]})
    modes = {mode: command for mode, command in modes.items() if not only or mode in only}
    measured = {mode: [] for mode in modes}
    for _ in tqdm(range(runs), desc=f"{outcomes:,} outcomes", leave=False):
        for mode, command in modes.items():
            run, code, stderr = run_child(command, RSS_LIMIT_GB, allowed_exit=(0, 2),
                                          timeout_s=AUTO_LIMIT_S if mode == "auto" else None)
            measured[mode].append(ChildRun(run.cpu_s, run.wall_s, run.peak_rss_gb,
                                           stderr.strip().splitlines()[-1] if code != 0 else ""))
    return measured


def cluster_run(folder: Path, outcomes: int, seed: int) -> dict:
    """`--router knn` (default policies) on a local Dask cluster (2 worker processes) against the same run locally:
    the tables must be equal; CPU and peak RSS summed over the CLI's processes and the cluster's workers."""
    from distributed import LocalCluster

    train, test = write_tables(folder, outcomes, seed)
    command = [routing_eval(), "--scores", str(train), "--test-scores", str(test), "--router", "knn", "--seed", str(seed),
               "--json", "--protocol", "test-kfold"]
    local = subprocess.run(command, capture_output=True, text=True, check=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        workers = [w.process.process.pid for w in cluster.workers.values()]
        before = sum(_cpu_of(pid) for pid in workers)
        run, _, _ = run_child(command + ["--scheduler", cluster.scheduler_address], RSS_LIMIT_GB, extra_pids=workers)
        worker_cpu = sum(_cpu_of(pid) for pid in workers) - before
        remote = subprocess.run(command + ["--scheduler", cluster.scheduler_address], capture_output=True, text=True, check=True)
    return {"outcomes": outcomes, "cpu_s": run.cpu_s + worker_cpu, "wall_s": run.wall_s, "peak_rss_gb": run.peak_rss_gb,
            "equal": json.loads(local.stdout) == json.loads(remote.stdout)}


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- log reading against json.loads

def write_harness_logs(root: Path, models: int, docs: int, seed: int) -> list[Path]:
    """lm-eval 0.4 logs of `models` models on `docs` MMLU-like documents (10 CoT samples each); the samples files."""
    queries, _ = synthetic_queries(docs, seed)
    rng = np.random.default_rng(seed)
    examples = synthetic_queries(5, seed + 7)[0]  # a 5-shot CoT prompt with worked answers, as lm-eval renders it
    shots = "\n\n".join(f"Question: {q}\nAnswer: Let's think step by step. {REASONING} The answer is (B)." for q in examples)
    stamp = "2026-01-01T00-00-00.000000"
    task = "mmlu_cot_maj10_synthetic"
    files = []
    for j in range(models):
        folder = root / f"model-{j}"
        folder.mkdir(parents=True)
        path = folder / samples_name(task, stamp)
        with path.open("w") as handle:
            for doc_id, question in enumerate(queries):
                doc = {"question": question, "subject": "synthetic", "choices": ["A", "B", "C", "D"], "answer": doc_id % 4}
                answers = [str("ABCD"[int(a)]) for a in rng.integers(0, 4, size=10)]
                right = [a == "ABCD"[doc["answer"]] for a in answers]
                majority = majority_vote(answers)
                prompt = f"{shots}\n\nQuestion: {question}\nA. A\nB. B\nC. C\nD. D\nLet's think step by step."
                handle.write(json.dumps({
                    "doc_id": doc_id, "doc": doc, "target": "ABCD"[doc["answer"]],
                    "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": ["Question:"], "do_sample": True,
                                                                            "temperature": 0.7}}},
                    "resps": [[f"Let's think step by step. {question} {REASONING} The answer is ({a})." for a in answers]],
                    "filtered_resps": [answers], "filter": "answers", "metrics": ["maj@10", "solve_rate"],
                    "doc_hash": doc_hash(doc),
                    "prompt_hash": text_hash(prompt), "target_hash": "",
                    "maj@10": float(majority == "ABCD"[doc["answer"]]), "solve_rate": sum(right) / 10, "majority": majority,
                }) + "\n")
        (folder / results_name(stamp)).write_text(json.dumps({
            "results": {task: {}}, "configs": {task: {"task": task, "dataset_path": "cais/mmlu"}},
            "model_name": f"model-{j}", "lm_eval_version": "0.4.13", "total_evaluation_time_seconds": "1234.5",
        }))
        files.append(path)
    return files


def cpu_seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def json_loads_loop(files: list[Path]) -> None:
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                json.loads(line)


def ingestion(root: Path, runs: int, seed: int) -> dict[str, float]:
    """Median CPU seconds of read_harness_logs and of a plain json.loads loop over the same lines, and their ratio."""
    import lm_routing.reading.harness
    from lm_routing.reading.logs import read_harness_logs

    files = write_harness_logs(root, models=3, docs=4000, seed=seed)
    reader, plain, stdlib_reader = [], [], []
    parse = lm_routing.reading.harness._parse_json
    for _ in tqdm(range(runs), desc="ingestion", leave=False):
        plain.append(cpu_seconds(lambda: json_loads_loop(files)))
        reader.append(cpu_seconds(lambda: read_harness_logs(root)))
        lm_routing.reading.harness._parse_json = json.loads  # the same reader with the standard library's parser only
        try:
            stdlib_reader.append(cpu_seconds(lambda: read_harness_logs(root)))
        finally:
            lm_routing.reading.harness._parse_json = parse
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    return {"megabytes": megabytes, "lines": 3 * 4000, "reader_s": statistics.median(reader), "plain_s": statistics.median(plain),
            "stdlib_reader_s": statistics.median(stdlib_reader),
            "ratio": statistics.median(r / p for r, p in zip(reader, plain)),
            "stdlib_ratio": statistics.median(r / p for r, p in zip(stdlib_reader, plain))}


def real_questions(n: int, seed: int) -> list[str]:
    """Up to `n` distinct real questions, shuffled: MMLU's and GSM8K's in ../shared/data (none where it is absent)."""
    texts = []
    for name in ("mmlu/test.jsonl", "gsm8k/train.jsonl", "gsm8k/test.jsonl", "mmlu/dev.jsonl"):
        path = SHARED.parent / name
        if path.exists():
            with jsonlines.open(path) as reader:
                texts += [row["question"] for row in reader]
    texts = list(dict.fromkeys(texts))
    np.random.default_rng(seed).shuffle(texts)
    return texts[:n]


def predict_times(runs: int, seed: int, rf_train: int) -> dict[str, float]:
    """Median CPU seconds of predict_proba on 10k new queries: knn fit on 10k queries, rf on `rf_train`; and knn on
    10k real MMLU and GSM8K questions fit on 10k others (`knn_real`, where ../shared/data has 20k of them)."""
    from lm_routing.learning.routers import make_router

    queries, kinds = synthetic_queries(20_000 + rf_train, seed + 3)
    labels = (synthetic_scores(kinds, seed) >= 0.5).astype(float)
    real = real_questions(20_000, seed)
    cases = [("knn", queries, labels, slice(0, 10_000)), ("rf", queries, labels, slice(20_000, 20_000 + rf_train))]
    if len(real) == 20_000:  # labels: the synthetic ones (the time does not depend on them)
        cases.append(("knn_real", real, labels, slice(0, 10_000)))
    out = {}
    for name, texts, solved, train in cases:
        new = texts[10_000:20_000]
        router = make_router(name.removesuffix("_real")).fit(texts[train], solved[train])
        router.predict_proba(new[:10])  # first-use set-up (kNN's index) is part of fitting
        out[name] = statistics.median(cpu_seconds(lambda: router.predict_proba(new)) for _ in range(runs))
    return out


def help_cpu(runs: int) -> float:
    return statistics.median(run_child([routing_eval(), "--help"])[0].cpu_s for _ in range(runs))


# ---------------------------------------------------------------- report

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Linux {platform.release()}, Python "
            f"{platform.python_version()}; load average {load:.1f} at the end (the machine is shared)")


def median_run(runs: list[ChildRun]) -> ChildRun:
    return ChildRun(*(statistics.median(getattr(r, f) for r in runs) for f in ("cpu_s", "wall_s", "peak_rss_gb")),
                    refused=runs[0].refused)


def verdict(value: float, goal: float) -> str:
    return "yes" if value <= goal else f"no, {value / goal:.1f}x the goal"


def memory_slope(sizes: dict[int, dict[str, list[ChildRun]]], mode: str) -> tuple[float, float]:
    """(GB per million (query, model) outcomes, GB at none): least squares over the sizes run in `mode`."""
    points = [(n / 1e6, median_run(m[mode]).peak_rss_gb) for n, m in sizes.items() if mode in m and not m[mode][0].refused]
    if len(points) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(*zip(*points), 1)
    return float(slope), float(intercept)


def goal_rows(sizes: dict[int, dict[str, list[ChildRun]]]) -> list[str]:
    """Issue 14's and 25's goals that the measured sizes cover."""
    rows = []
    for outcomes, mode, goal_cpu, goal_gb, before in ((1_000_000, "default", 60.0, 2.0, "124 s, 1.00 GB"),
                                                      (1_000_000, "argmax", 30.0, 2.0, "33.8 s, 0.96 GB"),
                                                      (10_000_000, "knn+mf argmax", 300.0, 6.0, "109 s, 3.0 GB")):
        if mode in sizes.get(outcomes, {}):
            m = median_run(sizes[outcomes][mode])
            rows.append(f"| {outcomes:,} outcomes, {mode}: CPU s / peak GB (all processes) | {before} | {m.cpu_s:.1f} s, "
                        f"{m.peak_rss_gb:.2f} GB | <= {goal_cpu:.0f} s, <= {goal_gb:.0f} GB | "
                        f"{'no, did not finish' if m.refused else 'yes' if m.cpu_s <= goal_cpu and m.peak_rss_gb <= goal_gb else 'no'} |")
    if "auto" in sizes.get(10_000_000, {}):
        m = median_run(sizes[10_000_000]["auto"])
        stopped = m.refused.startswith("stopped by the benchmark")
        now = (f"{m.refused} ({m.wall_s / 60:.1f} min, {m.peak_rss_gb:.2f} GB)" if stopped else
               f"refused up front in {m.wall_s:.1f} s: {m.refused.removeprefix('routing-eval: error: ')[:200]}" if m.refused
               else f"{m.wall_s / 60:.1f} min wall, {m.cpu_s:.0f} s CPU, {m.peak_rss_gb:.2f} GB")
        met = (bool(m.refused) and not stopped) or (not m.refused and m.wall_s <= AUTO_LIMIT_S and m.peak_rss_gb <= 8.0)
        rows.append(f"| 10,000,000 outcomes, `auto` (default command): wall / peak GB (all processes) | > 22 min, ~20 GB, "
                    f"stopped by hand | {now} | <= 15 min, <= 8 GB, or refused up front | {'yes' if met else 'no'} |")
    return rows


def write_report(sizes: dict[int, dict[str, list[ChildRun]]], reading: dict | None, predict: dict | None,
                 help_s: float | None, rf_train: int, cluster: dict | None, command: str, notes: list[str]) -> None:
    lines = [
        "# Scale: 10k to 10M outcomes (up to 100 models), a Dask cluster, log reading, predict, start-up",
        "",
        f"`{command}` (issues 14 and 25). Machine: {machine()}.",
        "Inputs are synthetic and seeded: distinct query texts from templates (math, knowledge, code, writing),",
        f"{MODELS} models ({POOL} from {POOL_FROM:,} outcomes on) whose scores depend on the query's kind; "
        f"{TRAIN_SHARE:.0%} of the queries train, the rest test.",
        "CPU = user + system seconds of the child and its workers (`os.wait4`, or the last /proc samples of every process of its tree when larger: workers killed with a stopped run count); peak RSS summed over the",
        "child's process tree, worker processes included (/proc, every 0.2 s); medians of the runs shown.",
        "",
        "## `routing-eval --scores TRAIN --test-scores TEST ...`",
        "",
        "| outcomes | queries | models | run | runs | CPU s | wall s | peak RSS GB (all processes) |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    describe = {"default": "--router knn (default policies)", "argmax": "--router knn --policy argmax",
                "auto": "(default: auto)", "knn+mf argmax": "--router knn --router mf --policy argmax"}
    for outcomes, measured in sizes.items():
        models = models_for(outcomes)
        for mode, runs in measured.items():
            m = median_run(runs)
            gb = (f"{m.peak_rss_gb:.2f}, {m.refused}" if m.refused.startswith("stopped") else
                  "refused up front (exit 2)" if m.refused else f"{m.peak_rss_gb:.2f}")
            lines.append(f"| {outcomes:,} | {outcomes // models:,} | {models} | {describe.get(mode, mode)} | {len(runs)} | "
                         f"{m.cpu_s:.1f} | {m.wall_s:.1f} | {gb} |")
    slope, intercept = memory_slope({n: m for n, m in sizes.items() if models_for(n) == MODELS}, "default")
    lines += ["", f"Memory slope, `--router knn` with the default policies ({MODELS} models): {slope:.2f} GB per million "
              f"(query, model) outcomes over {intercept:.2f} GB (least squares over the sizes above; see the notes for where each comes from). The up-front estimate "
              "(router/judging/limits.py) grows linearly in queries x models too: 8 bytes x (8 + 4 per router) per outcome in the "
              "main process, plus per worker process its table copy (24 bytes per outcome) and its largest fit.", ""]
    if cluster:
        lines += ["## On a Dask cluster (LocalCluster, 2 worker processes)", "",
                  f"`--router knn --protocol test-kfold --json --scheduler tcp://...` on {cluster['outcomes']:,} outcomes: "
                  f"{cluster['cpu_s']:.1f} s CPU (the CLI and the cluster's workers), {cluster['wall_s']:.1f} s wall, peak "
                  f"{cluster['peak_rss_gb']:.2f} GB summed over the CLI and the workers; the JSON table "
                  f"{'equals' if cluster['equal'] else 'DIFFERS from'} the local run's.", ""]
    lines += ["## Against the goals (issues 14 and 25)", "", "| what | before | now | goal | met |", "| --- | --- | --- | --- | --- |"]
    lines += goal_rows(sizes)
    if predict:
        lines += [f"| knn predict_proba, 10k queries (fit on 10k): CPU s | 1.72 | {predict['knn']:.2f} | <= 1 | {verdict(predict['knn'], 1)} |",
                  f"| rf predict_proba, 10k queries (fit on {rf_train:,}): CPU s | 0.69 | {predict['rf']:.2f} | <= 1 | {verdict(predict['rf'], 1)} |"]
        if "knn_real" in predict:
            lines.append(f"| knn predict_proba, 10k real MMLU and GSM8K questions (fit on 10k others; longer texts, no "
                         f"template structure): CPU s | - | {predict['knn_real']:.2f} | (not a goal) | - |")
    if help_s is not None:
        lines.append(f"| `routing-eval --help`: CPU s | 0.33 | {help_s:.2f} | <= 0.3 | {'yes' if help_s <= 0.3 else 'no'} |")
    if reading:
        lines += [f"| reading logs / plain json.loads loop (same lines, same run) | 1.26 | {reading['ratio']:.2f} | <= 1.5 | "
                  f"{'yes' if reading['ratio'] <= 1.5 else 'no'} |", "", "## Log reading", "",
                  f"{reading['lines']:,} lines ({reading['megabytes']:.0f} MB, 3 models x 4,000 MMLU-like documents, 10 sampled "
                  f"CoT answers each): `read_harness_logs` {reading['reader_s']:.2f} s CPU, a plain `json.loads` loop over the "
                  f"same lines {reading['plain_s']:.2f} s: ratio {reading['ratio']:.2f} (median of per-run ratios). With the "
                  f"standard library's parser in the same reader: {reading['stdlib_reader_s']:.2f} s, ratio "
                  f"{reading['stdlib_ratio']:.2f}."]
    lines += ["", "![time and memory vs outcomes](scale.png)", ""]
    if notes:
        lines[-3:-3] = ["", "## Notes", "", *(f"- {note}" for note in notes)]
    (RESULTS / "scale.md").write_text("\n".join(lines))


def plot(sizes: dict[int, dict[str, list[ChildRun]]]) -> None:
    plt = pyplot()
    fig, (cpu_ax, rss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    modes = dict.fromkeys(mode for measured in sizes.values() for mode in measured)
    for mode, marker in zip(modes, "osD^v"):
        outcomes = [n for n in sorted(sizes) if mode in sizes[n] and not sizes[n][mode][0].refused]
        if not outcomes:
            continue
        runs = [median_run(sizes[n][mode]) for n in outcomes]
        cpu_ax.plot(outcomes, [r.cpu_s for r in runs], marker=marker, label=f"{mode}: CPU")
        cpu_ax.plot(outcomes, [r.wall_s for r in runs], marker=marker, linestyle=":", label=f"{mode}: wall")
        rss_ax.plot(outcomes, [r.peak_rss_gb for r in runs], marker=marker, label=mode)
    cpu_ax.axhline(60, color="grey", linestyle="--", linewidth=0.8, label="1M goal, knn default (60 s)")
    cpu_ax.axhline(300, color="grey", linestyle="-.", linewidth=0.8, label="10M goal, knn+mf argmax (300 s)")
    rss_ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8, label="1M goal (2 GB)")
    rss_ax.axhline(8.0, color="grey", linestyle="-.", linewidth=0.8, label="10M auto goal (8 GB)")
    for ax, title, unit in ((cpu_ax, "time", "seconds (median)"), (rss_ax, "peak memory, all processes", "GB (median)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("(query, model) outcomes: queries x models")
        ax.set_ylabel(unit)
        ax.set_title(f"routing-eval: {title}")
        ax.legend(fontsize=7)
    save_figure(fig, RESULTS / "scale.png")


def _without_notes(argv: list[str]) -> list[str]:
    """The command line without its --note values (they are the report's notes)."""
    return [arg for i, arg in enumerate(argv) if arg != "--note" and (i == 0 or argv[i - 1] != "--note")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000], help="outcomes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--largest-runs", type=int, default=1, help="runs at 1M outcomes and more (time on a shared machine)")
    parser.add_argument("--rf-train", type=int, default=5_000, help="training queries of the rf whose predict is timed")
    parser.add_argument("--cluster-size", type=int, default=100_000, help="outcomes of the Dask cluster run (0: none)")
    parser.add_argument("--skip-extras", action="store_true", help="no log reading, predict or start-up timings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predict", action="store_true", help="time predict_proba even with --skip-extras")
    parser.add_argument("--modes", nargs="+", help="only these runs of each size (auto, 'knn+mf argmax', argmax, default)")
    parser.add_argument("--save-runs", type=Path, help="also write the CLI measurements here (JSON), after each size")
    parser.add_argument("--load-runs", type=Path, help="the CLI runs from these saved measurements (--save-runs) instead "
                        "of measuring them; the cluster run and the extras still run unless --cluster-size 0 / --skip-extras")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes (how it was run)")
    options = parser.parse_args()
    sizes: dict[int, dict[str, list[ChildRun]]] = {}
    reading = predict = help_s = cluster = None
    if options.load_runs:
        sizes = {int(n): {mode: [ChildRun(**r) for r in runs] for mode, runs in measured.items()}
                 for n, measured in json.loads(options.load_runs.read_text()).items()}
        options.sizes = []
    with tempfile.TemporaryDirectory() as scratch:
        for outcomes in options.sizes:  # in the order given: the one that matters most first, on a shared machine
            folder = Path(scratch) / str(outcomes)
            folder.mkdir()
            runs = options.largest_runs if outcomes >= 1_000_000 else options.runs
            sizes[outcomes] = cli_runs(folder, outcomes, runs, options.seed, options.modes)
            for mode, measured in sizes[outcomes].items():
                m = median_run(measured)
                print(f"{outcomes:>10,} outcomes, {mode:>13}: {m.cpu_s:7.1f} s CPU {m.wall_s:7.1f} s wall "
                      f"{m.peak_rss_gb:5.2f} GB {m.refused}")
            if options.save_runs:  # what is measured so far survives a stopped run
                options.save_runs.write_text(json.dumps({n: {mode: [vars(r) for r in runs] for mode, runs in measured.items()}
                                                         for n, measured in sizes.items()}))
        if options.cluster_size:
            (Path(scratch) / "cluster").mkdir()
            cluster = cluster_run(Path(scratch) / "cluster", options.cluster_size, options.seed)
            print(f"Dask cluster: {cluster}")
        if not options.skip_extras:
            reading = ingestion(Path(scratch) / "logs", options.runs, options.seed)
    if not options.skip_extras or options.predict:
        predict = predict_times(options.runs, options.seed, options.rf_train)
        print(f"predict_proba 10k queries: knn {predict['knn']:.2f} s, rf {predict['rf']:.2f} s CPU; knn on real questions "
              f"{predict.get('knn_real', float('nan')):.2f} s")
    if not options.skip_extras:
        help_s = help_cpu(5)
    sizes = dict(sorted(sizes.items()))
    write_report(sizes, reading, predict, help_s, options.rf_train, cluster,
                 "python benchmarks/scale.py " + " ".join(_without_notes(sys.argv[1:])), options.note)
    plot(sizes)
    print(f"wrote {RESULTS / 'scale.md'} and {RESULTS / 'scale.png'}")


if __name__ == "__main__":
    main()
