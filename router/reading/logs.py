"""Read what `lm_eval --log_samples --output_path DIR` writes, and plain score tables.

Harness logs (their layout and file reading: lm_routing.reading.harness): one line per (document,
filter). Models are joined on `doc_hash` (a hash of the dataset row, the same
whatever the prompt), so few-shot logs of one model join zero-shot logs of
another, as in the routing paper. Tasks whose name has a `train` part
(`gsm8k_cot_maj10_train`, `mmlu_cot_maj10_train_anatomy`) give training queries.

Score tables: the RouterDC format (a JSON list of `{"question", "scores":
{model: score}}`, optionally `"costs": {model: USD}`), long tables (CSV or JSONL
rows `query, model, score`, optionally `cost`, `input_tokens`, `output_tokens`,
`response`) and wide CSV tables (a score column per model: RouterBench's, with
`<model>|total_cost` and `<model>|model_response`, and RouteLLM's).
A query counts as solved when its score >= the threshold.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import gc
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from lm_routing_tasks.scoring import INVALID, majority_share
from lm_routing.data import TEST, TRAIN, JoinReport, RoutingData, RoutingInputError, build_routing_data
from lm_routing.errors import Note
from lm_routing.reading.harness import (
    LAYOUT_HINT, HarnessRun, document_key, harness_runs, iter_jsonl, load_json, pick_filter, read_text, run_seconds,
    run_tokenizer,
)

MAJ_KEY = re.compile(r"^maj@\d+$")
ANSWER_TYPES = {str, type(None)}  # an extracted answer, or None when unparseable


@dataclass(frozen=True)
class ReadOptions:
    """How to read harness logs: which metric is the label, and what to do with bad input."""

    metric: str | None = None  # per-sample 0/1 field; default: the task's maj@k
    filter: str | None = None  # filter name when a task logs several
    on_missing: str = "error"  # or 'drop': keep only documents every model has
    skip_bad_lines: bool = False
    datasets: tuple[str, ...] = ()  # only these datasets (e.g. gsm8k), chosen before models are joined
    tokenizer: str | None = None  # counts tokens when a run's own tokenizer cannot load offline


@contextlib.contextmanager
def _no_garbage_collection():
    """Reading builds millions of small dicts and no cycles: the cyclic collector would only rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def short_dataset(path: str | None, task: str) -> str:
    return (path or task).rstrip("/").split("/")[-1]


def _role(task: str) -> str:
    return TRAIN if TRAIN in task.split("_") else TEST


def query_text(doc: dict) -> str:
    """The text a router reads for one dataset row: its question field, else the whole row as JSON."""
    for key in ("question", "query", "problem", "input", "prompt", "text"):
        if isinstance(doc.get(key), str):
            return doc[key]
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def _label_key(path: Path, number: int, row: dict, wanted: str | None) -> str:
    """The field holding the 0/1 label, resolved on a filter's first sample (every sample of a task has the same)."""
    if wanted is not None:
        if wanted not in row:
            raise RoutingInputError(f"{path}:{number}: no metric {wanted!r} in the sample; fix «metric»")
        return wanted
    keys = [k for k in row if MAJ_KEY.match(k)]
    metrics = row.get("metrics", [])
    metrics = metrics if isinstance(metrics, list) else []
    listed = [str(m) for m in metrics if MAJ_KEY.match(str(m))]
    if not keys and listed:
        raise RoutingInputError(
            f"{path}:{number}: sample has no '{listed[0]}' field, though its 'metrics' list it; the log is corrupt, re-run lm_eval"
        )
    if len(keys) != 1:
        names = ", ".join(map(str, metrics)) or "none"
        raise RoutingInputError(
            f"{path}:{number}: no single maj@k field to use as the label (metrics: {names}); pass «metric» NAME"
        )
    return keys[0]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fraction(value) -> float | None:
    """`value` as a float 0-1 (NaN kept), or None when it is not one; never overflows on huge integers."""
    if not _is_number(value) or (isinstance(value, int) and value not in (0, 1)):
        return None
    return float(value) if math.isnan(value) or 0 <= value <= 1 else None


