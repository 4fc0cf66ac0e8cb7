"""The asset factory: the same graph once per listener of listeners.yaml, or once as today without it.

Each module of defs/ declares its assets and checks as templates (`listener_asset`, `listener_check`)
and builds them with `per_listener`. For the one listener of a project without listeners.yaml a
template builds exactly what a plain `@dg.asset` would: the keys, groups, pool, partitions and job
names users rely on. For a household listener `alice` it builds `alice/history` in group
`alice_history`, writing under `<data root>/listeners/alice/` in its own writer pool, with its own
`alice__ingestions` partitions: the bodies are the same functions, handed the listener's own
`store`, `listening_source` and `website` resources.

Per-listener jobs (`alice__update`, `alice__full_retrain`) rather than one job per kind with the
listener as a tag: a job has one partitions definition, and each listener's `update` runs over its
own `ingestions` partitions; runs carry the `spotify_brain/listener` tag all the same, for the queue.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

import dagster as dg

from ..listeners.config import ListenerSettings, load_listeners
from .common import INGESTION_PARTITIONS, WRITER_POOL, WRITER_RUN_TAGS

LISTENER_TAG = "spotify_brain/listener"
REPO_ROOT = Path(__file__).resolve().parents[2]


def scoped(listener: str | None, name: str) -> str:
    """A job, schedule, sensor or partitions name of a listener (`alice__update`); as is for the one listener."""
    return f"{listener}__{name}" if listener else name


@dataclass(frozen=True)
class Listener:
    """Whose graph a definition belongs to; `settings` is None for the one listener without listeners.yaml."""

    settings: ListenerSettings | None = None

    @property
    def name(self) -> str | None:
        return self.settings.name if self.settings else None

    def key(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, asset]) if self.name else dg.AssetKey(asset)

    def group(self, layer: str) -> str:
        return f"{self.name}_{layer}" if self.name else layer

    def job(self, kind: str) -> str:
        return scoped(self.name, kind)

    @property
    def pool(self) -> str:
        return f"{WRITER_POOL}__{self.name}" if self.name else WRITER_POOL

    @cached_property
    def partitions(self) -> dg.DynamicPartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=self.job(INGESTION_PARTITIONS.name)) if self.name else INGESTION_PARTITIONS

    @property
    def run_tags(self) -> dict[str, str]:
        """The queue runs one run per tag value at a time: one writer per data root, one run per listener."""
        return {LISTENER_TAG: self.name, "spotify_brain/writes": self.name} if self.name else dict(WRITER_RUN_TAGS)

    def run_key(self, key: str) -> str:
        return f"{self.name}:{key}" if self.name else key

    def bind(self, fn: Callable) -> Callable:
        """`fn` handed this listener's resources in place of the deployment's (nothing changes for one listener)."""
        if self.settings is None:
            return fn
        settings = self.settings

        def rebind(kwargs: dict) -> dict:
            if "store" in kwargs:
                kwargs["store"] = kwargs["store"].for_listener(settings)
            if "listening_source" in kwargs:
                kwargs["listening_source"] = kwargs["listening_source"].for_listener(settings)
            if "website" in kwargs:
                from .reporting.dashboard import website_for_listener

                kwargs["website"] = website_for_listener(settings)
            return kwargs

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator(*args, **kwargs):
                yield from fn(*args, **rebind(kwargs))

            return generator

        @functools.wraps(fn)
        def function(*args, **kwargs):
            return fn(*args, **rebind(kwargs))

        return function


def household(repo_root: Path = REPO_ROOT) -> list[Listener]:
    """Every listener the definitions serve: those of listeners.yaml, or the one listener."""
    settings = load_listeners(repo_root)
    return [Listener(s) for s in settings] if settings else [Listener()]


def several(listeners: list[Listener]) -> bool:
    """A household of listeners.yaml, rather than the one listener."""
    return listeners[0].name is not None


def listener_of(key: dg.AssetKey) -> str | None:
    """The listener an asset key belongs to (None: the one listener)."""
    return key.path[0] if len(key.path) > 1 else None


def sibling(key: dg.AssetKey, asset: str) -> dg.AssetKey:
    """The key of `asset` in the same listener's graph as `key`."""
    return dg.AssetKey([*key.path[:-1], asset])


