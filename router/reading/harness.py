"""lm-eval's output layout, in one place: where `lm_eval --log_samples --output_path DIR` puts
its files, what they are called, how they are read, and how we write files of the same shape.

Layout (lm-eval 0.4.x): `DIR/<sanitized model>/results_<time>.json` beside one
`samples_<task>_<time>.jsonl` per task of that run, one JSON object a line per (document,
filter). `<time>` is the run's start, ISO 8601 with ':' as '-' (`timestamp`). Each sample
carries `doc_hash`, a hash of the dataset row (`doc_hash`), the same whatever the prompt,
so runs of different prompts join on it (`document_key`).

Reading raises RoutingInputError naming the file (and line) and the fix. Writing is
rendering: `run_files` turns plain records into file texts, which the caller writes
through lm_routing.reading.publish (never overwriting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonlines
import orjson

from lm_routing.data import RoutingInputError

LAYOUT_HINT = "expected lm-eval 0.4.x output: <dir>/<model>/results_<time>.json beside samples_<task>_<time>.jsonl"
RESULTS_PREFIX = "results_"
_DOCUMENT_KEY = re.compile(r"(?P<hash>[0-9a-f]{64})#\d+")


# names ------------------------------------------------------------------------


def timestamp(at: dt.datetime | None = None) -> str:
    """lm-eval's run time in file names, of `at` (default: now): 2026-11-25T03-37-02.181593."""
    return (at or dt.datetime.now()).isoformat().replace(":", "-")


def sanitize_model_name(name: str) -> str:
    """The folder name of a model: runs of characters other than letters, digits, '_', '.', '-' become '__'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "__", name)


def results_name(stamp: str) -> str:
    return f"{RESULTS_PREFIX}{stamp}.json"


def samples_name(task: str, stamp: str) -> str:
    return f"samples_{task}_{stamp}.jsonl"


def run_stamp(results_path: Path) -> str:
    """The `<time>` of a results_<time>.json: its samples files end in `_<time>.jsonl`."""
    return results_path.stem[len(RESULTS_PREFIX):]


# document identity ------------------------------------------------------------


def text_hash(text: str) -> str:
    """lm-eval's hash of a text (`lm_eval.utils.hash_string`): SHA-256 of its UTF-8, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def doc_hash(doc: dict) -> str:
    """lm-eval's `doc_hash` of a dataset row: the hash of its JSON as the evaluator dumps it."""
    from lm_eval.utils import handle_non_serializable  # the evaluator's own fallback for non-JSON values

    return text_hash(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))


def document_key(doc_hash: str, doc_id) -> str:
    """How documents are joined: doc_hash identifies the dataset row whatever the prompt; doc_id tells
    apart rows that are identical but sit at two positions of the split (real MMLU has some)."""
    return f"{doc_hash}#{doc_id}"


def doc_key(doc: dict, doc_id) -> str:
    """The `document_key` of a dataset row at position `doc_id`, as its sample log would give it."""
    return document_key(doc_hash(doc), doc_id)


def key_hash(key: str) -> str | None:
    """The doc_hash inside a `document_key`, or None when `key` is not one (a score table's row id, say)."""
    match = _DOCUMENT_KEY.fullmatch(key)
    return match["hash"] if match else None


# reading ----------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The file as text (UTF-8, BOM dropped); unreadable or non-UTF-8 files raise with the line at fault."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RoutingInputError(f"{path}: cannot read ({error.strerror}); check permissions") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RoutingInputError(f"{path}:{line}: not UTF-8 text; re-export the file as UTF-8") from None


BIG_LINE = 1 << 20  # bytes: a line this long is parsed only with room for PARSE_FACTOR times its size
PARSE_FACTOR = 8


def _room_for(n_bytes: int) -> bool:
    """Whether this process's address-space limit (RLIMIT_AS, when set) leaves `n_bytes` beyond what it maps now."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return True
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return True
    return mapped + n_bytes <= soft


def _parse_json(text: str | bytes):
    """json.loads' values, parsed by orjson (several times faster); what orjson refuses but json.loads
    reads (NaN, integers past 64 bits, nesting past 1024) or rejects with its own message goes to json.loads.
    A long line near the memory limit raises MemoryError first: orjson can crash (SIGSEGV) when an allocation
    inside it fails, where a MemoryError ends the command in one line."""
    if len(text) > BIG_LINE and not _room_for(PARSE_FACTOR * len(text)):
        raise MemoryError(f"no room to parse a line of {len(text)} bytes")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _json_problem(error: Exception) -> str:
    """What is wrong with a JSON text, in a few words, from json.loads' exception."""
    if isinstance(error, RecursionError):
        return "nested too deep to read; lm-eval never writes such JSON"
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg}, column {error.colno}"
    return str(error).splitlines()[0]  # e.g. an integer of more than 4300 digits


