"""A seeded, simulated 7-LLM pool written as real lm-eval logs (the demo; no weights, no network).

Each simulated model has the routing paper's accuracy and latency per dataset.
Queries are templated math word problems (GSM8K-like) and multiple-choice
questions (MMLU-like) over a few topics; each model is stronger on some topics
than others, so a router has something to learn. For every query a model
draws 10 samples (right with a probability set by its skill on the topic
and the query's difficulty; wrong samples pick among distractors), and maj@10
decides the label, exactly as the real tasks do. The logs use the real
layout, file names and fields of `lm_eval --log_samples`, so everything
downstream reads them as it reads real runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_routing_tasks.scoring import score_samples
from router.publish import write_new_file
from router.report import sanitize_model_name


@dataclass(frozen=True)
class SimulatedModel:
    name: str
    few_shot: bool  # base models get the few-shot task, chat models the zero-shot one
    accuracy: dict[str, float]  # dataset -> maj@10 accuracy on the test split, fraction 0-1
    latency_s: dict[str, float]  # dataset -> seconds per query


# maj@10 accuracy and s/query per model from the routing paper's released results
# (github.com/kvadityasrivatsa/llm-routing, routing_policies/routing_results_*.csv).
# Its GSM8K results cover 6 models: llama2-7b is in the MMLU pool only.
PAPER_POOL = (
    SimulatedModel("llama2-7b", True, {"mmlu": 0.4837}, {"mmlu": 2.3}),
    SimulatedModel("llama2-13b-chat", False, {"gsm8k": 0.4670, "mmlu": 0.5052}, {"gsm8k": 1.8, "mmlu": 4.8}),
    SimulatedModel("mistral-7b", True, {"gsm8k": 0.5974, "mmlu": 0.6209}, {"gsm8k": 3.7, "mmlu": 1.8}),
    SimulatedModel("mistral-7b-it", False, {"gsm8k": 0.5042, "mmlu": 0.5163}, {"gsm8k": 1.0, "mmlu": 1.1}),
    SimulatedModel("gemma-7b", True, {"gsm8k": 0.7111, "mmlu": 0.6386}, {"gsm8k": 7.1, "mmlu": 3.0}),
    SimulatedModel("gemma-7b-it", False, {"gsm8k": 0.3685, "mmlu": 0.4928}, {"gsm8k": 0.7, "mmlu": 1.0}),
    SimulatedModel("metamath-7b", True, {"gsm8k": 0.6755, "mmlu": 0.4229}, {"gsm8k": 4.7, "mmlu": 2.4}),
)
PAPER_POOL_NOTE = (
    "demo: a SIMULATED pool, no model was run. Each model's maj@10 test accuracy and latency (s/query) "
    "are the routing paper's (Srivatsa et al., 2024, released results); queries are templated and "
    "per-query labels are drawn, so oracle and router rows are not the paper's."
)

_GSM8K_TOPICS = {
    "shopping": "{a} buys {n} {item}s at ${p} each and pays with a ${b} bill. How much change does {a} get?",
    "rates": "A {vehicle} travels {n} miles in {h} hours. At the same speed, how far does it go in {k} hours?",
    "percent": "A {item} costs ${p}0. It is discounted by {r}% and then taxed {t}%. What is the final price?",
    "time": "{a} works {h} hours a day for {n} days and earns ${p} per hour. How much does {a} earn?",
    "geometry": "A garden is {n} feet long and {k} feet wide. A path {h} feet wide runs around it. What is the path's area?",
    "fractions": "{a} has {n} {item}s and gives away {k}/{d} of them, then buys {h} more. How many are left?",
}
_MMLU_TOPICS = {
    "algebra": "Which value of x satisfies {n}x + {k} = {p} in the {item} ring?",
    "biology": "Which structure of the {item} cell is most involved in {concept}?",
    "law": "Under the doctrine of {concept}, which party bears the burden when a {item} contract fails?",
    "history": "Which event most directly led to the {concept} of {n}{k}0s {item} policy?",
    "medicine": "A patient presents with {concept} after {n} days of {item}. What is the most likely cause?",
    "economics": "If the {item} market sees a rise in {concept}, what happens to equilibrium price?",
}
_WORDS = {
    "a": ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana"],
    "item": ["apple", "notebook", "ticket", "lamp", "shirt", "plant", "membrane", "grain", "trade"],
    "vehicle": ["train", "bus", "cyclist", "truck", "boat"],
    "concept": ["osmosis", "estoppel", "inflation", "reform", "fatigue", "supply", "transcription", "tariffs"],
}
TOPICS = {"gsm8k": _GSM8K_TOPICS, "mmlu": _MMLU_TOPICS}
HUB_IDS = {"gsm8k": "openai/gsm8k", "mmlu": "cais/mmlu"}
SPLITS = {"train": {"gsm8k": 2000, "mmlu": 2000}, "test": {"gsm8k": 1319, "mmlu": 1530}}  # the paper's test sizes
SAMPLES = 10


def _question(rng: np.random.Generator, template: str) -> str:
    values = {key: rng.choice(options) for key, options in _WORDS.items()}
    values.update({key: int(rng.integers(2, 60)) for key in ("n", "p", "b", "h", "k", "r", "t", "d")})
    return template.format(**values)


def _maj_correct(p: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """maj@10 correct per query, by `majority_vote`'s rule (ties: the answer sampled first wins).

    `uniforms` is (queries, samples, 2): the first draw decides right/wrong,
    the second which of 3 distractors a wrong sample gives.
    """
    right = uniforms[..., 0] < p[:, None]
    distractor = np.floor(uniforms[..., 1] * 3).astype(int)
    n_samples = right.shape[1]
    first = lambda mask: np.where(mask.any(1), np.argmax(mask, axis=1), n_samples)  # noqa: E731
    wrong = [(~right) & (distractor == c) for c in range(3)]
    best_wrong = np.max([w.sum(1) for w in wrong], axis=0)
    first_tied_wrong = np.min([np.where(w.sum(1) == best_wrong, first(w), n_samples) for w in wrong], axis=0)
    n_right = right.sum(1)
    return (n_right > best_wrong) | ((n_right == best_wrong) & (n_right > 0) & (first(right) < first_tied_wrong))


def _calibrate(target: float, skill: np.ndarray, uniforms: np.ndarray) -> float:
    """Offset a such that maj@10 accuracy over these queries is `target` (bisection, common random numbers)."""
    low, high = -12.0, 12.0
    for _ in range(40):
        mid = (low + high) / 2
        if _maj_correct(1 / (1 + np.exp(-(skill + mid))), uniforms).mean() < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _task_name(dataset: str, few_shot: bool, split: str) -> str:
    name = f"{dataset}_cot_maj10" if few_shot else f"{dataset}_cot_zeroshot_maj10"
    return f"{name}_train" if split == "train" else name


def simulate_pool(seed: int = 0, pool: tuple[SimulatedModel, ...] = PAPER_POOL,
                  splits: dict[str, dict[str, int]] | None = None) -> dict:
    """Queries and per-model samples: {dataset: {split: [(doc, {model: answers})]}}.

    `splits` gives the queries per split and dataset (default SPLITS, the paper's sizes).
    """
    splits = splits or SPLITS
    rng = np.random.default_rng(seed)
    out: dict = {}
    for dataset, topics in TOPICS.items():
        names = list(topics)
        sizes = {split: splits[split][dataset] for split in splits}
        n_total = sum(sizes.values())
        test = np.arange(sizes["train"], n_total)
        topic = rng.integers(0, len(names), size=n_total)
        difficulty = rng.normal(0.0, 1.5, size=n_total)
        docs = [_doc(rng, dataset, names[t], topics[names[t]]) for t in topic]
        answers_by_model = {}
        for model in (m for m in pool if dataset in m.accuracy):
            strength = rng.normal(0.0, 0.6, size=len(names))  # per-topic skill: the routing signal
            skill = strength[topic] - difficulty
            uniforms = rng.random((n_total, SAMPLES, 2))
            offset = _calibrate(model.accuracy[dataset], skill[test], uniforms[test])
            right = uniforms[..., 0] < 1 / (1 + np.exp(-(skill + offset)))[:, None]
            distractor = np.floor(uniforms[..., 1] * 3).astype(int)  # as in _maj_correct
            answers_by_model[model.name] = [
                [_target(dataset, docs[i]) if right[i, s] else _wrong(dataset, docs[i], distractor[i, s]) for s in range(SAMPLES)]
                for i in range(n_total)
            ]
        bounds = {"train": range(0, sizes["train"]), "test": range(sizes["train"], n_total)}
        out[dataset] = {
            split: [(docs[i], {m: answers[i] for m, answers in answers_by_model.items()}) for i in index]
            for split, index in bounds.items()
        }
    return out


def _doc(rng: np.random.Generator, dataset: str, topic: str, template: str) -> dict:
    question = _question(rng, template)
    if dataset == "gsm8k":
        return {"question": question, "answer": f"Worked solution.\n#### {int(rng.integers(2, 500))}"}
    return {"question": question, "subject": topic, "choices": ["w", "x", "y", "z"], "answer": int(rng.integers(0, 4))}


def _target(dataset: str, doc: dict) -> str:
    return doc["answer"].split("####")[-1].strip() if dataset == "gsm8k" else "ABCD"[doc["answer"]]


def _wrong(dataset: str, doc: dict, distractor: int) -> str:
    if dataset == "gsm8k":
        return str(int(_target(dataset, doc)) + distractor + 1)
    letters = [c for c in "ABCD" if c != _target(dataset, doc)]
    return letters[distractor]


def write_simulated_logs(root: Path | str, seed: int = 0, pool: tuple[SimulatedModel, ...] = PAPER_POOL,
                         splits: dict[str, dict[str, int]] | None = None) -> Path:
    """Write the simulated pool as lm-eval 0.4.x --log_samples output, one folder per dataset.

    `root/<dataset>/<model>/results_<time>.json` + `samples_<task>_<time>.jsonl`:
    the train and test tasks of one model and dataset form one run. `splits` as in `simulate_pool`.
    """
    import lm_eval

    root = Path(root)
    simulated = simulate_pool(seed, pool, splits)
    start = dt.datetime.now()
    for k, (dataset, items_by_split) in enumerate(simulated.items()):
        stamp = (start + dt.timedelta(seconds=k)).isoformat().replace(":", "-")
        for model in (m for m in pool if dataset in m.accuracy):
            folder = root / dataset / sanitize_model_name(model.name)
            folder.mkdir(parents=True, exist_ok=True)
            results, configs, n_samples = {}, {}, {}
            for split, items in items_by_split.items():
                task = _task_name(dataset, model.few_shot, split)
                write_new_file(folder / f"samples_{task}_{stamp}.jsonl", _samples_jsonl(dataset, model.name, items))
                results[task] = {"alias": task}
                configs[task] = {"task": task, "dataset_path": HUB_IDS[dataset], "repeats": SAMPLES}
                n_samples[task] = {"original": len(items), "effective": len(items)}
            document = {
                "results": results, "configs": configs, "n-samples": n_samples,
                "config": {"model": "simulated", "model_args": f"pretrained={model.name}"},
                "model_name": model.name, "model_name_sanitized": folder.name,
                "lm_eval_version": lm_eval.__version__,
                "total_evaluation_time_seconds": model.latency_s[dataset] * sum(len(i) for i in items_by_split.values()),
                "simulated": PAPER_POOL_NOTE,
            }
            write_new_file(folder / f"results_{stamp}.json", json.dumps(document, indent=2) + "\n")
    return root


def _samples_jsonl(dataset: str, model: str, items: list) -> str:
    lines = []
    for doc_id, (doc, answers) in enumerate(items):
        scores = score_samples(answers[model], _target(dataset, doc))
        doc_json = json.dumps(doc, indent=2, ensure_ascii=False)
        lines.append(json.dumps({
            "doc_id": doc_id, "doc": doc, "target": _target(dataset, doc), "arguments": [],
            "resps": [[f"(simulated) The answer is {a}." for a in answers[model]]],
            "filtered_resps": [answers[model]], "filter": "answers", "metrics": list(scores),
            "doc_hash": hashlib.sha256(doc_json.encode()).hexdigest(), "prompt_hash": "", "target_hash": "",
            **scores,
        }, ensure_ascii=False))
    return "\n".join(lines) + "\n"
