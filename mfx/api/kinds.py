"""The kinds mfx serves, and how users may name them (kubectl's resource names)."""

from __future__ import annotations

from collections import namedtuple

from mfx.errors import BadRequestError

TYPE_CHECKING = False  # not typing's: see mfx.errors
if TYPE_CHECKING:
    from typing import NamedTuple

GROUP = "mfx.musicfox.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


if TYPE_CHECKING:
    class _KindInfoFields(NamedTuple):
        kind: str  # PluginManifest
        plural: str  # pluginmanifests
        singular: str  # pluginmanifest
        short_names: tuple[str, ...]  # ("pm",)
        group: str = GROUP
        version: str = VERSION
        namespaced: bool = False
        categories: tuple[str, ...] = ("all", "mfx")
else:  # the same record, without importing typing
    _KindInfoFields = namedtuple("KindInfo", "kind plural singular short_names group version namespaced categories",
                                 defaults=(GROUP, VERSION, False, ("all", "mfx")))


class KindInfo(_KindInfoFields):  # a record every CLI command loads: see mfx.errors.FieldError
    __slots__ = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def typed(self) -> str:
        """What a user types for the kind: its first short name (pm), else its plural."""
        return self.short_names[0] if self.short_names else self.plural

    @property
    def resource_path(self) -> str:
        """Collection path of the HTTP API, Kubernetes style."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/{self.plural}"

    def names(self) -> tuple[str, ...]:
        return (self.kind.lower(), self.plural, self.singular, *self.short_names)


PLUGIN_MANIFEST = KindInfo("PluginManifest", "pluginmanifests", "pluginmanifest", ("pm", "plugin", "plugins"))
AUDIO_SINK = KindInfo("AudioSink", "audiosinks", "audiosink", ("sink", "sinks"))
GIT_SOURCE = KindInfo("GitSource", "gitsources", "gitsource", ("gs",))
# The fleet's own bookkeeping: not in the "all" category, as kubectl leaves nodes and leases
# out of ``get all``.
NODE = KindInfo("Node", "nodes", "node", ("no",), categories=("mfx",))
LEASE = KindInfo("Lease", "leases", "lease", (), categories=("mfx",))

# Kubernetes-style Events live in the core group, as kubectl expects to find them.
EVENT = KindInfo("Event", "events", "event", ("ev",), group="", version="v1", categories=())

USER_KINDS: tuple[KindInfo, ...] = (PLUGIN_MANIFEST, AUDIO_SINK, GIT_SOURCE, NODE, LEASE)
ALL_KINDS: tuple[KindInfo, ...] = (*USER_KINDS, EVENT)


def in_category(category: str) -> tuple[KindInfo, ...]:
    """The user kinds in ``category`` (``all``: what ``mfx get all`` lists)."""
    return tuple(info for info in USER_KINDS if category in info.categories)


def resolve_kind(name: str, *, kinds: tuple[KindInfo, ...] = ALL_KINDS) -> KindInfo:
    """Find a kind by any name a kubectl user would type (case-insensitive).

    Accepts the kind, plural, singular and short names, optionally qualified with the group
    (``pluginmanifests.mfx.musicfox.io``).
    """
    wanted = name.strip().lower()
    for info in kinds:
        if info.group and wanted.endswith("." + info.group):
            bare = wanted[: -len(info.group) - 1]
        else:
            bare = wanted
        if bare in info.names():
            return info
    known = ", ".join(f"{k.kind} ({', '.join((k.plural, '/'.join(k.short_names)) if k.short_names else (k.plural,))})"
                      for k in kinds)
    raise BadRequestError(f'unknown kind "{name}"; known kinds: {known}', reason="UnknownKind")


def kind_for(api_version: str, kind: str) -> KindInfo:
    """The KindInfo of an object's apiVersion and kind, or a clear error naming the known kinds."""
    for info in ALL_KINDS:
        if info.kind == kind and info.api_version == api_version:
            return info
    for info in ALL_KINDS:
        if info.kind == kind:
            raise BadRequestError(
                f'kind {kind} is served as apiVersion "{info.api_version}", not "{api_version}"',
                reason="UnknownKind",
            )
    known = ", ".join(k.kind for k in USER_KINDS)
    raise BadRequestError(f'unknown kind "{kind}"; known kinds: {known}', reason="UnknownKind")
