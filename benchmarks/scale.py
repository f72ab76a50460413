"""Scale: `routing-eval` on 10k to 1M (query, model) outcomes, log reading against json.loads, predict and start-up.

Builds its own inputs (seeded): distinct, realistic query texts (math word problems, multiple-choice
knowledge questions, code and writing requests from templates and word lists), RouterDC-format
train/test tables of 10 models whose scores depend on the query's kind (a routing signal) plus
noise, and lm-eval 0.4 `--log_samples` logs shaped like real MMLU runs (prompt in `arguments`, 10
sampled CoT responses per document). Runs the CLI as a user would, in a child process, and reads
the child's CPU time and peak RSS from `os.wait4`.

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

import numpy as np
from tqdm.auto import tqdm

from benchmarks.common import RESULTS, pyplot, save_figure
from lm_routing_tasks.scoring import majority_vote
from router.harness import doc_hash, results_name, samples_name, text_hash

MODELS = 10
TRAIN_SHARE = 0.8
GOALS = {"default": (60.0, 2.0), "argmax": (30.0, 2.0)}  # 1M outcomes: CPU seconds, peak GB (issue 14)
BEFORE = {"default": (337.0, 3.8), "argmax": (96.0, None)}  # measured in issue 14 before this work (same machine)

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


def synthetic_scores(kinds: np.ndarray, seed: int) -> np.ndarray:
    """(queries, MODELS) scores 0-1 in steps of 0.1 (10 samples): each model is stronger on some kinds."""
    rng = np.random.default_rng(seed + 1)
    skill = rng.normal(0.0, 1.0, size=(len(KINDS), MODELS))
    difficulty = rng.normal(0.0, 1.0, size=len(kinds))
    p = 1 / (1 + np.exp(-(skill[kinds] - difficulty[:, None])))
    return rng.binomial(10, p) / 10


def write_tables(folder: Path, outcomes: int, seed: int) -> tuple[Path, Path]:
    """RouterDC train and test tables with `outcomes` (query, model) scores in all."""
    queries, kinds = synthetic_queries(outcomes // MODELS, seed)
    scores = synthetic_scores(kinds, seed)
    models = [f"model-{j}" for j in range(MODELS)]
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
    cpu_s: float  # user + system CPU seconds of the child
    wall_s: float
    peak_rss_gb: float


def tree_rss_bytes(root: int) -> int:
    """Resident bytes of process `root` and every descendant (worker processes too), read from /proc."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(rss.get(pid, 0) for pid in tree)


def run_child(command: list[str], rss_limit_gb: float = 10.0, allowed_exit: tuple[int, ...] = (0,)
              ) -> tuple[ChildRun, int, str]:
    """Run `command`, fail loudly on an exit code outside `allowed_exit`, and measure it: CPU from os.wait4 (the
    child and the workers it waited for), peak RSS summed over the child's process tree (sampled every 0.2 s;
    the child's own peak when larger). Stopped when the tree passes `rss_limit_gb`. (run, exit code, stderr)."""
    import threading

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss_bytes(process.pid))
            if peak[0] > rss_limit_gb * 1e9:
                process.kill()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stderr = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    watcher.join()
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in allowed_exit:
        raise SystemExit(f"{' '.join(command)} failed ({code}, peak {peak[0] / 1e9:.1f} GB): {stderr[-2000:]}")
    return ChildRun(usage.ru_utime + usage.ru_stime, wall, max(peak[0], usage.ru_maxrss * 1024) / 1e9), code, stderr


def routing_eval() -> str:
    found = shutil.which("routing-eval") or str(Path(sys.executable).with_name("routing-eval"))
    if not Path(found).exists():
        raise SystemExit("routing-eval is not installed (pip install -e .)")
    return found


def cli_runs(folder: Path, outcomes: int, runs: int, seed: int) -> dict[str, list[ChildRun]]:
    train, test = write_tables(folder, outcomes, seed)
    base = [routing_eval(), "--scores", str(train), "--test-scores", str(test), "--router", "knn", "--seed", str(seed)]
    measured = {"default": [], "argmax": []}
    for _ in tqdm(range(runs), desc=f"{outcomes:,} outcomes", leave=False):
        measured["argmax"].append(run_child(base + ["--policy", "argmax"])[0])
        measured["default"].append(run_child(base)[0])
    return measured


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
    import router.harness
    from router.logs import read_harness_logs

    files = write_harness_logs(root, models=3, docs=4000, seed=seed)
    reader, plain, stdlib_reader = [], [], []
    parse = router.harness._parse_json
    for _ in tqdm(range(runs), desc="ingestion", leave=False):
        plain.append(cpu_seconds(lambda: json_loads_loop(files)))
        reader.append(cpu_seconds(lambda: read_harness_logs(root)))
        router.harness._parse_json = json.loads  # the same reader with the standard library's parser only
        try:
            stdlib_reader.append(cpu_seconds(lambda: read_harness_logs(root)))
        finally:
            router.harness._parse_json = parse
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    return {"megabytes": megabytes, "lines": 3 * 4000, "reader_s": statistics.median(reader), "plain_s": statistics.median(plain),
            "stdlib_reader_s": statistics.median(stdlib_reader),
            "ratio": statistics.median(r / p for r, p in zip(reader, plain)),
            "stdlib_ratio": statistics.median(r / p for r, p in zip(stdlib_reader, plain))}


