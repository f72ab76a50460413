"""The comparison table, its JSON form, and the routed pool written as an lm-eval model.

Nothing here prints: callers decide where text goes. Files are written into a
folder staged by lm_routing.reading.publish.Outputs: published whole or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from lm_routing_tasks.scoring import INVALID
from lm_routing.deciding.cost import aiq, gap_recovery, sweep, weak_partner
from lm_routing.data import RoutingData
from lm_routing.errors import Note
from lm_routing.judging.evaluate import Evaluation, Routed, Row
from lm_routing.reading.harness import ROUTED_MARK, TaskResults, key_hash, results_document, run_files, sample_record
from lm_routing.judging.spec import Unused
from lm_routing.reading.publish import write_new_files

Say = Callable[[Note], str]  # the caller's words for a note (its code and fields): the library has none


@dataclass(frozen=True)
class RunResult:
    """What one run found and wrote (lm_routing.experiment.run; `render` words it). Paths are as the user named
    them (the staged copies publish there)."""

    data: RoutingData
    evaluation: Evaluation
    unused: list[Unused] = field(default_factory=list)  # given hyper-parameters some routers ignored
    saved: list[tuple[str, Path]] = field(default_factory=list)  # (router, folder) per saved router
    routed: list[Path] = field(default_factory=list)  # one folder per routed model written
    plot: Path | None = None


def _percent(value: float) -> str:
    return f"{100 * value:.2f}"


def format_table(evaluation: Evaluation) -> str:
    """The paper's table for people: accuracy % with 95% CI, gap to the best single model
    (with McNemar's p for routers), mean latency (s/query), n."""
    best_row = evaluation.best_single()
    best = best_row.accuracy
    priced = any(r.cost is not None for r in evaluation.rows)  # cost columns only when some cost is known
    header = ("method", "accuracy %", "95% CI", "vs best single", "p", "latency s/query",
              *(("$/query", "cost vs best") if priced else ()), "n")
    body = [
        (
            r.label,
            _percent(r.accuracy),
            "" if r.ci is None else f"{_percent(r.ci[0])}-{_percent(r.ci[1])}",
            f"{100 * (r.accuracy - best):+.2f}",
            "" if r.vs_best is None else f"{r.vs_best.p_value:.3f}",
            "n/a" if r.latency_s is None else f"{r.latency_s:.3f}",
            *((_usd(r.cost), _relative_cost(r.cost, best_row.cost)) if priced else ()),
            str(r.n),
        )
        for r in evaluation.rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    lines = [f"protocol: {evaluation.protocol}", fmt(header), fmt(tuple("-" * w for w in widths))]
    calibration = ", ".join(f"{name} {ece:.3f}" for name, ece in evaluation.calibration.items())
    footer = [f"calibration of P(solve), ECE (10 bins): {calibration}"] if calibration else []
    footer += cost_lines(evaluation) if priced else []
    return "\n".join(lines + [fmt(cells) for cells in body] + footer)


def _usd(cost: float | None) -> str:
    return "n/a" if cost is None else f"{cost:.6f}"


def _relative_cost(cost: float | None, best: float | None) -> str:
    """Cost as a % of the most accurate single model's (n/a when either is unknown or that one is free)."""
    return "n/a" if cost is None or not best else f"{100 * cost / best:.1f}%"


def cost_metrics(evaluation: Evaluation) -> dict:
    """The cost-quality numbers users compare, on the evaluated queries (costs USD per query):
    RouterBench's AIQ of each router's lam sweep (argmax P - lam * cost) beside the zero router's (the convex
    hull of the single models), RouteLLM's APGR and CPT(50/80/95%) (share of queries sent to the strong model,
    the most accurate single one; the weak one: lm_routing.deciding.cost.weak_partner), and the oracle-cheapest point.
    Empty when some cost is unknown."""
    data = evaluation.data
    if not data.cost_known:
        return {}
    singles = [(float(c), float(a)) for c, a in zip(data.model_cost, data.labels.mean(axis=0))]
    strong = data.models.index(evaluation.best_single().model)
    weak = weak_partner(data, strong)
    out = {"zero_router_aiq": aiq(singles), "strong": data.models[strong], "weak": data.models[weak], "routers": {}}
    cheapest = next((r for r in evaluation.rows if r.kind == "oracle-cheapest"), None)
    if cheapest is not None:
        out["oracle_cheapest"] = {"accuracy": cheapest.accuracy, "cost_per_query": cheapest.cost}
    for routed in evaluation.routed:
        if routed.router in out["routers"] or routed.policy == "pick":
            continue
        points = [(p.cost, p.accuracy) for p in sweep(data, routed.scores, cost=data.cost)]
        entry = {"aiq": aiq(points)}
        if data.labels[:, strong].mean() > data.labels[:, weak].mean():
            gap = gap_recovery(data, routed.scores, data.models[strong], data.models[weak])
            entry.update(apgr=gap.apgr, cpt50=gap.cpt50, cpt80=gap.cpt80, cpt95=gap.cpt95)
        out["routers"][routed.router] = entry
    return out


def cost_lines(evaluation: Evaluation) -> list[str]:
    """cost_metrics in words, one line each (none when some cost is unknown)."""
    metrics = cost_metrics(evaluation)
    if not metrics:
        return []
    lines = ["costs are USD per query of one generation per model run (a deployed single answer, not maj@k's k)",
             f"AIQ (RouterBench, accuracy averaged over the cost range of the convex hull): zero router "
             f"(hull of the single models) {100 * metrics['zero_router_aiq']:.2f}"]
    if "oracle_cheapest" in metrics:
        point = metrics["oracle_cheapest"]
        lines.append(f"oracle-cheapest: {100 * point['accuracy']:.2f}% at ${point['cost_per_query']:.6f}/query")
    for name, entry in metrics["routers"].items():
        cpts = "/".join("n/a" if np.isnan(entry[k]) else f"{100 * entry[k]:.0f}%" for k in ("cpt50", "cpt80", "cpt95")) \
            if "apgr" in entry else ""
        apgr = f", APGR {entry['apgr']:.3f}, CPT(50/80/95%) {cpts} calls to {metrics['strong']} vs {metrics['weak']}" \
            if cpts else ""
        lines.append(f"router {name}: AIQ {100 * entry['aiq']:.2f}{apgr}")
    return lines


def _row_json(row: Row) -> dict:
    out = {"method": row.method, "accuracy": round(row.accuracy, 6), "latency_s": None if row.latency_s is None else round(row.latency_s, 6), "n": row.n,
           "cost_per_query": None if row.cost is None else round(row.cost, 9)}
    if row.ci is not None:
        out["ci95"] = [round(row.ci[0], 6), round(row.ci[1], 6)]
    if row.router is not None:
        out["router"] = row.router
    if row.share:
        out["share"] = {m: round(v, 6) for m, v in row.share.items()}
    if row.vs_best is not None:
        out["vs_best_single"] = {
            "difference": round(row.vs_best.difference, 6),
            "wins": row.vs_best.a_only,
            "losses": row.vs_best.b_only,
            "mcnemar_p": round(row.vs_best.p_value, 6),
        }
    return out


def to_json(evaluation: Evaluation, data: RoutingData, say: Say) -> dict:
    """One JSON-ready object: protocol, pool (with latency sources), join report, rows, notes as data (code, fields,
    settings) with the line `say` writes for each (the caller's words: the library has none)."""
    return {
        "protocol": evaluation.protocol,
        "models": [
            {"name": m, "latency_s": None if np.isnan(s) else round(float(s), 6), "latency_source": src,
             "cost_per_query": None if np.isnan(c) else round(float(c), 9), "cost_source": csrc}
            for m, s, src, c, csrc in zip(data.models, data.model_latency, data.latency_source, data.model_cost,
                                          data.cost_source)
        ],
        "cost": _rounded(cost_metrics(evaluation)),
        "join": [say(entry) for entry in data.report.entries()],
        "join_report": {"joined": data.report.joined,  # the same as data: counts and reasons, no prose to parse
                        "skipped": [{**note_json(why, say), "reason": say(why), "documents": n}
                                    for why, n in data.report.skipped],
                        "notes": [note_json(note, say) for note in data.report.notes]},
        "notes": [note_json(note, say) for note in evaluation.notes],
        "calibration_ece": {name: round(float(ece), 6) for name, ece in evaluation.calibration.items()},
        "rows": [_row_json(r) for r in evaluation.rows],
        **({"auto": [s.to_json(evaluation.data.datasets if len(evaluation.selections) == 1 else None)
                     for s in evaluation.selections]} if evaluation.selections else {}),
    }


def note_json(note: Note, say: Say) -> dict:
    """A note as JSON: its code, fields (rounded) and settings (field names), and `say`'s line for people."""
    return _rounded({"code": note.code, "fields": dict(note.fields), "settings": list(note.settings), "message": say(note)})


def _rounded(value):
    """`value` with floats rounded to 6 digits and NaN as None, for JSON."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, 9)
    return value


def strict_json(value, **options) -> str:
    """`value` as strict JSON: a float that is NaN or infinite (no JSON number) becomes null."""
    def finite(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {key: finite(v) for key, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [finite(v) for v in item]
        return item

    return json.dumps(finite(value), allow_nan=False, **options)


def render(experiment: RunResult, say: Say, as_json: bool = False) -> str:
    """The run's report: the JSON object, or the join report, notes and table as people read them (each line
    of the join report and each note as `say` words it)."""
    result, data = experiment.evaluation, experiment.data
    if as_json:
        return strict_json(to_json(result, data, say), indent=2, sort_keys=True)
    return "\n".join(map(say, data.report.entries() + result.notes)) + "\n" + format_table(result)


def dataset_table(name: str, data: RoutingData, evaluation: Evaluation, say: Say) -> str:
    """One dataset's section of a multi-dataset report (the demo): heading, join report, notes (as `say` words
    them), table."""
    lines = [say(entry) for entry in data.report.entries() + evaluation.notes]
    return f"\n== {name} ==\n" + "\n".join(lines) + "\n" + format_table(evaluation)


def written_lines(experiment: RunResult) -> list[str]:
    """One line per file or folder the run wrote: saved routers, routed models, the plot."""
    return ([f"saved router {name} to {folder}" for name, folder in experiment.saved]
            + [f"wrote routed model {folder}" for folder in experiment.routed]
            + ([f"wrote plot {experiment.plot}"] if experiment.plot is not None else []))


def unused_lines(unused: list[Unused], option: Mapping[str, str]) -> list[str]:
    """One warning per hyper-parameter some routers do not take; `option`: how the caller names each one."""
    lines = []
    for item in unused:
        used = f" (used by {', '.join(item.used_by)})" if item.used_by else ""
        lines.append(f"warning: {option.get(item.param, item.param)}: router {', '.join(item.ignored_by)} "
                     f"does not take it; ignored{' there' if used else ''}{used}")
    return lines


def model_name(routed: Routed) -> str:
    return f"routed:{routed.router}:{routed.policy}"


def write_routed_models(folder: Path | str, data: RoutingData, routed: list[Routed], stamp: str) -> list[str]:
    """Write each router x policy as lm-eval's results_<stamp>.json + samples_<task>_<stamp>.jsonl
    under `folder/<model>/` (`folder`: a fresh staging folder from lm_routing.reading.publish.Outputs).

    Per sample: the chosen model, its answer and label (`acc`), and the router's
    scores. The results file carries accuracy per dataset and the routing mix.
    Returns the model folders' names.
    """
    files = {path: text for one in routed for path, text in run_files(folder, stamp, *_routed_run(data, one)).items()}
    write_new_files(files)
    return list(dict.fromkeys(path.parent.name for path in files))


def _routed_run(data: RoutingData, routed: Routed) -> tuple[dict, dict[str, list[dict]]]:
    """(results document, dataset -> sample records) of one routed model, one task per dataset."""
    labels = data.labels[np.arange(data.n_queries), routed.choices]
    tasks, samples = {}, {}
    for dataset in sorted(set(data.datasets)):
        index = [i for i, d in enumerate(data.datasets) if d == dataset]
        stderr = float(np.std(labels[index], ddof=1) / np.sqrt(len(index))) if len(index) > 1 else "N/A"
        tasks[dataset] = TaskResults({"acc,routed": float(labels[index].mean()), "acc_stderr,routed": stderr},
                                     {"dataset_path": dataset, "output_type": "routed"}, len(index))
        samples[dataset] = [_routed_sample(data, routed, doc_id, i, float(labels[i])) for doc_id, i in enumerate(index)]
    counts = np.bincount(routed.choices, minlength=data.n_models)
    latency = [None if np.isnan(x) else float(x) for x in data.model_latency]
    chosen_seconds = data.latency[np.arange(data.n_queries), routed.choices]
    document = results_document(
        model_name(routed),
        {"model": "routed", "model_args": f"router={routed.router},policy={routed.policy}",
         ROUTED_MARK: "routing-eval"},  # read back as a routed output, never as a pool member
        tasks,
        None if np.isnan(chosen_seconds).any() else float(chosen_seconds.sum()),
        versions={d: 1.0 for d in tasks},
        **{"n-shot": {d: 0 for d in tasks}, "higher_is_better": {d: {"acc": True} for d in tasks}},
        routing={
            "members": {
                m: {"requests": int(c), "latency_s": latency[j]} for j, (m, c) in enumerate(zip(data.models, counts))
            },
            "note": "total_evaluation_time_seconds is the members' measured s/query summed over the routed queries",
        },
    )
    return document, samples


def _routed_sample(data: RoutingData, routed: Routed, doc_id: int, i: int, label: float) -> dict:
    """The sample record of query `i`: the chosen member's answer and label, and the router's scores.
    A query read from harness logs keeps its doc_hash, so the record joins the members' own lines."""
    j = int(routed.choices[i])
    answer = INVALID if data.answers[i, j] is None else data.answers[i, j]
    doc = {"question": data.queries[i], "query_id": data.query_ids[i]}
    return sample_record(
        doc_id, doc, "", [[answer]], [answer], "routed", {"acc": label}, hashed=key_hash(data.query_ids[i]),
        routed_to=data.models[j], router_scores={m: round(float(s), 6) for m, s in zip(data.models, routed.scores[i])},
    )
