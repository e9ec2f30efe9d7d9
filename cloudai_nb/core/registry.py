"""One generic registry; one module-level instance per kind of thing.

>>> from cloudai_nb.core.registry import workloads
>>> @workloads.register("MyBench")            # doctest: +SKIP
... class MyBench(TestDefinition): ...

Built-in implementations and third-party packages (entry-point group ``cloudai_nb.plugins``) are
loaded on the first lookup or registration, so user registrations always come after them and can
replace them with ``replace=True``. A plugin that fails to load is reported (``plugin_errors`` and a
log warning), never fatal.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from cloudai_nb.core.errors import RegistryError, did_you_mean

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

PLUGIN_GROUP = "cloudai_nb.plugins"

# Loaded before any third-party plugin, by name so that `core` never imports the layers above it.
BUILTIN_PLUGINS = (
    "cloudai_nb.core.system:register_builtins",
    "cloudai_nb.workloads:register_builtins",
    "cloudai_nb.systems:register_builtins",
)

plugin_errors: list[str] = []
_plugin_state = "unloaded"  # -> "loading" -> "loaded"
# Re-entrant: plugins register while they load; other threads wait until loading is done.
_plugin_lock = threading.RLock()


def _load_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def load_plugins() -> None:
    """Load the built-ins, then every ``cloudai_nb.plugins`` entry point, once per process."""
    global _plugin_state
    if _plugin_state == "loaded":
        return
    with _plugin_lock:
        if _plugin_state != "unloaded":
            return  # loaded meanwhile, or this thread is loading (a plugin registering)
        _plugin_state = "loading"
        try:
            _load_all()
        finally:
            _plugin_state = "loaded"  # a broken built-in must not make every lookup retry it


def _load_all() -> None:
    for target in BUILTIN_PLUGINS:
        hook = _load_target(target)
        hook()
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            hook = ep.load()
            if callable(hook):
                hook()
        except Exception as exc:  # a broken plugin must not break the tool
            message = f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            plugin_errors.append(message)
            log.warning(message)


def key_name(key: Any) -> str:
    if isinstance(key, type):
        return key.__name__
    if isinstance(key, tuple):
        return "(" + ", ".join(key_name(k) for k in key) + ")"
    return str(key)


_MISSING: Any = object()


class Registry(Generic[K, V]):
    """A named mapping from keys to implementations.

    Keys are names (``"Sleep"``) or types, or tuples of types such as (system type, workload type).
    Lookups of type keys are subclass-aware: the closest registered ancestors win, the first element
    of a tuple key taking precedence on ties.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[K, V] = {}

    @overload
    def register(self, key: K, value: V, *, replace: bool = ...) -> V: ...
    @overload
    def register(self, key: K, *, replace: bool = ...) -> Callable[[V], V]: ...

    def register(self, key: K, value: V = _MISSING, *, replace: bool = False) -> Any:
        """Register ``value`` under ``key``; without ``value``, return a decorator."""
        if value is _MISSING:

            def decorator(obj: V) -> V:
                self.register(key, obj, replace=replace)
                return obj

            return decorator
        load_plugins()
        if key in self._items and not replace and self._items[key] is not value:
            raise RegistryError(
                f"{self.kind} {key_name(key)!r} is already registered "
                f"(by {describe(self._items[key])}); pass replace=True to replace it"
            )
        self._items[key] = value
        return value

    def unregister(self, key: K) -> V:
        load_plugins()
        try:
            return self._items.pop(key)
        except KeyError:
            raise self._missing(key) from None

    def get(self, key: K) -> V:
        """The implementation for ``key``; raises `RegistryError` listing what is registered."""
        load_plugins()
        if key in self._items:
            return self._items[key]
        found = self._closest(key)
        if found is _MISSING:
            raise self._missing(key)
        return found  # type: ignore[no-any-return]

    def find(self, key: K) -> V | None:
        """Like `get`, but ``None`` when nothing is registered for ``key``."""
        try:
            return self.get(key)
        except RegistryError:
            return None

    def _closest(self, key: Any) -> Any:
        if isinstance(key, type):
            key = (key,)
            single = True
        elif isinstance(key, tuple) and key and all(isinstance(k, type) for k in key):
            single = False
        else:
            return _MISSING
        best: tuple[tuple[int, ...], Any] | None = None
        for registered, value in self._items.items():
            candidate = (registered,) if single else registered
            if not isinstance(candidate, tuple) or len(candidate) != len(key):
                continue
            if not all(isinstance(c, type) and issubclass(k, c) for k, c in zip(key, candidate, strict=True)):
                continue
            distances = tuple(k.__mro__.index(c) for k, c in zip(key, candidate, strict=True))
            rank = (sum(distances), *distances)
            if best is None or rank < best[0]:
                best = (rank, value)
        return _MISSING if best is None else best[1]

    def _missing(self, key: Any) -> RegistryError:
        names = sorted(key_name(k) for k in self._items)
        hint = did_you_mean(str(key), names) if isinstance(key, str) else ""
        listing = ", ".join(names) if names else "nothing"
        return RegistryError(f"no {self.kind} {key_name(key)!r}{hint}; registered: {listing}")

    def __contains__(self, key: object) -> bool:
        load_plugins()
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        load_plugins()
        return iter(list(self._items))

    def __len__(self) -> int:
        load_plugins()
        return len(self._items)

    def items(self) -> list[tuple[K, V]]:
        load_plugins()
        return list(self._items.items())

    def __repr__(self) -> str:
        return f"<Registry {self.kind}: {len(self._items)} entries>"


def describe(value: Any) -> str:
    module = getattr(value, "__module__", None)
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"{module}.{name}" if module else name


# One instance per kind. Values are typed loosely here because the classes they hold live in the
# layers above; each layer narrows them where it looks them up.
systems: Registry[str, Any] = Registry("system")  # scheduler name -> System config model
workloads: Registry[str, Any] = Registry("workload")  # test_template_name -> TestDefinition subclass
backends: Registry[type, Any] = Registry("system backend")  # System model type -> backend factory
installers: Registry[tuple[type, type], Any] = Registry("installer")  # (System type, installable type)
command_builders: Registry[tuple[type, type], Any] = Registry("command builder")  # (System, TestDefinition)
result_parsers: Registry[tuple[type, type], Any] = Registry("result parser")  # (System, TestDefinition)
