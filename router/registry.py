"""`Registry`: names users type (routers, policies, features) -> what they build; one shape for all three.

A registry refuses a second entry under a name it holds and an entry of the wrong kind, and its
`lookup` is the one place an unknown name becomes an error (with the closest name as a hint).
Reading is dict-like (`name in ROUTERS`, `ROUTERS[name]`, iteration in registration order), so
callers need not know it is not a dict. `load` names the functions ("module:function") that add the
built-in entries on first read: importing the registry stays cheap, registration stays explicit, and a
registry of a lower layer can hold entries of a higher one (ROUTERS holds `auto`, which judges) without
importing it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from lm_routing.errors import unknown_name_error

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Entries by name, in registration order.

    `what`: the word for one entry in messages ('router'); `kind`: entries must be subclasses of it
    (None: any callable); `also`: other accepted forms, said after the list of names;
    `load`: 'module:function' names called with the registry on first read, in order, to add the built-ins.
    """

    def __init__(self, what: str, kind: type | None = None, also: str = "", load: str | tuple[str, ...] = ()):
        self.what, self.kind, self.also = what, kind, also
        self._entries: dict[str, T] = {}
        self._load = (load,) if isinstance(load, str) else tuple(load)

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name` (a class gets `name` as its `.name`); a taken name raises ValueError, a wrong kind TypeError."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.what} name must be a non-empty string, got {name!r}")
        if self.kind is not None and not (isinstance(entry, type) and issubclass(entry, self.kind)):
            raise TypeError(f"{self.what} {name!r}: {entry!r} is not a subclass of {self.kind.__name__}")
        if self.kind is None and not callable(entry):
            raise TypeError(f"{self.what} {name!r}: {entry!r} is not callable")
        entries = self._loaded()  # the built-ins first, so that a later entry cannot take their names
        if name in entries and entries[name] is not entry:
            raise ValueError(f"{self.what} {name!r} is already registered ({entries[name]!r}); choose another name")
        if isinstance(entry, type):
            entry.name = name
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def lookup(self, name: str) -> T:
        """The entry named `name`; an unknown name raises RoutingInputError listing the names and the closest one."""
        if name not in self:
            raise unknown_name_error(self.what, [name], self, also=self.also)
        return self._entries[name]

    def _loaded(self) -> dict[str, T]:
        if self._load:
            loads, self._load = self._load, ()  # first: the loaders' own `add` calls must not load again
            try:
                for load in loads:
                    module, function = load.split(":")
                    getattr(importlib.import_module(module), function)(self)
            except BaseException:
                self._entries.clear()
                self._load = loads
                raise
        return self._entries

    def __getitem__(self, name: str) -> T:
        return self._loaded()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._loaded())})"
