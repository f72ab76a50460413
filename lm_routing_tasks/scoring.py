"""Majority vote over K sampled chain-of-thought answers, and per-query metrics.

The task YAMLs wire these in: a `custom` filter turns each document's K
completions into their K extracted answers (the sample log's `filtered_resps`,
'[invalid]' where nothing parses), and `process_results` scores them.

Per query the sample log then carries (K = number of samples, 10 by default):
- `maj@K`: 1.0 when the majority answer is right (the routing paper's label),
- `first`: 1.0 when the first sample alone is right,
- `solve_rate`: fraction 0-1 of the K samples that are right,
- `invalid_rate`: fraction 0-1 of the K samples with no parseable answer,
- `majority`: the majority answer itself ('[invalid]' when none parses). In
  the results file it aggregates to the share of queries with a parseable
  majority (`parseable_share`), since an answer string has no mean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from lm_routing_tasks.extraction import extract_gsm8k_answer, extract_mmlu_answer, normalize_number

INVALID = "[invalid]"  # lm-eval's own marker for an unparseable answer


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """Most frequent parseable answer; ties go to the one sampled first.

    Unparseable answers (None or '[invalid]') do not vote: a query where 4 of
    10 samples say '18' and 6 say nothing has majority '18'. Returns None when
    no sample is parseable.
    """
    valid = [a for a in answers if a is not None and a != INVALID]
    if not valid:
        return None
    counts = Counter(valid)
    best = max(counts.values())
    return next(a for a in valid if counts[a] == best)


def majority_share(answers: Sequence[str | None]) -> float:
    """Vote share 0-1 of the majority answer: its count over all K samples.

    Unparseable answers (None or '[invalid]') do not vote but count in K, so
    4 of 10 samples saying '18' and 6 saying nothing give 0.4; none parseable
    gives 0.0. Label-free: how much a model's own samples agree.
    """
    if not answers:
        raise ValueError("majority_share needs at least one sampled answer")
    valid = [a for a in answers if a is not None and a != INVALID]
    return max(map(valid.count, set(valid))) / len(answers) if valid else 0.0  # the majority's count is the largest


def score_samples(answers: Sequence[str | None], target: str) -> dict[str, float | str]:
    """Per-query metrics for K extracted answers against the normalised target."""
    k = len(answers)
    if k == 0:
        raise ValueError("score_samples needs at least one sampled answer")
    parsed = [None if a == INVALID else a for a in answers]
    majority = majority_vote(parsed)
    return {
        f"maj@{k}": float(majority is not None and majority == target),
        "first": float(parsed[0] is not None and parsed[0] == target),
        "solve_rate": sum(a is not None and a == target for a in parsed) / k,
        "invalid_rate": sum(a is None for a in parsed) / k,
        "majority": INVALID if majority is None else majority,
    }


def parseable_share(majorities: Sequence[str]) -> float:
    """Aggregation of the `majority` metric: fraction of queries whose majority parses."""
    return sum(m != INVALID for m in majorities) / len(majorities) if majorities else 0.0


def _answers_filter(extract: Callable[[str, dict], str | None]):
    def apply(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
        return [
            [INVALID if (a := extract(text, doc)) is None else a for text in completions]
            for completions, doc in zip(resps, docs)
        ]

    return apply


def _process(target_of: Callable[[dict], str]):
    def process_results(doc: dict, results: list[list[str]]) -> dict[str, float | str]:
        return score_samples(results[0], target_of(doc))

    return process_results


def gsm8k_target(doc: dict) -> str:
    """Normalised number after '####' in a GSM8K worked solution."""
    answer = normalize_number(doc["answer"].split("####")[-1])
    if answer is None:
        raise ValueError(f"GSM8K document has no '#### <number>' answer: {doc['answer'][-80:]!r}")
    return answer


def mmlu_target(doc: dict) -> str:
    """Answer letter of an MMLU row ('answer' is the 0-3 index)."""
    return "ABCD"[int(doc["answer"])]


gsm8k_answers = _answers_filter(lambda text, doc: extract_gsm8k_answer(text))
mmlu_answers = _answers_filter(lambda text, doc: extract_mmlu_answer(text, doc.get("choices")))
process_gsm8k = _process(gsm8k_target)
process_mmlu = _process(mmlu_target)
