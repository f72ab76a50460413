"""The library's errors, one family, and the checks that raise them (one home each).

`RoutingError` is the root. `RoutingInputError` is input a user can fix: its message is one line
naming the file or setting at fault and the fix; the CLI turns it into exit code 2 without a traceback.

The library speaks of settings, never of command-line flags: a message names a setting the caller
can change as `«…»` (an EvalSpec or ReadOptions field, e.g. `«price_file»`), `settings` lists
them, and `name_settings` words them: as the plain field name by default, as its option where the
CLI passes its own names.
Notes about a run (`Note`) are data only, a code and its fields; their English is the caller's.
`NotFittedError` is a router or policy used before it learned anything (a programming error).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


SETTING = re.compile(r"«([a-z_]+)»")


def name_settings(text: str, names: Mapping[str, str] | None = None) -> str:
    """`text` with each setting it names (`«…»`) as `names` calls it (the CLI: its option), else the field."""
    names = names or {}
    return SETTING.sub(lambda match: names.get(match.group(1), match.group(1)), text)


def settings(text: str) -> tuple[str, ...]:
    """The settings `text` names (fields, in order, once each): what a caller may change to fix it."""
    return tuple(dict.fromkeys(SETTING.findall(text)))


class Note:
    """A note about a run, as data: a stable `code` a program matches, the values it reports (`fields`: numbers,
    names, lists) and the settings a caller may change about it (`settings`: EvalSpec or ReadOptions fields).

    The library writes no English for it: the caller renders it (the CLI: lm_routing.cli.notes, keyed by `code`,
    each setting named as its option), and the JSON report carries it as this data: a program needs no prose.
    """

    __slots__ = ("code", "fields", "settings")

    def __init__(self, code: str, settings: Iterable[str] = (), **fields):
        self.code, self.settings, self.fields = code, tuple(settings), fields

    def __eq__(self, other) -> bool:
        return isinstance(other, Note) and (self.code, self.settings, self.fields) == (other.code, other.settings, other.fields)

    __hash__ = None  # fields hold lists and dicts

    def __repr__(self) -> str:
        return f"Note({self.code!r}, settings={self.settings!r}, **{self.fields!r})"

    def __getstate__(self):  # pickled across worker processes (slots, no __dict__)
        return self.code, self.settings, self.fields

    def __setstate__(self, state) -> None:
        self.code, self.settings, self.fields = state


class RoutingError(Exception):
    """Root of lm-routing's own errors."""


class RoutingInputError(RoutingError, ValueError):
    """Input a user can fix (bad file, unknown name, mismatched documents).

    The message is one line: the file (and line) or setting at fault and what to do; `settings` are
    the fields it names (data for a program), `render(names)` the line with each named as the caller
    calls it. The CLI turns it into exit code 2 without a traceback.
    """

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def settings(self) -> tuple[str, ...]:
        return settings(self.message)

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return name_settings(self.message, names)

    def __str__(self) -> str:
        return self.render()


def rust_panic(error: BaseException) -> bool:
    """Whether `error` is a panic inside a Rust library (tokenizers on a damaged Precompiled charsmap, safetensors):
    pyo3 raises it as a PanicException, a BaseException, which `except Exception` lets through as a traceback."""
    return type(error).__name__ == "PanicException"


class NotFittedError(RoutingError, RuntimeError):
    """A router or policy was asked to predict or choose before `fit` (or before being loaded)."""


def unknown_name_error(what: str, unknown: Sequence[str], known: Iterable[str], *, source: str = "",
                       listing: str = "choose one of", also: str = "") -> RoutingInputError:
    """The one "unknown name" message, with the closest known name as a hint (difflib).

    One name: "unknown router 'knnn'; choose one of: knn, lr; did you mean 'knn'?".
    With `source` (the field or file that named them), any number of names:
    "cascade names unknown model(s) x, y; known: a, b". `also`: text after the list (other accepted forms).
    """
    known = [str(name) for name in known]
    close = difflib.get_close_matches(str(unknown[0]), known, n=1) if len(unknown) == 1 else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if source:
        return RoutingInputError(f"{source} names unknown {what}(s) {', '.join(map(str, unknown))}; "
                                 f"known: {', '.join(known)}{also}{hint}")
    return RoutingInputError(f"unknown {what} {str(unknown[0])[:50]!r}; {listing}: {', '.join(known)}{also}{hint}")


def check_known(what: str, names: Iterable[str], known: Sequence[str], *, source: str = "", also: str = "") -> None:
    """Raise `unknown_name_error` for the first (or, with `source`, every) name not in `known`."""
    unknown = [name for name in names if name not in known]
    if unknown:
        raise unknown_name_error(what, unknown if source else unknown[:1], known, source=source, also=also)


def latency_known(latency: np.ndarray) -> bool:
    """True when every latency (seconds; NaN: unknown) is known."""
    return not np.isnan(latency).any()


def require_latency(latency: np.ndarray, purpose: str) -> np.ndarray:
    """`latency` (seconds, queries x models) when every value is known; NaN anywhere raises naming `purpose`."""
    if not latency_known(latency):
        raise RoutingInputError(f"{purpose} needs every model's latency; pass «latencies» MODEL=SECONDS")
    return latency


def finite_scores(scores: np.ndarray, source: str) -> np.ndarray:
    """`scores` (queries x models, P(solve) 0-1) when every one is a number; NaN or inf raises naming `source`
    (a saved router's folder): a policy fit on them would fail deep inside scikit-learn."""
    bad = ~np.isfinite(scores)
    if bad.any():
        raise RoutingInputError(f"{source}: scores NaN or infinite for {int(bad.any(axis=1).sum())} of {len(scores)} "
                                "queries; the saved router is damaged: save it again with routing-eval «save_dir»")
    return scores
