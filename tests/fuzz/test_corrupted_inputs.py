"""`routing-eval` under bad input: every corruption is made here from valid logs the real pipeline wrote.

The valid input is `lm_routing.reading.simulate.write_simulated_logs` (real lm-eval 0.4 layout and
fields) for a 3-model pool, and score tables made from it. Each error case checks the
CLI's contract: exit code 2, one stderr line `routing-eval: error: FILE[:LINE]: ...; what
to do`, no traceback, nothing written, earlier files untouched. Recoverable input
(`--skip-bad-lines`, `--on-missing drop`) is read, and the report says what was skipped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import lm_routing.cli.main
import lm_routing.reading.publish
from lm_routing.reading.logs import read_harness_logs
from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

POOL = tuple(m for m in PAPER_POOL if m.name in ("gemma-7b", "gemma-7b-it", "mistral-7b"))
SIZES = {"train": {"gsm8k": 40, "mmlu": 40}, "test": {"gsm8k": 30, "mmlu": 30}}
N_DOCS = 70  # gsm8k train + test documents per model
FAST = ("--router", "knn", "--policy", "argmax", "--policy", "random")
PREFIX = "routing-eval: error: "


@pytest.fixture(scope="session")
def simulated(tmp_path_factory) -> Path:
    return write_simulated_logs(tmp_path_factory.mktemp("simulated"), seed=0, pool=POOL, splits=SIZES)


@pytest.fixture
def logs(simulated, tmp_path) -> Path:
    """A fresh copy of the pool's gsm8k logs (one folder per model), to corrupt."""
    return Path(shutil.copytree(simulated / "gsm8k", tmp_path / "logs"))


def samples_file(logs: Path, model: str = "gemma-7b", split: str = "test") -> Path:
    (path,) = [p for p in (logs / model).glob("samples_*.jsonl") if ("_train_" in p.name) == (split == "train")]
    return path


def results_file(logs: Path, model: str = "gemma-7b") -> Path:
    (path,) = (logs / model).glob("results_*.json")
    return path


