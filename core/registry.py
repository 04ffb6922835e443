"""Finds providers through the `paymux` entry-point group and loads them on demand.

Listing reads installed metadata only; asking for a provider imports that one plugin and no
other, so a broken or slow plugin never affects a host that does not use it. Plugins named in
`PAYMUX_BLOCK_PLUGINS` (comma-separated entry-point names) are never loaded: a way out when an
installed plugin breaks a host.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from paymux import hookspecs
from paymux._transport import Exchange
from paymux.config import Config, InstanceConfig, load_config
from paymux.errors import PluginLoadError, ProviderNotFound
from paymux.models import Notification, Payment, Payout, Refund
from paymux.provider import Provider

if TYPE_CHECKING:
    from paymux.guards import Verdict
    from paymux.sweeper import SweepReport

ENTRY_POINT_GROUP = "paymux"
ENV_BLOCK_PLUGINS = "PAYMUX_BLOCK_PLUGINS"


@dataclass(frozen=True)
class ProviderInfo:
    """An installed provider plugin, as its package metadata describes it."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    blocked: bool = False
    """Named in PAYMUX_BLOCK_PLUGINS: listed, never loaded."""


class Registry:
    """paymux's plugin manager: provider plugins plus the host's observer plugins."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager("paymux")
        self.plugin_manager.add_hookspecs(hookspecs)
        self._classes: dict[str, type[Provider]] = {}
        self._lock = threading.RLock()

    def installed(self) -> list[ProviderInfo]:
        """Every provider plugin installed, from metadata alone (nothing is imported)."""
        return [_info(point) for point in sorted(_entry_points(), key=lambda p: p.name)]

    def provider_class(self, name: str) -> type[Provider]:
        """The provider class registered under `name`, loading its plugin on first use."""
        with self._lock:
            if name not in self._classes:
                self._load_plugin(name)
            if name not in self._classes:
                raise PluginLoadError(
                    f"plugin {name!r} loaded but registered no provider named {name!r}",
                    plugin=name,
                    distribution=_info(_entry_point(name)).distribution,
                )
            return self._classes[name]

    def load_all(self) -> dict[str, PluginLoadError | None]:
        """Load every installed plugin; map each name to its load problem, or None if it loaded."""
        problems: dict[str, PluginLoadError | None] = {}
        for info in self.installed():
            if info.blocked:
                continue
            try:
                self.provider_class(info.name)
                problems[info.name] = None
            except PluginLoadError as problem:
                problems[info.name] = problem
        return problems

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module directly (observers, in-process providers)."""
        with self._lock:
            self._register(plugin, name, distribution=None)

    def unregister(self, plugin: object) -> None:
        """Remove a plugin registered with `register` (providers it registered stay known)."""
        with self._lock:
            if self.plugin_manager.is_registered(plugin):
                self.plugin_manager.unregister(plugin)

    def publish_exchange(self, exchange: Exchange) -> None:
        _dispatch(self.plugin_manager.hook.paymux_exchange, exchange=exchange)

    def publish_payment(self, payment: Payment, source: str) -> None:
        _dispatch(self.plugin_manager.hook.paymux_payment_update, payment=payment, source=source)

    def publish_refund(self, refund: Refund, source: str) -> None:
        _dispatch(self.plugin_manager.hook.paymux_refund_update, refund=refund, source=source)

    def publish_payout(self, payout: Payout, source: str) -> None:
        _dispatch(self.plugin_manager.hook.paymux_payout_update, payout=payout, source=source)

    def publish_verdict(self, notification: Notification, verdict: Verdict) -> None:
        _dispatch(
            self.plugin_manager.hook.paymux_notification_verdict,
            notification=notification,
            verdict=verdict,
        )

    def publish_sweep(self, provider: str, instance: str, report: SweepReport) -> None:
        _dispatch(
            self.plugin_manager.hook.paymux_sweep,
            provider=provider,
            instance=instance,
            report=report,
        )

    def connect(self, instance: InstanceConfig) -> Provider:
        """A ready provider for one configured instance, reporting to this registry's observers."""
        cls = self.provider_class(instance.provider)
        return cls.from_settings(
            {key: value for key, value in instance.settings.items() if key != "name"},
            instance=instance.name,
            base_dir=instance.base_dir,
            observers=self,
        )

    def _load_plugin(self, name: str) -> None:
        point = _entry_point(name)
        distribution = _info(point).distribution
        if name in blocked_plugins():
            raise ProviderNotFound(
                f"provider {name!r} is installed but blocked by {ENV_BLOCK_PLUGINS}"
            )
        try:
            plugin = point.load()
        except Exception as error:
            raise PluginLoadError(
                f"plugin {name!r} (distribution {distribution or 'unknown'}) failed to import: "
                f"{type(error).__name__}: {error}",
                plugin=name,
                distribution=distribution,
            ) from error
        self._register(plugin, name, distribution)

    def _register(self, plugin: object, name: str | None, distribution: str | None) -> None:
        label = name or str(getattr(plugin, "__name__", repr(plugin)))
        try:
            if not self.plugin_manager.is_registered(plugin):
                self.plugin_manager.register(plugin, name=name)
            self.plugin_manager.check_pending()
            self._collect(plugin)
        except Exception as error:
            if self.plugin_manager.is_registered(plugin):
                self.plugin_manager.unregister(plugin)
            raise PluginLoadError(
                f"plugin {label!r} (distribution {distribution or 'unknown'}) failed to register: "
                f"{type(error).__name__}: {error}",
                plugin=label,
                distribution=distribution,
            ) from error

    def _collect(self, plugin: object) -> None:
        caller = self.plugin_manager.subset_hook_caller(
            "paymux_register_providers",
            remove_plugins=[p for p in self.plugin_manager.get_plugins() if p is not plugin],
        )
        caller(register=self._add_class)

    def _add_class(self, cls: type[Provider]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise TypeError(f"{cls!r} is not a paymux Provider subclass")
        self._classes[cls.name] = cls


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _entry_point(name: str) -> EntryPoint:
    matches = [point for point in _entry_points() if point.name == name]
    if not matches:
        installed = ", ".join(sorted(p.name for p in _entry_points())) or "none"
        raise ProviderNotFound(f"no provider named {name!r} is installed (installed: {installed})")
    if len(matches) > 1:
        owners = ", ".join(sorted(str(_info(p).distribution) for p in matches))
        raise PluginLoadError(
            f"provider {name!r} is installed by more than one distribution: {owners}",
            plugin=name,
            distribution=None,
        )
    return matches[0]


def _info(point: EntryPoint) -> ProviderInfo:
    dist = point.dist
    return ProviderInfo(
        name=point.name,
        module=point.value,
        distribution=dist.name if dist is not None else None,
        version=dist.version if dist is not None else None,
        blocked=point.name in blocked_plugins(),
    )


def blocked_plugins() -> frozenset[str]:
    """The plugin names `PAYMUX_BLOCK_PLUGINS` lists."""
    listed = os.environ.get(ENV_BLOCK_PLUGINS, "")
    return frozenset(name.strip() for name in listed.split(",") if name.strip())


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry `paymux.connect` uses, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry()
        return _default


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a host's hook implementations (or an in-process provider plugin)."""
    default_registry().register(plugin, name)


def unregister_plugin(plugin: object) -> None:
    """Remove a plugin registered with `register_plugin`."""
    default_registry().unregister(plugin)


def connect(
    target: str | Mapping[str, Any] | None = None, *, config: Config | None = None
) -> Provider:
    """A ready provider: from one instance's settings, or by instance name from configuration.

        paymux.connect({"provider": "mygateway", "merchant": ..., "key_file": ...})
        paymux.connect("shop")     # from $PAYMUX_CONFIG and PAYMUX__SHOP__* variables
        paymux.connect()           # the default (or only) configured instance

    Only the named provider's plugin is imported.
    """
    if isinstance(target, Mapping):
        instance = InstanceConfig.from_mapping(str(target.get("name", "default")), target)
    else:
        instance = (config if config is not None else load_config()).instance(target)
    del target  # the host's settings may hold a plain password: out of this frame's locals
    return default_registry().connect(instance)


def _dispatch(hook: pluggy.HookCaller, **arguments: object) -> None:
    """Call `hook` when some plugin implements it: publishing happens on every call, and most
    hosts observe nothing."""
    if hook.get_hookimpls():
        hook(**arguments)
