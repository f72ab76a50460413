"""`routing-eval` against hostile saved routers, interrupted writes and odd options.

Three promises, each tried as an attacker and as an unlucky user would:
- a saved router is data, never code: a payload planted in any of its files runs on none of
  `routing-eval --load`, `routing-eval predict --load` and `lm_eval --model routed`;
- outputs are all or nothing: a run killed (SIGKILL) or interrupted (SIGINT) at any write
  step leaves each target either absent or complete, and a killed run's leftovers are
  reported and never reused;
- every refusal is one line (exit 2, no traceback, nothing written, earlier files
  byte-identical), with its real cause, never the last guard's "please report this".
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lm_routing.reading.publish
from conftest import REPO, build_tiny_encoder
from lm_routing.learning.encoders import quiet_transformers
from lm_routing.saved import load_router
from test_corrupted_inputs import (  # noqa: F401  (fixtures: simulated pool logs, the in-process CLI)
    assert_one_line_error, logs, run, samples_file, simulated, tree,
)

FAST = ("--router", "knn", "--policy", "argmax")
GUARD = "please report this"


class Payload:
    """Unpickling this creates `marker`: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


def payload_bytes(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def object_array_npz(marker: Path) -> bytes:
    """A real .npz whose one array is an object array: numpy would unpickle the payload if allowed to."""
    buffer = io.BytesIO()
    np.savez(buffer, **{"router.labels": np.array([Payload(marker)], dtype=object)})
    return buffer.getvalue()


def npz_headers(path: Path) -> dict[str, dict]:
    """Each member's dtype and shape as router.json declares them, read from the npy headers (no data read)."""
    import zipfile

    declared = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
            descr = json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))
            declared[info.filename.removesuffix(".npy")] = {"dtype": descr, "shape": list(shape)}
    return declared


def rehash(folder: Path) -> None:
    """Make router.json's sha256 list and array sizes match the files as they are now (an attacker can do that too)."""
    meta = json.loads((folder / "router.json").read_text())
    meta["files"] = {name: lm_routing.saved._sha256(folder / name) for name in meta["files"]}
    try:
        meta["arrays"] = npz_headers(folder / "arrays.npz")
    except Exception:  # noqa: BLE001  (not an npz at all: its sizes stay as they were)
        pass
    (folder / "router.json").write_text(json.dumps(meta))


@pytest.fixture
def fails(run, tmp_path):
    """`fails(*args, expect=(...))`: the one-line error contract, the guard not involved, no file under tmp_path
    new or changed (earlier outputs byte-identical)."""

    def call(*args, expect: tuple[str, ...]) -> str:
        before = tree(tmp_path)
        done = run(*args)
        message = assert_one_line_error(done.code, done.out, done.err, *expect)
        assert GUARD not in message, message
        assert tree(tmp_path) == before
        return message

    return call