def edit_lines(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("".join(line + "\n" for line in change(path.read_text(encoding="utf-8").splitlines())), encoding="utf-8")


def edit_sample(path: Path, line: int, change: Callable[[dict], None]) -> None:
    def apply(lines):
        row = json.loads(lines[line - 1])
        change(row)
        lines[line - 1] = json.dumps(row, ensure_ascii=False)
        return lines

    edit_lines(path, apply)


def edit_results(path: Path, change: Callable[[dict], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes: to prove a failed run wrote and changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys) -> Callable[..., Run]:
    """`run(*args)`: the CLI in-process (fast), as `main()` handles it: exit code, stdout, stderr."""

    def call(*args) -> Run:
        try:
            lm_routing.cli.main.main([str(a) for a in args])
            code = 0
        except SystemExit as done:
            code = done.code
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return call


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> str:
    """Exit 2, exactly one stderr line `routing-eval: error: ...` holding every fragment, no traceback; the message."""
    assert code == 2, err
    assert "Traceback" not in out + err
    assert out == ""  # no partial table before the error
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0][len(PREFIX):]


@pytest.fixture
def fails(run, tmp_path) -> Callable[..., str]:
    """`fails(*args, expect=(...))`: runs with `--output-path` (tmp_path/routed unless given); asserts the error
    contract and that no file under tmp_path appeared or changed."""

    def call(*args, expect: tuple[str, ...]) -> str:
        before = tree(tmp_path)
        done = run(*args, *(() if "--output-path" in args else ("--output-path", tmp_path / "routed")))
        message = assert_one_line_error(done.code, done.out, done.err, *expect)
        assert tree(tmp_path) == before  # nothing new, nothing changed
        return message

    return call


def report(run: Callable[..., Run], *args) -> dict:
    done = run(*args, "--json")
    assert done.code == 0, done.err
    assert "NaN" not in done.out and "Infinity" not in done.out  # strict JSON
    return json.loads(done.out)


# ---------------------------------------------------------------- samples files (JSONL)

def _truncate_last(path: Path) -> int:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1] + [lines[-1][: len(lines[-1]) // 2]]))  # cut mid-record, no newline
    return len(lines)


def _bad_json_at_12(path: Path) -> int:
    edit_lines(path, lambda lines: lines[:11] + ['{"doc_id": 11, "doc": {"question": "oops"}, '] + lines[12:])
    return 12


def _array_at_5(path: Path) -> int:
    edit_lines(path, lambda lines: lines[:4] + ["[1, 2, 3]"] + lines[5:])
    return 5


def _latin1_at_7(path: Path) -> int:
    lines = path.read_bytes().split(b"\n")
    row = json.loads(lines[6])
    row["doc"]["question"] += " caf\u00e9"
    lines[6] = json.dumps(row, ensure_ascii=False).encode("latin-1")
    path.write_bytes(b"\n".join(lines))
    return 7


@pytest.mark.parametrize(
    "corrupt, expect",
    [
        (_truncate_last, "malformed JSON line"),
        (_bad_json_at_12, "malformed JSON line"),
        (_array_at_5, "malformed JSON line (line is not a JSON object)"),
        (_latin1_at_7, "not UTF-8 text; re-export the file as UTF-8 or pass --skip-bad-lines"),
    ],
    ids=["truncated-last-line", "invalid-json-mid-file", "line-not-an-object", "latin-1-bytes"],
)
def test_bad_line_names_file_and_line_or_is_skipped_and_reported(logs, fails, run, corrupt, expect):
    victim = samples_file(logs)
    line = corrupt(victim)
    fails("--logs", logs, *FAST, expect=(f"{victim}:{line}: {expect}", "pass --skip-bad-lines"))

    skipped = report(run, "--logs", logs, *FAST, "--skip-bad-lines", "--on-missing", "drop")
    assert skipped["join"][:3] == [
        f"joined {N_DOCS - 1} documents across all models",
        f"skipped 1 documents: malformed lines skipped (--skip-bad-lines): {victim}:{line}",
        "skipped 1 documents: not logged for every model (--on-missing drop)",
    ]


def test_bad_line_subprocess_shows_no_traceback(logs, routing_eval, tmp_path):
    victim = samples_file(logs)
    line = _truncate_last(victim)
    done = routing_eval("--logs", logs, *FAST, "--output-path", tmp_path / "routed")
    assert_one_line_error(done.returncode, done.stdout, done.stderr, f"{victim}:{line}: malformed JSON line")
    assert not (tmp_path / "routed").exists()


def test_empty_samples_file(logs, fails):
    victim = samples_file(logs)
    victim.write_text("")
    fails("--logs", logs, expect=(f"{victim}: no samples in the file; re-run lm_eval with --log_samples",))


@pytest.mark.parametrize("field", ["doc", "doc_hash", "filter", "maj@10"])
def test_sample_without_a_field(logs, fails, field):
    victim = samples_file(logs, "mistral-7b", "train")
    edit_sample(victim, 3, lambda row: row.pop(field))
    expect = f"sample has no '{field}' field"
    expect += ", though its 'metrics' list it; the log is corrupt, re-run lm_eval" if field == "maj@10" else "; expected lm-eval 0.4.x"
    fails("--logs", logs, expect=(f"{victim}:3: ", expect))


def test_sample_without_any_label(logs, fails):
    def unlabelled(row):
        del row["maj@10"]
        row["metrics"] = ["first", "solve_rate"]

    victim = samples_file(logs)
    edit_sample(victim, 2, unlabelled)
    fails("--logs", logs, expect=(f"{victim}:2: no single maj@k field to use as the label (metrics: first, solve_rate); "
                                  "pass --metric NAME",))


@pytest.mark.parametrize(
    "field, value, expect",
    [
        ("maj@10", "1", "maj@10 is '1', not a 0/1 label"),
        ("maj@10", None, "maj@10 is None, not a 0/1 label"),
        ("maj@10", 2, "maj@10 is 2, not a 0/1 label"),
        ("solve_rate", "high", "solve_rate is 'high', not a fraction 0-1"),
        ("solve_rate", 7, "solve_rate is 7, not a fraction 0-1"),
        ("doc", "What is 2+2?", "'doc' is not an object"),
    ],
    ids=["label-string", "label-null", "label-2", "solve-rate-string", "solve-rate-above-1", "doc-string"],
)
def test_sample_with_a_wrong_value(logs, fails, field, value, expect):
    victim = samples_file(logs)
    edit_sample(victim, 4, lambda row: row.update({field: value}))
    fails("--logs", logs, expect=(f"{victim}:4: {expect}",))


def test_sample_without_answer_and_odd_responses_is_read(logs, simulated, run):
    """The majority answer only feeds the all-models vote: a sample without a usable one is still read."""
    def odd(row):
        del row["majority"]
        row["filtered_resps"] = {"answers": "18"}

    edit_sample(samples_file(logs), 2, odd)
    assert report(run, "--logs", logs, *FAST)["join"] == report(run, "--logs", simulated / "gsm8k", *FAST)["join"]


def test_duplicate_doc_line(logs, fails):
    victim = samples_file(logs)
    edit_lines(victim, lambda lines: lines + [lines[2]])
    fails("--logs", logs, expect=(f"{victim}:31: duplicate document (doc_id 2) also at line 3; remove the duplicate lines",))


def test_utf8_bom_is_accepted(logs, simulated, run):
    for path in (samples_file(logs), samples_file(logs, split="train"), results_file(logs)):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert report(run, "--logs", logs, *FAST) == report(run, "--logs", simulated / "gsm8k", *FAST)


def test_crlf_line_endings_are_accepted(logs, simulated, run):
    victim = samples_file(logs)
    victim.write_bytes(victim.read_bytes().replace(b"\n", b"\r\n"))
    assert report(run, "--logs", logs, *FAST) == report(run, "--logs", simulated / "gsm8k", *FAST)


# ---------------------------------------------------------------- results files and layout

@pytest.mark.parametrize(
    "change, expect",
    [
        (lambda d: d.pop("configs"), "not an lm-eval results file; expected lm-eval 0.4.x output"),
        (lambda d: d.update(configs=["gsm8k_cot_maj10"]), "not an lm-eval results file; expected lm-eval 0.4.x output"),
        (lambda d: d.update(lm_eval_version="0.3.0"), "written by lm-eval 0.3.0, this reader knows 0.4.x; re-run with lm-eval 0.4"),
    ],
    ids=["no-configs", "configs-a-list", "lm-eval-0.3"],
)
def test_older_or_foreign_results_file(logs, fails, change, expect):
    victim = results_file(logs)
    edit_results(victim, change)
    fails("--logs", logs, expect=(f"{victim}: {expect}",))


def test_results_file_not_an_object(logs, fails):
    victim = results_file(logs)
    victim.write_text("[]")
    fails("--logs", logs, expect=(f"{victim}: not an lm-eval results file",))


def test_truncated_results_file(logs, fails):
    victim = results_file(logs)
    text = victim.read_text()
    victim.write_text(text[: len(text) // 2])
    message = fails("--logs", logs, expect=(f"{victim}:", "not valid JSON", "restore the file"))
    assert message.split(":")[1].isdigit()  # FILE:LINE


def test_latin1_results_file(logs, fails):
    victim = results_file(logs)
    lines = victim.read_bytes().split(b"\n")
    line = next(n for n, text in enumerate(lines, start=1) if b'"simulated":' in text)
    lines[line - 1] = lines[line - 1].replace(b'"simulated":', '"r\u00e9sum\u00e9":'.encode("latin-1"))
    victim.write_bytes(b"\n".join(lines))
    fails("--logs", logs, expect=(f"{victim}:{line}: not UTF-8 text; re-export the file as UTF-8",))


def test_samples_as_one_json_array_older_layout(logs, fails):
    victim = samples_file(logs)
    rows = [json.loads(line) for line in victim.read_text().splitlines()]
    victim.with_suffix(".json").write_text(json.dumps(rows))
    victim.unlink()
    fails("--logs", logs, expect=(f"{results_file(logs)}: ", f"has its samples in {victim.stem}.json, one JSON array", "re-run with lm-eval 0.4"))


def test_results_without_its_samples(logs, fails):
    victim = samples_file(logs, "gemma-7b-it")
    victim.unlink()
    fails("--logs", logs, expect=(f"{results_file(logs, 'gemma-7b-it')}: task ", f"has no {victim.name} beside it",
                                  "re-run lm_eval with --log_samples"))


def test_samples_without_their_results(logs, fails):
    results_file(logs, "mistral-7b").unlink()
    victim = min((logs / "mistral-7b").glob("samples_*.jsonl"))
    fails("--logs", logs, expect=(f"{victim}: no results_<time>.json of the same run beside it; restore it or remove the file",))


def test_results_subprocess_shows_no_traceback(logs, routing_eval):
    victim = results_file(logs)
    edit_results(victim, lambda d: d.pop("configs"))
    done = routing_eval("--logs", logs)
    assert_one_line_error(done.returncode, done.stdout, done.stderr, f"{victim}: not an lm-eval results file")


# ---------------------------------------------------------------- joining models

def _second_run(logs: Path, model: str, stamp: str, keep: Callable[[Path], bool]) -> Path:
    """Copy `model`'s run under a new timestamp, keeping the samples files `keep` accepts."""
    results = results_file(logs, model)
    old = results.stem[len("results_"):]
    document = json.loads(results.read_text())
    for samples in (logs / model).glob(f"samples_*_{old}.jsonl"):
        task = samples.name[len("samples_"): -len(f"_{old}.jsonl")]
        if keep(samples):
            shutil.copy(samples, samples.with_name(f"samples_{task}_{stamp}.jsonl"))
        else:
            document["configs"].pop(task)
    new = results.with_name(f"results_{stamp}.json")
    new.write_text(json.dumps(document, indent=2))
    return new


def test_two_runs_of_one_model_overlap(logs, fails):
    _second_run(logs, "gemma-7b", "2030-01-01T00-00-00.000000", keep=lambda p: "_train_" not in p.name)
    fails("--logs", logs, expect=("samples_gsm8k_cot_maj10_2030-01-01T00-00-00.000000.jsonl:1: duplicate document, also at ",
                                  "two runs of one model overlap: remove one"))


def test_two_runs_of_one_model_that_split_the_documents_join(logs, simulated, run):
    original = results_file(logs)
    second = _second_run(logs, "gemma-7b", "2030-01-01T00-00-00.000000", keep=lambda p: "_train_" in p.name)
    edit_results(second, lambda d: d.update(total_evaluation_time_seconds=7.1 * 40))  # the same 7.1 s/query
    edit_results(original, lambda d: d.update(total_evaluation_time_seconds=7.1 * 30))
    edit_results(original, lambda d: d["configs"].pop(next(t for t in d["configs"] if t.endswith("_train"))))
    for path in (logs / "gemma-7b").glob("samples_*_train_*.jsonl"):
        if original.stem[len("results_"):] in path.name:
            path.unlink()
    joined = report(run, "--logs", logs, *FAST)
    assert joined["join"][0] == f"joined {N_DOCS} documents across all models"
    assert joined["rows"] == report(run, "--logs", simulated / "gsm8k", *FAST)["rows"]


def test_model_missing_half_the_documents(logs, fails, run):
    victim = samples_file(logs, "gemma-7b-it")
    edit_lines(victim, lambda lines: lines[::2])  # 15 of its 30 test documents
    fails("--logs", logs, *FAST, expect=(f"{results_file(logs, 'gemma-7b-it')}: model gemma-7b-it lacks 15 of {N_DOCS} documents",
                                         "pass --on-missing drop"))

    dropped = report(run, "--logs", logs, *FAST, "--on-missing", "drop")
    assert dropped["join"][:2] == [
        f"joined {N_DOCS - 15} documents across all models",
        "skipped 15 documents: not logged for every model (--on-missing drop)",
    ]
    assert {row["n"] for row in dropped["rows"]} == {15}  # 30 test queries less the 15 dropped
    table = run("--logs", logs, *FAST, "--on-missing", "drop")
    assert "skipped 15 documents: not logged for every model (--on-missing drop)" in table.out.splitlines()


def test_same_doc_id_different_text_is_a_different_document(logs, fails):
    """doc_hash is the document's identity: an edited question is another document, which the other models lack."""
    victim = samples_file(logs, "mistral-7b")

    def reword(row):
        row["doc"]["question"] = row["doc"]["question"].replace("?", " exactly?")
        row["doc_hash"] = hashlib.sha256(json.dumps(row["doc"], indent=2, ensure_ascii=False).encode()).hexdigest()

    edit_sample(victim, 6, reword)
    fails("--logs", logs, expect=(f"{results_file(logs, 'gemma-7b')}: model gemma-7b lacks 1 of {N_DOCS + 1} documents",
                                  f"doc_id 5 at {victim}:6, whose text differs from doc_id 5 at {samples_file(logs)}:6 (another doc_hash)",
                                  "run every model on the same dataset", "pass --on-missing drop"))


def test_pool_of_one_model_reports_that_model_everywhere(logs, run):
    for model in ("gemma-7b-it", "mistral-7b"):
        shutil.rmtree(logs / model)
    single = report(run, "--logs", logs, "--router", "knn")
    assert single["join"] == [f"joined {N_DOCS} documents across all models",
                              "1 models: gemma-7b (one model: every method routes every query to it)"]
    accuracy = {row["accuracy"] for row in single["rows"]}
    assert len(accuracy) == 1  # oracle, random, all, the model and every router row agree
    assert {row.get("share", {}).get("gemma-7b", 1.0) for row in single["rows"]} == {1.0}


def test_logs_path_is_a_file(logs, fails):
    victim = results_file(logs)
    fails("--logs", victim, expect=(f"{victim}: not a folder; pass --logs DIR",))


@pytest.mark.parametrize("content", ["nothing", "empty-model-folders"])
def test_empty_pool(tmp_path, fails, content):
    pool = tmp_path / "pool"
    pool.mkdir()
    if content == "empty-model-folders":
        (pool / "gemma-7b").mkdir()
    fails("--logs", pool, expect=(f"{pool}: no results_*.json found; expected lm-eval 0.4.x output",))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_unreadable_model_folder(logs, fails):
    folder = logs / "mistral-7b"
    folder.chmod(0)
    try:
        fails("--logs", logs, expect=(f"{folder}: cannot list (Permission denied); check permissions",))
    finally:
        folder.chmod(0o755)


def test_unlistable_model_folder_is_not_silently_dropped(logs, fails, monkeypatch):
    """The same as above where root reads anything: listing the folder fails as it does for other users."""
    folder = logs / "mistral-7b"
    listing = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    fails("--logs", logs, expect=(f"{folder}: cannot list (Permission denied); check permissions",))


# ---------------------------------------------------------------- latency

@pytest.mark.parametrize("seconds", [float("nan"), -12.0, "fast", float("inf"), None])
def test_bad_evaluation_time_makes_latency_unknown(logs, run, seconds):
    edit_results(results_file(logs, "mistral-7b"), lambda d: d.update(total_evaluation_time_seconds=seconds))
    out = report(run, "--logs", logs, *FAST)
    models = {m["name"]: m for m in out["models"]}
    assert models["mistral-7b"]["latency_s"] is None
    assert models["mistral-7b"]["latency_source"].startswith("unknown")
    assert models["gemma-7b"]["latency_s"] == 7.1
    assert all(row["latency_s"] is None for row in out["rows"] if row["method"] in ("random", "all", "model:mistral-7b"))
    assert all(row["latency_s"] is None or row["latency_s"] >= 0 for row in out["rows"])
    assert "oracle-cheapest" not in {row["method"] for row in out["rows"]}  # needs every latency

    declared = report(run, "--logs", logs, *FAST, "--latency", "mistral-7b=3.5")
    assert {m["name"]: m["latency_s"] for m in declared["models"]}["mistral-7b"] == 3.5


def test_evaluation_time_as_a_string_is_read(logs, run):
    """lm-eval 0.4 itself writes total_evaluation_time_seconds as a string."""
    edit_results(results_file(logs, "mistral-7b"), lambda d: d.update(total_evaluation_time_seconds="140.0"))
    models = {m["name"]: m for m in report(run, "--logs", logs, *FAST)["models"]}
    assert models["mistral-7b"]["latency_s"] == 2.0  # 140 s over 70 documents


@pytest.mark.parametrize("value", ["mistral-7b=nan", "mistral-7b=-1", "mistral-7b=fast", "mistral-7b=inf", "mistral-7b="])
def test_bad_declared_latency(logs, fails, value):
    fails("--logs", logs, "--latency", value, expect=(f"Invalid value for --latency: {value!r}: expected MODEL=SECONDS",))


def test_declared_latency_for_unknown_model(logs, fails, routing_eval):
    expect = "--latency names unknown model(s) unknown; known: gemma-7b, gemma-7b-it, mistral-7b"
    fails("--logs", logs, "--latency", "unknown=1", expect=(expect,))
    done = routing_eval("--logs", logs, "--latency", "mistral-7b=nan")
    assert_one_line_error(done.returncode, done.stdout, done.stderr, "expected MODEL=SECONDS with SECONDS >= 0")


# ---------------------------------------------------------------- score tables

@pytest.fixture
def table(simulated, tmp_path) -> Path:
    """A RouterDC table (question, scores = solve rate per model) made from the valid logs."""
    data = read_harness_logs(simulated / "gsm8k")
    path = tmp_path / "pool_test.json"
    path.write_text(json.dumps([
        {"question": q, "scores": dict(zip(data.models, map(float, rates)))} for q, rates in zip(data.queries, data.solve_rates)
    ]))
    return path


def long_table(table: Path, suffix: str) -> Path:
    rows = [(item["question"], m, s) for item in json.loads(table.read_text()) for m, s in item["scores"].items()]
    path = table.with_name(f"pool_long{suffix}")
    if suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["query", "model", "score"])
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps({"query": q, "model": m, "score": s}) + "\n" for q, m, s in rows))
    return path


def test_valid_tables_agree_bom_included(table, run):
    rows = report(run, "--scores", table, *FAST)["rows"]
    for suffix in (".csv", ".jsonl"):
        path = long_table(table, suffix)
        assert report(run, "--scores", path, *FAST)["rows"] == rows
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        assert report(run, "--scores", path, *FAST)["rows"] == rows


def test_latin1_csv_names_the_line(table, fails):
    path = long_table(table, ".csv")
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b",", b" caf\xe9,", 1)
    path.write_bytes(b"\n".join(lines))
    fails("--scores", path, expect=(f"{path}:5: not UTF-8 text; re-export the file as UTF-8",))