def load_json(path: Path):
    try:
        return _parse_json(read_text(path))
    except (ValueError, RecursionError) as error:
        line = f":{error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise RoutingInputError(
            f"{path}{line}: not valid JSON ({_json_problem(error)}); restore the file or re-run what wrote it"
        ) from None


class _UnreadableJson(ValueError):
    """JSON that json.loads gives up on without a ValueError (nesting past the recursion limit)."""


def _parse_line(text: str | bytes):
    """`_parse_json` for one JSONL line; every failure is a ValueError, which jsonlines reports with its line."""
    try:
        return _parse_json(text)
    except RecursionError as error:
        raise _UnreadableJson(_json_problem(error)) from None


def iter_jsonl(path: Path, skip_bad_lines: bool, skipped: list[str] | None):
    """(line number, object) for each non-empty line, streamed through `jsonlines` (orjson as its parser); bad
    lines raise or, when skipping, are recorded in `skipped`.

    `skipped` is None where the caller cannot skip bad lines (the message then does not offer it).
    """
    try:
        handle = path.open("rb")
    except OSError as error:
        raise RoutingInputError(f"{path}: cannot read ({error.strerror}); check permissions") from None
    or_skip = "" if skipped is None else " or pass «skip_bad_lines»"
    where = [0]  # the line jsonlines read last: its number for the rows it returns

    def counted():
        for where[0], raw in enumerate(handle, start=1):
            yield raw

    with handle, jsonlines.Reader(counted(), loads=_parse_line) as reader:
        while True:
            try:
                row = reader.read(type=dict, skip_empty=True)
            except EOFError:
                return
            except jsonlines.InvalidLineError as error:
                if not skip_bad_lines:
                    raise RoutingInputError(f"{path}:{error.lineno}: {_line_problem(error)}{or_skip}") from None
                skipped.append(f"{path}:{error.lineno}")
                continue
            yield where[0], row


def _line_problem(error: jsonlines.InvalidLineError) -> str:
    """What is wrong with one JSONL line, and the fix."""
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return "not UTF-8 text; re-export the file as UTF-8"
    if cause is None:  # null, or valid JSON that is not an object
        return "malformed JSON line (line is not a JSON object); fix the file"
    return f"malformed JSON line ({_json_problem(cause)}); fix the file"


def pick_filter(path: Path, filters: set[str], wanted: str | None) -> str:
    """The filter whose lines to read: `wanted`, the only one, or 'answers' (our tasks'); else raise."""
    if wanted is not None:
        if wanted not in filters:
            raise RoutingInputError(f"{path}: no filter {wanted!r} (found {', '.join(sorted(filters))}); fix «filter»")
        return wanted
    if len(filters) == 1:
        return next(iter(filters))
    if "answers" in filters:
        return "answers"
    raise RoutingInputError(f"{path}: several filters ({', '.join(sorted(filters))}); choose one with «filter»")



def log_files(root: Path) -> tuple[list[Path], list[Path]]:
    """The results_*.json and samples_*.jsonl files under `root` (links followed, each real folder once), sorted."""

    def unreadable(error: OSError):  # rglob would skip the folder, silently dropping its models
        raise RoutingInputError(f"{error.filename}: cannot list ({error.strerror}); check permissions")

    files, visited = [], {os.path.realpath(root)}
    for folder, subfolders, names in os.walk(root, onerror=unreadable, followlinks=True):
        # links are followed (a shard may be linked in), each real folder once: a link loop ends here
        kept = []
        for name in sorted(subfolders):
            real = os.path.realpath(os.path.join(folder, name))
            if real not in visited:
                visited.add(real)
                kept.append(name)
        subfolders[:] = kept
        files += [Path(folder, name) for name in names]
    return sorted(f for f in files if f.match(f"{RESULTS_PREFIX}*.json")), sorted(f for f in files if f.match("samples_*.jsonl"))



def read_results(results_path: Path) -> tuple[dict, str]:
    """(results JSON, model name) of one lm-eval 0.4.x run; anything else raises with the file named."""
    results = load_json(results_path)
    if not isinstance(results, dict) or not isinstance(results.get("configs"), dict) or "results" not in results:
        raise RoutingInputError(f"{results_path}: not an lm-eval results file; {LAYOUT_HINT}")
    if not str(results.get("lm_eval_version", "0.4")).startswith("0.4"):
        raise RoutingInputError(
            f"{results_path}: written by lm-eval {results['lm_eval_version']}, this reader knows 0.4.x; "
            "re-run with lm-eval 0.4"
        )
    return results, str(results.get("model_name") or results_path.parent.name)


