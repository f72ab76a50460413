"""The names users type (routers, policies, features), read from the registries: for help texts and typos.

Nothing is hard-coded: a router registered with `@register_router` appears in `--help` and in
`--router`'s choices as soon as `lm_routing.learning.routers` imports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import click

from lm_routing.errors import unknown_name_error
from lm_routing.learning.features import FEATURES, HF_PREFIX
from lm_routing.deciding.policies import POLICIES
from lm_routing.learning.routers import ROUTERS
from lm_routing.learning.routers.base import hyper_parameters


class RegistryChoice(click.Choice):
    """A click choice over a registry's names; a typo gets the library's message (with the closest name) and exit code 2.

    `extra`: names the command accepts besides the registry's (none by default).
    """

    def __init__(self, registry: Mapping, what: str, extra: tuple[str, ...] = ()):
        self.registry, self.what, self.extra = registry, what, extra
        super().__init__([*registry, *extra])

    def convert(self, value, param, ctx):
        if value in self.registry or value in self.extra:
            return value
        self.fail(str(unknown_name_error(self.what, [value], [*self.registry, *self.extra])), param, ctx)


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
        accepted = hyper_parameters(cls)
        if param in accepted and accepted[param] is not inspect.Parameter.empty:
            by_value.setdefault(str(accepted[param]), []).append(name)
    return "; ".join(f"{', '.join(names)}: {value}" for value, names in by_value.items())