@pytest.mark.parametrize(
    "score, expect",
    [(1.5, "is 1.5, outside 0-1"), (-0.2, "is -0.2, outside 0-1"), (float("nan"), "is nan, not a number"),
     ("high", "is 'high', not a number")],
    ids=["above-1", "negative", "nan", "string"],
)
def test_routerdc_bad_score(table, fails, score, expect):
    items = json.loads(table.read_text())
    items[3]["scores"]["gemma-7b-it"] = score
    table.write_text(json.dumps(items))
    fails("--scores", table, expect=(f"{table}: item 3: score of gemma-7b-it {expect}; fix the table",))


def test_routerdc_missing_model(table, fails, run):
    items = json.loads(table.read_text())
    del items[8]["scores"]["mistral-7b"]
    table.write_text(json.dumps(items))
    fails("--scores", table, expect=(f"{table}: item 8: no score for mistral-7b; complete the row or pass --on-missing drop",))
    dropped = report(run, "--scores", table, *FAST, "--on-missing", "drop")
    assert "skipped 1 documents: rows without a score for every model (--on-missing drop)" in dropped["join"]


@pytest.mark.parametrize(
    "content, expect",
    [
        ('{"question": "q", "scores": {}}', "expected a JSON list of {'question', 'scores'} objects"),
        ("[]", "the table has no rows"),
        ("[{oops", "not valid JSON"),
    ],
    ids=["not-a-list", "empty", "not-json"],
)
def test_routerdc_table_not_a_list(table, fails, content, expect):
    table.write_text(content)
    fails("--scores", table, expect=(f"{table}", expect))