def predict_times(runs: int, seed: int, rf_train: int) -> dict[str, float]:
    """Median CPU seconds of predict_proba on 10k new queries: knn fit on 10k queries, rf on `rf_train`."""
    from router.routers import make_router

    queries, kinds = synthetic_queries(20_000 + rf_train, seed + 3)
    labels = (synthetic_scores(kinds, seed) >= 0.5).astype(float)
    new = queries[10_000:20_000]
    out = {}
    for name, train in (("knn", slice(0, 10_000)), ("rf", slice(20_000, 20_000 + rf_train))):
        router = make_router(name).fit(queries[train], labels[train])
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
    return ChildRun(*(statistics.median(getattr(r, f) for r in runs) for f in ("cpu_s", "wall_s", "peak_rss_gb")))


def verdict(value: float, goal: float) -> str:
    return "yes" if value <= goal else f"no, {value / goal:.1f}x the goal"


def write_report(sizes: dict[int, dict[str, list[ChildRun]]], reading: dict, predict: dict, help_s: float,
                 rf_train: int, command: str, notes: list[str]) -> None:
    lines = [
        "# Scale: 10k to 1M outcomes, log reading, predict, start-up",
        "",
        f"`{command}` (issue 14). Machine: {machine()}.",
        "Inputs are synthetic and seeded: distinct query texts from templates (math, knowledge, code, writing),",
        f"{MODELS} models whose scores depend on the query's kind; {TRAIN_SHARE:.0%} of the queries train, the rest test.",
        "CPU = user + system seconds of the child (`os.wait4`), peak RSS of the child; medians of the runs shown.",
        "",
        "## `routing-eval --scores TRAIN --test-scores TEST --router knn` (default policies, and `--policy argmax`)",
        "",
        "| outcomes | queries | policies | runs | CPU s | wall s | peak RSS GB |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for outcomes, measured in sizes.items():
        for mode in ("default", "argmax"):
            m = median_run(measured[mode])
            lines.append(f"| {outcomes:,} | {outcomes // MODELS:,} | {mode} | {len(measured[mode])} | {m.cpu_s:.1f} | "
                         f"{m.wall_s:.1f} | {m.peak_rss_gb:.2f} |")
    lines += ["", "## Against the goals (issue 14)", "", "| what | before | now | goal | met |", "| --- | ---: | ---: | ---: | --- |"]
    largest = max(sizes)
    for mode in ("default", "argmax"):
        m = median_run(sizes[largest][mode])
        goal_cpu, goal_gb = GOALS[mode]
        before_cpu, before_gb = BEFORE[mode]
        lines.append(f"| {largest:,} outcomes, {mode} policies: CPU s | {before_cpu:.0f} | {m.cpu_s:.1f} | <= {goal_cpu:.0f} | "
                     f"{verdict(m.cpu_s, goal_cpu)} |")
        lines.append(f"| {largest:,} outcomes, {mode} policies: peak GB | {before_gb or '-'} | {m.peak_rss_gb:.2f} | <= {goal_gb:.0f} | "
                     f"{'yes' if m.peak_rss_gb <= goal_gb else 'no'} |")
    lines += [
        f"| reading logs / plain json.loads loop (same lines, same run) | 2.77 | {reading['ratio']:.2f} | <= 1.5 | "
        f"{'yes' if reading['ratio'] <= 1.5 else 'no'} |",
        f"| knn predict_proba, 10k queries (fit on 10k): CPU s | 6.2 | {predict['knn']:.2f} | <= 1 | {verdict(predict['knn'], 1)} |",
        f"| rf predict_proba, 10k queries (fit on {rf_train:,}): CPU s | 1.4 | {predict['rf']:.2f} | <= 1 | {verdict(predict['rf'], 1)} |",
        f"| `routing-eval --help`: CPU s | 1.66 | {help_s:.2f} | <= 0.3 | {'yes' if help_s <= 0.3 else 'no'} |",
        "",
        "## Log reading",
        "",
        f"{reading['lines']:,} lines ({reading['megabytes']:.0f} MB, 3 models x 4,000 MMLU-like documents, 10 sampled CoT "
        f"answers each): `read_harness_logs` {reading['reader_s']:.2f} s CPU, a plain `json.loads` loop over the same lines "
        f"{reading['plain_s']:.2f} s: ratio {reading['ratio']:.2f} (median of per-run ratios). With the standard library's "
        f"parser in the same reader: {reading['stdlib_reader_s']:.2f} s, ratio {reading['stdlib_ratio']:.2f}: orjson "
        "earns its place.",
        "",
        "![time and memory vs outcomes](scale.png)",
        "",
    ]
    if notes:
        lines[-3:-3] = ["## Notes", "", *(f"- {note}" for note in notes), ""]
    (RESULTS / "scale.md").write_text("\n".join(lines))


def plot(sizes: dict[int, dict[str, list[ChildRun]]]) -> None:
    plt = pyplot()
    fig, (cpu_ax, rss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    outcomes = sorted(sizes)
    for mode, marker in (("default", "o"), ("argmax", "s")):
        runs = [median_run(sizes[n][mode]) for n in outcomes]
        cpu_ax.plot(outcomes, [r.cpu_s for r in runs], marker=marker, label=f"{mode} policies: CPU")
        cpu_ax.plot(outcomes, [r.wall_s for r in runs], marker=marker, linestyle=":", label=f"{mode} policies: wall")
        rss_ax.plot(outcomes, [r.peak_rss_gb for r in runs], marker=marker, label=f"{mode} policies")
    cpu_ax.axhline(GOALS["default"][0], color="grey", linestyle="--", linewidth=0.8, label="1M goal, default (60 s)")
    cpu_ax.axhline(GOALS["argmax"][0], color="grey", linestyle="-.", linewidth=0.8, label="1M goal, argmax (30 s)")
    rss_ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8, label="1M goal (2 GB)")
    for ax, title, unit in ((cpu_ax, "time", "seconds (median)"), (rss_ax, "peak memory", "peak RSS, GB (median)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("(query, model) outcomes")
        ax.set_ylabel(unit)
        ax.set_title(f"routing-eval --router knn: {title}")
        ax.legend(fontsize=7)
    save_figure(fig, RESULTS / "scale.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="outcomes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--largest-runs", type=int, default=1, help="runs at 1M outcomes and more (time on a shared machine)")
    parser.add_argument("--rf-train", type=int, default=5_000, help="training queries of the rf whose predict is timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-runs", type=Path, help="also write the CLI measurements here (JSON), to combine runs")
    parser.add_argument("--load-runs", type=Path, nargs="*", default=[],
                        help="report these saved CLI measurements (waits for each file) instead of running the CLI")
    parser.add_argument("--cli-only", action="store_true", help="only the CLI runs (with --save-runs); no report")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes (how it was run)")
    options = parser.parse_args()
    sizes: dict[int, dict[str, list[ChildRun]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for outcomes in [] if options.load_runs else sorted(options.sizes):
            folder = Path(scratch) / str(outcomes)
            folder.mkdir()
            runs = options.largest_runs if outcomes >= 1_000_000 else options.runs
            sizes[outcomes] = cli_runs(folder, outcomes, runs, options.seed)
            for mode in ("default", "argmax"):
                m = median_run(sizes[outcomes][mode])
                print(f"{outcomes:>9,} outcomes, {mode:>7}: {m.cpu_s:7.1f} s CPU {m.wall_s:7.1f} s wall {m.peak_rss_gb:5.2f} GB")
            if options.save_runs:
                options.save_runs.write_text(json.dumps({n: {mode: [vars(r) for r in runs] for mode, runs in measured.items()}
                                                         for n, measured in sizes.items()}))
        if options.cli_only:
            return
        reading = ingestion(Path(scratch) / "logs", options.runs, options.seed)
    print(f"log reading / json.loads: {reading['ratio']:.2f} (standard-library parser: {reading['stdlib_ratio']:.2f})")
    predict = predict_times(options.runs, options.seed, options.rf_train)
    print(f"predict_proba 10k queries: knn {predict['knn']:.2f} s, rf {predict['rf']:.2f} s CPU")
    help_s = help_cpu(5)
    print(f"routing-eval --help: {help_s:.2f} s CPU")
    for path in options.load_runs:  # read last: another process may still be measuring a size
        while not path.exists():
            time.sleep(10)
        sizes.update({int(n): {mode: [ChildRun(**r) for r in runs] for mode, runs in measured.items()}
                      for n, measured in json.loads(path.read_text()).items()})
    sizes = dict(sorted(sizes.items()))
    write_report(sizes, reading, predict, help_s, options.rf_train, "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
                 options.note)
    plot(sizes)
    print(f"wrote {RESULTS / 'scale.md'} and {RESULTS / 'scale.png'}")


if __name__ == "__main__":
    main()
