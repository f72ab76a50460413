"""Cost as data: wide and priced score tables, price files, token counts of real lm-eval logs, the report's numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lm_routing.deciding.cost import apply_prices, read_prices
from lm_routing.data import RoutingInputError, concat
from lm_routing.judging.evaluate import evaluate
from lm_routing.judging.spec import EvalSpec
from lm_routing.reading.harness import document_key, iter_jsonl
from lm_routing.reading.logs import normalise_answer, read_harness_logs, read_score_table
from lm_routing.cli.notes import say
from lm_routing.reporting.comparison import cost_metrics, format_table, to_json

ARC = "routing/routerbench/arc_challenge_{}.csv"


def test_routerbench_wide_csv_reads_scores_costs_and_answers(shared_data):
    with pytest.raises(RoutingInputError, match=r"arc_challenge_test\.csv: line \d+: no score for .*on_missing drop"):
        read_score_table(shared_data / ARC.format("test"), "test")
    data = read_score_table(shared_data / ARC.format("test"), "test", on_missing="drop")
    assert data.n_queries == 437 and data.n_models == 11
    gpt4, yi = data.models.index("gpt-4-1106-preview"), data.models.index("zero-one-ai/Yi-34B-Chat")
    assert round(100 * data.labels[:, gpt4].mean(), 1) == 95.7 and round(data.model_cost[gpt4], 4) == 0.0050
    assert round(100 * data.labels[:, yi].mean(), 1) == 91.8 and round(data.model_cost[yi], 4) == 0.0004
    assert data.cost_known and data.cost_source[gpt4] == "table cost column (arc_challenge_test.csv)"
    assert set(data.answers[:, gpt4]) <= {"A", "B", "C", "D", "you have"} | {a for a in data.answers[:, gpt4] if a and len(a) > 1}
    assert (data.answers[:, gpt4] == "A").sum() > 100
    assert [(why.code, n) for why, n in data.report.skipped] == [("rows-without-every-score", 8)]
    both = concat([read_score_table(shared_data / ARC.format(s), s, on_missing="drop") for s in ("train", "test")])
    assert both.split("train").n_queries == 1019 and both.split("test").cost.shape == (437, 11)


def _wide(tmp_path, cost="0.5", name="t.csv"):
    path = tmp_path / name
    path.write_text("prompt,a,b,a|total_cost,b|total_cost,a|model_response,b|model_response\n"
                    f"q1,1,0,{cost},0.1,['A'],B\n\"q2\nsecond line\",0,1,0.2,0.1,x,y\n")
    return path


@pytest.mark.parametrize("cost, shown", [("", "''"), ("cheap", "'cheap'"), ("-1", "'-1'"), ("nan", "'nan'")])
def test_wide_table_with_a_missing_or_bad_cost_stops_naming_file_and_line(tmp_path, cost, shown):
    with pytest.raises(RoutingInputError) as error:
        read_score_table(_wide(tmp_path, cost), "test")
    assert str(error.value) == f"{tmp_path / 't.csv'}: line 2: a|total_cost is {shown}, not a number >= 0; fix the table"


def test_wide_table_names_the_line_a_multiline_row_starts_on(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("prompt,a,a|total_cost\n\"x\ny\",1,0.1\nz,1,bad\n")
    with pytest.raises(RoutingInputError, match=r"t\.csv: line 4: a\|total_cost is 'bad'"):
        read_score_table(path, "test")


def test_wide_table_costs_answers_and_routellm_layout(tmp_path):
    data = read_score_table(_wide(tmp_path), "test")
    assert data.models == ("a", "b") and data.cost.tolist() == [[0.5, 0.1], [0.2, 0.1]]
    assert data.answers.tolist() == [["A", "B"], ["x", "y"]]
    routellm = tmp_path / "r.csv"
    routellm.write_text(",sample_id,prompt,gpt-4,mixtral\n0,s0,q1,1.0,0.0\n1,s1,q2,nan,1\n")
    with pytest.raises(RoutingInputError, match="no score for gpt-4"):
        read_score_table(routellm, "test")
    data = read_score_table(routellm, "test", on_missing="drop")
    assert data.models == ("gpt-4", "mixtral") and data.labels.tolist() == [[1, 0]] and not data.cost_known


def test_long_tables_and_routerdc_json_carry_optional_costs_and_tokens(tmp_path):
    long = tmp_path / "l.csv"
    long.write_text("query,model,score,cost,input_tokens,output_tokens,response\nq,a,1,0.01,10,2,(b)\nq,b,0,0.002,10,3,7.\n")
    data = read_score_table(long, "test")
    assert data.cost.tolist() == [[0.01, 0.002]] and data.input_tokens.tolist() == [[10, 10]]
    assert data.output_tokens.tolist() == [[2, 3]] and data.answers.tolist() == [["B", "7"]]
    long.write_text("query,model,score,cost\nq,a,1,-3\n")
    with pytest.raises(RoutingInputError, match=r"l\.csv: line 2: cost is '-3', not a number >= 0"):
        read_score_table(long, "test")
    dc = tmp_path / "d.json"
    dc.write_text(json.dumps([{"question": "q", "scores": {"a": 1, "b": 0}, "costs": {"a": 0.3, "b": 0.1}}]))
    assert read_score_table(dc, "test").cost.tolist() == [[0.3, 0.1]]
    dc.write_text(json.dumps([{"question": "q", "scores": {"a": 1}, "costs": {"z": 0.3}}]))
    with pytest.raises(RoutingInputError, match="item 0: 'costs' names z, which 'scores' lacks"):
        read_score_table(dc, "test")
    old = tmp_path / "o.json"  # no costs: unknown, NaN
    old.write_text(json.dumps([{"question": "q", "scores": {"a": 1}}]))
    assert math.isnan(read_score_table(old, "test").cost[0, 0])


@pytest.mark.parametrize("text, answer", [
    ("['A']", "A"), ("['B\\n']", "B"), ("D (", "D"), ("A) dry palms", "A"), ("Answer: c", "C"), ("(b)", "B"),
    ("1,200.", "1200"), ("$0.50", "0.5"), ("-3", "-3"), ("  The  Sun. ", "the sun"), ("I do not know", "i do not know"),
    ("", None), ("nan", None), (None, None), ("[]", None),
])
def test_normalise_answer(text, answer):
    assert normalise_answer(text) == answer


def test_price_files_in_three_formats(tmp_path):
    llmrouter = tmp_path / "llm_candidates.json"
    llmrouter.write_text(json.dumps({"a": {"size": "7B", "input_price": 0.2, "output_price": 0.4}, "b": {"input_price": 1, "output_price": 2}}))
    listed = tmp_path / "p.json"
    listed.write_text(json.dumps([{"model": "a", "input_price": 0.2, "output_price": 0.4}, {"model": "b", "input_price": 1, "output_price": 2}]))
    table = tmp_path / "p.csv"
    table.write_text("model,input_price,output_price\na,0.2,0.4\nb,1,2\n")
    expected = {"a": (0.2, 0.4), "b": (1.0, 2.0)}
    assert read_prices(llmrouter) == read_prices(listed) == read_prices(table) == expected


@pytest.mark.parametrize("content, suffix, message", [
    ('{"a": {"input_price": -1, "output_price": 2}}', ".json", "key 'a': input_price is -1, not a price >= 0"),
    ('{"a": {"input_price": 1}}', ".json", "key 'a': output_price is missing, not a price >= 0"),
    ('[1, 2]', ".json", "item 0: expected a model name with input_price and output_price"),
    ('"x"', ".json", "expected an object model -> {input_price, output_price}"),
    ("model,input_price,output_price\na,1,x\n", ".csv", "line 2: output_price is 'x', not a price >= 0"),
    ("model,price\na,1\n", ".csv", "1: needs columns model, input_price, output_price"),
])
def test_bad_price_files_are_one_line_naming_file_and_key(tmp_path, content, suffix, message):
    path = tmp_path / f"prices{suffix}"
    path.write_text(content)
    with pytest.raises(RoutingInputError) as error:
        read_prices(path)
    assert str(error.value).startswith(f"{path}:") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_real_lm_eval_logs_count_tokens_with_the_runs_tokenizer_and_prices_give_costs(harness_logs, tmp_path):
    from transformers import AutoTokenizer

    data = read_harness_logs(harness_logs)
    assert not data.cost_known and all(s.startswith("unknown: tokens by tokenizer ") for s in data.cost_source)
    for j, model in enumerate(data.models):
        (samples,) = [p for p in harness_logs.rglob("samples_*.jsonl") if model.replace("/", "__") in str(p)
                      or model in str(p)] or [None]
        assert samples is not None, model
        results = json.loads(next(samples.parent.glob("results_*.json")).read_text())
        model_args = results["config"]["model_args"]  # lm-eval 0.4.13 logs a dict; older ones a string
        folder = model_args["pretrained"] if isinstance(model_args, dict) else model_args.split("pretrained=")[1].split(",")[0]
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        by_hash = {document_key(row["doc_hash"], row["doc_id"]): row for _, row in iter_jsonl(samples, False, None)}
        for i, doc_hash in enumerate(data.query_ids):
            completion = by_hash[doc_hash]["resps"][0][0]  # one generation of the 10: what one deployed answer costs
            assert data.output_tokens[i, j] == len(tokenizer(completion, add_special_tokens=False)["input_ids"])
            assert data.input_tokens[i, j] > 0
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({m: {"input_price": 1.0 + j, "output_price": 10.0} for j, m in enumerate(data.models)}))
    priced = apply_prices(data, read_prices(prices), prices)
    expected = (data.input_tokens * (1.0 + np.arange(data.n_models)) + data.output_tokens * 10.0) / 1e6
    assert np.allclose(priced.cost, expected) and priced.cost_known
    assert all(s.startswith("tokenizer ") and s.endswith("x price file prices.json") for s in priced.cost_source)
    prices.write_text(json.dumps({"other": {"input_price": 1, "output_price": 1}}))
    with pytest.raises(RoutingInputError, match="names unknown model"):
        apply_prices(data, read_prices(prices), prices)


def test_rows_and_report_carry_cost_per_query_and_the_cost_metrics(shared_data, tmp_path):
    data = concat([read_score_table(shared_data / ARC.format(s), s, on_missing="drop") for s in ("train", "test")])
    evaluation = evaluate(data, EvalSpec(routers=("lr",), policies=("argmax",)))
    rows = {r.method: r for r in evaluation.rows}
    gpt4 = rows["model:gpt-4-1106-preview"]
    assert gpt4.cost == pytest.approx(data.split("test").model_cost[data.models.index("gpt-4-1106-preview")])
    assert rows["oracle-cheapest"].cost < rows["oracle"].cost < gpt4.cost
    metrics = cost_metrics(evaluation)
    assert metrics["strong"] == "gpt-4-1106-preview" and metrics["weak"] == "zero-one-ai/Yi-34B-Chat"
    assert 0.9 < metrics["zero_router_aiq"] < 0.96 and 0 < metrics["routers"]["lr"]["apgr"] <= 1
    assert 0 <= metrics["routers"]["lr"]["cpt50"] <= metrics["routers"]["lr"]["cpt80"] <= metrics["routers"]["lr"]["cpt95"] <= 1
    table = format_table(evaluation)
    assert "$/query" in table and "cost vs best" in table and "100.0%" in table and "zero router" in table
    report = to_json(evaluation, data.split("test"), say)
    assert all("cost_per_query" in row for row in report["rows"])
    assert report["cost"]["oracle_cheapest"]["cost_per_query"] == pytest.approx(rows["oracle-cheapest"].cost, abs=1e-9)
    from lm_routing.reporting.plots import plot_evaluation

    assert plot_evaluation(evaluation, tmp_path / "cost.png").stat().st_size > 10_000  # the accuracy-cost plane
