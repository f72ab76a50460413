"""The saved-router format, in one module: what `save_router` writes, what `load_router` accepts, and why.

A saved router is a folder: router.json (format, router name, hyper-parameters, pool, features, the
versions of the libraries whose objects it rebuilds, the sha256 of every file), arrays.npz (plain
arrays, never pickles) and, for an encoder router, encoder/ (safetensors). Loading treats it as
untrusted input:

A saved router is shared like any data file, and `router.json` is hashed by nothing, so every
field is checked for type and range here before anything is built (`check_meta`): hyper-parameters
against each router's signature and a range per name; text features only as the library writes
them (TF-IDF's token pattern is one of `TOKEN_PATTERNS`, never compiled before it matches one);
encoder weights only as safetensors inside the saved folder or the offline MiniLM package.
`read_arrays` reads arrays.npz member by member: each npy header (shape, dtype) is read without
its data and must match the sizes router.json declares and the member's stored size, so nothing
is allocated before the total is known to fit; `check_encoder_folder` bounds an encoder's
config.json by the tensors its safetensors header lists, and reads its tokenizer.json as JSON
(component types and regular expressions only as lm-routing's encoders are saved with, sizes
bounded by the embedding rows) before the tokenizers library compiles anything. Every refusal
is a RoutingInputError.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import os
import re
import struct
import zipfile
from pathlib import Path

import numpy as np

from lm_routing.errors import NotFittedError, RoutingInputError, rust_panic
from lm_routing.learning.estimator_arrays import prefixed, unprefixed
from lm_routing.learning.features import HF_PREFIX, SentenceEmbeddings, featurizer_state, restore_featurizer
from lm_routing.learning.routers.base import ROUTERS, SAVED_FORMS, Router, hyper_parameters
from lm_routing.reading.publish import Outputs, write_new_file

SAVE_AGAIN = "save the router again with routing-eval «save_dir»"
# the token patterns lm-routing's TF-IDF writes (lm_routing.learning.features.tfidf) and scikit-learn's default; nothing else compiles
TOKEN_PATTERNS = (r"(?u)\b\w+\b", r"(?u)\b\w\w+\b")
ANALYZERS = ("word", "char", "char_wb")
MAX_NGRAM = 3
MAX_TFIDF_FEATURES = 10_000_000
MEMBER = re.compile(r"(router|features)\.[A-Za-z0-9_.\-]{1,200}")
NAN_ALLOWED = ("constant", "history")  # members whose NaN means "none" (a model with no fixed score, an epoch unscored)
FRACTION_MEMBERS = ("labels", "rates")  # solve labels and rates: 0-1
MAX_DIMS = 8  # no saved array has more axes
MAX_SAFETENSORS_HEADER = 100_000_000  # bytes of the JSON header of a model.safetensors
MAX_CONFIG_BYTES = 1_000_000
ENCODER_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "added_tokens.json",
                 "generation_config.json"}
PICKLED_WEIGHTS = re.compile(r".*\.(bin|pt|pth|ckpt|pkl|pickle|h5|msgpack)$")
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
LAYER_NAME = re.compile(r"(?:^|\.)(?:layer|layers|block|h)\.(\d+)\.")
LAYER_KEYS = ("num_hidden_layers", "num_layers", "n_layer")  # the config key a model builds its encoder layers from
# config sizes a model allocates by (widths, vocabulary, positions, heads): none exceeds its widest tensor dimension
SIZE_KEY = re.compile(r".*(_size|^d_model|^d_ff|^d_kv|heads|^n_embd|^n_inner|positions|embeddings)$")
MAX_CONFIG_INT = 1 << 20  # any other whole number of a config (distances, bucket counts, token ids)
MAX_TOKENIZER_BYTES = 64 * 2**20  # tokenizer.json: the largest encoders' (XLM-R, mT5: 250k pieces) hold ~17 MB
# tokenizer.json components (the `tokenizers` library's "type") lm-routing's encoders are saved with: MiniLM and the
# BERT/T5 family (WordPiece, BertNormalizer, Precompiled + Metaspace), RoBERTa (BPE, ByteLevel), the SentencePiece
# encoders transformers converts (Unigram, Replace, Strip); none of them takes a regular expression of its own
TOKENIZER_TYPES = {
    "normalizer": {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "Nmt", "Strip", "StripAccents", "Prepend",
                   "Replace", "Precompiled", "Sequence"},
    "pre_tokenizer": {"BertPreTokenizer", "ByteLevel", "Whitespace", "WhitespaceSplit", "Metaspace", "Punctuation",
                      "Digits", "CharDelimiterSplit", "UnicodeScripts", "Split", "Sequence"},
    "post_processor": {"TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"},
    "decoder": {"WordPiece", "ByteLevel", "Metaspace", "BPEDecoder", "Replace", "ByteFallback", "Fuse", "Strip", "CTC",
                "Sequence"},
    "model": {"WordPiece", "BPE", "Unigram", "WordLevel"},
}
SEQUENCE_ITEMS = {"normalizer": "normalizers", "pre_tokenizer": "pretokenizers", "post_processor": "processors",
                  "decoder": "decoders"}
MAX_SEQUENCE = 16  # components in one Sequence (transformers writes at most 4)
# the only regular expressions a saved encoder's tokenizer may carry: those transformers itself writes for
# SentencePiece encoders (T5, XLM-R, DeBERTa-v2/v3), one repeated character class each, linear to match;
# every other {"Regex": ...} is refused as text, before the tokenizers library (Oniguruma, backtracking) compiles it
TOKENIZER_REGEXES = (" {2,}", r"\s{2,}|[\n\r\t]")
TOKENIZER_KEYS = {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor",
                  "decoder", "model"}


def _int(low: int, high: int):
    return lambda v: type(v) is int and low <= v <= high


def _number(low: float, high: float):
    return lambda v: type(v) in (int, float) and math.isfinite(v) and low <= v <= high


def _text(*choices: str, max_len: int = 300):
    return lambda v: isinstance(v, str) and 0 < len(v) <= max_len and (not choices or v in choices)


# a rule per hyper-parameter name (every router's), so a hostile value is refused before any router is built
PARAM_RULES = {
    "n_neighbors": _int(1, 1_000_000), "hidden": _int(1, 16_384), "dim": _int(1, 16_384), "svd_dims": _int(1, 4_096),
    "epochs": _int(1, 100_000), "batch_size": _int(1, 65_536), "max_length": _int(8, 8_192),
    "n_estimators": _int(1, 10_000), "min_samples_leaf": _int(1, 10_000_000), "patience": _int(0, 100_000),
    "seed": _int(0, 2**32 - 1), "n_jobs": lambda v: type(v) is int and (v == -1 or 1 <= v <= 1_024),
    "n_clusters": lambda v: v == "auto" or _int(1, 100_000)(v),
    "C": _number(1e-12, 1e12), "lr": _number(0, 10), "model_lr_scale": _number(0, 1e6), "temperature": _number(1e-6, 1e6),
    "sample_weight": _number(0, 1e6), "prior_weight": _number(0, 1e9), "weight_decay": _number(0, 1e3),
    "dropout": _number(0, 1), "validation_fraction": _number(0, 1), "soft_targets": lambda v: type(v) is bool,
    "encoder": _text(), "pick": lambda v: isinstance(v, str) and len(v) <= 300,
    # auto's pick: its cost weight, what its selection expects of it, an agreement cascade's stages and share
    "lam": lambda v: v is None or _number(0, 1e12)(v), "expected_accuracy": lambda v: v is None or _number(0, 1)(v),
    "expected_se": lambda v: v is None or _number(0, 1)(v), "expected_cost": lambda v: v is None or _number(0, 1e6)(v),
    "share": lambda v: v is None or _number(0, 1)(v),
    "stages": lambda v: v is None or (isinstance(v, list) and 2 <= len(v) <= 100 and all(
        isinstance(stage, list) and 1 <= len(stage) <= 1_000 and all(_text()(m) for m in stage) for stage in v)),
}


def _generic_rule(default):
    """A hyper-parameter without its own rule: the type of its default, bounded."""
    if isinstance(default, bool):
        return lambda v: type(v) is bool
    if isinstance(default, int):
        return _int(-2**31, 2**31 - 1)
    if isinstance(default, float):
        return _number(-1e12, 1e12)
    return _text()


def _param_problem(kind: type, name: str, value) -> str | None:
    """Why `value` is not a hyper-parameter `name` of router class `kind` could have saved, or None."""
    from lm_routing.learning.encoders import POOLINGS
    from lm_routing.learning.features import FEATURES, HF_PREFIX

    default = hyper_parameters(kind)[name]
    if name == "features":
        ok = value is None or (isinstance(value, str) and (value in FEATURES or (
            value.startswith(HF_PREFIX) and 0 < len(value) - len(HF_PREFIX) <= 300)))
    elif name == "pooling":
        ok = value in POOLINGS
    elif name in ("kind", "router", "policy", "datasets"):
        ok = _pick_param_ok(name, value)
    else:
        ok = PARAM_RULES.get(name, _generic_rule(default))(value)
    return None if ok else f"'params.{name}' is {json.dumps(value)[:60]}, not a value lm-routing saves"


def _pick_param_ok(name: str, value) -> bool:
    """auto's pick (lm_routing.judging.select.DeployedPick): its kind, picked router and policy by name, its datasets."""
    from lm_routing.deciding.policies import POLICIES
    from lm_routing.learning.routers.base import ROUTERS
    from lm_routing.judging.select import CASCADE, MODEL, PER_DATASET, ROUTED, SINGLE

    if name == "kind":
        return value in (SINGLE, PER_DATASET, ROUTED, MODEL, CASCADE)
    if name == "router" and isinstance(value, str):  # a registered router, or (kind model) a pool model's name
        return 0 < len(value) <= 300
    if name == "datasets":
        return value is None or (isinstance(value, list) and len(value) <= 100_000
                                 and all(isinstance(d, str) and 0 < len(d) <= 300 for d in value))
    return value is None or (isinstance(value, str) and value in (ROUTERS if name == "router" else POLICIES))


