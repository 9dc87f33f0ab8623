"""What plugins register: lazy, named entries of each kind, and the registrar handed to plugins.

A target is either the object itself or a ``"package.module:attribute"`` string imported only when
the entry is first used (fsspec's ``known_implementations`` idea), so registering the S3 backend
never imports boto3. A target that fails to import for want of an optional dependency raises
:class:`~offload_core.errors.MissingDependencyError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .errors import MissingDependencyError, PluginConflictError, PluginNotFoundError

__all__ = ["KINDS", "Entry", "Kind", "Registrar", "Registry"]

Kind = Literal["backend", "transport", "pointer_format", "compressor", "checksum", "signer"]
KINDS: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True)
class Entry:
    """One registered plugin object: its kind, name, where it lives and what it needs."""

    kind: Kind
    name: str
    target: object
    plugin: str
    #: The ``offload[extra]`` that installs the target's dependencies, for the error message.
    extra: str | None = None
    #: URL schemes a backend serves (``s3``, ``file``); empty for other kinds.
    schemes: tuple[str, ...] = ()
    description: str = ""
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def load(self) -> Any:
        """Import (once) and return the target object."""
        if not isinstance(self.target, str):
            return self.target
        with self._lock:
            if "obj" not in self._cache:
                self._cache["obj"] = self._import(self.target)
            return self._cache["obj"]

    def _import(self, spec: str) -> object:
        module_name, _, attr = spec.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or module_name
            own = missing == module_name or module_name.startswith(missing + ".")
            if own and self.extra is None:
                raise  # the plugin's own module is missing: a packaging bug, not an extra
            raise MissingDependencyError(
                f"{self.kind} {self.name!r}", module=missing, extra=self.extra
            ) from exc
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        return obj

    def describe(self) -> dict[str, object]:
        """A JSON-ready description, as ``offload plugins`` prints it."""
        target = self.target if isinstance(self.target, str) else _qualname(self.target)
        out: dict[str, object] = {"name": self.name, "target": target}
        if self.schemes:
            out["schemes"] = list(self.schemes)
        if self.extra:
            out["extra"] = self.extra
        if self.description:
            out["description"] = self.description
        return out


def _qualname(obj: object) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{name}"


class Registrar:
    """Handed to a plugin's ``offload_register_*`` hook; each call adds one entry of one kind.

    Usage inside a plugin::

        @hookimpl
        def offload_register_backends(register):
            register("mystore", "my_pkg.store:MyStore", schemes=("mys",), extra=None)
    """

    def __init__(self, registry: Registry, kind: Kind, plugin: str) -> None:
        self._registry = registry
        self.kind: Kind = kind
        self.plugin = plugin

    def __call__(
        self,
        name: str,
        target: object,
        *,
        schemes: Iterable[str] = (),
        extra: str | None = None,
        description: str = "",
    ) -> None:
        if self.kind != "backend" and schemes:
            raise TypeError("only backends take schemes")
        self._registry.add(
            Entry(
                kind=self.kind,
                name=name,
                target=target,
                plugin=self.plugin,
                extra=extra,
                schemes=tuple(schemes),
                description=description,
            )
        )


class Registry:
    """Every entry of every kind, looked up by name (and backends by URL scheme)."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}

    def add(self, entry: Entry) -> None:
        self._entries[entry.kind].setdefault(entry.name, []).append(entry)

    def entries(self, kind: Kind | None = None) -> Iterator[Entry]:
        kinds = (kind,) if kind else KINDS
        for k in kinds:
            for same_name in self._entries[k].values():
                yield from same_name

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def get(self, kind: Kind, name: str) -> Entry:
        """The one entry of ``kind`` called ``name``; a typed error with a suggestion otherwise."""
        found = self._entries[kind].get(name)
        if not found:
            names = self.names(kind)
            import difflib  # only for the error message

            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            if not close:
                lowered = {n.lower(): n for n in names}
                close = [lowered[name.lower()]] if name.lower() in lowered else []
            raise PluginNotFoundError(
                kind, name, available=names, suggestion=close[0] if close else None
            )
        if len(found) > 1:
            raise PluginConflictError(kind, name, [e.plugin for e in found])
        return found[0]

    def by_scheme(self) -> Mapping[str, Entry]:
        """Backends by the URL schemes they serve."""
        out: dict[str, Entry] = {}
        for entry in self.entries("backend"):
            for scheme in entry.schemes:
                if scheme in out and out[scheme].name != entry.name:
                    raise PluginConflictError(
                        "backend scheme", scheme, [out[scheme].plugin, entry.plugin]
                    )
                out[scheme] = entry
        return out
