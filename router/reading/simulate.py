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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_routing_tasks.scoring import majority_vote, score_samples
from lm_routing.reading.harness import TaskResults, doc_hash, results_document, run_files, sample_record, timestamp
from lm_routing.reading.publish import write_new_files


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


def _right_above(uniforms: np.ndarray) -> np.ndarray:
    """Per query, the probability of a right sample above which its maj@K is right, by `majority_vote`.

    `uniforms` is (queries, samples, 2): a sample is right when its first draw is below the probability,
    and a wrong one gives one of 3 distractors by its second draw. A higher probability only turns wrong
    samples right, in the order of their first draws, which never loses a won vote: so the threshold is
    the first draw of the k-th sample to turn right, k the fewest right samples that win (binary search).
    """
    first_draws = uniforms[..., 0]
    distractor = np.floor(uniforms[..., 1] * 3).astype(int)
    order = np.argsort(first_draws, axis=1)
    n_samples = uniforms.shape[1]
    thresholds = np.empty(len(uniforms))
    for query, (ranked, wrong) in enumerate(zip(order, distractor)):
        fewest, most = 1, n_samples  # all samples right always win
        while fewest < most:
            k = (fewest + most) // 2
            right = set(ranked[:k].tolist())
            if majority_vote(["right" if s in right else str(wrong[s]) for s in range(n_samples)]) == "right":
                most = k
            else:
                fewest = k + 1
        thresholds[query] = first_draws[query, ranked[fewest - 1]]
    return thresholds


def _calibrate(target: float, skill: np.ndarray, uniforms: np.ndarray) -> float:
    """Offset a such that maj@10 accuracy over these queries is `target` (bisection, common random numbers)."""
    thresholds = _right_above(uniforms)
    low, high = -12.0, 12.0
    for _ in range(40):
        mid = (low + high) / 2
        if (1 / (1 + np.exp(-(skill + mid))) > thresholds).mean() < target:
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
            distractor = np.floor(uniforms[..., 1] * 3).astype(int)  # as in _right_above
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
    root = Path(root)
    simulated = simulate_pool(seed, pool, splits)
    start = dt.datetime.now()
    for k, (dataset, items_by_split) in enumerate(simulated.items()):
        stamp = timestamp(start + dt.timedelta(seconds=k))  # one run time per dataset, as separate lm_eval runs
        hashes = {split: [doc_hash(doc) for doc, _ in items] for split, items in items_by_split.items()}  # once, not per model
        for model in (m for m in pool if dataset in m.accuracy):
            tasks, samples = {}, {}
            for split, items in items_by_split.items():
                task = _task_name(dataset, model.few_shot, split)
                samples[task] = [_sample(dataset, doc_id, doc, answers[model.name], hashed)
                                 for doc_id, ((doc, answers), hashed) in enumerate(zip(items, hashes[split]))]
                tasks[task] = TaskResults({}, {"dataset_path": HUB_IDS[dataset], "repeats": SAMPLES}, len(items))
            document = results_document(
                model.name, {"model": "simulated", "model_args": f"pretrained={model.name}"}, tasks,
                model.latency_s[dataset] * sum(len(i) for i in items_by_split.values()), simulated=PAPER_POOL_NOTE,
            )
            write_new_files(run_files(root / dataset, stamp, document, samples))
    return root


def _sample(dataset: str, doc_id: int, doc: dict, answers: list[str], hashed: str) -> dict:
    """One model's sample record of one document (`hashed`: its doc_hash): its K answers, scored as the real
    tasks score them."""
    target = _target(dataset, doc)
    return sample_record(doc_id, doc, target, [[f"(simulated) The answer is {a}." for a in answers]], [answers],
                         "answers", score_samples(answers, target), hashed=hashed)
