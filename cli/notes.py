"""The English of the library's notes (lm_routing.errors.Note), written here and only here.

The library reports a note as data: a code, its fields and the settings a user may change. This
module turns each code into one line for people, with every setting named as the caller calls
it (the CLI: its option); `--json` prints the note's data with that line as "message"
(lm_routing.reporting.comparison.note_json). Lines stay short: counts and one example, never every path.

A code without an entry here is a bug: `say` refuses it (tests/cli/test_notes.py checks that every
code the library can emit has one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lm_routing.errors import Note, name_settings


def _pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}"


def _some(names: list[str], shown: int = 10) -> str:
    """`names` joined, at most `shown` of them and how many more: a pool of a hundred models stays one line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(map(str, names[:shown])) + more


def _pool(f: dict) -> str:
    one = " (one model: every method routes every query to it)" if len(f["models"]) == 1 else ""
    return f"{len(f['models'])} models: {_some(f['models'])}{one}"


def _auto_pick(f: dict) -> str:
    pick, runner, expected = f["pick"], f["runner_up"], f["expected"]
    runner = "" if runner is None else f"; runner-up {runner['candidate']} {_pct(runner['inner_cv_accuracy'], 2)}%"
    said = ""
    if expected is not None:
        low, high = expected["test_interval"] or expected["interval"]
        where = f" on {f['test_queries']} test queries" if f["test_queries"] else ""
        cost = "" if expected["cost_per_query"] is None else f", expected cost {expected['cost_per_query']:.3g} USD/query"
        said = (f"expected accuracy{where} {_pct(expected['accuracy'], 2)}% (95% interval {_pct(low)}-{_pct(high)}; "
                f"the whole selection cross-validated{cost}); ")
    if f["within"] is not None:
        rule = (f"the cheapest shown within {100 * f['within']:g} points of the best single model in inner CV (a 95% "
                "bound corrected for the choice), kept only when that rule, cross-validated, stays within it too")
    else:
        gain = "?" if f["required_gain"] is None else _pct(f["required_gain"])
        rule = (f"a candidate is deployed over the best single model{' affordable' if f['max_cost'] else ''} only when "
                f"its gain clears a bound corrected for the choice, here about {gain} points")
    return (f"auto picked {pick['candidate']}: {said}winner's inner-CV accuracy {_pct(pick['inner_cv_accuracy'], 2)}% "
            f"({f['folds']}-fold on {f['training_queries']} training queries, {f['candidates']} candidates{runner}; "
            f"{rule})")


def _auto_plan_dropped(f: dict) -> str:
    dropped = "; ".join(f"{what} {', '.join(names)}" for what, names in
                        (("routers", f["dropped_routers"]), ("features", f["dropped_features"])) if names)
    return (f"auto left out {dropped}: every candidate would need about {f['cpu_seconds']:.0f} CPU-s and "
            f"{f['total_bytes'] / 2**30:.1f} GiB over all processes, past its limits of {f['cpu_limit']:.0f} CPU-s and "
            f"{f['bytes_limit'] / 2**30:.1f} GiB (estimate from the table's size, lm_routing.judging.limits)")


