"""lm-routing's task plugin for lm-evaluation-harness.

Chain-of-thought GSM8K and MMLU tasks with K=10 sampled answers and majority
vote (maj@10), the per-query labels LLM routers learn from. After
`pip install`, a plain `lm_eval --tasks gsm8k_cot_maj10` finds them.
"""

from pathlib import Path

from lm_routing_tasks.extraction import extract_gsm8k_answer, extract_mmlu_answer, normalize_number
from lm_routing_tasks.scoring import majority_vote, score_samples

TASK_DIR = Path(__file__).parent / "tasks"

__all__ = [
    "TASK_DIR",
    "extract_gsm8k_answer",
    "extract_mmlu_answer",
    "majority_vote",
    "normalize_number",
    "score_samples",
]
