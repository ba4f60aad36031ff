"""The names a new plugin's files use, made from the plugin name the user gave."""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass

from mfx.errors import BadRequestError

TYPES = ("rpc", "webassembly", "dynamic_library", "hot_reload")
VERSION = "0.1.0"


@dataclass(frozen=True)
class Names:
    plugin: str  # my-gain
    package: str  # my_gain: the Python package, or the .wat/.wasm file stem
    cls: str  # MyGainProcessor
    parent: str  # the folder holding the plugin's folder, as the user named it

    @classmethod
    def of(cls, name: str, suffix: str, parent: str = "DIR") -> Names:
        # Validation loads jsonschema: only `mfx plugin init` needs this pattern from it.
        from mfx.api.validation import DNS1123_LABEL

        if len(name) > 63 or not DNS1123_LABEL.match(name):
            raise BadRequestError(
                f'"{name}" is not a valid plugin name: use lowercase letters, digits and "-", starting '
                "and ending with a letter or digit, at most 63 characters (e.g. my-gain)")
        package = name.replace("-", "_")
        if package[0].isdigit():
            package = "plugin_" + package
        # A package named like a standard module (or mfx) would shadow it in the plugin's process.
        if package in sys.stdlib_module_names or keyword.iskeyword(package) or package == "mfx":
            package += "_plugin"
        words = re.split(r"[-_]", name)
        camel = "".join(w[:1].upper() + w[1:] for w in words if w)
        if camel[0].isdigit():
            camel = "Plugin" + camel
        return cls(plugin=name, package=package, cls=camel + suffix, parent=parent)