def _cli(*args, env_extra: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "lm_routing.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def knn_router(simulated, tmp_path_factory) -> Path:
    """knn on TF-IDF, saved by the CLI: router.json + arrays.npz."""
    folder = tmp_path_factory.mktemp("saved") / "knn"
    done = _cli("--logs", simulated / "gsm8k", *FAST, "--save", folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def sc_router(simulated, tmp_path_factory) -> Path:
    """sc on a tiny random BERT, saved by the CLI: also encoder/ (safetensors weights, config, tokenizer files)."""
    root = tmp_path_factory.mktemp("saved_sc")
    texts = [json.loads(line)["doc"]["question"] for line in samples_file(simulated / "gsm8k", split="train").open()]
    with quiet_transformers():  # its save bars would land in the first test's captured stderr
        encoder = build_tiny_encoder(root / "bert", texts)
    done = _cli("--logs", simulated / "gsm8k", "--router", "sc", "--encoder", encoder, "--max-length", "16",
                "--policy", "argmax", "--save", root / "sc")
    assert done.returncode == 0, done.stderr
    return root / "sc"


def copy_router(saved: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(saved, tmp_path / "planted" / saved.name))


def files_of(saved: Path) -> list[str]:
    return sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())


# ---------------------------------------------------------------- saved routers: data, never code

def test_saved_router_holds_no_pickle(knn_router, sc_router):
    assert files_of(knn_router) == ["arrays.npz", "router.json"]
    assert "encoder/model.safetensors" in files_of(sc_router)
    for saved in (knn_router, sc_router):
        for name in files_of(saved):
            assert not (saved / name).read_bytes().startswith(b"\x80")  # no pickle protocol header anywhere
        with np.load(saved / "arrays.npz", allow_pickle=False) as arrays:
            assert not any(arrays[key].dtype.hasobject for key in arrays.files)


def _planted_cases(saved_name: str):
    names = {"knn": ["arrays.npz", "router.json"],
             "sc": ["arrays.npz", "router.json", "encoder/config.json", "encoder/model.safetensors",
                    "encoder/tokenizer.json", "encoder/tokenizer_config.json"]}[saved_name]
    return [(saved_name, name, rehashed) for name in names for rehashed in (False, True) if not (name == "router.json" and rehashed)]


@pytest.mark.parametrize("saved_name, name, rehashed", _planted_cases("knn") + _planted_cases("sc"),
                         ids=lambda v: str(v))
def test_payload_in_any_file_runs_nowhere(request, logs, fails, tmp_path, saved_name, name, rehashed):
    saved = copy_router(request.getfixturevalue(f"{saved_name}_router"), tmp_path)
    marker = tmp_path / "pwned"
    (saved / name).write_bytes(payload_bytes(marker))
    if rehashed:
        rehash(saved)
    expect = ("changed since the router was saved",) if not rehashed else (str(saved),)
    if name == "router.json":
        expect = ("router.json: not JSON",)
    fails("--logs", logs, "--load", saved, "--policy", "argmax", expect=expect)
    fails("predict", "--load", saved, "--query", "How many apples?", expect=expect)
    assert not marker.exists()


@pytest.mark.parametrize("plant, expect", [
    (lambda saved, marker: ((saved / "arrays.npz").write_bytes(object_array_npz(marker)), rehash(saved)),
     "arrays.npz: holds pickled data, which can run code and is never loaded"),
    (lambda saved, marker: (saved / "router.pkl").write_bytes(payload_bytes(marker)),
     "saved by an older lm-routing as a pickle (router.pkl), which can run code when loaded; not loaded: save the router again"),
    (lambda saved, marker: (saved / "router.pkl").write_bytes(b""), "(router.pkl), which can run code"),
    (lambda saved, marker: (saved / "extra.pkl").write_bytes(payload_bytes(marker)), "unexpected file extra.pkl"),
    (lambda saved, marker: (saved / "arrays.npz").unlink(), "missing file arrays.npz"),
    (lambda saved, marker: ((saved / "arrays.npz").write_bytes(b""), rehash(saved)), "arrays.npz: not a .npz archive"),
    (lambda saved, marker: ((saved / "arrays.npz").rename(saved / "x"), (saved / "arrays.npz").symlink_to(saved / "x")),
     "a link inside a saved router"),
], ids=["object-array-npz", "old-pickle", "empty-old-pickle", "extra-file", "missing-npz", "empty-npz", "symlink"])
def test_crafted_router_files_are_refused(knn_router, logs, fails, tmp_path, plant, expect):
    saved = copy_router(knn_router, tmp_path)
    marker = tmp_path / "pwned"
    plant(saved, marker)
    fails("--logs", logs, "--load", saved, "--policy", "argmax", expect=(str(saved), expect))
    fails("predict", "--load", saved, "--query", "How many apples?", expect=(expect,))
    assert not marker.exists()


def test_pytorch_checkpoint_planted_beside_the_safetensors_is_refused(sc_router, fails, tmp_path):
    saved = copy_router(sc_router, tmp_path)
    marker = tmp_path / "pwned"
    (saved / "encoder" / "model.safetensors").unlink()
    (saved / "encoder" / "pytorch_model.bin").write_bytes(payload_bytes(marker))
    rehash_files = json.loads((saved / "router.json").read_text())
    rehash_files["files"]["encoder/pytorch_model.bin"] = rehash_files["files"].pop("encoder/model.safetensors")
    (saved / "router.json").write_text(json.dumps(rehash_files))
    rehash(saved)
    message = fails("predict", "--load", saved, "--query", "How many apples?",
                    expect=("router.json: lists 'encoder/pytorch_model.bin': pickled weights",))
    assert "safetensors" in message.lower()
    assert not marker.exists()


def _meta_edit(change):
    def plant(saved: Path) -> None:
        path = saved / "router.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return plant


@pytest.mark.parametrize("plant, expect", [
    (_meta_edit(lambda m: [m]), "router.json: a JSON list, not an object"),
    (_meta_edit(lambda m: "knn"), "router.json: a JSON str, not an object"),
    (_meta_edit(lambda m: {**m, "format": 1}), "saved in format '1'; this lm-routing reads formats 2, 3, 4: save the router again"),
    (_meta_edit(lambda m: {**m, "format": "2"}), "saved in format '2'; this lm-routing reads formats 2, 3, 4"),
    (_meta_edit(lambda m: {k: v for k, v in m.items() if k != "models"}), "keys "),
    (_meta_edit(lambda m: {**m, "router": "gpt"}), "unknown router 'gpt'"),
    (_meta_edit(lambda m: {**m, "router": ["knn"]}), "unknown router \"['knn']\""),
    (_meta_edit(lambda m: {**m, "params": {"__class__": "os.system"}}), "'params' must be an object with keys among"),
    (_meta_edit(lambda m: {**m, "params": ["n_neighbors"]}), "'params' must be an object"),
    (_meta_edit(lambda m: {**m, "params": {"n_neighbors": "many"}}), "'params.n_neighbors' is \"many\", not a value"),
    (_meta_edit(lambda m: {**m, "models": "gemma-7b"}), "'models' must be a list of distinct model names"),
    (_meta_edit(lambda m: {**m, "models": m["models"] + [m["models"][0]], "n_models": 4}), "'models' must be a list of distinct"),
    (_meta_edit(lambda m: {**m, "n_models": True}), "'n_models' its length"),
    (_meta_edit(lambda m: {**m, "files": ["arrays.npz"]}), "'files' must map each file"),
    (_meta_edit(lambda m: {**m, "files": {"arrays.npz": "0" * 63}}), "'files' must map each file"),
    (_meta_edit(lambda m: {**m, "features": {"kind": "pickle", "path": "x.pkl"}}), "are not a kind lm-routing saves"),
    (_meta_edit(lambda m: {**m, "features": {"kind": "embeddings", "name": "/etc", "max_length": 8, "batch_size": 1}}),
     "'features.name' must be 'minilm' or hf:<model>"),
    (_meta_edit(lambda m: {**m, "encoder": {"pooling": "mean"}}), "'encoder' must be null or {pooling: mean or first"),
    (lambda saved: (saved / "router.json").write_text("[" * 100_000 + "]" * 100_000), "router.json: not JSON"),
    (lambda saved: (saved / "router.json").write_bytes(b""), "router.json: not JSON"),
    (lambda saved: (saved / "router.json").write_bytes(b"\xff\xfe{}"), "router.json: not JSON"),
    (lambda saved: (saved / "router.json").unlink(), "no router.json; not a router saved by routing-eval --save"),
], ids=["list", "string", "format-1", "format-string", "no-models", "unknown-router", "router-list", "params-foreign",
        "params-list", "params-type", "models-string", "models-twice", "n-models-bool", "files-list", "files-short-hash",
        "features-kind", "features-path", "encoder-shape", "deep-json", "empty-json", "not-utf8", "no-json"])
def test_router_json_of_the_wrong_shape(knn_router, logs, fails, tmp_path, plant, expect):
    saved = copy_router(knn_router, tmp_path)
    plant(saved)
    fails("--logs", logs, "--load", saved, "--policy", "argmax", expect=(expect,))


@pytest.mark.parametrize("change", [
    lambda a: {**a, "router.labels": a["router.labels"][:, :2]},
    lambda a: {**a, "router.labels": a["router.labels"].astype(str)},
    lambda a: {**a, "features.idf": a["features.idf"][:-1]},
    lambda a: {k: v for k, v in a.items() if k != "router.points.indptr"},
], ids=["labels-narrow", "labels-text", "idf-short", "no-indptr"])
def test_tampered_arrays_are_refused_at_load(knn_router, fails, tmp_path, change):
    saved = copy_router(knn_router, tmp_path)
    with np.load(saved / "arrays.npz", allow_pickle=False) as stored:
        arrays = change({key: stored[key] for key in stored.files})
    (saved / "arrays.npz").unlink()
    np.savez(saved / "arrays.npz", **arrays)
    rehash(saved)
    fails("predict", "--load", saved, "--query", "How many apples?", expect=(f"{saved}: cannot rebuild the saved router",))


@pytest.fixture(scope="module")
def rf_router(simulated, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved_rf") / "rf"
    done = _cli("--logs", simulated / "gsm8k", "--router", "rf", "--policy", "argmax", "--save", folder)
    assert done.returncode == 0, done.stderr
    return folder


def _retarget(field: str, value: int):
    def change(arrays):
        nodes = arrays["router.tree0.nodes"].copy()
        nodes[field][0] = value
        return {**arrays, "router.tree0.nodes": nodes}
    return change


@pytest.mark.parametrize("saved_name, change", [
    ("rf", _retarget("left_child", 10**9)), ("rf", _retarget("right_child", 0)), ("rf", _retarget("feature", 10**9)),
    ("rf", _retarget("left_child", -5)),
    ("rf", lambda a: {**a, "router.tree0.values": a["router.tree0.values"][:1]}),
    ("rf", lambda a: {**a, "router.tree0.nodes": np.zeros(len(a["router.tree0.nodes"]), dtype=[("x", "<f8")])}),
    ("knn", lambda a: {**a, "router.points.indices": a["router.points.indices"] + 10**6}),
], ids=["child-out-of-range", "child-loop", "feature-out-of-range", "child-negative", "values-short", "nodes-layout",
        "csr-indices"])
def test_tampered_compiled_structures_are_refused_before_use(request, fails, tmp_path, saved_name, change):
    """Arrays that sklearn's compiled code would read unchecked (tree nodes, sparse indices) are checked at load."""
    saved = copy_router(request.getfixturevalue(f"{saved_name}_router"), tmp_path)
    with np.load(saved / "arrays.npz", allow_pickle=False) as stored:
        arrays = change({key: stored[key] for key in stored.files})
    (saved / "arrays.npz").unlink()
    np.savez(saved / "arrays.npz", **arrays)
    rehash(saved)
    fails("predict", "--load", saved, "--query", "How many apples?", expect=(f"{saved}: cannot rebuild the saved router",))


@pytest.mark.slow
def test_lm_eval_routed_runs_no_code_from_a_saved_router(knn_router, sc_router, shared_data, tmp_path):
    """The real `lm_eval --model routed`: each planted router is refused before any task runs, and no marker appears."""
    plants = {
        "old-pickle": (knn_router, lambda saved, marker: (saved / "router.pkl").write_bytes(payload_bytes(marker))),
        "object-npz": (knn_router, lambda saved, marker: ((saved / "arrays.npz").write_bytes(object_array_npz(marker)), rehash(saved))),
        "safetensors": (sc_router, lambda saved, marker: ((saved / "encoder" / "model.safetensors").write_bytes(payload_bytes(marker)), rehash(saved))),
    }
    env = {**os.environ, "LM_ROUTING_DATA": str(shared_data), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": str(REPO)}
    for name, (source, plant) in plants.items():
        saved = copy_router(source, tmp_path / name)
        marker = tmp_path / f"pwned-{name}"
        plant(saved, marker)
        done = subprocess.run([str(Path(sys.executable).with_name("lm_eval")), "--model", "routed", "--model_args",
                               f"router={saved}", "--tasks", "gsm8k_cot_maj10", "--limit", "1", "--output_path",
                               str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert done.returncode != 0, name
        assert any(refusal in done.stderr for refusal in ("not loaded", "never loaded", "cannot rebuild")), done.stderr[-2000:]
        assert not marker.exists(), name
        assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- all-or-nothing outputs

def _normalised(root: Path) -> dict[str, int]:
    """Published files by name (timestamps masked) -> line count: what a complete run leaves."""
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d+")
    return {stamp.sub("<time>", p.relative_to(root).as_posix()): len(p.read_bytes().splitlines())
            for p in root.rglob("*") if p.is_file()}


def _target_states(out: Path, saved: Path, complete: dict[str, dict[str, int]]) -> tuple[str, str]:
    """("nothing" or "everything") for --output-path and for --save; anything in between fails the test."""
    states = []
    for target, key in ((out, "out"), (saved, "save")):
        visible = [p for p in target.iterdir() if not p.name.startswith(".")] if target.exists() else []
        states.append("everything" if visible else "nothing")
        if visible:
            assert {k: v for k, v in _normalised(target).items() if not k.startswith(".")} == complete[key]
    if states[1] == "everything":
        load_router(saved)  # every file present with its recorded sha256
    return tuple(states)


@pytest.fixture(scope="module")
def kill_setup(simulated, tmp_path_factory):
    """A complete run's files (the reference), and how many write steps a run takes."""
    root = tmp_path_factory.mktemp("kill")
    args = ("--logs", simulated / "gsm8k", "--router", "knn", "--policy", "argmax", "--policy", "random",
            "--policy", "prediction")
    done = _cli(*args, "--output-path", root / "out", "--save", root / "sv",
                env_extra={lm_routing.reading.publish.FAULT_ENV: "100000:SIGKILL"})
    assert done.returncode == 0, done.stderr
    complete = {"out": _normalised(root / "out"), "save": _normalised(root / "sv")}
    assert len(complete["out"]) == 6 and len(complete["save"]) == 2  # 3 routed models x 2 files; router.json + arrays.npz
    return args, complete


@pytest.mark.parametrize("signame, every", [("SIGKILL", 1), ("SIGINT", 2), ("SIGTERM", 6)])
def test_kill_at_every_write_step_leaves_nothing_or_everything(kill_setup, tmp_path, signame, every):
    """Kill the run at write step 1, 2, ... (SIGINT: every 2nd step) until a run completes.

    Each target is always nothing or everything. The two targets are two renames: SIGINT is
    held back between them, so it never splits them; SIGKILL can, at the one step between the renames.
    """
    args, complete = kill_setup
    states, step = {}, 0
    while True:
        step += every
        out, saved = tmp_path / f"{step}" / "out", tmp_path / f"{step}" / "sv"
        done = _cli(*args, "--output-path", out, "--save", saved, env_extra={lm_routing.reading.publish.FAULT_ENV: f"{step}:{signame}"})
        if done.returncode == 0:
            break
        assert "Traceback" not in done.stderr
        if signame == "SIGKILL":
            assert done.returncode == -signal.SIGKILL
        else:
            assert done.returncode == 128 + getattr(signal, signame)
            assert done.stderr.strip().splitlines() == [
                f"routing-eval: interrupted ({signame}); outputs are all or nothing: no partial file was left"]
            assert not list((tmp_path / f"{step}").rglob(".*"))  # temporary folders and reservations removed
        states[step] = _target_states(out, saved, complete)
    split = [s for s, state in states.items() if len(set(state)) > 1]
    assert len(states) * every >= 20, f"only {len(states)} kill points"
    assert ("nothing", "nothing") in states.values()
    assert ("everything", "everything") in states.values() or signame == "SIGTERM"
    if signame == "SIGKILL":
        assert len(split) <= 1 and all(states[s] == ("everything", "nothing") for s in split)
    else:
        assert split == []
    print(f"{signame}: {len(states)} kill points; split between the two renames at {split}")


def test_leftovers_of_a_killed_run_are_reported_and_never_reused(kill_setup, tmp_path):
    args, complete = kill_setup
    out, saved = tmp_path / "out", tmp_path / "sv"
    killed = _cli(*args, "--output-path", out, "--save", saved, env_extra={lm_routing.reading.publish.FAULT_ENV: "3:SIGKILL"})
    assert killed.returncode == -signal.SIGKILL
    leftovers = tree(tmp_path)
    assert leftovers and all(any(part.startswith(".") for part in Path(name).parts) for name in leftovers)
    temporary = {name: data for name, data in leftovers.items() if ".tmp/" in name}
    assert temporary and ".sv.lock" in leftovers  # the killed run's staged files and its reservation of sv
    again = _cli(*args, "--output-path", out, "--save", saved)
    assert again.returncode == 0, again.stderr
    notes = [line for line in again.stderr.splitlines() if line.startswith("routing-eval: note: ignored ")]
    assert len(notes) == 4 and all("left by a killed run" in line for line in notes)  # 2 temporary folders, 2 locks
    after = tree(tmp_path)
    assert all(after[name] == data for name, data in temporary.items())  # left alone, not reused
    assert ".sv.lock" not in after  # the dead run's reservation was taken over, then released
    assert _target_states(out, saved, complete) == ("everything", "everything")


def test_a_target_reserved_by_a_live_run_is_refused(logs, fails, tmp_path):
    import fcntl

    saved, lock = tmp_path / "sv", tmp_path / ".sv.lock"
    lock.write_text(str(os.getpid()))  # this process is alive and holds the lock: as another run writing sv
    with open(lock) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        fails("--logs", logs, *FAST, "--save", saved,
              expect=(f"{saved}: being written by another run (pid {os.getpid()}, lock file {lock})",))


def test_two_runs_with_one_timestamp_never_share_a_folder(logs, run, tmp_path, monkeypatch):
    stamps = iter(["2030-01-01T00-00-00.000000"] * 2 + ["2030-01-01T00-00-00.000001"] * 2)
    monkeypatch.setattr(lm_routing.reading.publish, "timestamp", lambda: next(stamps))
    out = tmp_path / "out"
    assert run("--logs", logs, *FAST, "--output-path", out).code == 0
    first = tree(out)
    assert run("--logs", logs, *FAST, "--output-path", out).code == 0
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["routed-2030-01-01T00-00-00.000000", "routed-2030-01-01T00-00-00.000001"]
    assert all(tree(out)[name] == data for name, data in first.items())
    second = list((out / folders[1]).rglob("results_*.json"))
    assert second and second[0].name == "results_2030-01-01T00-00-00.000001.json"  # files carry their folder's stamp


def test_disk_full_while_writing_leaves_nothing(logs, tmp_path):
    import resource

    before = tree(tmp_path)
    limit = 50_000  # bytes per file: the samples files are larger

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = _cli("--logs", logs, *FAST, "--output-path", tmp_path / "out", "--save", tmp_path / "sv", preexec_fn=cap)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "File too large" in lines[0], done.stderr
    assert GUARD not in lines[0] and "Traceback" not in done.stderr
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith(("out/", "sv"))} == before
    assert not list(tmp_path.glob("out/*")) and not (tmp_path / "sv").exists()
    assert not [p for p in tmp_path.rglob(".*")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_folder(logs, fails, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        fails("--logs", logs, *FAST, "--output-path", locked, expect=(str(locked), "Permission denied"))
        fails("--logs", logs, *FAST, "--save", locked / "sv", expect=(str(locked), "Permission denied"))
    finally:
        locked.chmod(0o700)


def test_bad_save_path_after_output_path_writes_neither(logs, fails, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    fails("--logs", logs, *FAST, "--output-path", tmp_path / "out", "--save", blocker / "sv",
          expect=(f"{blocker}: not a folder",))
    assert not (tmp_path / "out").exists()


def test_old_style_leftover_tmp_folder_does_not_block_a_save(logs, run, tmp_path):
    (tmp_path / "sv.tmp").mkdir()  # what an older lm-routing left when killed while saving
    (tmp_path / "sv.tmp" / "router.pkl").write_bytes(b"truncated")
    done = run("--logs", logs, *FAST, "--save", tmp_path / "sv")
    assert done.code == 0, done.err
    assert (tmp_path / "sv.tmp" / "router.pkl").read_bytes() == b"truncated"
    load_router(tmp_path / "sv")


def test_demo_interrupted_while_writing_leaves_no_demo_folder(tmp_path):
    """The demo's logs and routed models appear together as one folder, or not at all."""
    done = _cli("demo", "--output-path", tmp_path / "ok", "--router", "knn",
                env_extra={lm_routing.reading.publish.FAULT_ENV: "10:SIGINT"})
    assert done.returncode == 128 + signal.SIGINT and "Traceback" not in done.stderr
    assert not (tmp_path / "ok").exists() or not list((tmp_path / "ok").iterdir())


# ---------------------------------------------------------------- one-line errors: real causes, real messages

@pytest.mark.parametrize("question", ["", "?!", "... --- ???", "   "], ids=["empty", "punctuation", "dashes", "blank"])
def test_questions_without_words(tmp_path, fails, question):
    tables = {split: tmp_path / f"{split}.json" for split in ("train", "test")}  # RouterDC: repeated texts allowed
    for table in tables.values():
        table.write_text(json.dumps([{"question": question, "scores": {"a": i % 2, "b": (i + 1) % 2}} for i in range(12)]))
    fails("--scores", tables["train"], "--test-scores", tables["test"], "--router", "knn", "--output-path", tmp_path / "out",
          "--allow-overlap",  # the same text on both sides: past the overlap check, to the features' own error
          expect=("training queries have no words (empty or punctuation only)", "--features minilm"))


@pytest.mark.parametrize("command", [("--logs", "LOGS"), ("predict", "--load", "LOAD", "--query", "x"),
                                     ("demo", "--output-path", "OUT")], ids=["evaluate", "predict", "demo"])
@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
def test_seed_out_of_range(knn_router, logs, fails, tmp_path, command, seed):
    args = [{"LOGS": logs, "LOAD": knn_router, "OUT": tmp_path / "out"}.get(a, a) for a in command]
    fails(*args, "--seed", seed, expect=("--seed",))


@pytest.mark.parametrize("option, value", [
    ("--cascade-threshold", "nan"), ("--cascade-threshold", "inf"), ("--budget", "nan"), ("--max-latency", "inf"),
    ("--max-latency", "nan"), ("--lr", "nan"), ("--lr", "0"), ("--cascade-threshold", "-0.1"),
])
def test_non_finite_numbers_are_refused(logs, fails, option, value):
    fails("--logs", logs, *FAST, option, value, expect=(option,))


@pytest.mark.parametrize("queries", [[""], ["  "], ["How many apples?", ""], ["\t"]], ids=["empty", "spaces", "second", "tab"])
def test_predict_refuses_an_empty_query(knn_router, fails, queries):
    args = [a for q in queries for a in ("--query", q)]
    fails("predict", "--load", knn_router, *args, expect=("is empty: a router has nothing to route on",))


def test_unexpected_error_is_one_line_naming_the_input(logs, run, tmp_path, monkeypatch):
    """The last guard: a bug inside a command (here a policy that divides by zero) is one line, exit 2."""
    import lm_routing.deciding.policies

    def broken(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(lm_routing.deciding.policies.ArgMax, "choose", broken)
    done = run("--logs", logs, *FAST)
    message = assert_one_line_error(done.code, done.out, done.err, "unexpected ZeroDivisionError", str(logs), GUARD)
    assert "division by zero" in message


@pytest.mark.parametrize("name, handler", [("routing-eval", "interrupted_while_starting"),
                                           ("lm_eval", "default_int_handler")])
def test_site_arms_the_start_up_handler_for_routing_eval_only(tmp_path, name, handler):
    """lm_routing.pth imports the hook while site runs: in a program called routing-eval SIGINT is ours before the
    console script's first line; any other program (lm_eval, pytest) keeps Python's own handler."""
    if not any(Path(p, "lm_routing.pth").exists() for p in sys.path):
        pytest.skip("lm-routing is not installed (no lm_routing.pth on sys.path)")
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\nimport _signal\nprint(_signal.getsignal(_signal.SIGINT).__name__)\n")
    script.chmod(0o755)
    # started as a shell starts it, SIGINT at its default (a test run may have inherited it ignored, as under nohup)
    done = subprocess.run([str(script)], capture_output=True, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 0 and done.stdout.strip() == handler, done.stderr


# before ~10 ms: SIGINT's default action (no handler yet); then CPython's own start-up (init_sys_streams, site) where a
# KeyboardInterrupt is its "Fatal Python error" and nothing of ours has run; from the hook on: our one line
@pytest.mark.parametrize("delay", [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12])
def test_ctrl_c_in_the_first_milliseconds_never_prints_our_traceback(tmp_path, delay):
    script = Path(sys.executable).with_name("routing-eval")
    if not script.exists():
        pytest.skip("routing-eval is not installed as a console script")
    process = subprocess.Popen([str(script), "--logs", str(tmp_path / "none")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    if "Fatal Python error: init_" in err:  # the interpreter's own start: documented in the README, not ours to catch
        assert process.returncode == 1 and "Python runtime state: " in err and "cli/" not in err
    elif process.returncode == -signal.SIGINT:  # before Python installed any handler: the default action, silent
        assert err == ""
    else:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert process.returncode in (2, 128 + signal.SIGINT), err
    assert not list(tmp_path.iterdir())


# from 0.25 s: the first ~50 ms are the interpreter's own start (site import), before any code of ours can run
@pytest.mark.parametrize("delay", [0.25, 0.5, 1.0, 2.0])
def test_ctrl_c_while_starting_is_one_line(tmp_path, delay):
    script = Path(sys.executable).with_name("routing-eval")
    if not script.exists():
        pytest.skip("routing-eval is not installed as a console script")
    process = subprocess.Popen([str(script), "--logs", str(tmp_path / "none")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    if process.returncode == 2:  # it had started and finished already: the real error, not an interrupt
        assert "no such folder" in lines[0]
    else:
        assert process.returncode == 128 + signal.SIGINT
        assert lines[0].startswith("routing-eval: interrupted"), lines
    assert not list(tmp_path.iterdir())
