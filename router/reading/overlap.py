"""Train/test overlap: test queries whose text is also a training query score a router on what it memorised.

Texts are compared normalised (case-folded, whitespace collapsed), so a copied table or two
overlapping splits are found even when spacing or case differs.
"""

from __future__ import annotations

from lm_routing.data import TEST, TRAIN, RoutingData, RoutingInputError
from lm_routing.errors import Note


def normalised(text: str) -> str:
    """A query text as compared for overlap: case-folded, runs of whitespace as one space, no outer space."""
    return " ".join(text.casefold().split())


def overlapping_queries(data: RoutingData) -> list[int]:
    """Indices into `data.split(TEST)` of the test queries whose normalised text is also a training query's."""
    train = {normalised(q) for q, split in zip(data.queries, data.splits) if split == TRAIN}
    tests = [q for q, split in zip(data.queries, data.splits) if split == TEST]
    return [i for i, query in enumerate(tests) if normalised(query) in train] if train else []


def check_overlap(data: RoutingData, train_source: str, test_source: str, allow: bool = True) -> list[Note]:
    """Warnings on train/test overlap (none when there is none): both sources, the count and one example query.
    Without `allow`, any overlap is a RoutingInputError in one line instead. Scoring with a warning is the
    default because published splits carry overlap users cannot remove (RouterDC's MMLU: 16 of 4,213 test
    queries), and their published figures include it; the warning says how many."""
    found = overlapping_queries(data)
    if not found:
        return []
    tests = [q for q, split in zip(data.queries, data.splits) if split == TEST]
    example = " ".join(tests[found[0]].split())[:80]
    what = (f"{len(found)} of {len(tests)} test queries ({test_source}) are also training queries ({train_source}), "
            f"e.g. {example!r}")
    if not allow:
        raise RoutingInputError(f"{what}; routers would be scored on queries they trained on: remove them from one "
                                "side, or drop the refusal to score anyway (with a warning)")
    return [Note("train-test-overlap", ("refuse_overlap",), overlapping=len(found), test_queries=len(tests),
                 train_source=train_source, test_source=test_source, example=example)]
