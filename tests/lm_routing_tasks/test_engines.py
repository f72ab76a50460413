"""Our tasks' generation settings through lm-eval's own argument handling of the vllm and hf back-ends.

vLLM cannot be installed here (no GPU), and lm_eval/models/vllm_causallms.py imports it at
the top, so its `VLLM.modify_gen_kwargs` (a staticmethod that needs nothing of vLLM) is
read from lm-eval's source file and run as is. Not run here: vLLM itself (SamplingParams
validation, prefix caching, generation); the README's vLLM recipe is untested on this machine.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

FAMILIES = ("gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10", "mmlu_cot_maj10_anatomy", "mmlu_cot_zeroshot_maj10_anatomy")
# the SamplingParams fields lm-eval 0.4.13 passes to vLLM besides stop/max_tokens (vllm.SamplingParams has them all)
VLLM_FIELDS = {"temperature", "top_p", "skip_special_tokens", "spaces_between_special_tokens"}


@pytest.fixture(scope="module")
def configs() -> dict[str, dict]:
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    index = TaskManager().task_index
    return {name: load_yaml(index[name].yaml_path, resolve_func=False)["generation_kwargs"] for name in FAMILIES}


def _vllm_modify_gen_kwargs():
    """lm-eval's own `VLLM.modify_gen_kwargs`, compiled from its source without importing vllm."""
    import lm_eval.models.utils as utils

    source = Path(inspect.getfile(utils)).with_name("vllm_causallms.py").read_text()
    (function,) = [node for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.FunctionDef) and node.name == "modify_gen_kwargs"]
    function.decorator_list = []  # the @staticmethod
    namespace = {"Any": Any, "normalize_gen_kwargs": utils.normalize_gen_kwargs,
                 "handle_stop_sequences": utils.handle_stop_sequences}
    exec(compile(ast.Module(body=[function], type_ignores=[]), "vllm_causallms.py", "exec"), namespace)
    return namespace["modify_gen_kwargs"]


@pytest.mark.parametrize("name", FAMILIES)
def test_vllm_argument_handling_keeps_our_stops_and_cap(configs, name):
    ours = configs[name]
    kwargs, until, max_gen_toks = _vllm_modify_gen_kwargs()(dict(ours, until=list(ours["until"])), eos="</s>")
    assert until == ours["until"]  # '</s>' is already ours: nothing added, nothing lost
    assert max_gen_toks == ours["max_gen_toks"] < 512
    assert set(kwargs) <= VLLM_FIELDS and kwargs["temperature"] == 0.7 and kwargs["top_p"] == 1.0


@pytest.mark.parametrize("name", FAMILIES)
def test_hf_argument_handling_keeps_our_stops_and_cap(configs, name):
    from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs

    ours = configs[name]
    kwargs = normalize_gen_kwargs(dict(ours, until=list(ours["until"])), 256)  # as HFLM.generate_until does
    until = handle_stop_sequences(kwargs.pop("until", None), eos="<|endoftext|>")
    assert until == ours["until"] and kwargs.pop("max_gen_toks") == ours["max_gen_toks"]
    assert kwargs == {"do_sample": True, "temperature": 0.7, "top_p": 1.0}  # model.generate's own keywords
