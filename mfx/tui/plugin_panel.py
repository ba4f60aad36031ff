"""The Plugins view's behaviour: rows from the PluginManifest watch, a detail pane (conditions,
recent events, a followed log tail), and restart / suspend with the CLI's own patches."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from textual.widgets import RichLog, Static

from mfx.errors import MfxError
from mfx.tui.client import EVENTS, PLUGINS
from mfx.tui.text import PluginRow
from mfx.tui.views import Listing

if TYPE_CHECKING:
    from mfx.tui.app import MfxTui

RESTARTED_AT = "mfx.musicfox.io/restartedAt"
COLUMNS = ("Name", "Type", "Ready", "Healthy", "Restarts", "Suspended")
EVENTS_SHOWN = 8
LOG_TAIL = "20"


def restart_patch(now: datetime | None = None) -> dict[str, Any]:
    """What ``mfx rollout restart pm/NAME`` sends: a new restartedAt stamp."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"annotations": {RESTARTED_AT: stamp}}}


def conditions_text(obj: dict[str, Any]) -> str:
    lines = [f"[b]{obj.get('metadata', {}).get('name', '')}[/b]  conditions:"]
    for item in (obj.get("status") or {}).get("conditions") or []:
        lines.append(f"  {item.get('type', ''):<18} {item.get('status', ''):<7} {item.get('reason', ''):<22} "
                     f"{item.get('message', '')}")
    return "\n".join(lines)


def events_text(events: list[dict[str, Any]]) -> str:
    lines = [f"  {e.get('lastTimestamp') or e.get('eventTime') or ''} {e.get('type', ''):<8} "
             f"{e.get('reason', ''):<18} {e.get('message', '')}" for e in events[-EVENTS_SHOWN:]]
    return "recent events:\n" + ("\n".join(lines) or "  none")


class PluginPanel:
    def __init__(self, app: MfxTui) -> None:
        self.app = app
        self.names: list[str] = []
        self.open_name: str | None = None

    @property
    def view(self) -> Any:
        return self.app.query_one("#plugins")

    def refresh_rows(self) -> None:
        objects = self.app.plugins.objects
        self.names = sorted(objects)
        rows = [PluginRow.of(objects[name]).cells() for name in self.names]
        self.app.query_one("#plugin-list", Listing).show(COLUMNS, rows)
        if self.open_name in objects:
            self.app.query_one("#plugin-conditions", Static).update(conditions_text(objects[self.open_name]))

    def selected(self) -> str | None:
        row = self.app.query_one("#plugin-list", Listing).cursor_row
        return self.names[row] if 0 <= row < len(self.names) else None

    def open_detail(self, row: int) -> None:
        if not 0 <= row < len(self.names):
            return
        self.open_name = self.names[row]
        self.app.query_one("#plugin-detail").display = True
        self.app.query_one("#plugin-conditions", Static).update(
            conditions_text(self.app.plugins.objects[self.open_name]))
        self.app.query_one("#plugin-events", Static).update("events: loading…")
        log = self.app.query_one("#plugin-log", RichLog)
        log.clear()
        self.app.run_worker(partial(self._follow, self.open_name), group="detail", exclusive=True)  # type: ignore[arg-type]

    def close_detail(self) -> bool:
        if self.open_name is None:
            return False
        self.open_name = None
        self.app.query_one("#plugin-detail").display = False
        self.app.workers.cancel_group(self.app, "detail")
        return True

    async def _follow(self, name: str) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._events, name)
            group.start_soon(self._log, name)

    async def _events(self, name: str) -> None:
        """The plugin's recent events: a list, then the watch's new ones."""
        shown = self.app.query_one("#plugin-events", Static)
        selector = f"involvedObject.name={name}"
        try:
            answer = await self.app.client.get(EVENTS, fieldSelector=selector) or {}
            recent = list(answer.get("items") or [])
            shown.update(events_text(recent))
            version = str((answer.get("metadata") or {}).get("resourceVersion", ""))
            async for event in self.app.client.lines(EVENTS, {"watch": "true", "fieldSelector": selector,
                                                             "resourceVersion": version}):
                if event.get("type") in ("ADDED", "MODIFIED"):
                    recent.append(event.get("object") or {})
                    shown.update(events_text(recent))
        except MfxError as error:
            shown.update(f"events: {error}")

    async def _log(self, name: str) -> None:
        log = self.app.query_one("#plugin-log", RichLog)
        try:
            async for record in self.app.client.lines(f"{PLUGINS}/{name}/log",
                                                      {"follow": "true", "tailLines": LOG_TAIL}):
                log.write(f"{record.get('time', '')} {str(record.get('level', '')).upper():<7} "
                          f"{record.get('message', '')}")
        except MfxError as error:
            log.write(f"log: {error}")

    async def restart(self) -> None:
        name = self.selected()
        if name is None:
            return
        try:
            await self.app.client.patch_plugin(name, restart_patch())
            self.app.say(f"{name}: restart requested")
        except MfxError as error:
            self.app.say(f"restart {name}: {error}")

    async def toggle_suspend(self) -> None:
        name = self.selected()
        if name is None:
            return
        suspended = bool((self.app.plugins.objects.get(name, {}).get("spec") or {}).get("suspend"))
        try:
            await self.app.client.patch_plugin(name, {"spec": {"suspend": not suspended}})
            self.app.say(f"{name}: {'resumed' if suspended else 'suspended'}")
        except MfxError as error:
            self.app.say(f"{'resume' if suspended else 'suspend'} {name}: {error}")
