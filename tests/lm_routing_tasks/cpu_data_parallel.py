"""`lm_eval` with lm-eval's own hf data parallelism on CPU processes: the test's substitute for GPUs.

`accelerate launch --cpu --num_processes 2` starts ONE process (accelerate's simple
launcher; several CPU processes need mpirun), and lm-eval's `hf` back-end shards
requests across `accelerate` processes only when `torch.cuda.device_count() > 1`
(lm_eval/models/huggingface.py): on CPU every process would run every document.
This entry point registers `hf-cpu-dp`, lm-eval's `HFLM` with that one gate lifted
(rank and world size taken from the accelerate process group, as lm-eval does for
GPUs), then runs lm-eval's own CLI. Everything else is lm-eval's: request sharding,
padding, the gather of samples and metrics, and the single merged sample log.
Launch: `accelerate launch --multi_gpu --num_processes 2 cpu_data_parallel.py --model hf-cpu-dp ...`
"""

from lm_eval.__main__ import cli_evaluate
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM


@register_model("hf-cpu-dp")
class CPUDataParallelHFLM(HFLM):
    """HFLM that shards requests over accelerate's CPU processes (lm-eval does so for GPUs only)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None and accelerator.num_processes > 1:
            self._rank = accelerator.process_index
            self._world_size = accelerator.num_processes


if __name__ == "__main__":
    cli_evaluate()