def test_csv_missing_column(table, fails):
    path = long_table(table, ".csv")
    edit_lines(path, lambda lines: [",".join(line.rsplit(",", 1)[:1]) for line in lines])
    fails("--scores", path, expect=(f"{path}:1: needs 'query', 'model' and 'score' columns (found query, model); fix the header",))


def test_csv_score_not_a_number(table, fails):
    path = long_table(table, ".csv")
    edit_lines(path, lambda lines: lines[:5] + [lines[5].rsplit(",", 1)[0] + ",n/a"] + lines[6:])
    fails("--scores", path, expect=(f"{path}: line 6: score of ", "is 'n/a', not a number; fix the table"))


def test_jsonl_table_bad_line_is_skipped_when_asked(table, fails, run):
    path = long_table(table, ".jsonl")
    edit_lines(path, lambda lines: lines[:9] + [lines[9][:20]] + lines[10:])
    fails("--scores", path, expect=(f"{path}:10: malformed JSON line", "pass --skip-bad-lines"))
    skipped = report(run, "--scores", path, *FAST, "--skip-bad-lines", "--on-missing", "drop")
    assert skipped["join"][1:3] == [
        f"skipped 1 documents: malformed lines skipped (--skip-bad-lines): {path}:10",
        "skipped 1 documents: rows without a score for every model (--on-missing drop)",
    ]