MESSAGES: dict[str, Callable[[dict], str]] = {
    # reading: the join report
    "joined": lambda f: f"joined {f['documents']} documents across all models",
    "skipped": lambda f: f"skipped {f['documents']} documents: {_words(f['reason'])}",
    "malformed-lines-skipped": lambda f: f"malformed lines skipped («skip_bad_lines»): {_some(f['lines'], 3)}",
    "not-logged-for-every-model": lambda f: "not logged for every model («on_missing» drop)",
    "rows-without-every-score": lambda f: "rows without a score for every model («on_missing» drop)",
    "pool": _pool,
    "score-table": lambda f: f"{f['path']}: {f['models']} models, threshold {f['threshold']}",
    "left-out-of-mixed-stream": lambda f: (
        f"left out {f['model']} from the mixed stream: logged for {', '.join(f['logged_for'])} only, not "
        f"{', '.join(f['missing'])}; pass «datasets» {f['logged_for'][0]} to route with it"),
    "routed-runs-left-out": lambda f: (
        f"left out {f['runs']} run(s) of lm_eval --model routed or routing-eval's routed outputs (not pool members)"
        f"{'' if f['runs'] == 1 else ', e.g.'}: {f['example']}"),
    "killed-run-leftover": lambda f: (
        f"ignored {f['path']}: left by a killed run ({f['owner']}), never reused; "
        f"{'taken over' if f['then'] == 'taken-over' else 'delete it'}"),
    # judging: the evaluation
    "cascade-threshold-chosen": lambda f: (
        f"cascade {f['cascade']}: threshold {f['threshold']:g} chosen on {f['training_queries']} training queries (the "
        f"cheapest within half a point of the best training accuracy; {_pct(f['training_accuracy'])}%)"),
    "cascade-threshold-default": lambda f: (
        f"cascade {f['cascade']}: no training queries to choose a threshold on; using {f['threshold']:g} "
        "(set «cascade_threshold» T)"),
    "cascade-escalated": lambda f: (
        f"cascade {f['cascade']}@{f['threshold']:g}: {_pct(f['escalated'])}% of evaluated queries escalated past "
        f"{f['first_model']}"),
    "agreement-share-chosen": lambda f: (
        f"agreement cascade {f['cascade']}: share {f['share']:.3g} chosen on {f['training_queries']} training queries "
        f"({_pct(f['training_accuracy'])}%)"),
    "agreement-cascade-none": lambda f: f"no automatic agreement cascade: {f['reason']}",
    "agreement-cascade-chosen": lambda f: (
        f"agreement cascade {f['cascade']}@{f['share']:.3g} chosen on {f['training_queries']} training queries (the "
        f"cheapest within {100 * f['tolerance']:g} point of the best single model there: {_pct(f['training_accuracy'])}% "
        f"at ${f['training_cost']:.4g}/query)"),
    "policies-left-out": lambda f: (
        f"{f['router']}: policies {', '.join(f['policies'])} need training queries to fit; none given, left out"),
    "heavy-policies-left-out": lambda f: (
        f"router {f['router']}: ran policies {', '.join(f['ran'])} only; {', '.join(f['left_out'])} need out-of-fold "
        "scores, i.e. one more training of this heavy router per fold; name them with «policies» to run them"),
    "auto-pick": _auto_pick,
    "auto-picks-per-fold": lambda f: (
        f"{f['router']}, chosen inside each of the {f['folds']} outer folds: "
        + ", ".join(f"{pick} ({n}x)" for pick, n in f["picks"].items())),
    "auto-plan-dropped": _auto_plan_dropped,
    "label-warning-few-queries": lambda f: (
        f"warning: with these training queries, a router must beat the best single model by >= {_pct(f['value'])} "
        "points in inner CV to be trusted over it; more labelled queries make smaller gains visible"),
    "label-warning-one-dataset-lead": lambda f: (
        f"warning: {f['model']} leads by {_pct(f['value'])} points on {f['dataset']}'s training queries only; if it "
        "was tuned on them, its training labels overstate it: check that its training data excludes them"),
    "budget-operating-point": lambda f: (
        f"router {f['router']} within ${f['budget']:g}/query: lam {f['lam']:.4g}, mean ${f['mean_cost']:.4g}/query"),
    "train-test-gap": lambda f: (
        f"warning: {f['model']} solves {_pct(f['train_accuracy'])}% of training queries but "
        f"{_pct(f['test_accuracy'])}% of test queries (beyond the 95% CI): routers trained on these labels learn the "
        "gap; compare with «protocol» test-kfold"),
    "no-solver": lambda f: (
        f"note: no model solves any of the {f['test_queries']} test queries, so every accuracy is 0. This usually means "
        "the models are too small or broken (check the samples' resps), the answers are not extracted (filtered_resps "
        f"all {f['invalid_answer']!r}), or the label is the wrong field («metric», «filter»)"),
    "train-test-overlap": lambda f: (
        f"warning: {f['overlapping']} of {f['test_queries']} test queries ({f['test_source']}) are also training "
        f"queries ({f['train_source']}), e.g. {f['example']!r}; scored anyway, but routers may have memorised them "
        "(remove them from one side; «refuse_overlap» makes this an error)"),
}


def _words(note: Note) -> str:
    """The note's line with its settings still marked `«field»`."""
    if note.code not in MESSAGES:
        raise KeyError(f"no English for note code {note.code!r}: add it to lm_routing.cli.notes.MESSAGES")
    return MESSAGES[note.code](note.fields)


def say(note: Note, names: Mapping[str, str] | None = None) -> str:
    """One line for people, by the note's code; each setting named as `names` calls it (the CLI: its option),
    else by its field name."""
    return name_settings(_words(note), names)