def sample_agreement(filtered_resps) -> float:
    """Vote share 0-1 of the majority among a document's K answers, when `filtered_resps` is
    one list of K >= 2 of them (our tasks' 'answers' filter); NaN otherwise (e.g. lm-eval's own tasks)."""
    if not (isinstance(filtered_resps, list) and len(filtered_resps) == 1 and isinstance(filtered_resps[0], list)):
        return math.nan
    answers = filtered_resps[0]
    if len(answers) < 2 or not {type(a) for a in answers} <= ANSWER_TYPES:
        return math.nan
    return majority_share(answers)


@dataclass
class _FilterDocuments:
    """The documents of one filter of a samples file, and the label field its first sample resolved."""

    label_key: str
    documents: dict[str, dict]


def _read_samples(path: Path, task: str, dataset: str, options: ReadOptions, skipped: list[str], tokenizer) -> dict[str, dict]:
    """document key -> document of one samples file, in one streamed pass (no row is kept, only documents;
    prompts and completions are counted in tokens as they pass, by `tokenizer` (see `token_usage`), never held).

    Each filter's documents are kept until the file's end, where the filter is chosen (one per
    task is the norm); with a filter named, other filters' lines are skipped as they come.
    """
    by_filter: dict[str, _FilterDocuments] = {}
    split = _role(task)
    for number, row in iter_jsonl(path, options.skip_bad_lines, skipped):
        for key in ("doc_hash", "doc", "filter"):
            if key not in row:
                raise RoutingInputError(
                    f"{path}:{number}: sample has no '{key}' field; {LAYOUT_HINT} (re-run with lm-eval>=0.4.13)"
                )
        name = row["filter"]
        if not isinstance(name, str):
            raise RoutingInputError(f"{path}:{number}: 'filter' is {_shown(name)}, not a filter name; the log is corrupt, re-run lm_eval")
        if options.filter is not None and name != options.filter:
            by_filter.setdefault(name, None)
            continue
        doc_id = _checked_doc_id(path, number, row)
        found = by_filter.get(name)
        if found is None:
            found = by_filter[name] = _FilterDocuments(_label_key(path, number, row, options.metric), {})
        key = found.label_key
        if key not in row:
            _label_key(path, number, row, options.metric)  # raises the specific message: no label, or not the one listed
            raise RoutingInputError(f"{path}:{number}: sample has no '{key}' field, unlike line 1 of its filter; the log is corrupt, re-run lm_eval")
        value = row[key]
        if not _is_number(value) or not 0 <= value <= 1:
            raise RoutingInputError(f"{path}:{number}: {key} is {_shown(value)}, not a 0/1 label; the log is corrupt, re-run lm_eval")
        solve_rate = _fraction(row.get("solve_rate", math.nan))  # NaN: the task logs no solve rate
        if solve_rate is None:
            raise RoutingInputError(
                f"{path}:{number}: solve_rate is {_shown(row['solve_rate'])}, not a fraction 0-1; the log is corrupt, re-run lm_eval"
            )
        answer, responses = row.get("majority"), row.get("filtered_resps")
        if answer is None and isinstance(responses, list) and responses and isinstance(responses[0], str):
            answer = responses[0]
        document = document_key(row["doc_hash"], doc_id)
        if document in found.documents:
            raise RoutingInputError(
                f"{path}:{number}: duplicate document (doc_id {doc_id}) also at line "
                f"{found.documents[document]['line']}; remove the duplicate lines"
            )
        found.documents[document] = {
            "line": number,
            "where": f"{path}:{number}",
            "doc_id": doc_id,
            "task": task,
            "query": query_text(row["doc"]),
            "dataset": dataset,
            "split": split,
            "result": [float(value >= 0.5), solve_rate, None if answer in (None, INVALID) else str(answer), math.nan,
                       sample_agreement(responses)],
            "usage": token_usage(*request_texts(row), tokenizer),
        }
    if not by_filter:
        raise RoutingInputError(f"{path}: no samples in the file; re-run lm_eval with --log_samples")
    return by_filter[pick_filter(path, set(by_filter), options.filter)].documents


def request_texts(row: dict) -> tuple[str, str]:
    """(prompt, completion) text of one logged sample: every string argument of its requests (`arguments`;
    a multiple-choice task scores each choice, so all count), and its first completion (`resps`: one
    generation, what a deployed single answer costs; loglikelihood tasks generate none: '')."""
    arguments = row.get("arguments")
    requests = arguments.values() if isinstance(arguments, dict) else arguments if isinstance(arguments, list) else []
    prompt = []
    for request in requests:
        parts = request.values() if isinstance(request, dict) else request if isinstance(request, list) else [request]
        prompt += [part for part in parts if isinstance(part, str)]
    resps = row.get("resps")
    first = resps[0] if isinstance(resps, list) and resps and isinstance(resps[0], list) and resps[0] else [None]
    return "".join(prompt), first[0] if isinstance(first[0], str) else ""