def check_params(kind: type, params) -> str | None:
    """Why `params` are not hyper-parameters of router class `kind` as lm-routing saves them, or None."""
    accepted = set(hyper_parameters(kind))
    if not isinstance(params, dict) or not set(params) <= accepted:
        return f"'params' must be an object with keys among {', '.join(sorted(accepted))}"
    for name, value in params.items():
        problem = _param_problem(kind, name, value)
        if problem:
            return problem
    return None


def check_features(spec) -> str | None:
    """Why `spec` (router.json 'features') is not a featurizer lm-routing saves, or None. TF-IDF's token
    pattern must be one of TOKEN_PATTERNS: compared as text, never compiled."""
    from lm_routing.learning.encoders import MINILM
    from lm_routing.learning.features import HF_PREFIX
    from lm_routing.learning.tfidf import SAVED_PARAMS

    if spec is None:
        return None
    if not isinstance(spec, dict):
        return "'features' must be an object or null"
    if spec.get("kind") == "tfidf" and set(spec) == {"kind", "params"}:
        params = spec["params"]
        if not isinstance(params, dict) or set(params) != set(SAVED_PARAMS):
            return f"'features.params' must have exactly the keys {', '.join(sorted(SAVED_PARAMS))}"
        if params["token_pattern"] not in TOKEN_PATTERNS:
            return ("'features.params.token_pattern' is not a pattern lm-routing writes (a saved router may not "
                    "carry its own regular expression)")
        ngram = params["ngram_range"]
        if not (isinstance(ngram, list) and len(ngram) == 2 and all(type(n) is int for n in ngram)
                and 1 <= ngram[0] <= ngram[1] <= MAX_NGRAM):
            return f"'features.params.ngram_range' must be [low, high] with 1 <= low <= high <= {MAX_NGRAM}"
        if params["analyzer"] not in ANALYZERS:
            return f"'features.params.analyzer' must be one of {', '.join(ANALYZERS)}"
        if type(params["lowercase"]) is not bool or type(params["sublinear_tf"]) is not bool:
            return "'features.params.lowercase' and 'sublinear_tf' must be true or false"
        if not (params["max_features"] is None or _int(1, MAX_TFIDF_FEATURES)(params["max_features"])):
            return f"'features.params.max_features' must be null or a whole number 1-{MAX_TFIDF_FEATURES}"
        return None
    if spec.get("kind") == "embeddings" and set(spec) == {"kind", "name", "max_length", "batch_size"}:
        name = spec["name"]
        if not (name == MINILM or (isinstance(name, str) and name.startswith(HF_PREFIX) and 0 < len(name) <= 300)):
            return f"'features.name' must be {MINILM!r} or {HF_PREFIX}<model>"
        if not (PARAM_RULES["max_length"](spec["max_length"]) and PARAM_RULES["batch_size"](spec["batch_size"])):
            return "'features.max_length' and 'features.batch_size' must be whole numbers in range"
        return None
    return f"'features' described as {json.dumps(spec)[:100]} are not a kind lm-routing saves"