def ingestion_partitions_name(key: dg.AssetKey) -> str:
    return scoped(listener_of(key), INGESTION_PARTITIONS.name)


def _name(dep: Any) -> str:
    return dep if isinstance(dep, str) else dep.name


def _check_spec(listener: Listener, spec: dg.AssetCheckSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        spec.name, asset=listener.key(spec.asset_key.path[-1]), description=spec.description, blocking=spec.blocking
    )


class Template:
    """Built per listener by `per_listener`; `solo` is the one listener's definition (tests invoke it)."""

    @cached_property
    def solo(self):
        return self.build(Listener())

    def __call__(self, *args, **kwargs):
        return self.solo(*args, **kwargs)


@dataclass(eq=False)
class AssetTemplate(Template):
    fn: Callable
    group_name: str
    deps: Iterable[Any] = ()
    writes: bool = True  # in the listener's writer pool
    partitioned: bool = False  # by the listener's ingestion slots
    check_specs: list[dg.AssetCheckSpec] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # any other @dg.asset argument

    @property
    def name(self) -> str:
        return self.fn.__name__

    def build(self, listener: Listener) -> dg.AssetsDefinition:
        return dg.asset(
            key=listener.key(self.name),
            deps=[listener.key(_name(d)) for d in self.deps],
            group_name=listener.group(self.group_name),
            pool=listener.pool if self.writes else None,
            partitions_def=listener.partitions if self.partitioned else None,
            check_specs=[_check_spec(listener, s) for s in self.check_specs] or None,
            **self.options,
        )(listener.bind(self.fn))


@dataclass(eq=False)
class CheckTemplate(Template):
    fn: Callable
    asset: Any
    options: dict[str, Any] = field(default_factory=dict)  # name, blocking, description

    def build(self, listener: Listener) -> dg.AssetChecksDefinition:
        return dg.asset_check(asset=listener.key(_name(self.asset)), **self.options)(listener.bind(self.fn))


@dataclass(eq=False)
class MultiCheckTemplate(Template):
    fn: Callable
    specs: list[dg.AssetCheckSpec]

    def build(self, listener: Listener) -> dg.AssetChecksDefinition:
        return dg.multi_asset_check(
            specs=[_check_spec(listener, s) for s in self.specs], name=listener.job(self.fn.__name__)
        )(listener.bind(self.fn))


def listener_asset(
    *, group_name: str, deps: Iterable[Any] = (), writes: bool = True, partitioned: bool = False,
    check_specs: list[dg.AssetCheckSpec] | None = None, **options: Any,
) -> Callable[[Callable], AssetTemplate]:
    """`@dg.asset`, built once per listener by `per_listener`; `deps` name assets of the same listener."""
    return lambda fn: AssetTemplate(fn, group_name, list(deps), writes, partitioned, list(check_specs or []), options)


def listener_check(*, asset: Any, **options: Any) -> Callable[[Callable], CheckTemplate]:
    return lambda fn: CheckTemplate(fn, asset, options)


def listener_multi_check(*, specs: list[dg.AssetCheckSpec]) -> Callable[[Callable], MultiCheckTemplate]:
    return lambda fn: MultiCheckTemplate(fn, specs)


def per_listener(*templates: Any, extra: Callable[[Listener], dg.Definitions] | None = None) -> dg.Definitions:
    """The templates built for every listener, plus what `extra` builds per listener (jobs, sensors)."""
    listeners = household()
    built = [t.build(listener) for listener in listeners for t in templates]
    return dg.Definitions.merge(
        dg.Definitions(
            assets=[b for b in built if not isinstance(b, dg.AssetChecksDefinition)],
            asset_checks=[b for b in built if isinstance(b, dg.AssetChecksDefinition)],
        ),
        *([extra(listener) for listener in listeners] if extra else []),
    )
