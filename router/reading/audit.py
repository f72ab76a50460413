"""Label audit of harness logs: which maj@K labels to distrust before training a router on them.

What lm-eval 0.4.13 logs per sample (`samples_<task>_<time>.jsonl`): the K completions
*after* its stop handling (`resps`: the text up to the first stop string of `until`,
stop and EOS removed), the extracted answers (`filtered_resps`) and the request's
arguments (prompt, and `until` / `max_gen_toks` as used). From that, honestly:

- invalid: share of completions whose answer did not parse (`scoring.INVALID`).
- at cap: share whose text, re-tokenised with the model's tokenizer, is at least 90 % of
  `max_gen_toks` long (decode-then-encode can merge tokens, so "at least 90 %" and not
  "equal"); generation was cut by the cap, not ended by the model. Unknown ('n/a') when
  the tokenizer named by the run's `pretrained=` cannot be loaded offline (pass one).
- stopped: share ended before the cap, by a stop string or EOS. *Which* stop fired is not
  logged (lm-eval cuts at the first stop and keeps no finish reason), so a per-stop share of
  samples cut cannot be read from the logs. What can: for each stop of `until`, the share
  whose text still contains it (`stop left`): non-zero means the run did not apply that stop
  (an older task version, `--gen_kwargs until=...`, an API capping the stop list), and the
  text may hold an invented exemplar.
- run-on: share whose text holds a new-exemplar marker ('\\nQ:', '\\nQuestion:', '**Question:**' ...).
- answer after marker: share whose logged answer is not the answer of the model's own
  solution (the text before the marker): the label came from an invented exemplar.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lm_routing_tasks.extraction import extract_gsm8k_answer, extract_mmlu_answer, new_exemplar_start, own_solution
from lm_routing_tasks.mmlu_tasks import SUBJECTS
from lm_routing_tasks.scoring import INVALID
from lm_routing.data import RoutingInputError
from lm_routing.reading.harness import LAYOUT_HINT, harness_runs, iter_jsonl, pick_filter, run_tokenizer

CAP_SHARE = 0.9  # a completion re-tokenised to >= 90 % of max_gen_toks counts as cut by the cap


@dataclass(frozen=True)
class AuditRow:
    """Label health of one model on one task family; shares are fractions 0-1 of all completions."""

    model: str
    task: str
    documents: int
    completions: int
    invalid: float
    at_cap: float  # NaN: no tokenizer or no max_gen_toks logged
    stopped: float  # ended before the cap: a stop string or EOS (which one is not logged); NaN as at_cap
    run_on: float
    answer_after_marker: float
    stop_left: dict[str, float] = field(default_factory=dict)  # stop -> share whose text still holds it
    max_gen_toks: int | None = None


@dataclass(frozen=True)
class Audit:
    """The audit of a logs folder: one row per (model, task family), and the results files of routed outputs
    (a routed model's samples are its members' answers: they are audited with the members' own runs, not again)."""

    rows: list[AuditRow]
    routed: tuple[Path, ...] = ()


def _family(task: str) -> str:
    """MMLU subject tasks audit as their family (`mmlu_cot_maj10_anatomy` -> `mmlu_cot_maj10`)."""
    for subject in SUBJECTS:
        if task.startswith("mmlu") and task.endswith(f"_{subject}"):
            return task[: -len(subject) - 1]
    return task


def _extractor(task: str, config: dict):
    """The answer extractor matching the task's dataset, or None for tasks that are not ours."""
    name = f"{config.get('dataset_path') or ''} {task}".lower()
    if "gsm8k" in name:
        return lambda text, doc: extract_gsm8k_answer(text)
    if "mmlu" in name:
        return lambda text, doc: extract_mmlu_answer(text, doc.get("choices"))
    return None


def _generation_kwargs(row: dict, config: dict):
    """`until` / `max_gen_toks` as the request used them (logged arguments), else the task config's."""
    arguments = row.get("arguments")
    if isinstance(arguments, dict):
        for request in arguments.values():
            if isinstance(request, dict) and isinstance(request.get("arg_1"), dict):
                return request["arg_1"]
    return config.get("generation_kwargs") or {}


def _generation_settings(where: str, kwargs) -> tuple[list[str], int | None]:
    """(stop strings, max_gen_toks or None) of a request's generation kwargs; RoutingInputError naming `where`
    (file:line) for any other type (lm-eval logs `until` as text or a list of texts, `max_gen_toks` a whole number)."""
    if not isinstance(kwargs, dict):
        raise RoutingInputError(f"{where}: the task's generation_kwargs is {json.dumps(kwargs)[:60]}, not an object; "
                                f"{LAYOUT_HINT}")
    until, cap = kwargs.get("until") or [], kwargs.get("max_gen_toks")
    until = [until] if isinstance(until, str) else until
    if not (isinstance(until, list) and all(isinstance(stop, str) for stop in until)):
        raise RoutingInputError(f"{where}: 'until' is {json.dumps(kwargs.get('until'))[:60]}, not a stop string or a "
                                f"list of them; {LAYOUT_HINT}")
    if cap is not None and not (type(cap) is int and cap >= 0):
        raise RoutingInputError(f"{where}: 'max_gen_toks' is {json.dumps(cap)[:60]}, not a whole number of tokens; "
                                f"{LAYOUT_HINT}")
    return until, cap or None


@dataclass
class _Counts:
    documents: int = 0
    completions: int = 0
    invalid: int = 0
    at_cap: int = 0
    measured: int = 0
    run_on: int = 0
    after_marker: int = 0
    stop_left: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_gen_toks: set[int] = field(default_factory=set)


def _audit_samples(path: Path, task: str, config: dict, tokenizer, counts: _Counts) -> None:
    """Count one samples file into `counts`: two streamed passes (the filters, then the chosen filter's
    lines), so no row is held; a samples file can be gigabytes of prompts."""
    filters = {row.get("filter") for _, row in iter_jsonl(path, False, None)}
    if not filters:
        raise RoutingInputError(f"{path}: no samples in the file; re-run lm_eval with --log_samples")
    chosen = pick_filter(path, filters, None)
    extract = _extractor(task, config)
    for number, row in iter_jsonl(path, False, None):
        if row.get("filter") != chosen:
            continue
        completions, answers = row.get("resps"), row.get("filtered_resps")
        if not (isinstance(completions, list) and completions and isinstance(completions[0], list)):
            raise RoutingInputError(f"{path}:{number}: 'resps' is not a list of completions; {LAYOUT_HINT}")
        completions = completions[0]
        answers = answers[0] if isinstance(answers, list) and answers and isinstance(answers[0], list) else answers
        if not isinstance(answers, list) or len(answers) != len(completions):
            raise RoutingInputError(f"{path}:{number}: 'filtered_resps' does not hold one answer per completion")
        until, cap = _generation_settings(f"{path}:{number}", _generation_kwargs(row, config))
        if cap:
            counts.max_gen_toks.add(cap)
        counts.documents += 1
        for text, answer in zip(completions, answers):
            text = text if isinstance(text, str) else ""
            counts.completions += 1
            counts.invalid += answer in (None, INVALID)
            for stop in until:
                counts.stop_left[stop] += bool(stop) and stop in text
            if new_exemplar_start(text) is not None:
                counts.run_on += 1
                own = extract(own_solution(text), row.get("doc") or {}) if extract else None
                counts.after_marker += extract is not None and (own or INVALID) != str(answer)
            if tokenizer is not None and cap:
                counts.measured += 1
                counts.at_cap += len(tokenizer(text, add_special_tokens=False)["input_ids"]) >= CAP_SHARE * cap


def audit_logs(root: Path | str, tokenizer: str | None = None) -> Audit:
    """One AuditRow per (model, task family) found under `root` (lm-eval `--log_samples` output), and the routed
    outputs left out (`Audit.routed`).

    `tokenizer`: name or path of the tokenizer for the cap check, when the runs' own
    `pretrained=` cannot be loaded offline; without either the cap shares are NaN.
    """
    root = Path(root)
    by_key: dict[tuple[str, str], _Counts] = defaultdict(_Counts)
    routed = []
    for run in harness_runs(root):
        if run.routed:  # a routed model's samples are its members' answers, audited with their own runs
            routed.append(run.results_path)
            continue
        loaded, _ = run_tokenizer(run.results, tokenizer, run.results_path)
        for task, config, samples in run.tasks:
            _audit_samples(samples, task, config if isinstance(config, dict) else {}, loaded,
                           by_key[(run.model, _family(task))])
    rows = []
    for (model, task), c in sorted(by_key.items()):
        n = max(c.completions, 1)
        at_cap = c.at_cap / c.measured if c.measured else math.nan
        rows.append(AuditRow(
            model=model, task=task, documents=c.documents, completions=c.completions, invalid=c.invalid / n,
            at_cap=at_cap, stopped=1 - at_cap, run_on=c.run_on / n, answer_after_marker=c.after_marker / n,
            stop_left={stop: k / n for stop, k in c.stop_left.items()},
            max_gen_toks=max(c.max_gen_toks) if c.max_gen_toks else None,
        ))
    return Audit(rows, tuple(routed))


def _share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def format_audit(audit: Audit) -> str:
    """The audit as a plain-text table, one line per model and task, then the stops left in any text and the
    routed outputs left out (their count and one of them)."""
    rows = audit.rows
    header = ("model", "task", "docs", "samples", "invalid", "at cap", "stop/EOS", "run-on", "ans. after marker")
    lines = [(r.model, r.task, str(r.documents), str(r.completions), _share(r.invalid),
              _share(r.at_cap) + (f" of {r.max_gen_toks}" if r.max_gen_toks and not math.isnan(r.at_cap) else ""),
              _share(r.stopped), _share(r.run_on), _share(r.answer_after_marker)) for r in rows]
    widths = [max(len(x) for x in column) for column in zip(header, *lines)]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in (header, *lines)]
    for r in rows:
        left = {stop: share for stop, share in r.stop_left.items() if share > 0}
        if left:
            out.append(f"{r.model} / {r.task}: stops still in the text (not applied by the run): "
                       + ", ".join(f"{stop!r} {_share(share)}" for stop, share in left.items()))
    out.append("at cap: re-tokenised completion >= 90% of max_gen_toks (n/a: tokenizer or max_gen_toks not "
               "available offline; give «tokenizer»). stop/EOS: ended before the cap; which stop fired is not "
               "logged by lm-eval. run-on: text holds a new-exemplar marker. ans. after marker: the logged answer "
               "is not the answer of the model's own solution.")
    if audit.routed:
        out.append(f"left out {len(audit.routed)} routed output(s) (e.g. {audit.routed[0]}): their samples are their "
                   "members' answers, audited in the members' own runs")
    return "\n".join(out)
