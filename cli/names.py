"""The names users type (routers, policies, features), read from the registries: for help texts and typos.

Nothing is hard-coded: a router registered with `@register_router` appears in `--help` and in
`--router`'s choices as soon as `router.routers` imports it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping

import click

from router.features import FEATURES, HF_PREFIX
from router.policies import POLICIES
from router.routers import ROUTERS


class RegistryChoice(click.Choice):
    """A click choice over a registry's names; a typo gets the closest name (difflib) and exit code 2.

    `extra`: names the command accepts besides the registry's (none by default); `choose`: the
    words before the list, as the library's own message for that registry says them.
    """

    def __init__(self, registry: Mapping, what: str, extra: tuple[str, ...] = (), choose: str = "choose one of"):
        self.registry, self.what, self.extra, self.choose = registry, what, extra, choose
        super().__init__([*registry, *extra])

    def convert(self, value, param, ctx):
        if value in self.registry or value in self.extra:
            return value
        names = [*self.registry, *self.extra]
        close = difflib.get_close_matches(str(value), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.fail(f"unknown {self.what} {value!r}; {self.choose}: {', '.join(names)}{hint}", param, ctx)


def feature_names() -> list[str]:
    """Every `--features` value: the registry's names, then the hub/folder form."""
    return [*FEATURES, f"{HF_PREFIX}<hub id or folder>"]


def names_epilog() -> str:
    """The routers, policies and features one can name, one line each (click keeps the lines: \\b)."""
    return "\n".join([
        "\b",
        f"Routers (--router): {', '.join(ROUTERS)}",
        f"Policies (--policy): {', '.join(POLICIES)}",
        f"Features (--features): {', '.join(feature_names())}",
    ])


def router_default(param: str) -> str:
    """'mlc, sc: roberta-base': each registered router's default for hyper-parameter `param`."""
    by_value: dict[str, list[str]] = {}
    for name, cls in ROUTERS.items():
        accepted = inspect.signature(cls.__init__).parameters
        if param in accepted and accepted[param].default is not inspect.Parameter.empty:
            by_value.setdefault(str(accepted[param].default), []).append(name)
    return "; ".join(f"{', '.join(names)}: {value}" for value, names in by_value.items())
