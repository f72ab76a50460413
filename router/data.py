"""`RoutingData`: the one queries x models table every part of the router reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np

from lm_routing.errors import Note, RoutingInputError, check_known  # RoutingInputError is also imported from here

TRAIN, TEST = "train", "test"
PER_QUERY_OPTIONAL = ("agreement", "input_tokens", "output_tokens", "cost")  # (n_queries, n_models), NaN when not given
PER_QUERY = ("labels", "solve_rates", "answers", "latency", *PER_QUERY_OPTIONAL)


@dataclass(frozen=True)
class JoinReport:
    """What reading and joining kept and skipped, with the reason for each skip, as data (Notes: the caller
    words them, see lm_routing.errors.Note)."""

    joined: int = 0
    skipped: tuple[tuple[Note, int], ...] = ()  # (why, number of documents)
    notes: tuple[Note, ...] = ()

    def entries(self) -> list[Note]:
        """The report as notes, in reading order: what was joined, each skip, then the notes."""
        return ([Note("joined", documents=self.joined)]
                + [Note("skipped", documents=n, reason=why) for why, n in self.skipped] + list(self.notes))


@dataclass(frozen=True)
class RoutingData:
    """Queries x models: who solved what, at what cost.

    Arrays are (n_queries, n_models) unless noted. `labels` is 1.0 when the
    model solved the query (maj@k correct, or score >= threshold), `solve_rates`
    the fraction 0-1 of samples that were right (NaN when unknown), `answers`
    the model's majority answer (None when unknown), `latency` the seconds the
    model takes per query (the s/query of the run that answered it; NaN when
    unknown). Per model, `latency_source` says where its latency came from.
    `splits` tags each query 'train' or 'test'. `agreement` is the vote share
    0-1 of the model's majority answer among its K samples (label-free, known
    at deployment time; NaN when unknown, e.g. score tables; all NaN when not given).

    Cost (all optional, all NaN when not given): `input_tokens` and `output_tokens` per query and
    model (tokens of ONE generation: the prompt and one answer, what a deployed single answer costs;
    maj@k logs ran k), and `cost`, USD per query (NaN: unknown). Per model, `cost_source` says where
    its cost came from ('table cost column', 'tokenizer <id> x price file', 'approximation ...',
    'declared'; 'unknown' when there is none).
    """

    query_ids: tuple[str, ...]
    queries: tuple[str, ...]
    datasets: tuple[str, ...]
    splits: tuple[str, ...]
    models: tuple[str, ...]
    labels: np.ndarray
    solve_rates: np.ndarray
    answers: np.ndarray
    latency: np.ndarray
    latency_source: tuple[str, ...]
    report: JoinReport = field(default_factory=JoinReport)
    agreement: np.ndarray | None = None
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    cost: np.ndarray | None = None
    cost_source: tuple[str, ...] | None = None

    def __post_init__(self):
        n, m = len(self.query_ids), len(self.models)
        for name in PER_QUERY_OPTIONAL:
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full((n, m), np.nan))
        if self.cost_source is None:
            object.__setattr__(self, "cost_source", ("unknown",) * m)
        for name in PER_QUERY:
            if getattr(self, name).shape != (n, m):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {(n, m)}")
        if not (len(self.queries) == len(self.datasets) == len(self.splits) == n):
            raise ValueError("queries, datasets and splits must have one entry per query")
        if len(self.latency_source) != m or len(self.cost_source) != m:
            raise ValueError("latency_source and cost_source need one entry per model")

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def model_latency(self) -> np.ndarray:
        """Mean seconds per query of each model (NaN when unknown)."""
        known = ~np.isnan(self.latency)
        totals = np.where(known, self.latency, 0.0).sum(axis=0)
        counts = known.sum(axis=0)
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)

    @property
    def model_cost(self) -> np.ndarray:
        """Mean USD per query of each model (NaN when any of its costs is unknown)."""
        return self.cost.mean(axis=0) if self.n_queries else np.full(self.n_models, np.nan)

    @property
    def cost_known(self) -> bool:
        """True when every (query, model) cost in USD is known."""
        return bool(self.n_queries) and not np.isnan(self.cost).any()

    def with_cost(self, usd: dict[str, float], source: str = "declared") -> RoutingData:
        """A copy whose cost (USD per query) is `usd[model]` for every query of the named models."""
        check_known("model", sorted(usd), self.models, source="«prices»")
        return self._declared("cost", "cost_source", usd, source)

    def _declared(self, field_name: str, source_name: str, values: dict[str, float], source: str) -> RoutingData:
        """A copy whose `field_name` column of each named model is its value, and its `source_name` entry `source`."""
        array, sources = getattr(self, field_name).copy(), list(getattr(self, source_name))
        for model, value in values.items():
            j = self.models.index(model)
            array[:, j] = value
            sources[j] = source
        return replace(self, **{field_name: array, source_name: tuple(sources)})

    def take(self, index: np.ndarray | list[int]) -> RoutingData:
        """The queries at `index` (positions or a boolean mask), same models."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        pick = lambda values: tuple(values[i] for i in index)  # noqa: E731
        return replace(
            self,
            query_ids=pick(self.query_ids),
            queries=pick(self.queries),
            datasets=pick(self.datasets),
            splits=pick(self.splits),
            **{name: getattr(self, name)[index] for name in PER_QUERY},
        )

    def with_model_order(self, models: tuple[str, ...]) -> RoutingData:
        """The same data with its model columns in the order of `models` (the same set of names)."""
        order = [self.models.index(m) for m in models]
        sources = tuple(self.latency_source[j] for j in order)
        return replace(self, models=tuple(models), latency_source=sources,
                       cost_source=tuple(self.cost_source[j] for j in order),
                       **{name: getattr(self, name)[:, order] for name in PER_QUERY})

    def split(self, name: str) -> RoutingData:
        """Only the queries tagged `name` ('train' or 'test')."""
        return self.take(np.array([s == name for s in self.splits], dtype=bool))

    def only_datasets(self, names: tuple[str, ...] | list[str]) -> RoutingData:
        """Only the queries of the named datasets (e.g. 'gsm8k'); unknown names raise."""
        unknown = sorted(set(names) - set(self.datasets))
        if unknown:
            raise RoutingInputError(
                f"no queries of dataset(s) {', '.join(unknown)}; the input has: {', '.join(sorted(set(self.datasets)))}"
            )
        return self.take(np.array([d in names for d in self.datasets], dtype=bool))

    def with_latency(self, seconds: dict[str, float], source: str = "declared") -> RoutingData:
        """A copy whose per-model latency (s/query) is overridden for the named models."""
        check_known("model", sorted(seconds), self.models, source="«latencies»")
        return self._declared("latency", "latency_source", seconds, source)

    def kfold(self, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Seeded k-fold (train positions, test positions) over all queries."""
        if not 2 <= k <= self.n_queries:
            fix = f"pass «folds» {self.n_queries} or fewer" if self.n_queries >= 2 else "give at least 2 queries"
            raise RoutingInputError(f"k-fold needs 2 <= k <= {self.n_queries} queries, got k={k}; {fix}")
        order = np.random.default_rng(seed).permutation(self.n_queries)
        folds = np.array_split(order, k)
        return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(fold)) for i, fold in enumerate(folds)]


def build_routing_data(
    rows: list[dict],
    models: list[str],
    latency: dict[str, float] | None = None,
    latency_source: dict[str, str] | None = None,
    report: JoinReport | None = None,
    cost_source: dict[str, str] | None = None,
) -> RoutingData:
    """RoutingData from per-query rows.

    Each row: `id`, `query`, `dataset`, `split`, and `results`, a dict model ->
    (label 0/1, solve rate or NaN, answer or None, seconds or NaN[, agreement
    0-1 or NaN]); without the 5th element the agreement is unknown (NaN).
    Every row must cover every model. `latency` (s/query per model) fills unknown seconds.
    A row may carry `usage`, a dict model -> (input tokens, output tokens, USD per query), NaN
    where unknown; `cost_source` names, per model, where its costs came from.
    """
    n, m = len(rows), len(models)
    labels = np.zeros((n, m))
    solve_rates = np.full((n, m), np.nan)
    answers = np.full((n, m), None, dtype=object)
    seconds = np.full((n, m), np.nan)
    agreement = np.full((n, m), np.nan)
    usage = np.full((3, n, m), np.nan)  # input tokens, output tokens, USD
    latency = latency or {}
    for i, row in enumerate(rows):
        for j, model in enumerate(models):
            result = row["results"][model]
            labels[i, j], solve_rates[i, j], answers[i, j], seconds[i, j] = result[:4]
            if len(result) > 4:
                agreement[i, j] = result[4]
            if model in row.get("usage", {}):
                usage[:, i, j] = row["usage"][model]
    for j, model in enumerate(models):
        seconds[np.isnan(seconds[:, j]), j] = latency.get(model, np.nan)
    latency_source = latency_source or {}
    return RoutingData(
        query_ids=tuple(r["id"] for r in rows),
        queries=tuple(r["query"] for r in rows),
        datasets=tuple(r["dataset"] for r in rows),
        splits=tuple(r["split"] for r in rows),
        models=tuple(models),
        labels=labels,
        solve_rates=solve_rates,
        answers=answers,
        latency=seconds,
        latency_source=tuple(latency_source.get(model, "unknown") for model in models),
        report=report or JoinReport(joined=n),
        agreement=agreement,
        input_tokens=usage[0],
        output_tokens=usage[1],
        cost=usage[2],
        cost_source=tuple((cost_source or {}).get(model, "unknown") for model in models),
    )


def concat(parts: list[RoutingData], sources: list[str] | None = None) -> RoutingData:
    """One RoutingData from several with the same models (e.g. train and test tables), in the first part's order.

    `sources` names each part in error messages (e.g. its file); parts from different files whose
    query ids clash get their file prepended to them.
    """
    parts = list(parts)
    models = parts[0].models
    names = sources or [f"input {i + 1}" for i in range(len(parts))]
    for index, (part, name) in enumerate(zip(parts[1:], names[1:]), start=1):
        if set(part.models) == set(models) and len(part.models) == len(models):
            parts[index] = part.with_model_order(models)  # the same pool, listed in another order
        elif part.models != models:
            raise RoutingInputError(
                f"{name}: covers models {', '.join(part.models)}, {names[0]} covers {', '.join(models)}; "
                "use tables of the same pool"
            )
    ids = [i for part in parts for i in part.query_ids]
    if len(set(ids)) != len(ids):
        files = [os.path.realpath(name) for name in names]
        if sources is None or len(set(files)) < len(files):
            raise RoutingInputError("the same query id appears in two inputs; pass each table once")
        # different files whose ids clash (e.g. train/x.json and test/x.json): their paths tell them apart
        parts = [replace(part, query_ids=tuple(f"{name}|{i}" for i in part.query_ids)) for part, name in zip(parts, names)]
        ids = [i for part in parts for i in part.query_ids]
    return RoutingData(
        query_ids=tuple(ids),
        queries=tuple(q for part in parts for q in part.queries),
        datasets=tuple(d for part in parts for d in part.datasets),
        splits=tuple(s for part in parts for s in part.splits),
        models=models,
        latency_source=parts[0].latency_source,
        cost_source=_joined_sources([part.cost_source for part in parts]),
        **{name: np.concatenate([getattr(part, name) for part in parts]) for name in PER_QUERY},
        report=JoinReport(
            joined=len(ids),
            skipped=tuple(s for part in parts for s in part.report.skipped),
            notes=tuple(n for part in parts for n in part.report.notes),
        ),
    )


def _joined_sources(per_part: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Per model, its cost source when every part agrees, else the parts' sources joined with ' + '."""
    return tuple(" + ".join(dict.fromkeys(sources)) for sources in zip(*per_part))


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices of n queries: a seeded `fraction` (0-1) held out, none if it rounds to 0 or all."""
    order = np.random.default_rng(seed).permutation(n)
    held_out = int(round(fraction * n))
    if held_out == 0 or held_out == n:
        return np.sort(order), order[:0]
    return np.sort(order[held_out:]), np.sort(order[:held_out])