def check_encoder_spec(spec) -> str | None:
    """Why `spec` (router.json 'encoder') is not {pooling, max_length} as lm-routing saves it, or None."""
    from lm_routing.learning.encoders import POOLINGS

    if spec is None:
        return None
    if not (isinstance(spec, dict) and set(spec) == {"pooling", "max_length"} and spec["pooling"] in POOLINGS
            and PARAM_RULES["max_length"](spec["max_length"])):
        return f"'encoder' must be null or {{pooling: {' or '.join(POOLINGS)}, max_length: a whole number 8-8192}}"
    return None


def check_file_names(files: dict) -> str | None:
    """Why the names in router.json 'files' are not what a saved router holds, or None: arrays.npz, and encoder
    files (safetensors weights, JSON config, tokenizer files) under encoder/; never pickled weights."""
    for name in files:
        if not isinstance(name, str):
            return "'files' names must be text"
        top, _, rest = name.partition("/")
        if name == "arrays.npz":
            continue
        if top == "encoder" and rest in ENCODER_FILES:
            continue
        if PICKLED_WEIGHTS.match(name):
            return (f"lists {name[:80]!r}: pickled weights, which can run code when loaded; a saved router's encoder "
                    "loads from model.safetensors only")
        return f"lists {name[:80]!r}, not a file lm-routing saves"
    return None


def declared_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """router.json's 'arrays': each member's dtype (numpy's npy descr) and shape, as written."""
    return {key: {"dtype": _descr(value.dtype), "shape": list(value.shape)} for key, value in arrays.items()}


def check_declared(declared) -> str | None:
    """Why router.json 'arrays' is not {member: {dtype, shape}}, or None."""
    if not isinstance(declared, dict):
        return "'arrays' must map each member of arrays.npz to its dtype and shape"
    for key, entry in declared.items():
        if not MEMBER.fullmatch(key):
            return f"'arrays' names member {key[:80]!r}, not one lm-routing writes"
        if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape"} and isinstance(entry["shape"], list)
                and len(entry["shape"]) <= MAX_DIMS and all(_int(0, 2**62)(n) for n in entry["shape"])):
            return f"'arrays.{key}' must be {{dtype, shape: up to {MAX_DIMS} whole numbers}}"
    return None


def _descr(dtype: np.dtype):
    """A dtype as JSON holds it (npy's descr, tuples as lists), for comparing a header with router.json."""
    return json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))


def _plain(dtype: np.dtype) -> bool:
    """Numbers, booleans, text, or records of those: never objects."""
    if dtype.fields:
        return all(_plain(field[0]) for field in dtype.fields.values())
    return dtype.kind in "fiubU" and dtype.itemsize <= 4096 and not dtype.subdtype


