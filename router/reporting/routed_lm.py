"""`lm_eval --model routed`: a saved router in front of a pool of lm-eval models.

The router reads each document's question (the same text `routing-eval` reads
from the logs, see `lm_routing.reading.logs.query_text`), a policy picks one member per
document, and every request of that document (all `repeats` samples, every
answer choice of a multiple-choice question) goes to that member, so lm-eval
scores the routed system with its own metrics, on any task.

Two modes, chosen by `--model_args`:
- live: `router=DIR` (a router folder, lm_routing.saved). Members are
  ordinary lm-eval models, built lazily, once, on the first request routed to
  them, and given their requests in one call each (lm-eval batches inside).
  By default a member is `hf` with `pretrained=<its name in the router's pool>`;
  `members=FILE.json` (or a `members` object in JSON `--model_args`) maps
  names to `{"model": "hf", "model_args": "pretrained=...,dtype=..."}`.
- replay: `router=DIR,replay=LOGS_DIR` answers each request with what the
  chosen member answered in existing `--log_samples` logs: no model runs.

Every document's sample log records the decision: each request's arguments
gain a last one, `{"routed_to": member, "router_scores": {member: P(solve)}}`
(lm-eval 0.4.13 logs it as `arguments.gen_args_<i>.arg_<last>`; `routing_record` reads it back).
`pretrained=DIR` works as well as `router=DIR` and names lm-eval's output
folder after the router, as it does for `hf` models.
The results JSON's `config.routing` holds the mix: per member, documents,
requests and seconds (measured live; from the logs' latency in replay).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lm_eval.api.model import LM

from lm_routing.data import RoutingInputError
from lm_routing.reading.harness import (
    LAYOUT_HINT, HarnessRun, doc_key, document_key, harness_runs, iter_jsonl, load_json, run_seconds, text_hash,
)
from lm_routing.reading.logs import query_text, short_dataset
from lm_routing.deciding.policies import make_policy, unfitted_policies
from lm_routing.saved import load_router

ROUTING_KEY = "routed_to"


@dataclass(frozen=True)
class MemberSpec:
    """One pool member as lm-eval builds it: a registered model name and its model_args."""

    model: str
    model_args: str | dict


def parse_members(value, pool: tuple[str, ...], member_model: str = "hf") -> dict[str, MemberSpec]:
    """Member specs for every pool name from `members=` (None, a JSON file path, or a dict).

    A spec is a dict `{"model": ..., "model_args": str | dict}` or a string
    `"model_args"` (model `member_model`); names the router does not know are
    refused, and pool names left out default to `member_model` with `pretrained=<name>`.
    """
    if value is None or value == "":
        given = {}
    elif isinstance(value, dict):
        given = value
    else:
        path = Path(str(value))
        if not path.is_file():
            raise RoutingInputError(f"members={value}: no such file; pass a JSON file of {{name: {{model, model_args}}}}")
        given = load_json(path)
        if not isinstance(given, dict):
            raise RoutingInputError(f"{path}: expected a JSON object {{member name: {{model, model_args}}}}")
    unknown = sorted(set(given) - set(pool))
    if unknown:
        raise RoutingInputError(
            f"members names {', '.join(unknown)}, which the router does not route to; its pool: {', '.join(pool)}"
        )
    specs = {}
    for name in pool:
        spec = given.get(name, {"model": member_model, "model_args": {"pretrained": name}})
        if isinstance(spec, str):
            spec = {"model": member_model, "model_args": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("model_args", {}), (str, dict)):
            raise RoutingInputError(f"members: the entry of {name} must be model_args text or {{model, model_args}}")
        specs[name] = MemberSpec(str(spec.get("model", member_model)), spec.get("model_args", {}))
    return specs


def _finite_or_none(seconds: float) -> float | None:
    """JSON has no NaN: an unknown time (a log without one) is null."""
    return seconds if math.isfinite(seconds) else None


@dataclass
class MemberUse:
    """What one member did in a run: documents and requests routed to it, seconds spent."""

    documents: int = 0
    requests: int = 0
    seconds: float = 0.0
    other_prompt: int = 0  # replay: documents answered from a log of another prompt (e.g. zero-shot vs few-shot)

    def as_dict(self, total_documents: int) -> dict:
        return {
            "documents": self.documents,
            "share": self.documents / total_documents if total_documents else 0.0,
            "requests": self.requests,
            "seconds": _finite_or_none(self.seconds),
            "seconds_per_document": self.seconds / self.documents if self.documents and math.isfinite(self.seconds) else None,
            **({"answered_from_another_prompt": self.other_prompt} if self.other_prompt else {}),
        }


@dataclass
class _Logged:
    resps: list
    prompt_hash: str | None
    where: str
    task: str
    seconds: float  # the run's seconds per document; NaN when the results file has no valid time


@dataclass
class ReplayLogs:
    """Every logged answer under a folder, by model and document (`doc_key`)."""

    root: Path
    answers: dict[str, dict[str, list[_Logged]]] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path | str) -> ReplayLogs:
        root = Path(root)
        if not root.is_dir():
            raise RoutingInputError(f"replay={root}: no such folder; pass the --output_path folder of the members' lm_eval runs")
        logs = cls(root)
        for run in harness_runs(root, f"replay={root}"):
            if not run.routed:  # a routed output's answers are its members': replaying it would route to a router
                logs._read_run(run)
        return logs

    def _read_run(self, harness_run: HarnessRun) -> None:
        results, model = harness_run.results, harness_run.model
        run: dict[str, _Logged] = {}
        for task, _, samples in harness_run.tasks:
            for number, row in iter_jsonl(samples, skip_bad_lines=False, skipped=None):
                if not all(k in row for k in ("doc", "doc_hash", "resps")):
                    raise RoutingInputError(f"{samples}:{number}: sample lacks doc, doc_hash or resps; {LAYOUT_HINT}")
                key = document_key(row["doc_hash"], row.get("doc_id"))
                if key not in run:  # one line per filter: the answers are the same on each
                    run[key] = _Logged(row["resps"], row.get("prompt_hash"), f"{samples}:{number}", task, math.nan)
        per_doc = run_seconds(results) / len(run) if run else math.nan
        for key, logged in run.items():
            logged.seconds = per_doc
            self.answers.setdefault(model, {}).setdefault(key, []).append(logged)

    def require_models(self, pool: tuple[str, ...]) -> None:
        missing = [m for m in pool if m not in self.answers]
        if missing:
            raise RoutingInputError(
                f"replay={self.root}: no logs of {', '.join(missing)}, which the router routes to (logged: "
                f"{', '.join(sorted(self.answers))}); run it with lm_eval --log_samples into that folder"
            )

    def lookup(self, model: str, key: str, task: str, doc_id) -> _Logged:
        """The logged answers of `model` to one document, preferring a run of the same task."""
        found = self.answers[model].get(key, [])
        same_task = [f for f in found if f.task == task]
        found = same_task or found
        if not found:
            raise RoutingInputError(
                f"replay={self.root}: {model} has no logged answer to doc_id {doc_id} of {task}; "
                "run every member on the same task, data and --limit as this run"
            )
        if len({f.task for f in found}) > 1:
            raise RoutingInputError(
                f"{found[0].where}: {model} answered doc_id {doc_id} in several tasks ({', '.join(f.task for f in found)}), "
                f"none of them {task}; keep the logs of one"
            )
        return found[0]


def routing_record(sample: dict) -> dict | None:
    """The routing decision in one line of a routed run's samples_*.jsonl, or None if it has none."""
    arguments = sample.get("arguments")
    if isinstance(arguments, dict):  # lm-eval 0.4.13: {"gen_args_0": {"arg_0": ..., "arg_1": ...}}
        first = arguments.get("gen_args_0")
        last = list(first.values())[-1] if isinstance(first, dict) and first else None
    elif isinstance(arguments, list) and arguments and isinstance(arguments[0], list) and arguments[0]:
        last = arguments[0][-1]
    else:
        last = None
    return last if isinstance(last, dict) and ROUTING_KEY in last else None


