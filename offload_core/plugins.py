"""Finding, loading and querying plugins.

All state lives in a :class:`Plugins` object. :func:`default_plugins` builds one from the
installed entry points on first use; tests and applications can build their own (for instance
``Plugins.from_modules(...)``) and pass it wherever a ``plugins=`` argument is taken.

Environment variables read when entry points are loaded:

``OFFLOAD_PLUGINS``
    Comma-separated allowlist of entry-point names; only these load. Set but empty: none load.
``OFFLOAD_DISABLED_PLUGINS``
    Comma-separated blocklist of entry-point names that never load.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from traceback import format_exc
from typing import TYPE_CHECKING, Any, overload

import pluggy

from . import hookspecs
from .errors import ConfigurationError, PluginNotFoundError
from .registry import Entry, Kind, Registrar, Registry

if TYPE_CHECKING:
    import click

    from .aio.offloader import AsyncOffloader
    from .aio.transport import AsyncTransportBase
    from .events import ErrorEvent, ResolvedEvent, SentEvent, StoredEvent
    from .observe import Operation
    from .offloader import Offloader
    from .ops import Message
    from .pointer import PointerFormat
    from .store import Store
    from .transport import Transport

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "Plugins", "default_plugins", "set_default_plugins"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "offload"

_REGISTRATION_HOOKS: dict[Kind, str] = {
    "backend": "offload_register_backends",
    "transport": "offload_register_transports",
    "pointer_format": "offload_register_pointer_formats",
    "compressor": "offload_register_compressors",
    "checksum": "offload_register_checksums",
    "signer": "offload_register_signers",
}


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its name, the distribution that installed it, and its hooks."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


def _env_list(env: Mapping[str, str], name: str) -> set[str] | None:
    value = env.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class Plugins:
    """A pluggy manager plus the registry built from its registration hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        #: Plugin name -> its distribution (or its name and version), read when asked for.
        self._dists: dict[str, Any] = {}
        self._registry: Registry | None = None
        self._lock = threading.Lock()
        self._observed: bool | None = None
        #: Observer hook name -> its implementations, as (function, argument names).
        self._observers: dict[str, list[tuple[Any, tuple[str, ...], str]]] = {}

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_entry_points(cls, env: Mapping[str, str] | None = None) -> Plugins:
        """Load the installed plugins of the ``offload`` group, honouring the allow/blocklists."""
        plugins = cls()
        plugins.load_entry_points(env if env is not None else os.environ)
        return plugins

    @classmethod
    def from_modules(cls, *modules: object, **named: object) -> Plugins:
        """A manager holding only the given plugin objects (no entry points); handy in tests."""
        plugins = cls()
        for module in modules:
            plugins.register(module)
        for name, module in named.items():
            plugins.register(module, name=name)
        return plugins

    def load_entry_points(self, env: Mapping[str, str]) -> None:
        allow = _env_list(env, "OFFLOAD_PLUGINS")
        block = _env_list(env, "OFFLOAD_DISABLED_PLUGINS") or set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (allow is not None and ep.name not in allow) or ep.name in block:
                log.debug("plugin %s skipped by OFFLOAD_PLUGINS/OFFLOAD_DISABLED_PLUGINS", ep.name)
                continue
            if self.pm.has_plugin(ep.name):
                continue  # the same distribution seen twice on sys.path
            registered = self.register(ep.load(), name=ep.name)
            # Its metadata is parsed only if someone asks (``offload plugins``): not at start.
            self._dists[registered] = ep.dist
        self.pm.check_pending()

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register one plugin object (usually a module with ``@hookimpl`` functions)."""
        registered = self.pm.register(plugin, name=name)
        if registered is None:
            raise ValueError(f"plugin {name or plugin!r} is blocked or already registered")
        self.pm.check_pending()
        self._dists[registered] = (distribution, version)
        with self._lock:
            self._registry = None  # rebuilt on next use
            self._observed = None
            self._observers = {}
        return registered

    def unregister(self, plugin: object) -> None:
        """Remove a plugin object registered earlier (an observer being switched off)."""
        self.pm.unregister(plugin)
        with self._lock:
            self._registry = None
            self._observed = None
            self._observers = {}

    # -- the registry ----------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """Every entry the registration hooks produced, built once per set of plugins."""
        with self._lock:
            if self._registry is None:
                self._registry = self._build_registry()
            return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        for kind, hook_name in _REGISTRATION_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            # Call each implementation with its own registrar so every entry knows its plugin.
            for impl in reversed(hook.get_hookimpls()):
                args = {"register": Registrar(registry, kind, impl.plugin_name)}
                impl.function(*[args[name] for name in impl.argnames])
        return registry

    def get(self, kind: Kind, name: str) -> Any:
        """The loaded object registered as ``name`` for ``kind``."""
        return self.registry.get(kind, name).load()

    def entry_for_url(self, url: str) -> Entry:
        """The backend entry serving ``url``'s scheme (``file`` when there is none)."""
        scheme = url.split("://", 1)[0].split("::", 1)[0] if "://" in url else "file"
        by_scheme = self.registry.by_scheme()
        if scheme not in by_scheme:
            fallback = by_scheme.get("*")
            if fallback is not None:
                return fallback
            import difflib

            close = difflib.get_close_matches(scheme, list(by_scheme), n=1)
            raise PluginNotFoundError(
                "backend for URL scheme",
                scheme,
                available=list(by_scheme),
                suggestion=close[0] if close else None,
            )
        return by_scheme[scheme]

    def open_store(self, url: str, **options: Any) -> Store:
        """The store for ``url``, from the backend registered for its scheme; options the
        backend does not take are a ``ConfigurationError``."""
        entry = self.entry_for_url(url)
        try:
            opened: Store = entry.load()(url, **options)
        except TypeError as exc:
            raise ConfigurationError(
                f"the {entry.name} store for {url!r} does not take these options "
                f"({', '.join(sorted(options)) or 'none'}): {exc}"
            ) from exc
        return opened

    @overload
    def open_transport(
        self, name: str, destination: str | None, offloader: Offloader, **options: Any
    ) -> Transport: ...

    @overload
    def open_transport(
        self, name: str, destination: str | None, offloader: AsyncOffloader, **options: Any
    ) -> AsyncTransportBase: ...

    def open_transport(
        self,
        name: str,
        destination: str | None,
        offloader: Offloader | AsyncOffloader,
        **options: Any,
    ) -> Transport | AsyncTransportBase:
        """The transport registered as ``name`` on ``destination`` (a queue URL, topic ARN,
        bus ...), sending through ``offloader``; options it does not take (``client=`` takes an
        SDK client) are a ``ConfigurationError``. Given an
        :class:`~offload_core.aio.AsyncOffloader`, the transport's asynchronous face (its
        class's ``async_face``) is opened instead."""
        factory = self.get("transport", name)
        if getattr(offloader, "asynchronous", False):
            factory = getattr(factory, "async_face", None)
            if factory is None:
                raise ConfigurationError(f"the {name} transport has no asynchronous face")
        try:
            opened: Transport | AsyncTransportBase = factory(destination, offloader, **options)
        except TypeError as exc:
            raise ConfigurationError(
                f"the {name} transport does not take these options "
                f"({', '.join(sorted(options)) or 'none'}): {exc}"
            ) from exc
        return opened

    def pointer_readers(self) -> list[PointerFormat]:
        """One instance of every registered pointer format, in name order: what detection tries."""
        return [
            self.get("pointer_format", name)() for name in self.registry.names("pointer_format")
        ]

    # -- recognition, observers and commands ----------------------------------------------

    def read_messages(self, document: Mapping[str, Any]) -> list[Message] | None:
        """The messages a plugin finds in ``document``; ``None`` when none knows its shape."""
        found = self.pm.hook.offload_read_messages(document=document)
        return None if found is None else list(found)

    def store_url_hint(self, url: str) -> str | None:
        """What a plugin says to use instead of the ``http(s)://`` address ``url``, if any."""
        hint: str | None = self.pm.hook.offload_store_url_hint(url=url)
        return hint

    def notify(self, event: StoredEvent | ResolvedEvent | ErrorEvent | SentEvent) -> None:
        """Tell observer plugins about an event; their failures are logged, never raised."""
        from .events import ErrorEvent, ResolvedEvent, SentEvent, StoredEvent

        hook_name = {
            StoredEvent: "offload_stored",
            ResolvedEvent: "offload_resolved",
            ErrorEvent: "offload_error",
            SentEvent: "offload_sent",
        }[type(event)]
        self._call_observers(hook_name, event=event)

    @property
    def observed(self) -> bool:
        """Whether any plugin follows operations (``offload_started`` / ``offload_finished``)."""
        observed = self._observed
        if observed is None:
            observed = bool(
                self._implementations("offload_started")
                or self._implementations("offload_finished")
            )
            self._observed = observed
        return observed

    def listens(self, hook_name: str) -> bool:
        """Whether any plugin implements the observer hook ``hook_name`` (``offload_sent``)."""
        return bool(self._implementations(hook_name))

    def _implementations(self, hook_name: str) -> list[tuple[Any, tuple[str, ...], str]]:
        found = self._observers.get(hook_name)
        if found is None:
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            found = [(impl.function, tuple(impl.argnames), impl.plugin_name) for impl in impls]
            self._observers[hook_name] = found
        return found

    def started(self, operation: Operation) -> None:
        """Tell observers ``operation`` started; those that follow its end are remembered with
        it, so that an observer switched off meanwhile still closes what it opened."""
        operation.state[_FINISHERS] = self._implementations("offload_finished")
        self._call_observers("offload_started", operation=operation)

    def finished(self, operation: Operation) -> None:
        implementations = operation.state.pop(_FINISHERS, None)
        self._call_observers("offload_finished", implementations, operation=operation)

    def inject(self, operation: Operation) -> dict[str, str]:
        """The trace context observers want a message of ``operation`` to carry (often empty)."""
        carrier: dict[str, str] = {}
        if self.observed:
            self._call_observers("offload_inject", operation=operation, carrier=carrier)
        return carrier

    def _call_observers(
        self,
        hook_name: str,
        implementations: list[tuple[Any, tuple[str, ...], str]] | None = None,
        **args: object,
    ) -> None:
        if implementations is None:
            implementations = self._implementations(hook_name)
        for function, argnames, plugin_name in implementations:
            try:
                function(*[args[name] for name in argnames])
            except Exception:
                # The traceback as text: a live one would keep the caller's frames (and the
                # buffers they hold, mid-read) for as long as the log record lives.
                log.error("observer %s.%s failed\n%s", plugin_name, hook_name, format_exc())

    def add_commands(self, cli: click.Group) -> None:
        self.pm.hook.offload_register_commands(cli=cli)

    # -- introspection ---------------------------------------------------------------------

    def info(self) -> list[PluginInfo]:
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda pair: pair[0]):
            if plugin is None:
                continue
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
            dist, version = _name_and_version(self._dists.get(name))
            out.append(PluginInfo(name, dist, version, hooks))
        return out

    def describe(self) -> list[dict[str, object]]:
        """JSON-ready listing: each plugin with its distribution, hooks and what it registers."""
        by_plugin: dict[str, dict[str, list[dict[str, object]]]] = {}
        for entry in self.registry.entries():
            kinds = by_plugin.setdefault(entry.plugin, {})
            kinds.setdefault(entry.kind + "s", []).append(entry.describe())
        out = []
        for info in self.info():
            row: dict[str, object] = {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "hooks": list(info.hooks),
            }
            row.update(by_plugin.get(info.name, {}))
            out.append(row)
        return out


#: Where an operation keeps the observers that are to hear of its end.
_FINISHERS = "offload.finishers"


def _name_and_version(dist: Any) -> tuple[str | None, str | None]:
    if dist is None or isinstance(dist, tuple):
        return dist or (None, None)
    return dist.metadata["Name"], dist.version


_default: Plugins | None = None
_default_lock = threading.Lock()


def default_plugins() -> Plugins:
    """The process-wide plugins loaded from entry points, built on first call."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Plugins.from_entry_points()
        return _default


def set_default_plugins(plugins: Plugins | None) -> None:
    """Replace (or, with ``None``, forget) the process-wide plugins; for tests and embedding."""
    global _default
    with _default_lock:
        _default = plugins
