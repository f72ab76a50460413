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
from router.report import sanitize_model_name, write_atomic


@dataclass(frozen=True)
class SimulatedModel:
    name: str
    few_shot: bool  # base models get the few-shot task, chat models the zero-shot one
    accuracy: dict[str, float]  # dataset -> maj@10 accuracy, fraction 0-1
    latency_s: dict[str, float]  # dataset -> seconds per query


# Accuracy and latency per model as reported in the routing paper's results table.
PAPER_POOL = (
    SimulatedModel("meta-llama/Llama-2-7b-hf", True, {"gsm8k": 0.1486, "mmlu": 0.4165}, {"gsm8k": 8.77, "mmlu": 6.72}),
    SimulatedModel("meta-llama/Llama-2-13b-chat-hf", False, {"gsm8k": 0.3707, "mmlu": 0.5212}, {"gsm8k": 11.21, "mmlu": 9.64}),
    SimulatedModel("mistralai/Mistral-7B-v0.1", True, {"gsm8k": 0.4208, "mmlu": 0.6054}, {"gsm8k": 7.27, "mmlu": 6.16}),
    SimulatedModel("mistralai/Mistral-7B-Instruct-v0.2", False, {"gsm8k": 0.4261, "mmlu": 0.5707}, {"gsm8k": 9.58, "mmlu": 10.15}),
    SimulatedModel("google/gemma-7b", True, {"gsm8k": 0.5064, "mmlu": 0.6339}, {"gsm8k": 11.66, "mmlu": 9.27}),
    SimulatedModel("google/gemma-7b-it", False, {"gsm8k": 0.3206, "mmlu": 0.5082}, {"gsm8k": 8.47, "mmlu": 7.84}),
    SimulatedModel("meta-math/MetaMath-7B-V1.0", True, {"gsm8k": 0.6626, "mmlu": 0.4129}, {"gsm8k": 6.96, "mmlu": 7.55}),
)
PAPER_POOL_NOTE = (
    "demo: a SIMULATED pool (no model was run). Per-model maj@10 accuracy and latency (s/query) are set to "
    "the routing paper's figures (Srivatsa et al., 2024); queries are templated, labels are drawn."
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
SPLITS = {"train": 300, "test": 300}  # queries per dataset and split
SAMPLES = 10


def _question(rng: np.random.Generator, template: str) -> str:
    values = {key: rng.choice(options) for key, options in _WORDS.items()}
    values.update({key: int(rng.integers(2, 60)) for key in ("n", "p", "b", "h", "k", "r", "t", "d")})
    return template.format(**values)


def _maj_correct(p: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """(queries, samples) uniforms -> maj@10 correct, with wrong samples split over 3 distractors."""
    right = uniforms[..., 0] < p[:, None]
    distractor = np.floor(uniforms[..., 1] * 3).astype(int)
    wrong_votes = np.stack([((~right) & (distractor == c)).sum(1) for c in range(3)], axis=1)
    return right.sum(1) > wrong_votes.max(1)


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


def simulate_pool(seed: int = 0, pool: tuple[SimulatedModel, ...] = PAPER_POOL) -> dict:
    """Queries and per-model samples: {dataset: {split: [(doc, {model: answers})]}}."""
    rng = np.random.default_rng(seed)
    out: dict = {}
    for dataset, topics in TOPICS.items():
        names = list(topics)
        n_total = sum(SPLITS.values())
        topic = rng.integers(0, len(names), size=n_total)
        difficulty = rng.normal(0.0, 1.5, size=n_total)
        docs = []
        for i in range(n_total):
            question = _question(rng, topics[names[topic[i]]])
            if dataset == "gsm8k":
                docs.append({"question": question, "answer": f"Worked solution.\n#### {int(rng.integers(2, 500))}"})
            else:
                docs.append({"question": question, "subject": names[topic[i]], "choices": ["w", "x", "y", "z"], "answer": int(rng.integers(0, 4))})
        answers_by_model = {}
        for model in pool:
            strength = rng.normal(0.0, 0.6, size=len(names))  # per-topic skill: the routing signal
            skill = strength[topic] - difficulty
            uniforms = rng.random((n_total, SAMPLES, 2))
            offset = _calibrate(model.accuracy[dataset], skill, uniforms)
            p = 1 / (1 + np.exp(-(skill + offset)))
            right = uniforms[..., 0] < p[:, None]
            distractor = np.floor(uniforms[..., 1] * 3).astype(int)
            answers_by_model[model.name] = [
                [_target(dataset, docs[i]) if right[i, s] else _wrong(dataset, docs[i], distractor[i, s]) for s in range(SAMPLES)]
                for i in range(n_total)
            ]
        start = 0
        out[dataset] = {}
        for split, size in SPLITS.items():
            out[dataset][split] = [
                (docs[i], {m: answers_by_model[m][i] for m in answers_by_model}) for i in range(start, start + size)
            ]
            start += size
    return out


def _target(dataset: str, doc: dict) -> str:
    return doc["answer"].split("####")[-1].strip() if dataset == "gsm8k" else "ABCD"[doc["answer"]]


def _wrong(dataset: str, doc: dict, distractor: int) -> str:
    if dataset == "gsm8k":
        return str(int(_target(dataset, doc)) + distractor + 1)
    letters = [c for c in "ABCD" if c != _target(dataset, doc)]
    return letters[distractor]


def write_simulated_logs(root: Path | str, seed: int = 0, pool: tuple[SimulatedModel, ...] = PAPER_POOL) -> Path:
    """Write the simulated pool under `root` in lm-eval 0.4.x's --log_samples layout.

    One run (results file + samples files) per model and dataset, so each
    dataset's latency comes from its own run's timing, as with real runs.
    """
    import lm_eval

    root = Path(root)
    simulated = simulate_pool(seed, pool)
    start = dt.datetime.now()
    for model in pool:
        folder = root / sanitize_model_name(model.name)
        folder.mkdir(parents=True, exist_ok=True)
        for k, (dataset, splits) in enumerate(simulated.items()):
            stamp = (start + dt.timedelta(seconds=k)).isoformat().replace(":", "-")
            results, configs, n_samples = {}, {}, {}
            for split, items in splits.items():
                task = _task_name(dataset, model.few_shot, split)
                write_atomic(folder / f"samples_{task}_{stamp}.jsonl", _samples_jsonl(dataset, model.name, items))
                results[task] = {"alias": task}
                configs[task] = {"task": task, "dataset_path": HUB_IDS[dataset], "repeats": SAMPLES}
                n_samples[task] = {"original": len(items), "effective": len(items)}
            document = {
                "results": results, "configs": configs, "n-samples": n_samples,
                "config": {"model": "simulated", "model_args": f"pretrained={model.name}"},
                "model_name": model.name, "model_namesanitize_model_named": folder.name,
                "lm_eval_version": lm_eval.__version__,
                "total_evaluation_time_seconds": model.latency_s[dataset] * sum(len(i) for i in splits.values()),
                "simulated": PAPER_POOL_NOTE,
            }
            write_atomic(folder / f"results_{stamp}.json", json.dumps(document, indent=2) + "\n")
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
