"""The files every new plugin folder has: a ``plugin.yaml`` and a README with the next commands."""

from __future__ import annotations

import textwrap

from mfx.cli.scaffold_names import VERSION, Names


def manifest_yaml(names: Names, *, type_: str, entry_point: str, description: str, interfaces: str,
              config: str, config_schema: str, limits: str, security: str = "",
              health: str = "{interval: 10s, timeout: 2s, failureThreshold: 3}") -> str:
    security_block = f"  security:\n{textwrap.indent(security, '    ')}" if security else ""
    config_block = f"  config:\n{textwrap.indent(config, '    ')}" if config else "  config: {}\n"
    return f"""\
apiVersion: mfx.musicfox.io/v1alpha1
kind: PluginManifest
metadata:
  name: {names.plugin}
spec:
  version: {VERSION}
  type: {type_}
  entryPoint: {entry_point}
  description: {description}
  interfaces: [{interfaces}]
{config_block}  configSchema:
{textwrap.indent(config_schema, '    ')}  resources:
    limits: {limits}
{security_block}  healthCheck: {health}
  restartPolicy:
    policy: Always
    backoff: {{initial: 1s, max: 5m}}
"""


def readme(names: Names, type_: str, what: str, build: str = "", edit: str = "") -> str:
    parent = names.parent
    return f"""\
# {names.plugin}

{what}

Made by `mfx plugin init {names.plugin} --type {type_}`. The manifest is `plugin.yaml`
(`mfx explain pm.spec` describes every field).
{build}
## Run it

With the daemon looking for plugins in the folder that holds this one ({parent}):

```sh
mfx serve --plugin-path {parent} &
mfx apply -f {parent}/{names.plugin}/plugin.yaml
mfx wait --for=condition=Ready pm/{names.plugin} --timeout=60s
mfx describe pm {names.plugin}
```
{edit}
## Package, sign and install it

Keep the private key outside the plugin folder (everything in the folder is packed):

```sh
mfx plugin keygen ~/.config/mfx/signing.key ~/.config/mfx/signing.pub
mfx trust add me ~/.config/mfx/signing.pub         # once per daemon
mfx plugin pack {parent}/{names.plugin} --key ~/.config/mfx/signing.key
mfx plugin verify {names.plugin}-{VERSION}.tgz
mfx plugin install {names.plugin}-{VERSION}.tgz
```

Release a new build under a new `spec.version`; `mfx rollback pm/{names.plugin}` goes back to
the version before.
"""