def run_samples(results_path: Path, results: dict) -> list[tuple[str, object, Path]]:
    """(task, task config, samples_<task>_<time>.jsonl) for each task of a run, in task order."""
    stamp = run_stamp(results_path)
    found = []
    for task, config in sorted(results["configs"].items()):
        samples = results_path.parent / samples_name(task, stamp)
        if not samples.exists() and samples.with_suffix(".json").exists():
            raise RoutingInputError(
                f"{results_path}: task {task} has its samples in {samples.stem}.json, one JSON array (an older lm-eval "
                f"layout); re-run with lm-eval 0.4, or convert it to {samples.name}, one JSON object a line"
            )
        if not samples.exists():
            raise RoutingInputError(
                f"{results_path}: task {task} has no {samples.name} beside it; re-run lm_eval with --log_samples"
            )
        found.append((task, config, samples))
    return found


@dataclass(frozen=True)
class HarnessRun:
    """One lm-eval run found under a folder: its results file and JSON, the model, and per task
    (task, task config, samples_<task>_<time>.jsonl), in task order."""

    results_path: Path
    results: dict
    model: str
    tasks: list[tuple[str, object, Path]]

    @property
    def routed(self) -> bool:
        """A routed (virtual) model's run (`routed_output`): no pool member, so readers of the pool skip it."""
        return routed_output(self.results)

    @property
    def samples_files(self) -> list[Path]:
        return [samples for _, _, samples in self.tasks]


def harness_runs(root: Path, name: str | None = None) -> Iterator[HarnessRun]:
    """Every lm-eval run under `root` (as `log_files` finds them), results file by results file, in sorted order:
    the one walk that the pool's reader, the audit and the replay share.

    Nothing under `root` is passed over silently; each of these raises RoutingInputError naming the file
    (the root as `name`: the setting it came from, e.g. "replay=DIR"; default the path):
    - no results file at all;
    - a samples file with no results_<time>.json of the same run beside it (before the walk);
    - a samples file whose run's results file does not list its task (after the last run).
    Each run's results file is read and checked (`read_results`) and its tasks' samples files found
    (`run_samples`) when the walk reaches it.
    """
    results_files, sample_files = log_files(root)
    if not results_files:
        where = f"{sample_files[0]} has no results_<time>.json beside it" if sample_files else "no results_*.json found"
        raise RoutingInputError(f"{name or root}: {where}; {LAYOUT_HINT}")
    stamps = {(f.parent, run_stamp(f)) for f in results_files}
    for samples in sample_files:
        if not any(samples.parent == folder and samples.stem.endswith("_" + stamp) for folder, stamp in stamps):
            raise RoutingInputError(f"{samples}: no results_<time>.json of the same run beside it; restore it or remove the file")
    listed: set[Path] = set()
    for results_path in results_files:
        results, model = read_results(results_path)
        run = HarnessRun(results_path, results, model, run_samples(results_path, results))
        listed.update(run.samples_files)
        yield run
    unlisted = sorted(set(sample_files) - listed)
    if unlisted:  # its run's results file does not list the task: a file from elsewhere, never dropped silently
        raise RoutingInputError(
            f"{unlisted[0]}: its task is not in the results_<time>.json beside it (another run's file, misplaced?); "
            "move it to its own run's folder or remove it"
        )


def run_seconds(results: dict, path: Path | None = None) -> float:
    """The run's total_evaluation_time_seconds; NaN when missing, NaN, infinite or negative (unknown, not zero).

    A boolean is refused (it would read as 1 s or 0 s), naming `path` (the results file) when given.
    """
    value = results.get("total_evaluation_time_seconds")
    if isinstance(value, bool):
        where = f"{path}: " if path is not None else ""
        raise RoutingInputError(
            f"{where}total_evaluation_time_seconds is {json.dumps(value)}, not a number of seconds; "
            "fix or remove the field (the latency is then unknown) or declare it with «latencies» MODEL=SECONDS"
        )
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return seconds if math.isfinite(seconds) and seconds >= 0 else math.nan


ROUTED_MARK = "routed_by"  # key in a results file's `config` naming what wrote a virtual, routed model


def routed_output(results: dict) -> bool:
    """True for a results file of a routed (virtual) model: a run of `lm_eval --model routed`
    (`config.routing`), or what routing-eval writes (`config.routed_by`: the demo or its routed outputs;
    older files: `config.model` 'routed' with a top-level `routing` mix). Such runs are no pool member."""
    config = results.get("config")
    if not isinstance(config, dict):
        return False
    return "routing" in config or ROUTED_MARK in config or (config.get("model") == "routed" and "routing" in results)