def test_tables_of_different_pools(table, fails):
    other = table.with_name("other_train.json")
    items = json.loads(table.read_text())
    other.write_text(json.dumps([{"question": i["question"], "scores": {"x": 0.5, "y": 0.1}} for i in items]))
    fails("--scores", other, "--test-scores", table,
          expect=(f"{table}: covers models gemma-7b, gemma-7b-it, mistral-7b, {other} covers x, y; use tables of the same pool",))


def test_too_few_queries_for_the_folds(table, fails):
    table.write_text(json.dumps(json.loads(table.read_text())[:3]))
    fails("--scores", table, expect=("k-fold needs 2 <= k <= 3 queries, got k=5", "pass --folds 3 or fewer"))


# ---------------------------------------------------------------- names

@pytest.mark.parametrize(
    "args, expect",
    [
        (("--router", "gpt5"), "unknown router 'gpt5'; choose one of: "),
        (("--policy", "best"), "unknown policy 'best'; choose one of: "),
        (("--dataset", "mmlu"), "no queries of dataset(s) mmlu; the input has: gsm8k"),
        (("--filter", "strict-match"), "no filter 'strict-match' (found answers); fix --filter"),
        (("--metric", "exact_match"), "no metric 'exact_match' in the sample; fix --metric"),
    ],
    ids=["router", "policy", "dataset", "filter", "metric"],
)
def test_unknown_names(logs, fails, args, expect):
    fails("--logs", logs, *args, expect=(expect,))