CHARS_PER_TOKEN = 4  # the approximation when no tokenizer loads: a token is about 4 characters of English


def token_usage(prompt: str, completion: str, tokenizer) -> tuple[float, float, float]:
    """(prompt tokens, completion tokens, NaN USD), counted by `tokenizer` (no special tokens added), or as
    characters / CHARS_PER_TOKEN (rounded up) when it is None."""
    if tokenizer is None:
        counts = [math.ceil(len(text) / CHARS_PER_TOKEN) for text in (prompt, completion)]
    else:
        counts = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0 for text in (prompt, completion)]
    return float(counts[0]), float(counts[1]), math.nan


def _checked_doc_id(path: Path, number: int, row: dict) -> int:
    """The sample's doc_id (its line number when absent), after checking the types of its document fields."""
    if not isinstance(row["doc"], dict):
        raise RoutingInputError(f"{path}:{number}: 'doc' is not an object (the dataset row); {LAYOUT_HINT}")
    if not isinstance(row["doc_hash"], str):
        raise RoutingInputError(f"{path}:{number}: 'doc_hash' is {_shown(row['doc_hash'])}, not a hash string; the log is corrupt, re-run lm_eval")
    doc_id = row.get("doc_id", number)
    if not isinstance(doc_id, int) or isinstance(doc_id, bool) or not 0 <= doc_id < 2**63:
        raise RoutingInputError(
            f"{path}:{number}: doc_id is {_shown(doc_id)}, not a document number (0, 1, ...); the log is corrupt, re-run lm_eval"
        )
    return doc_id


def _shown(value) -> str:
    """A value for a one-line message: its repr, cut to 40 characters (a hostile value can be huge)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class _ModelLogs:
    documents: dict[str, dict]
    seconds: float = 0.0
    n_docs: int = 0
    sources: tuple[str, ...] = ()
    tokens: str = "unknown"  # how its tokens were counted


def _read_run(run: HarnessRun, options: ReadOptions, skipped: list[str]) -> _ModelLogs:
    """The documents of one pool member's run (`run`, not a routed one)."""
    results, results_path = run.results, run.results_path
    logs = _ModelLogs(documents={}, sources=(str(results_path),))
    tokenizer, name = run_tokenizer(results, options.tokenizer, results_path)
    logs.tokens = f"tokenizer {name}" if tokenizer is not None else (
        f"approximation: characters/{CHARS_PER_TOKEN} (tokenizer {name or 'unknown'} not available offline; pass «tokenizer»)")
    for task, config, samples in run.tasks:
        dataset = short_dataset(config.get("dataset_path") if isinstance(config, dict) else None, task)
        documents = _read_samples(samples, task, dataset, options, skipped, tokenizer)
        for doc_hash, doc in documents.items():
            if doc_hash in logs.documents:
                raise RoutingInputError(
                    f"{doc['where']}: duplicate document, also at {logs.documents[doc_hash]['where']}; "
                    "remove one of the two runs"
                )
            logs.documents[doc_hash] = doc
    logs.n_docs = len(logs.documents)
    logs.seconds = run_seconds(results, results_path)
    for doc in logs.documents.values():
        doc["result"][3] = logs.seconds / max(logs.n_docs, 1)
    return logs


def _merge(into: _ModelLogs, other: _ModelLogs) -> None:
    for doc_hash, doc in other.documents.items():
        if doc_hash in into.documents:
            raise RoutingInputError(
                f"{doc['where']}: duplicate document, also at {into.documents[doc_hash]['where']}; "
                "two runs of one model overlap: remove one"
            )
        into.documents[doc_hash] = doc
    into.seconds += other.seconds
    into.n_docs += other.n_docs
    into.sources += other.sources