def read_arrays(path: Path, declared: dict | None, limit_bytes: int) -> dict[str, np.ndarray]:
    """Every member of the saved `arrays.npz`, read only after each npy header matched `declared` (router.json's
    'arrays'; None for a format-2 router, which declares none) and its stored size, and the total fits `limit_bytes`.

    Members must be stored uncompressed (as np.savez writes them): memory is then bounded by the file's size.
    Float arrays must be finite (NaN only where it means "none"); labels and rates lie in 0-1.
    """
    bad = lambda what: RoutingInputError(f"{path}: {what}; not loaded: {SAVE_AGAIN}")  # noqa: E731
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise bad(f"not a .npz archive ({' '.join(str(error).split())[:100]})") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise bad("holds a member twice")
        total, headers = 0, {}
        for info in infos:
            key = info.filename.removesuffix(".npy")
            if not info.filename.endswith(".npy") or not MEMBER.fullmatch(key):
                raise bad(f"holds member {info.filename[:80]!r}, not one lm-routing writes")
            if declared is not None and key not in declared:
                raise bad(f"holds member {key[:80]!r}, which router.json does not declare")
            if info.compress_type != zipfile.ZIP_STORED:
                raise bad(f"member {key[:80]!r} is compressed; lm-routing stores arrays uncompressed")
            shape, dtype, header_bytes = _npy_header(archive, info, bad)
            if dtype.hasobject:
                raise bad(f"holds pickled data, which can run code and is never loaded (member {key[:80]!r})")
            if not _plain(dtype) or len(shape) > MAX_DIMS:
                raise bad(f"member {key[:80]!r} holds {dtype} data, not numbers or text")
            if declared is not None and (_descr(dtype) != declared[key]["dtype"] or list(shape) != declared[key]["shape"]):
                raise bad(f"member {key[:80]!r} is {dtype} {tuple(shape)}, router.json declares "
                          f"{str(declared[key]['dtype'])[:40]} {tuple(declared[key]['shape'])}")
            size = math.prod(shape) * dtype.itemsize
            if info.file_size != header_bytes + size:
                raise bad(f"member {key[:80]!r} declares {size} bytes of data but stores {info.file_size - header_bytes}")
            total += size
            headers[key] = info
        if declared is not None and declared.keys() - headers.keys():
            raise bad(f"lacks member {sorted(declared.keys() - headers.keys())[0][:80]!r}, which router.json declares")
        if total > limit_bytes:
            raise bad(f"its arrays need {total / 2**30:.2f} GiB, over the {limit_bytes / 2**30:.2f} GiB this load may use")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    for key, value in arrays.items():
        _check_values(key, value, bad)
    return arrays


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, bad) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length in bytes) of one .npy member, read without its data."""
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"npy version {version}")
            shape, _, dtype = read(member, max_header_size=10_000)
        except Exception as error:  # noqa: BLE001  (numpy parses the header text with ast: any failure means the same)
            raise bad(f"member {info.filename[:80]!r} has no valid npy header ({' '.join(str(error).split())[:100]})") from None
        return tuple(shape), dtype, member.tell()


def _check_values(key: str, value: np.ndarray, bad) -> None:
    """Finite floats (NaN only in NAN_ALLOWED members), labels and rates within 0-1."""
    if value.dtype.kind != "f":
        return
    last = key.rsplit(".", 1)[-1]
    finite = np.isfinite(value)
    if not finite.all() and (last not in NAN_ALLOWED or np.isinf(value).any()):
        raise bad(f"member {key!r} holds NaN or infinite values")
    if last in FRACTION_MEMBERS and value.size and not ((value >= 0) & (value <= 1)).all():
        raise bad(f"member {key!r} holds values outside 0-1")


def safetensors_tensors(path: Path) -> dict[str, dict]:
    """The tensors a model.safetensors holds (name -> {dtype, shape, data_offsets}), from its header only; each
    tensor's bytes and the file's size must agree with the shapes. ValueError otherwise."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise ValueError(f"a header of {length} bytes in a file of {size}")
        header = json.loads(handle.read(length).decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    header.pop("__metadata__", None)
    end = 0
    for name, tensor in header.items():
        if not (isinstance(tensor, dict) and tensor.get("dtype") in SAFETENSORS_BYTES
                and isinstance(tensor.get("shape"), list) and all(_int(0, 2**40)(n) for n in tensor["shape"])
                and isinstance(tensor.get("data_offsets"), list) and len(tensor["data_offsets"]) == 2
                and all(_int(0, size)(n) for n in tensor["data_offsets"])):
            raise ValueError(f"tensor {str(name)[:80]!r} is described wrongly")
        begin, stop = tensor["data_offsets"]
        if stop - begin != math.prod(tensor["shape"]) * SAFETENSORS_BYTES[tensor["dtype"]]:
            raise ValueError(f"tensor {str(name)[:80]!r}: its shape and its bytes disagree")
        end = max(end, stop)
    if 8 + length + end != size:
        raise ValueError(f"{size} bytes, the header accounts for {8 + length + end}")
    return header


def check_encoder_folder(folder: Path, max_length: int) -> None:
    """A saved encoder: safetensors weights, a config bounded by them, tokenizer files; RoutingInputError otherwise.

    config.json: no remote code (auto_map); its layer count equals the layers in the weights; its sizes (widths,
    vocabulary, positions, heads) at most the largest tensor dimension, other whole numbers at most MAX_CONFIG_INT;
    `max_length` (tokens) within its position embeddings. tokenizer.json and tokenizer_config.json: see
    `_tokenizer_problem`.
    """
    def bad(path: Path, what: str) -> RoutingInputError:
        return RoutingInputError(f"{path}: {what}; not loaded: {SAVE_AGAIN}")

    weights, config_path = folder / "model.safetensors", folder / "config.json"
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if PICKLED_WEIGHTS.match(path.name):
            raise bad(path, "pickled weights, which can run code when loaded; encoders load from model.safetensors only")
        if path.name not in ENCODER_FILES:
            raise bad(path, "not a file of a saved encoder")
    if not weights.is_file() or not config_path.is_file():
        raise bad(folder, "no model.safetensors and config.json; encoders load from safetensors only")
    try:
        tensors = safetensors_tensors(weights)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise bad(weights, f"not a valid safetensors file ({' '.join(str(error).split())[:120]})") from None
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise bad(config_path, f"over {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(config_path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise bad(config_path, f"not JSON ({' '.join(str(error).split())[:100]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise bad(config_path, "not a model config (a JSON object with model_type)")
    if "auto_map" in config:
        raise bad(config_path, "names its own model code (auto_map), which is never run")
    layers = {int(m.group(1)) for name in tensors for m in LAYER_NAME.finditer(name)}
    widest = max((n for tensor in tensors.values() for n in tensor["shape"]), default=0)
    for key, value in config.items():
        if type(value) is not int:
            continue
        if key in LAYER_KEYS and value != len(layers):
            raise bad(config_path, f"{key} is {value} but model.safetensors holds {len(layers)} layers")
        if SIZE_KEY.match(key) and not -1 <= value <= max(widest, 1):
            raise bad(config_path, f"{key} is {value}, beyond every tensor of model.safetensors (widest {widest})")
        if key not in LAYER_KEYS and not -1 <= value <= MAX_CONFIG_INT:
            raise bad(config_path, f"{key} is {value}, over {MAX_CONFIG_INT}")
    positions = config.get("max_position_embeddings")
    if type(positions) is int and max_length > positions:
        raise bad(config_path.parent.parent / "router.json",
                  f"encoder max_length {max_length} is over the encoder's {positions} positions")
    vocab_size = config.get("vocab_size")
    problem = _tokenizer_problem(folder, vocab_size if type(vocab_size) is int and vocab_size > 0 else widest)
    if problem:
        raise bad(*problem)


def _tokenizer_problem(folder: Path, vocab_size: int) -> tuple[Path, str] | None:
    """(file, why) when the encoder's tokenizer files are not what lm-routing's encoders are saved with, or None.

    tokenizer.json is read as JSON only (never by the tokenizers library): at most MAX_TOKENIZER_BYTES; each of
    normalizer / pre_tokenizer / post_processor / decoder / model one of TOKENIZER_TYPES (Sequences of those); a
    regular expression only one of TOKENIZER_REGEXES, compared as text; vocabulary, merges and added tokens at
    most `vocab_size` (the model's embedding rows), token ids below it. tokenizer_config.json: no code of its own.
    """
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        if tokenizer_config.stat().st_size > MAX_CONFIG_BYTES:
            return tokenizer_config, f"over {MAX_CONFIG_BYTES} bytes"
        settings = _json_object(tokenizer_config.read_bytes())
        if settings is None:
            return tokenizer_config, "not a JSON object"
        if "auto_map" in settings:
            return tokenizer_config, "names its own tokenizer code (auto_map), which is never run"
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        return path, f"{path.stat().st_size} bytes, over the {MAX_TOKENIZER_BYTES} of any encoder's tokenizer"
    spec = _json_object(path.read_bytes())
    if spec is None:
        return path, "not a JSON object"
    problem = _tokenizer_spec_problem(spec, vocab_size)
    return (path, problem) if problem else None


def _key(key: str) -> str:
    """A JSON key as a message shows it: plain names as they are, anything else quoted and escaped, cut at 60."""
    return key if key.isidentifier() else json.dumps(key)[:60]


def _json_object(text: bytes) -> dict | None:
    """`text` parsed as a JSON object, or None (not UTF-8, not JSON, nested too deep, not an object)."""
    try:
        value = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _tokenizer_spec_problem(spec: dict, vocab_size: int) -> str | None:
    """Why a parsed tokenizer.json is not one lm-routing's encoders are saved with (naming the JSON path), or None."""
    unknown = sorted(set(spec) - TOKENIZER_KEYS)
    if unknown:
        return f"'{_key(unknown[0])}' is not a part of a tokenizer lm-routing's encoders use"
    for section in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "model"):
        problem = _component_problem(section, spec.get(section), section, depth=0)
        if problem:
            return problem
    for section in ("truncation", "padding", "added_tokens"):  # small parts: every leaf bounded
        problem = _leaves_problem(spec.get(section), section)
        if problem:
            return problem
    return _vocabulary_problem(spec, vocab_size)


def _component_problem(section: str, value, where: str, depth: int) -> str | None:
    """Why one tokenizer component at JSON path `where` is not of TOKENIZER_TYPES[section] (a Sequence: of those, not
    nested), or carries a regular expression outside TOKENIZER_REGEXES; None when it passes."""
    if value is None and section != "model" and depth == 0:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in TOKENIZER_TYPES[section] or (kind == "Sequence" and depth > 0):
        return (f"'{where}' is a {section} of type {json.dumps(kind)[:60]}, not one lm-routing's encoders use "
                f"({', '.join(sorted(TOKENIZER_TYPES[section]))})")
    if kind == "Sequence":
        items = value.get(SEQUENCE_ITEMS[section])
        if not isinstance(items, list) or len(items) > MAX_SEQUENCE:
            return f"'{where}.{SEQUENCE_ITEMS[section]}' must be a list of at most {MAX_SEQUENCE} {section}s"
        for index, item in enumerate(items):
            problem = _component_problem(section, item, f"{where}.{SEQUENCE_ITEMS[section]}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    if kind == "Precompiled" and not _charsmap_ok(value.get("precompiled_charsmap")):
        return f"'{where}.precompiled_charsmap' is not a SentencePiece character map (base64: trie size, trie, strings)"
    for key, field in value.items():
        if key in ("vocab", "merges"):  # the model's tables: sized by _vocabulary_problem
            continue
        if isinstance(field, dict) and "Regex" in field:
            if field["Regex"] not in TOKENIZER_REGEXES:
                return (f"'{where}.{_key(key)}.Regex' is a regular expression lm-routing's encoders never write (refused "
                        "uncompiled: a tokenizer may carry only transformers' own whitespace patterns)")
        else:
            problem = _leaves_problem(field, f"{where}.{_key(key)}")
            if problem:
                return problem
    return None


def _charsmap_ok(charsmap) -> bool:
    """Whether a Precompiled normalizer's charsmap is laid out as SentencePiece writes it: base64 of a 4-byte
    little-endian trie size (whole 4-byte units), the trie, then the replacement strings. The trie itself is not
    walked: a damaged one makes the tokenizers library panic, which the load reports as one line."""
    if not isinstance(charsmap, str):
        return False
    try:
        blob = base64.b64decode(charsmap, validate=True)
    except ValueError:
        return False
    if len(blob) < 4:
        return False
    (trie_bytes,) = struct.unpack("<I", blob[:4])
    return trie_bytes > 0 and trie_bytes % 4 == 0 and 4 + trie_bytes <= len(blob)


def _leaves_problem(value, where: str) -> str | None:
    """Why a small tokenizer part at JSON path `where` holds a regular expression or a whole number out of range
    (beyond MAX_CONFIG_INT, negative) anywhere inside, or None."""
    stack = [(value, where)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if "Regex" in node:
                return f"'{path}.Regex' is a regular expression where lm-routing's encoders never have one"
            stack.extend((item, f"{path}.{_key(key)}") for key, item in node.items())
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(node))
        elif type(node) is int and not 0 <= node <= MAX_CONFIG_INT:
            return f"'{path}' is {node}, outside 0-{MAX_CONFIG_INT}"
    return None


def _vocabulary_problem(spec: dict, vocab_size: int) -> str | None:
    """Why the model's vocabulary, merges or the added tokens exceed `vocab_size` entries or ids, or None."""
    model = spec["model"]
    vocab = model.get("vocab")
    if model["type"] == "Unigram":
        ok = isinstance(vocab, list) and all(
            isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and type(entry[1]) in (int, float)
            for entry in vocab)
        ids = range(len(vocab)) if ok else ()
    else:
        ok = isinstance(vocab, dict) and all(type(i) is int for i in vocab.values())
        ids = vocab.values() if ok else ()
    if not ok:
        return f"'model.vocab' is not a {model['type']} vocabulary"
    if len(vocab) > vocab_size or any(not 0 <= i < vocab_size for i in ids):
        return f"'model.vocab' holds {len(vocab)} tokens or ids beyond the model's {vocab_size} embeddings"
    merges = model.get("merges", [])
    if not isinstance(merges, list) or len(merges) > len(vocab):
        return f"'model.merges' must be a list of at most {len(vocab)} merges (one per vocabulary entry)"
    added = spec.get("added_tokens") or []
    if not isinstance(added, list) or len(added) > vocab_size or not all(
            isinstance(token, dict) and type(token.get("id")) is int and 0 <= token["id"] < vocab_size
            and isinstance(token.get("content"), str) for token in added):
        return f"'added_tokens' must be at most {vocab_size} tokens, each with content and an id below {vocab_size}"
    return None


# ---- writing and loading ----

FORMAT_VERSION = 4  # 1: a pickle (router.pkl), refused since it can run code when loaded; 2: no 'arrays' sizes; 3: no 'versions'
READ_FORMATS = (2, 3, 4)  # formats 2 and 3 still load: npz headers are checked all the same, library versions are unknown
META_FILE, ARRAYS_FILE, ENCODER_FOLDER, PICKLE_FILE = "router.json", "arrays.npz", "encoder", "router.pkl"
MAX_META_BYTES = 50_000_000  # router.json holds hyper-parameters, the pool and file hashes: never this large
META_KEYS = {"format", "router", "params", "models", "n_models", "features", "encoder", "files", "arrays", "versions"}
FORMAT_KEYS = {2: META_KEYS - {"arrays", "versions"}, 3: META_KEYS - {"versions"}, 4: META_KEYS}
# the libraries whose objects a saved router is rebuilt into; scikit-learn's trees through its private Tree layout
LIBRARIES = ("lm-routing", "scikit-learn", "numpy", "torch", "transformers")
PRIVATE_LAYOUT = re.compile(r"tree\d+\.nodes$")  # members rebuilt only by the scikit-learn minor version that wrote them


def library_versions() -> dict[str, str]:
    """The installed version of each library in LIBRARIES (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def check_versions(path: Path, saved: dict | None, members) -> None:
    """Refuse, in one line, a router whose arrays only the library version that wrote them rebuilds faithfully
    (scikit-learn's tree layout) when another version is installed; `saved`: router.json's versions (None:
    formats before 4, not recorded)."""
    if saved is None or not any(PRIVATE_LAYOUT.search(name) for name in members):
        return
    here = library_versions().get("scikit-learn")
    there = saved.get("scikit-learn")
    if there is None or here is None or _minor(here) != _minor(there):
        raise RoutingInputError(f"{path}: its trees were saved by scikit-learn {there}, whose tree layout this "
                                f"scikit-learn {here} may read differently; not loaded: save the router again with this "
                                f"scikit-learn, or install scikit-learn=={there}")
MAX_MODELS = 100_000


def _saved_kinds() -> dict[str, type[Router]]:
    """Every router a saved router.json may name: trained by name, or rebuilt only (auto's pick)."""
    return {**ROUTERS, **SAVED_FORMS}


def check_new_folder(directory: Path) -> None:
    """Refuse a save folder that exists: earlier routers are never overwritten."""
    if directory.exists():
        raise RoutingInputError(f"{directory}: already exists; choose a new «save_dir» folder (earlier routers are kept)")


def save_router(router: Router, directory: Path | str, models: tuple[str, ...]) -> Path:
    """Write a fitted router and the pool it routes over to the new folder `directory`, all or nothing."""
    directory = Path(directory)
    check_new_folder(directory)
    with Outputs() as outputs:
        write_router(router, outputs.folder(directory), models)
    return directory


def _saved_arrays(router: Router) -> dict[str, np.ndarray]:
    """Every array the saved form of the fitted `router` holds, by npz member name."""
    arrays = prefixed("router", router._state())
    if hasattr(router, "featurizer_"):
        arrays.update(prefixed("features", featurizer_state(router.featurizer_)[1]))
    return arrays


def write_router(router: Router, folder: Path, models: tuple[str, ...]) -> None:
    """The saved form, into the empty `folder`: arrays.npz (no pickles), encoder/ (safetensors) when the router
    has one, and router.json: format, router name, hyper-parameters, pool, features, sha256 of every file.
    A router that deploys another (auto) writes that one (`Router.saved_form`)."""
    if not hasattr(router, "n_models_"):
        raise NotFittedError("only a fitted router can be saved")
    router = router.saved_form()
    if not hasattr(router, "n_models_"):
        raise NotFittedError("only a fitted router can be saved")
    arrays = _saved_arrays(router)
    features = featurizer_state(router.featurizer_)[0] if hasattr(router, "featurizer_") else None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f"{type(router).__name__}._state()[{key!r}] is not a plain numpy array")
    encoder = None
    if hasattr(router, "encoder_"):
        router.encoder_.save(folder / ENCODER_FOLDER)
        encoder = {"pooling": router.encoder_.pooling, "max_length": router.encoder_.max_length}
    elif isinstance(getattr(router, "featurizer_", None), SentenceEmbeddings) and router.featurizer_.name.startswith(HF_PREFIX):
        router.featurizer_.encoder().save(folder / ENCODER_FOLDER)  # its own copy: a loaded router never fetches weights
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_new_file(folder / ARRAYS_FILE, buffer.getvalue())
    files = {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    meta = {"format": FORMAT_VERSION, "versions": library_versions(), "router": router.name, "params": router.get_params(), "models": list(models),
            "n_models": router.n_models_, "features": features, "encoder": encoder, "files": files,
            "arrays": declared_arrays(arrays)}
    write_new_file(folder / META_FILE, json.dumps(meta, indent=2) + "\n")


def load_router(directory: Path | str) -> tuple[Router, tuple[str, ...]]:
    """(router, pool models) saved by `save_router`. Nothing is built before router.json's shape and every
    file's sha256 are checked; arrays load without pickle and encoder weights from safetensors only."""
    directory = Path(directory)
    if (directory / PICKLE_FILE).exists():
        raise RoutingInputError(
            f"{directory}: saved by an older lm-routing as a pickle ({PICKLE_FILE}), which can run code when loaded; "
            "not loaded: save the router again with routing-eval «save_dir»"
        )
    meta = _read_meta(directory)
    _check_files(directory, meta["files"])
    return _build(directory, meta), tuple(meta["models"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_meta(directory: Path) -> dict:
    """router.json, checked key by key before anything is built."""
    path = directory / META_FILE
    if path.is_symlink() or not path.is_file():
        raise RoutingInputError(f"{directory}: no router.json; not a router saved by routing-eval «save_dir»")
    bad = lambda what: RoutingInputError(f"{path}: {what}; not a router saved by routing-eval «save_dir», or damaged: save it again")  # noqa: E731
    if path.stat().st_size > MAX_META_BYTES:
        raise bad(f"over {MAX_META_BYTES} bytes")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise bad(f"not JSON ({_one_line(error)})") from None
    if not isinstance(meta, dict):
        raise bad(f"a JSON {type(meta).__name__}, not an object")
    if meta.get("format") not in READ_FORMATS or type(meta.get("format")) is not int:
        raise RoutingInputError(f"{path}: saved in format {str(meta.get('format'))[:20]!r}; this lm-routing reads formats "
                                f"{', '.join(map(str, READ_FORMATS))}: save the router again with routing-eval «save_dir»")
    expected = FORMAT_KEYS[meta["format"]]
    if set(meta) != expected:
        raise bad(f"keys {', '.join(sorted(map(str, meta)))[:200]}, expected {', '.join(sorted(expected))}")
    name, models, files = meta["router"], meta["models"], meta["files"]
    kinds = _saved_kinds()
    if not isinstance(name, str) or name not in kinds:
        raise bad(f"unknown router {str(name)[:50]!r}")
    if (not isinstance(models, list) or not 0 < len(models) <= MAX_MODELS
            or not all(isinstance(m, str) and 0 < len(m) <= 500 for m in models)
            or len(set(models)) != len(models) or meta["n_models"] != len(models) or type(meta["n_models"]) is not int):
        raise bad("'models' must be a list of distinct model names, 'n_models' its length")
    if not isinstance(files, dict) or ARRAYS_FILE not in files or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in files.values()):
        raise bad(f"'files' must map each file (with {ARRAYS_FILE}) to its sha256")
    problem = (check_params(kinds[name], meta["params"]) or check_features(meta["features"])
               or check_encoder_spec(meta["encoder"]) or check_file_names(files)
               or (check_declared(meta["arrays"]) if "arrays" in meta else None))
    if problem:
        raise bad(problem)
    versions = meta.get("versions")
    if versions is not None and (not isinstance(versions, dict) or len(versions) > len(LIBRARIES) or not all(
            name in LIBRARIES and isinstance(v, str) and re.fullmatch(r"[0-9A-Za-z.+!_-]{1,40}", v) for name, v in versions.items())):
        raise bad("'versions' must map each of " + ", ".join(LIBRARIES) + " to its version")
    if _saved_encoder(meta) and meta["format"] < 3:
        raise RoutingInputError(f"{path}: its features load an encoder from outside the saved folder "
                                f"({meta['features']['name'][:80]!r}); not loaded: save the router again with "
                                "routing-eval «save_dir» (the saved folder then holds its own safetensors copy)")
    return meta


def _check_files(directory: Path, files: dict[str, str]) -> None:
    """Exactly the files router.json lists, none a link, each with its recorded sha256."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise RoutingInputError(f"{path}: a link inside a saved router; not loaded: save the router again")
        if path.is_file() and path != directory / META_FILE:
            found[path.relative_to(directory).as_posix()] = path
    extra, missing = sorted(found.keys() - files.keys()), sorted(files.keys() - found.keys())
    if extra or missing:
        what = f"unexpected file {extra[0]}" if extra else f"missing file {missing[0]}"
        raise RoutingInputError(f"{directory}: {what}, not what router.json lists; not loaded: save the router again")
    for name, path in found.items():
        if _sha256(path) != files[name]:
            raise RoutingInputError(f"{path}: changed since the router was saved (sha256 differs from router.json); "
                                    "not loaded: save the router again")


def _saved_encoder(meta: dict) -> bool:
    """Whether the router loads an encoder from its encoder/ folder (its own, or its hf: features')."""
    features = meta["features"]
    return meta["encoder"] is not None or (
        isinstance(features, dict) and features.get("kind") == "embeddings" and features["name"].startswith(HF_PREFIX))


def _build(directory: Path, meta: dict) -> Router:
    """The fitted router from checked files; any failure is one line naming the folder."""
    from lm_routing.judging.limits import available_bytes

    check_versions(directory / META_FILE, meta.get("versions"), meta.get("arrays") or {})
    arrays = read_arrays(directory / ARRAYS_FILE, meta.get("arrays"), available_bytes())
    encoder_folder = directory / ENCODER_FOLDER
    if _saved_encoder(meta):
        check_encoder_folder(encoder_folder, (meta["encoder"] or meta["features"])["max_length"])
    elif encoder_folder.exists():
        raise RoutingInputError(f"{encoder_folder}: an encoder this router does not use; not loaded: save the router again")
    held = _HeldStderr(None)
    try:
        with _native_stderr_held() as held:  # a Rust panic prints its own line to fd 2 before raising: kept back
            router = _rebuilt(directory, meta, arrays, encoder_folder)
    except BaseException as error:  # a damaged file of the right hash: whatever fails, say which router and stop
        panic = rust_panic(error)
        if not panic:  # only the panic's own line is dropped: it is reported below
            held.release()
        if isinstance(error, RoutingInputError) or not (isinstance(error, Exception) or panic):  # Ctrl-C, SystemExit
            raise
        raise RoutingInputError(f"{directory}: cannot rebuild the saved router ({type(error).__name__}: "
                                f"{_one_line(error)}); save it again") from None
    held.release()
    return router


class _HeldStderr:
    """What native code wrote to file descriptor 2 while held: `release` writes it out (once), or it is dropped."""

    def __init__(self, spool):
        self.spool = spool

    def release(self) -> None:
        if self.spool is not None:
            self.spool.seek(0)
            os.write(2, self.spool.read())
            self.spool.close()
            self.spool = None


@contextlib.contextmanager
def _native_stderr_held():
    """File descriptor 2 redirected to a spool while the saved router is rebuilt (Rust's panic hook writes there
    directly, under any Python-level redirection); the caller releases it, or drops it for a panic it reports."""
    import tempfile

    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold
        yield _HeldStderr(None)
        return
    spool = tempfile.TemporaryFile()
    os.dup2(spool.fileno(), 2)
    try:
        yield _HeldStderr(spool)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _rebuilt(directory: Path, meta: dict, arrays: dict, encoder_folder: Path) -> Router:
    """The router of checked files, probed once; raises whatever its rebuilding raises."""
    router = _saved_kinds()[meta["router"]](**meta["params"])
    router.n_models_ = meta["n_models"]
    if meta["features"] is not None:
        router.featurizer_ = restore_featurizer(meta["features"], unprefixed("features", arrays), str(encoder_folder))
    if meta["encoder"] is not None:
        from lm_routing.learning.encoders import TextEncoder, quiet_transformers

        with quiet_transformers():
            router.encoder_ = TextEncoder(str(directory / ENCODER_FOLDER), meta["encoder"]["pooling"],
                                          meta["encoder"]["max_length"], safetensors_only=True)
    router._restore(unprefixed("router", arrays))
    probe = router.predict_proba(["a probe query"])  # arrays of a wrong shape fail here, not on a user's query
    if probe.shape != (1, router.n_models_) or not np.isfinite(probe).all():
        raise ValueError(f"scores of shape {probe.shape} for {router.n_models_} models, or not finite")
    unused = sorted(arrays.keys() - _saved_arrays(router).keys())  # what this router would save again
    if unused:
        raise RoutingInputError(f"{directory / ARRAYS_FILE}: member {unused[0][:80]!r} is not part of a saved "
                                f"{meta['router']} router; not loaded: save the router again")
    return router


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]