class RoutedLM(LM):
    """lm-eval model `routed`: dispatch each document's requests to the member a router picks."""

    def __init__(self, router: str | None = None, replay: str | None = None, members=None, policy: str = "argmax",
                 seed: int = 0, member_model: str = "hf", pretrained: str | None = None, batch_size=None,
                 max_batch_size=None, device=None, **unknown) -> None:
        super().__init__()
        if unknown:
            raise RoutingInputError(
                f"routed: unknown model_args {', '.join(sorted(unknown))}; "
                "known: router (or pretrained), replay, members, policy, seed, member_model"
            )
        if (router is None) == (pretrained is None):
            raise RoutingInputError("routed: give the saved router's folder once, as router=DIR or pretrained=DIR")
        router = router if router is not None else pretrained
        if policy not in unfitted_policies():
            raise RoutingInputError(
                f"routed: policy={policy} is fitted on labels and a saved router carries none; use one of "
                f"{', '.join(unfitted_policies())}"
            )
        self.router_dir = str(router)
        self.router, self.pool = load_router(router)
        self.policy_name = policy
        self.policy = make_policy(policy, seed=int(seed))
        self.replay = ReplayLogs.read(replay) if replay else None
        if self.replay is not None:
            self.replay.require_models(self.pool)
        self.members = parse_members(members, self.pool, member_model) if not replay else {}
        self._shared = {k: v for k, v in {"batch_size": batch_size, "max_batch_size": max_batch_size,
                                           "device": device}.items() if v is not None}
        self._loaded: dict[str, LM] = {}
        self._decisions: dict[tuple, tuple[int, np.ndarray]] = {}
        self._task_index = None  # lm-eval's task index, read when the router routes on dataset names
        self._replay_charged: set[tuple] = set()
        self.use = {name: MemberUse() for name in self.pool}

    # routing ----------------------------------------------------------------

    def _route(self, requests) -> list[int]:
        """The member index for each request; documents are scored once, in one batch."""
        keys = [(r.task_name, r.doc_id) for r in requests]
        new = {}
        for key, request in zip(keys, requests):
            if key not in self._decisions and key not in new:
                new[key] = query_text(request.doc)
        if new:
            datasets = [self._dataset_of(task) for task, _ in new] if self.router.uses_datasets else None
            scores = self.router.predict_proba(list(new.values()), datasets)
            for key, j, row in zip(new, self.policy.choose(scores), scores):
                self._decisions[key] = (int(j), row)
                self.use[self.pool[int(j)]].documents += 1
        return [self._decisions[key][0] for key in keys]

    def _dataset_of(self, task: str) -> str | None:
        """The dataset `routing-eval` names a task's documents by (`lm_routing.reading.logs.short_dataset` of its
        dataset_path), from lm-eval's task index; None (auto then names it from the text) for a task
        the default index lacks, e.g. one found only through --include_path."""
        if self._task_index is None:
            from lm_eval.tasks import TaskManager

            self._task_index = TaskManager().task_index
        entry = self._task_index.get(task)
        path = (entry.cfg or {}).get("dataset_path") if entry is not None else None
        return short_dataset(path, task) if isinstance(path, str) else None

    def _record(self, requests) -> None:
        """Append the routing decision to each request's arguments, which lm-eval logs per document."""
        seen = set()
        for request in requests:
            if id(request) in seen:
                continue
            seen.add(id(request))
            j, row = self._decisions[(request.task_name, request.doc_id)]
            record = {ROUTING_KEY: self.pool[j], "router_scores": dict(zip(self.pool, map(float, row)))}
            request.arguments = (*request.args, record)

    def _member(self, name: str) -> LM:
        if name not in self._loaded:
            from lm_eval.api.registry import get_model

            spec = self.members[name]
            cls = get_model(spec.model)
            if isinstance(spec.model_args, dict):
                self._loaded[name] = cls.create_from_arg_obj(spec.model_args, self._shared)
            else:
                self._loaded[name] = cls.create_from_arg_string(spec.model_args, self._shared)
        return self._loaded[name]

    def _dispatch(self, request_type: str, requests) -> list:
        chosen = self._route(requests)
        answers: list = [None] * len(requests)
        by_member = defaultdict(list)
        for i, j in enumerate(chosen):
            by_member[self.pool[j]].append(i)
        for name, positions in by_member.items():
            batch = [requests[i] for i in positions]
            if self.replay is None:
                member = self._member(name)  # built (once) before the clock starts: loading is not answering
                started = time.perf_counter()
                got = getattr(member, request_type)(batch)
                self.use[name].seconds += time.perf_counter() - started
            else:
                got = self._replayed(name, request_type, batch)
            self.use[name].requests += len(batch)
            for i, answer in zip(positions, got, strict=True):
                answers[i] = answer
        self._record(requests)
        return answers

    def _replayed(self, name: str, request_type: str, batch) -> list:
        """The member's logged answers: the k-th copy of a request gets the k-th logged sample."""
        copies: dict[int, int] = defaultdict(int)
        found: dict[int, _Logged] = {}  # a request comes `repeats` times: hash its document once
        out = []
        for request in batch:
            if id(request) not in found:
                key = doc_key(request.doc, request.doc_id)
                found[id(request)] = self.replay.lookup(name, key, request.task_name, request.doc_id)
            logged = found[id(request)]
            k = copies[id(request)]
            copies[id(request)] += 1
            try:
                answer = logged.resps[request.idx][k]
            except (IndexError, TypeError, KeyError):
                raise RoutingInputError(
                    f"{logged.where}: logged {name}'s answers to doc_id {request.doc_id} have no sample {k + 1} of "
                    f"request {request.idx}; this run asks for more (repeats, answer choices) than that log holds"
                ) from None
            doc = (request.task_name, request.doc_id)
            if doc not in self._replay_charged:  # a document's logged time is charged once, whatever its requests
                self._replay_charged.add(doc)
                self.use[name].seconds += logged.seconds
                if request.idx == 0 and logged.prompt_hash not in (None, text_hash(request.args[0])):
                    self.use[name].other_prompt += 1
            out.append(tuple(answer) if request_type == "loglikelihood" else answer)
        return out

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
        raise RoutingInputError(
            "routed: --apply_chat_template is not supported: lm-eval builds the prompt before the route is known, "
            "and members have different templates; run without it"
        )

    # lm-eval's request types ------------------------------------------------

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        return self._dispatch("generate_until", requests)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._dispatch("loglikelihood", requests)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        return self._dispatch("loglikelihood_rolling", requests)

    def get_model_info(self) -> dict:
        """Added by lm-eval to the results JSON's `config`: the routing mix and its cost."""
        total = sum(u.documents for u in self.use.values())
        return {
            "routing": {
                "router": self.router_dir,
                "router_name": self.router.name,
                "policy": self.policy_name,
                "mode": "replay" if self.replay is not None else "live",
                **({"replay": str(self.replay.root)} if self.replay is not None else {}),
                "documents": total,
                "seconds": _finite_or_none(sum(u.seconds for u in self.use.values())),
                "members": {name: use.as_dict(total) for name, use in self.use.items()},
            }
        }
