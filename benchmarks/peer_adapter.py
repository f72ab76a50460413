"""The peer side of benchmarks/peers.py: LLMRouter's (PyPI llmrouter-lib) own routers on our splits.

Runs in its own virtual environment (see benchmarks/peers.py), never in lm-routing's: it imports
only llmrouter, torch, numpy and the standard library. A thin data adapter writes one split into
the peer's own input files (routing JSONL rows {query, model_name, performance, embedding_id},
a .pt tensor of query embeddings, a YAML config); the peer's Router and Trainer classes then fit
as its CLI would, and route the test queries with the peer's own trained model, fed the same
MiniLM embeddings our routers read. The routers' route_batch also calls the chosen LLM over an
API; only the routing decision is taken here. Test labels never reach the peer.

Run: python benchmarks/peer_adapter.py SPLIT.npz OUT.json [--dc-steps N]
  SPLIT.npz: models, train_queries, test_queries, train_performance (n_train, n_models),
  train_embeddings, test_embeddings (float32, unit rows). OUT.json: per peer router,
  {"choices": [model index per test query] | null, "seconds" (fit + route), "status"}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import yaml

CANNOT = {  # peer routers that cannot run here, and exactly why
    "automix": "routes by the LLMs' own self-verification of a generated answer at query time: needs the LLMs",
    "causallm_router": "fine-tunes a causal LLM as the router: no such weights offline, and not CPU-trainable",
    "router_r1": "an LLM agent that calls LLMs during routing (vllm + API): needs the LLMs",
    "knnmultiroundrouter": "decomposes each query with an LLM over an API before routing",
    "llmmultiroundrouter": "an LLM decomposes and routes each query over an API",
    "graphrouter": "needs torch-geometric and per-LLM description embeddings (the RouterDC pool ships none)",
    "personalizedrouter": "needs torch-geometric and per-user interaction data (none in RouterDC)",
    "gmtrouter": "needs torch-geometric and multi-turn user histories (none in RouterDC)",
    "hybrid_llm": "routes between one small and one large LLM; the pool is seven 7-8B models",
    "smallest_llm/largest_llm": "pick by parameter count; the pool is seven 7-8B models, so no signal",
    "tsrouter": "routes time-series forecasting models, not text queries",
}


def write_inputs(folder: Path, split: dict) -> dict:
    """The peer's input files for one split; returns the YAML `data_path` block."""
    models = [str(m) for m in split["models"]]
    queries = [str(q) for q in split["train_queries"]]
    rows = [
        {"query": q, "model_name": m, "performance": float(split["train_performance"][i, j]), "embedding_id": i}
        for i, q in enumerate(queries) for j, m in enumerate(models)
    ]
    # test rows carry no labels: performance 0.0 for every model (the peer's RouterDC reads the field)
    test_rows = [{"query": str(q), "model_name": m, "performance": 0.0, "embedding_id": -1}
                 for q in split["test_queries"] for m in models]
    for name, content in (("routing_train.jsonl", rows), ("routing_test.jsonl", test_rows)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in content))
    torch.save(torch.from_numpy(np.asarray(split["train_embeddings"], dtype=np.float32)), folder / "embeddings.pt")
    (folder / "llm.json").write_text(json.dumps({m: {"model": m, "size": "7B"} for m in models}))
    return {
        "routing_data_train": str(folder / "routing_train.jsonl"),
        "routing_data_test": str(folder / "routing_test.jsonl"),
        "query_embedding_data": str(folder / "embeddings.pt"),
        "llm_data": str(folder / "llm.json"),
    }