# writing ----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskResults:
    """One task's entries in a results file."""

    metrics: dict[str, object]  # e.g. {"acc,routed": 0.61, "acc_stderr,routed": 0.02}
    config: dict[str, object]  # the task's config beyond its name (dataset_path, repeats, ...)
    documents: int


def sample_record(doc_id: int, doc: dict, target: str, resps: list, filtered_resps: list, filter_name: str,
                  metrics: dict[str, object], hashed: str | None = None, **extra) -> dict:
    """One line of a samples_<task>_<time>.jsonl with lm-eval 0.4's fields: each metric's value beside its
    name in `metrics`, then `extra` fields (a routing decision, say). `hashed`: the row's doc_hash when it is
    known from another log (default: `doc_hash(doc)`)."""
    return {
        "doc_id": doc_id, "doc": doc, "target": target, "arguments": [], "resps": resps,
        "filtered_resps": filtered_resps, "filter": filter_name, "metrics": list(metrics),
        "doc_hash": hashed or doc_hash(doc), "prompt_hash": "", "target_hash": "", **metrics, **extra,
    }


def results_document(model: str, config: dict, tasks: dict[str, TaskResults], seconds: float | None, **extra) -> dict:
    """The content of a results_<time>.json of `model`'s run of `tasks`. `config`: the run's model config;
    `seconds`: its total_evaluation_time_seconds (None: unknown); `extra`: further top-level fields."""
    import lm_eval  # its version stamps the file; imported here, as it is slow to import

    return {
        "results": {task: {"alias": task, **one.metrics} for task, one in tasks.items()},
        "configs": {task: {"task": task, **one.config} for task, one in tasks.items()},
        "n-samples": {task: {"original": one.documents, "effective": one.documents} for task, one in tasks.items()},
        "config": config,
        "model_name": model,
        "model_name_sanitized": sanitize_model_name(model),
        "lm_eval_version": lm_eval.__version__,
        "date": time.time(),  # Unix seconds, as lm-eval writes it
        "total_evaluation_time_seconds": seconds,
        **extra,
    }


def run_files(root: Path | str, stamp: str, results: dict, samples: dict[str, list[dict]]) -> dict[Path, str]:
    """Path -> text of one run under `root`: `root/<model>/samples_<task>_<stamp>.jsonl` for each task of
    `samples` (task -> records), then `results_<stamp>.json` holding `results` (see `results_document`)."""
    folder = Path(root) / results["model_name_sanitized"]
    files = {
        folder / samples_name(task, stamp): "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        for task, records in samples.items()
    }
    files[folder / results_name(stamp)] = json.dumps(results, indent=2) + "\n"
    return files


def run_tokenizer(results: dict, override: str | None = None, path: Path | None = None):
    """(tokenizer, its name) of a run: `override` (a name or folder the user gives), else the `tokenizer=` or
    `pretrained=` of the run's model_args, loaded offline (local files only); (None, the name or None) when
    it cannot load here. A config or model_args of another type than lm-eval writes is a RoutingInputError
    naming the results file `path`."""
    config = results.get("config") or {}
    if not isinstance(config, dict):
        raise RoutingInputError(f"{path}: 'config' is {json.dumps(config)[:60]}, not an object; {LAYOUT_HINT}")
    model_args = config.get("model_args")
    if isinstance(model_args, str):
        model_args = dict(part.split("=", 1) for part in model_args.split(",") if "=" in part)
    if not (model_args is None or (isinstance(model_args, dict) and all(isinstance(k, str) for k in model_args))):
        raise RoutingInputError(f"{path}: 'config.model_args' is {json.dumps(model_args)[:60]}, not text or an object; "
                                f"{LAYOUT_HINT}")
    args = model_args or {}
    source = override or args.get("tokenizer") or args.get("pretrained")
    if not isinstance(source, str) or not source:
        return None, None
    if not (Path(str(source)).is_dir() or _in_hub_cache(str(source))):
        return None, str(source)  # not here: no need to import transformers (seconds) to learn it
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(source), local_files_only=True), str(source)
    except Exception:  # a hub id not cached here, or no tokenizer at all: the caller says what it does instead
        return None, str(source)


def _in_hub_cache(repo_id: str) -> bool:
    """True when the Hugging Face cache here holds a snapshot of model `repo_id` (HF_HUB_CACHE, HF_HOME/hub,
    or ~/.cache/huggingface/hub)."""
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    cache = Path(os.environ.get("HF_HUB_CACHE", os.environ.get("HUGGINGFACE_HUB_CACHE", os.path.join(home, "hub"))))
    return (cache / f"models--{repo_id.replace('/', '--')}" / "snapshots").is_dir()