# ---------------------------------------------------------------- outputs: never overwritten, atomic, reproducible

def test_output_path_twice_in_the_same_second_keeps_the_first(logs, run, tmp_path, monkeypatch):
    monkeypatch.setattr(lm_routing.reading.publish, "timestamp", lambda: "2030-01-01T00-00-00.000000")
    out = tmp_path / "routed"
    first = run("--logs", logs, "--router", "knn", "--policy", "argmax", "--output-path", out)
    assert first.code == 0, first.err
    written = tree(out)
    assert len(written) == 2  # one routed model: results + samples

    # a later policy order writes a new folder first: it too must not appear
    again = run("--logs", logs, "--router", "knn", "--policy", "random", "--policy", "argmax", "--output-path", out)
    assert_one_line_error(again.code, again.out, again.err, "already exists; earlier results are never overwritten")
    assert tree(out) == written


def test_output_path_twice_writes_new_timestamped_files(logs, routing_eval, tmp_path):
    out = tmp_path / "routed"
    first = routing_eval("--logs", logs, "--router", "knn", "--policy", "argmax", "--output-path", out)
    assert first.returncode == 0, first.stderr
    written = tree(out)
    second = routing_eval("--logs", logs, "--router", "knn", "--policy", "argmax", "--output-path", out)
    assert second.returncode == 0, second.stderr
    after = tree(out)
    assert len(after) == 2 * len(written) and all(after[name] == data for name, data in written.items())
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]  # atomic: no temp files