def config(folder: Path, data_path: dict, name: str, hparam: dict, **model_path) -> str:
    """A peer YAML config for router `name`; returns its path."""
    saved = str(folder / f"{name}.pkl")
    cfg = {"data_path": data_path, "hparam": hparam,
           "model_path": {"ini_model_path": "", "save_model_path": saved, "load_model_path": saved, **model_path},
           "metric": {"weights": {"performance": 1, "cost": 0, "llm_judge": 0}}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def classifier_router(router_cls, trainer_cls, attribute: str):
    """Fit/route for the peer's sklearn routers (knn, svm): the trained classifier predicts model names."""
    from llmrouter.utils import load_model

    def run(yaml_path: str, test: dict) -> list[str]:
        router = router_cls(yaml_path)
        trainer_cls(router).train()
        model = load_model(router.cfg["model_path"]["load_model_path"])
        setattr(router, attribute, model)
        return list(model.predict(test["embeddings"]))

    return run


def mlp_router(yaml_path: str, test: dict) -> list[str]:
    from llmrouter.models import MLPRouter, MLPTrainer

    router = MLPRouter(yaml_path)
    MLPTrainer(router).train()
    router.load_model_path = router.cfg["model_path"]["load_model_path"]
    model, _ = router._load_mlp_model()
    with torch.no_grad():
        picked = model.predict(torch.from_numpy(test["embeddings"])).tolist()
    return [router.idx_to_model[i] for i in picked]


def mf_router(yaml_path: str, test: dict) -> list[str]:
    from llmrouter.models import MFRouter, MFRouterTrainer

    router = MFRouter(yaml_path)
    MFRouterTrainer(router).train()
    router.load_model_path = router.cfg["model_path"]["load_model_path"]
    model = router._load_mf_model()
    with torch.no_grad():  # route_single's steps, on our embedding instead of its Longformer one
        picked = [int(torch.argmax(model.score_all(model.project_text(torch.from_numpy(e))))) for e in test["embeddings"]]
    return [router.idx_to_model[i] for i in picked]


def elo_router(yaml_path: str, test: dict) -> list[str]:
    from llmrouter.models import EloRouter, EloRouterTrainer

    router = EloRouter(yaml_path)
    EloRouterTrainer(router).train()
    return [router.route_single({"query": ""})["model_name"]] * len(test["queries"])


def dc_router(yaml_path: str, test: dict, encoder: str) -> list[str]:
    """The peer's RouterDC with MiniLM as its backbone (it hard-codes mDeBERTa-v3, not available offline)."""
    import llmrouter.models.routerdc.router as dc
    from llmrouter.models import DCRouter, DCTrainer
    from torch.utils.data import DataLoader
    from transformers import AutoModel, AutoTokenizer

    # the thin adapter's one swap: the classes the peer loads its backbone with
    dc.DebertaV2Model = type("MiniLMBackbone", (), {"from_pretrained": staticmethod(lambda _: AutoModel.from_pretrained(encoder))})
    dc.DebertaV2Tokenizer = type("MiniLMTokenizer", (), {
        "from_pretrained": staticmethod(lambda _, **kw: AutoTokenizer.from_pretrained(encoder, **kw))})
    router = DCRouter(yaml_path)
    DCTrainer(router, device="cpu").train()  # ends with the last step's weights (no test-chosen checkpoint)
    router.eval()
    picked = []
    with torch.no_grad():
        for inputs, _, _, _ in DataLoader(router.test_dataset, batch_size=64, shuffle=False):
            batch = {**inputs, "temperature": router.cfg["hparam"]["temperature"]}
            picked += router.route(batch)["predictions"].tolist()
    order = router.test_dataset.router_node
    by_query = {item["question"]: order[i] for item, i in zip(router.test_dataset.data, picked)}
    return [by_query[q] for q in test["queries"]]


def peers(folder: Path, split: dict, dc_steps: int, encoder: str) -> dict:
    """name -> (hparam, extra model_path keys, run(yaml, {embeddings, queries} of the test split) -> model names)."""
    from llmrouter.models import KNNRouter, KNNRouterTrainer, SVMRouter, SVMRouterTrainer

    width = split["train_embeddings"].shape[1]
    dc_hparam = {  # the peer's dcrouter.yaml values, sized for a CPU: MiniLM width, 128 tokens
        "hidden_state_dim": width, "similarity_function": "cos", "top_k": 3, "last_k": 3, "temperature": 1.0,
        "sample_loss_weight": 0.0, "cluster_loss_weight": 1.0, "H": 3, "gradient_accumulation": 1,
        "batch_size": 32, "training_steps": dc_steps, "learning_rate": 5e-5, "eval_steps": dc_steps + 10,
        "n_clusters": 3, "source_max_token_len": 128, "target_max_token_len": 128,
    }
    return {  # hyper-parameters: the peer's configs/model_config_train/*.yaml
        "knnrouter": ({"n_neighbors": 5, "metric": "cosine"}, {}, classifier_router(KNNRouter, KNNRouterTrainer, "knn_model")),
        "svmrouter": ({"kernel": "rbf", "C": 1.0, "gamma": "scale"}, {}, classifier_router(SVMRouter, SVMRouterTrainer, "svm_model")),
        "mlprouter": ({"hidden_layer_sizes": [128, 64], "activation": "relu", "lr": 0.001, "epochs": 100,
                       "batch_size": 32, "alpha": 0.0001}, {}, mlp_router),
        "mfrouter": ({"latent_dim": 128, "text_dim": width, "lr": 0.001, "epochs": 5, "noise_alpha": 0.0}, {}, mf_router),
        "elorouter": ({}, {}, elo_router),
        "dcrouter": (dc_hparam, {"backbone_model": encoder}, lambda y, t: dc_router(y, t, encoder)),
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("split", type=Path)
    options.add_argument("out", type=Path)
    options.add_argument("--dc-steps", type=int, default=500)
    options.add_argument("--encoder", required=True, help="the MiniLM folder (the peer's RouterDC backbone)")
    options.add_argument("--skip", default="", help="comma-separated peer routers not to run here (CPU time)")
    args = options.parse_args()
    split = dict(np.load(args.split, allow_pickle=False))
    models = [str(m) for m in split["models"]]
    test = {"embeddings": np.asarray(split["test_embeddings"], dtype=np.float32),
            "queries": [str(q) for q in split["test_queries"]]}
    results = {name: {"choices": None, "seconds": None, "status": f"cannot run: {why}"}
               for name, why in CANNOT.items()}
    torch.set_num_threads(1)  # a shared CPU: a second thread mostly waits
    torch.manual_seed(0)
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data_path = write_inputs(folder, split)
        for name, (hparam, model_path, run) in peers(folder, split, args.dc_steps, args.encoder).items():
            if name in args.skip.split(","):
                results[name] = {"choices": None, "seconds": None, "status": "not run on this split (CPU time; see settings)"}
                continue
            start = time.perf_counter()
            try:
                os.chdir(folder)  # some peer trainers write logs beside the working folder
                picked = run(config(folder, data_path, name, hparam, **model_path), test)
                index = [models.index(str(m)) for m in picked]
                results[name] = {"choices": index, "seconds": time.perf_counter() - start, "status": "ok"}
            except Exception as error:  # a peer failure is a reported result, not a crash of the benchmark
                traceback.print_exc()
                results[name] = {"choices": None, "seconds": None,
                                 "status": f"failed: {type(error).__name__}: {error}"[:300]}
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
