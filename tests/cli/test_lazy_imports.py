"""`routing-eval --help` and input errors import none of the heavy libraries (start-up cost: results/scale.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sklearn", "scipy", "pandas", "torch", "matplotlib", "transformers")
PROBE = """
import sys, lm_routing.cli.main
try:
    lm_routing.cli.main.main(sys.argv[1:])
except SystemExit:
    pass
print("heavy:" + ",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[0].split(",")))))
"""


@pytest.mark.parametrize("args", [["--help"], ["predict", "--help"], ["--scores", "missing.json"], ["--router", "nope", "--scores", "x.csv"]],
                         ids=["help", "predict-help", "missing-file", "bad-router"])
def test_no_heavy_import(args, tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE.replace("sys.argv[0]", repr(",".join(HEAVY))), *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.splitlines()[-1] == "heavy:", done.stdout + done.stderr