def read_harness_logs(root: Path | str, options: ReadOptions = ReadOptions()) -> RoutingData:
    """Join the sample logs of every model under `root` into RoutingData.

    Latency per model is the run's `total_evaluation_time_seconds` divided by
    the documents it scored (all K samples of a query included), in s/query.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise RoutingInputError(f"{root}: not a folder; pass «logs» DIR, the folder lm_eval --output_path wrote")
    if not root.is_dir():
        raise RoutingInputError(f"{root}: no such folder; run lm_eval --log_samples --output_path {root} or pass «logs» DIR")
    skipped: list[str] = []
    by_model: dict[str, _ModelLogs] = {}
    routed: list[str] = []
    with _no_garbage_collection():
        for run in harness_runs(root):
            if run.routed:  # the pool's own choice, not a member
                routed.append(str(run.results_path))
                continue
            model, logs = run.model, _read_run(run, options, skipped)
            if model in by_model:  # another shard of the model: a rank's or a job's run (see log_files)
                _merge(by_model[model], logs)
            else:
                by_model[model] = logs
    if not by_model:
        raise RoutingInputError(f"{root}: only routed outputs (lm_eval --model routed, «output_path» or demo); "
                                "pass the folder of the members' runs")
    by_model, pool_notes = _common_pool(_only_datasets(by_model, options.datasets))
    data = _join(by_model, options, skipped)
    if pool_notes:
        data = replace(data, report=replace(data.report, notes=(*data.report.notes, *pool_notes)))
    if routed:
        note = Note("routed-runs-left-out", runs=len(routed), example=routed[0], paths=routed)  # the words: a count, one path
        data = replace(data, report=replace(data.report, notes=(*data.report.notes, note)))
    return data


def _only_datasets(by_model: dict[str, _ModelLogs], datasets: tuple[str, ...]) -> dict[str, _ModelLogs]:
    """Each model's documents of `datasets` only (all when empty, or when none matches: `datasets` then names the
    datasets there are); models left without any are dropped, as they are not run on these datasets."""
    wanted = set(datasets)
    if not wanted or not any(d["dataset"] in wanted for logs in by_model.values() for d in logs.documents.values()):
        return by_model
    kept = {}
    for model, logs in by_model.items():
        documents = {h: d for h, d in logs.documents.items() if d["dataset"] in wanted}
        if documents:
            kept[model] = replace(logs, documents=documents)
    return kept


def _common_pool(by_model: dict[str, _ModelLogs]) -> tuple[dict[str, _ModelLogs], list[Note]]:
    """(the models logged on every dataset of the stream, a note per model left out for lacking a whole dataset).

    A pool per benchmark (the routing paper's: llama2-7b on MMLU only) reads as one mixed stream of the
    models they share; a model that lacks only some documents of a dataset is still an error (see `_join`),
    and so is a dataset that at most half of the models have (a misplaced run: `_blame_misplaced_dataset`).
    """
    covered = {model: {d["dataset"] for d in logs.documents.values()} for model, logs in by_model.items()}
    every = set().union(*covered.values())
    if any(2 * sum(dataset in datasets for datasets in covered.values()) <= len(covered) for dataset in every):
        return by_model, []
    shared = {model for model, datasets in covered.items() if datasets == every}
    if not shared or len(shared) == len(by_model):
        return by_model, []
    notes = [Note("left-out-of-mixed-stream", ("datasets",), model=model, logged_for=sorted(covered[model]),
                  missing=sorted(every - covered[model])) for model in sorted(set(by_model) - shared)]
    return {model: logs for model, logs in by_model.items() if model in shared}, notes


def _skipped_lines(lines: list[str]) -> tuple[tuple[Note, int], ...]:
    """The join report's entry for the malformed lines skipped (file:line each)."""
    return ((Note("malformed-lines-skipped", ("skip_bad_lines",), lines=list(lines)), len(lines)),) if lines else ()


def _blame_misplaced_dataset(by_model: dict[str, _ModelLogs]) -> None:
    """Raise naming the file when a dataset is logged for no more than half of the models (a run misplaced
    into another model's folder, say), rather than blaming the models that lack it. Datasets, not tasks:
    two prompts of one dataset (zero- and few-shot tasks) join."""
    first_doc: dict[tuple[str, str], dict] = {}
    for model, logs in by_model.items():
        for doc in logs.documents.values():
            first_doc.setdefault((doc["dataset"], model), doc)
    holders: dict[str, list[str]] = defaultdict(list)
    for dataset, model in first_doc:
        holders[dataset].append(model)
    for dataset, models in sorted(holders.items()):
        if 2 * len(models) <= len(by_model):
            doc = first_doc[dataset, models[0]]
            raise RoutingInputError(
                f"{doc['where'].rpartition(':')[0]}: dataset {dataset} ({doc['task']}) is logged for model(s) "
                f"{', '.join(sorted(models))} only, not for the other {len(by_model) - len(models)}; "
                "move the run to where it belongs, remove it, or pass «on_missing» drop"
            )


def _join(by_model: dict[str, _ModelLogs], options: ReadOptions, skipped_lines: list[str]) -> RoutingData:
    models = sorted(by_model)
    every = set().union(*(logs.documents for logs in by_model.values()))
    common = set.intersection(*(set(logs.documents) for logs in by_model.values()))
    skipped = list(_skipped_lines(skipped_lines))
    if len(common) < len(every):
        if options.on_missing != "drop":
            _blame_misplaced_dataset(by_model)
        for model in models:
            missing = every - set(by_model[model].documents)
            if missing and options.on_missing != "drop":
                example = next(
                    logs.documents[h] for logs in by_model.values() for h in sorted(missing) if h in logs.documents
                )
                place = (example["dataset"], example["split"], example["doc_id"])
                twin = next((d for d in by_model[model].documents.values() if (d["dataset"], d["split"], d["doc_id"]) == place), None)
                differs = f", whose text differs from doc_id {twin['doc_id']} at {twin['where']} (another doc_hash)" if twin else ""
                raise RoutingInputError(
                    f"{by_model[model].sources[0]}: model {model} lacks {len(missing)} of {len(every)} documents "
                    f"the other models have (e.g. doc_id {example['doc_id']} at {example['where']}{differs}); "
                    "run every model on the same dataset, tasks and --limit, or pass «on_missing» drop"
                )
        skipped.append((Note("not-logged-for-every-model", ("on_missing",)), len(every) - len(common)))
    if not common:
        raise RoutingInputError("no document was logged for every model; the runs cover different documents")
    rows = []
    first = by_model[models[0]].documents
    for doc_hash in sorted(common, key=lambda h: (first[h]["split"], first[h]["dataset"], first[h]["task"], first[h]["doc_id"])):
        splits = {by_model[m].documents[doc_hash]["split"] for m in models}
        if len(splits) > 1:
            raise RoutingInputError(
                f"{first[doc_hash]['where']}: document used as training data by one model and as test by another; "
                "run every model on the same splits"
            )
        base = first[doc_hash]
        rows.append({
            "id": doc_hash,
            "query": base["query"],
            "dataset": base["dataset"],
            "split": base["split"],
            "results": {m: tuple(by_model[m].documents[doc_hash]["result"]) for m in models},
            "usage": {m: by_model[m].documents[doc_hash]["usage"] for m in models},
        })
    source = {
        m: f"total_evaluation_time_seconds / documents of {len(by_model[m].sources)} run(s)"
        if not math.isnan(by_model[m].seconds)
        else "unknown (no valid total_evaluation_time_seconds in the results file; declare it with «latencies» MODEL=SECONDS)"
        for m in models
    }
    report = JoinReport(joined=len(rows), skipped=tuple(skipped), notes=(Note("pool", models=list(models)),))
    tokens = {m: f"unknown: tokens by {by_model[m].tokens}; give «price_file» FILE" for m in models}
    return build_routing_data(rows, models, latency_source=source, report=report, cost_source=tokens)


def _check_score(path: Path, where: str, model: str, score) -> float:
    try:
        value = math.nan if isinstance(score, bool) else float(score)
    except (TypeError, ValueError, OverflowError):
        value = math.nan if not _is_number(score) else math.inf  # OverflowError: an integer past float's range
    if math.isnan(value):
        raise RoutingInputError(f"{path}: {where}: score of {model} is {_shown(score)}, not a number; fix the table")
    if not 0.0 <= value <= 1.0:
        raise RoutingInputError(f"{path}: {where}: score of {model} is {_shown(score)}, outside 0-1; fix the table (scores are fractions 0-1)")
    return value


def _dataset_of(path: Path) -> str:
    return re.sub(r"[_-](train|test|val|validation)$", "", path.stem)


@dataclass
class _Entry:
    """One query of a score table: where it is (for messages), its text, score per model, and per model
    what else the table gives: `usage` (input tokens, output tokens, USD; NaN unknown) and `answers`."""

    where: str
    query: str
    scores: dict[str, float]
    usage: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    answers: dict[str, str | None] = field(default_factory=dict)


def read_score_table(path: Path | str, split: str, threshold: float = 0.5, on_missing: str = "error",
                     skip_bad_lines: bool = False) -> RoutingData:
    """RoutingData from a score table: a RouterDC JSON list (optional `costs` map beside `scores`), a long
    CSV/JSONL `query, model, score` table (optional `cost`, `input_tokens`, `output_tokens`, `response`
    fields), or a wide CSV (a score column per model, see `_wide_entries`). Costs are USD per query."""
    path = Path(path)
    if not path.is_file():
        raise RoutingInputError(f"{path}: no such file; check «scores» / «test_scores»")
    skipped_lines: list[str] = []
    if path.suffix == ".json":
        entries = _routerdc_entries(path)
    elif path.suffix == ".csv" and not _is_long_csv(path):
        entries = _wide_entries(path)
    elif path.suffix in (".jsonl", ".csv"):
        entries = _long_entries(path, skip_bad_lines, skipped_lines)
    else:
        raise RoutingInputError(f"{path}: unknown table format; use .json (RouterDC list), .jsonl or .csv (query, model, score)")
    if not entries:
        raise RoutingInputError(f"{path}: the table has no rows")
    models = list(dict.fromkeys(m for entry in entries for m in entry.scores))
    dataset = _dataset_of(path)
    rows, dropped = [], 0
    for entry in entries:
        missing = [m for m in models if m not in entry.scores]
        if missing:
            if on_missing != "drop":
                raise RoutingInputError(
                    f"{path}: {entry.where}: no score for {', '.join(missing)}; complete the row or pass «on_missing» drop"
                )
            dropped += 1
            continue
        rows.append({
            "id": f"{path.name}:{entry.where}",
            "query": entry.query,
            "dataset": dataset,
            "split": split,
            "results": {m: (float(entry.scores[m] >= threshold), entry.scores[m], entry.answers.get(m), math.nan)
                        for m in models},
            "usage": entry.usage,
        })
    skipped = _skipped_lines(skipped_lines) + (((Note("rows-without-every-score", ("on_missing",)), dropped),) if dropped else ())
    report = JoinReport(joined=len(rows), skipped=skipped, notes=(Note("score-table", path=str(path), models=len(models),
                                                                       threshold=threshold),))
    priced = {m for entry in entries for m, usage in entry.usage.items() if not math.isnan(usage[2])}
    return build_routing_data(rows, models, report=report,
                              cost_source={m: f"table cost column ({path.name})" for m in priced})


def _usage_number(path: Path, where: str, what: str, value) -> float:
    """A cost (USD) or token count of a table: a finite number >= 0; anything else raises naming the place."""
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise RoutingInputError(f"{path}: {where}: {what} is {_shown(value)}, not a number >= 0; fix the table")
    return number


def _routerdc_entries(path: Path) -> list[_Entry]:
    data = load_json(path)
    if not isinstance(data, list):
        raise RoutingInputError(f"{path}: expected a JSON list of {{'question', 'scores'}} objects (RouterDC format)")
    entries = []
    for index, item in enumerate(data):
        where = f"item {index}"
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not isinstance(item.get("scores"), dict):
            raise RoutingInputError(f"{path}: {where} lacks 'question' (text) or 'scores' (object); fix the table")
        scores = {_model_name(path, where, m): _check_score(path, where, m, s) for m, s in item["scores"].items()}
        costs = item.get("costs", {})
        if not isinstance(costs, dict):
            raise RoutingInputError(f"{path}: {where}: 'costs' is not an object (model -> USD per query); fix the table")
        unknown = sorted(set(map(str, costs)) - set(scores))
        if unknown:
            raise RoutingInputError(f"{path}: {where}: 'costs' names {', '.join(unknown)}, which 'scores' lacks; fix the table")
        usage = {str(m): (math.nan, math.nan, _usage_number(path, where, f"cost of {m}", c)) for m, c in costs.items()}
        entries.append(_Entry(where, item["question"], scores, usage))
    return entries


LONG_COLUMNS = ("query", "model", "score")
USAGE_FIELDS = ("input_tokens", "output_tokens", "cost")  # optional in long tables: tokens, USD per query
RESPONSE_FIELDS = ("response", "answer")  # optional in long tables: the model's answer, normalised
WIDE_QUERY_COLUMNS = ("prompt", "query", "question")
WIDE_NOT_MODELS = ("", "sample_id", "id", "eval_name", "oracle_model_to_route_to", "dataset", "split")
MISSING_CELLS = ("", "nan", "none", "null")


def _is_long_csv(path: Path) -> bool:
    """True when the CSV's header has a `model` column (the long layout); otherwise it is read as wide."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return True  # the long reader names the error
    return "model" in header


def _csv_records(path: Path, columns: tuple[str, ...] = LONG_COLUMNS, any_of: bool = False):
    """(line number, row dict) of a CSV table, streamed; a missing column (all of `columns`, or one of them
    with `any_of`), a too-long field or bad UTF-8 raise with the line. The line is the row's first."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise RoutingInputError(f"{path}: cannot read ({error.strerror}); check permissions") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            found = set(reader.fieldnames or ())
            if not (found & set(columns) if any_of else set(columns) <= found):
                quoted = [f"'{c}'" for c in columns]
                need = " or ".join(quoted) if any_of else ", ".join(quoted[:-1]) + " and " + quoted[-1] if len(quoted) > 1 else quoted[0]
                raise RoutingInputError(
                    f"{path}:1: needs {need} column{'' if any_of else 's'} (found {', '.join(reader.fieldnames or ()) or 'none'}); "
                    "fix the header"
                )
            start = reader.line_num + 1
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except UnicodeDecodeError:
            read_text(path)  # decodes in blocks, so the reader's line number is not the bad one: this names it
            raise
        except csv.Error as error:  # raised while reading the line after line_num
            fix = ("shorten it or use a .jsonl table" if "field limit" in str(error)
                   else "quote fields that hold commas or line breaks")
            raise RoutingInputError(f"{path}:{reader.line_num + 1}: unreadable CSV ({error}); {fix}") from None


def _long_entries(path: Path, skip_bad_lines: bool, skipped: list[str]) -> list[_Entry]:
    records = iter_jsonl(path, skip_bad_lines, skipped) if path.suffix == ".jsonl" else _csv_records(path)
    by_query: dict[str, _Entry] = {}
    for number, record in records:
        if not set(LONG_COLUMNS) <= set(record):
            raise RoutingInputError(f"{path}:{number}: needs 'query', 'model' and 'score' fields; fix the line")
        query, model = str(record["query"]), _model_name(path, f"line {number}", record["model"])
        entry = by_query.setdefault(query, _Entry(f"line {number}", query, {}))
        if model in entry.scores:
            raise RoutingInputError(f"{path}:{number}: second score for ({query[:40]!r}, {model}); remove the duplicate")
        entry.scores[model] = _check_score(path, f"line {number}", model, record["score"])
        usage = [_usage_number(path, f"line {number}", field_name, record[field_name]) if field_name in record else math.nan
                 for field_name in USAGE_FIELDS]
        if not all(math.isnan(u) for u in usage):
            entry.usage[model] = tuple(usage)
        response = next((record[f] for f in RESPONSE_FIELDS if f in record), None)
        if response is not None:
            entry.answers[model] = normalise_answer(response)
    return list(by_query.values())


def _wide_entries(path: Path) -> list[_Entry]:
    """Entries of a wide CSV: one row per query, a score column per model.

    The rule: the query is the first of the columns `prompt`, `query`, `question`. The models are the
    columns X that have a companion column `X|total_cost` or `X|model_response` (RouterBench's layout);
    a table with no companion columns (RouteLLM's) takes as models every other column, but for unnamed
    index columns and `sample_id`, `id`, `eval_name`, `oracle_model_to_route_to`, `dataset`, `split`.
    A score cell that is empty or `nan` is a missing score (see `on_missing`); `X|total_cost` must be a
    number >= 0 in every row (USD per query); `X|model_response` becomes the answer (`normalise_answer`).
    """
    records = list(_csv_records(path, WIDE_QUERY_COLUMNS, any_of=True))
    if not records:
        return []
    columns = list(records[0][1])
    query_column = next(c for c in WIDE_QUERY_COLUMNS if c in columns)
    companions = {c.rpartition("|")[0] for c in columns if c.endswith(("|total_cost", "|model_response"))}
    if companions:
        models = [c for c in columns if c in companions]
        lost = sorted(companions - set(models))
        if lost:
            raise RoutingInputError(f"{path}:1: columns for {lost[0]} (e.g. {lost[0]}|total_cost) but no score column "
                                    f"{lost[0]!r}; add it or remove its columns")
    else:
        models = [c for c in columns if c != query_column and c not in WIDE_NOT_MODELS and not c.startswith("Unnamed")]
    if not models:
        raise RoutingInputError(f"{path}:1: no model score columns beside {query_column!r}; "
                                "a wide table has one score column per model")
    entries = []
    for number, record in records:
        where = f"line {number}"
        scores = {m: _check_score(path, where, m, record[m]) for m in models
                  if str(record[m] or "").strip().lower() not in MISSING_CELLS}
        usage = {m: (math.nan, math.nan, _usage_number(path, where, f"{m}|total_cost", record[f"{m}|total_cost"]))
                 for m in models if f"{m}|total_cost" in record}
        answers = {m: normalise_answer(record[f"{m}|model_response"]) for m in models if f"{m}|model_response" in record}
        entries.append(_Entry(where, str(record[query_column] or ""), scores, usage, answers))
    return entries


MC_LETTER = re.compile(r"^(?:the\s+)?(?:answer\s*(?:is)?\s*[:\-]?\s*)?\(?([A-J])(?:\s*$|[).:,]|\s+\()", re.IGNORECASE)
NUMBER = re.compile(r"^[-+]?\$?\d[\d,]*(?:\.\d+)?$")


def normalise_answer(response) -> str | None:
    """A model's answer text as comparable answer, so that two models' answers can be tested for agreement.

    In order: a Python list literal (RouterBench logs `"['A']"`) gives its first item; surrounding space
    is dropped; empty, `nan` or `None` give None (no answer). Then, the first rule that applies:
    - multiple-choice letter: a letter A-J alone or followed by `)`, `.`, `:`, `,` or ` (`, optionally after
      `answer:` or `the answer is` (`"B\\n"`, `"(c)"`, `"A) dry palms"`, `"Answer: D"`) -> the upper-case letter;
    - number: digits with optional sign, `$`, thousands commas, decimals, a trailing period
      (`"1,200."`) -> its shortest decimal form (`"1200"`, `"0.5"`);
    - exact text: anything else -> lower-cased, runs of white space made one space, a trailing period dropped.
    """
    if response is None or (isinstance(response, float) and math.isnan(response)):
        return None
    text = str(response).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            items = None
        if isinstance(items, list):
            text = str(items[0]).strip() if items else ""
    if text.lower() in MISSING_CELLS:
        return None
    letter = MC_LETTER.match(text)
    if letter:
        return letter.group(1).upper()
    number = text.rstrip(".")
    if NUMBER.match(number):
        value = float(number.replace(",", "").replace("$", ""))
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    return " ".join(text.lower().split()).rstrip(".")


def _model_name(path: Path, where: str, name) -> str:
    """A table's model name: non-empty text (numbers, as CSV cells may hold, are read as text)."""
    if isinstance(name, (dict, list, bool)) or name is None or not str(name).strip():
        raise RoutingInputError(f"{path}: {where}: model name {_shown(name)} is empty or not text; name the model")
    return str(name)


def read_queries(path: Path | str) -> list[tuple[str, str | None]]:
    """Queries to route, each with its dataset where the file names it: a text file (one query per line,
    dataset unknown) or JSONL with a 'question'/'query' field and an optional 'dataset' name."""
    path = Path(path)
    if not path.is_file():
        raise RoutingInputError(f"{path}: no such file; check «queries_file»")
    if path.suffix != ".jsonl":
        return [(line.strip(), None) for line in read_text(path).splitlines() if line.strip()]
    queries = []
    for number, row in iter_jsonl(path, False, None):
        text, dataset = row.get("question", row.get("query")), row.get("dataset")
        if not isinstance(text, str):
            raise RoutingInputError(f"{path}:{number}: no 'question' or 'query' text field")
        if dataset is not None and not isinstance(dataset, str):
            raise RoutingInputError(f"{path}:{number}: 'dataset' is {type(dataset).__name__}, not a name; give a string or leave it out")
        queries.append((text, dataset))
    return queries