def test_output_path_is_a_file(logs, fails, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    fails("--logs", logs, *FAST, "--output-path", blocker, expect=(f"{blocker}: not a folder; choose another --output-path",))
    # below a file: the folder cannot be made, and the file in the way is named
    fails("--logs", logs, *FAST, "--output-path", blocker / "routed", expect=(f"{blocker}: not a folder; choose another",))


def test_same_input_and_seed_give_a_byte_identical_report(logs, routing_eval):
    args = ("--logs", logs, "--router", "knn", "--router", "lr", "--seed", "3", "--json")
    first, second = routing_eval(*args), routing_eval(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and first.stdout.startswith("{")


def test_saved_router_from_another_pool(logs, simulated, routing_eval, tmp_path):
    saved = tmp_path / "knn-3"
    trained = routing_eval("--logs", logs, "--router", "knn", "--policy", "argmax", "--save", saved)
    assert trained.returncode == 0, trained.stderr
    shutil.rmtree(logs / "gemma-7b-it")
    done = routing_eval("--logs", logs, "--load", saved, "--policy", "argmax")
    assert_one_line_error(done.returncode, done.stdout, done.stderr,
                          f"{saved}: router trained on models gemma-7b, gemma-7b-it, mistral-7b; the input has gemma-7b, mistral-7b",
                          "use a router trained on this pool")


def test_load_a_folder_that_is_no_router(logs, fails, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    fails("--logs", logs, "--load", folder, expect=(f"{folder}: no router.json; not a router saved by routing-eval --save",))


def test_predict_with_a_corrupted_queries_file(logs, run, tmp_path):
    saved = tmp_path / "knn"
    assert run("--logs", logs, "--router", "knn", "--policy", "argmax", "--save", saved).code == 0
    questions = [json.loads(line)["doc"]["question"] for line in samples_file(logs).read_text().splitlines()[:4]]
    jsonl = tmp_path / "queries.jsonl"
    jsonl.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions[:2]) + json.dumps({"question": questions[2]})[:25])
    done = run("predict", "--load", saved, "--queries", jsonl)
    message = assert_one_line_error(done.code, done.out, done.err, f"{jsonl}:3: malformed JSON line")
    assert message.endswith("; fix the file")  # predict has no --skip-bad-lines to offer

    text = tmp_path / "queries.txt"
    text.write_bytes(questions[0].encode() + b"\n" + (questions[1] + " caf\u00e9").encode("latin-1") + b"\n")
    done = run("predict", "--load", saved, "--queries", text)
    assert_one_line_error(done.code, done.out, done.err, f"{text}:2: not UTF-8 text; re-export the file as UTF-8")
