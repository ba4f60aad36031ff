"""In-process Python plugins: loading, isolation of versions, calls, limits and errors."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import textwrap
import threading
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import psutil
import pytest

from mfx.errors import (
    ChecksumMismatchError,
    EntryPointNotFoundError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    PluginTimeoutError,
)
from mfx.runtimes.base import (
    Limits,
    LoadRequest,
    PluginLogRecord,
    PluginType,
    QuickHealth,
    StartStep,
)
from mfx.runtimes.python_module import (
    PluginFinder,
    PythonEntryPoint,
    PythonModuleInstance,
    PythonModuleRuntime,
)
from mfx.runtimes.python_start import StartChain

REPO = Path(__file__).resolve().parent.parent
HELLO_DIR = REPO / "plugins" / "hello-python"
TESTKIT_DIR = Path(__file__).resolve().parent / "plugins"

pytestmark = pytest.mark.anyio


def request(plugin_dir: Path, entry: str, tmp_path: Path, **kw: Any) -> LoadRequest:
    return LoadRequest(name=kw.pop("name", "p"), version="1.0.0", type=PluginType.DYNAMIC_LIBRARY,
                       entry_point=entry, plugin_dir=plugin_dir, state_dir=tmp_path, **kw)


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


TOOLBOX = {
    "toolbox/__init__.py": "",
    "toolbox/plugin.py": """
        import threading
        import anyio
        from mfx.sdk.plugin import Plugin

        class Toolbox(Plugin):
            def __init__(self):
                super().__init__()
                self.active = 0
                self.peak = 0

            def fail(self, message):
                raise ValueError(message)

            def wait_for(self, event: threading.Event):
                event.wait()
                return "released"

            async def gate(self, gate: anyio.Event, entered: list):
                self.active += 1
                self.peak = max(self.peak, self.active)
                entered.append(1)
                await gate.wait()
                self.active -= 1

            def add(self, a, b=0):
                return a + b

            def health(self):
                return self.config.get("healthy", True)

            def _secret(self):
                return "hidden"
        """,
}


async def test_hello_python_greets_and_takes_a_new_config(tmp_path: Path) -> None:
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(HELLO_DIR, "python:hello_python.plugin:HelloPlugin", tmp_path))
        await instance.initialize({"greeting": "Hello"})
        await instance.start()
        await instance.health()
        assert await instance.call("greet", {"name": "Ada"}) == "Hello, Ada!"
        await instance.update_config({"greeting": "Hi"})
        assert await instance.call("greet", ["Bob"]) == "Hi, Bob!"
        assert await instance.call("greeted") == 2
        module = instance.details["module"]
        assert module in sys.modules and "hello_python" not in sys.modules
        await instance.stop()
        await instance.cleanup()
        assert module not in sys.modules
    assert not list(HELLO_DIR.rglob("__pycache__")), "the runtime must not write bytecode into plugin dirs"


async def test_two_versions_of_one_package_run_side_by_side(tmp_path: Path) -> None:
    for version in ("v1", "v2"):
        write_package(tmp_path / version, {
            "twin/__init__.py": "",
            "twin/common.py": f"VERSION = {version!r}\n",
            "twin/plugin.py": "from .common import VERSION\nclass Twin:\n    def version(self):\n        return VERSION\n",
        })
    async with PythonModuleRuntime() as runtime:
        one = await runtime.load(request(tmp_path / "v1", "python:twin.plugin:Twin", tmp_path))
        two = await runtime.load(request(tmp_path / "v2", "python:twin.plugin:Twin", tmp_path))
        assert (await one.call("version"), await two.call("version")) == ("v1", "v2")
        root = one.details["module"].split(".")[0]
        await one.cleanup()
        assert not [m for m in sys.modules if m == root or m.startswith(root + ".")]
        assert await two.call("version") == "v2"
        with pytest.raises(PluginRuntimeError, match="unloaded"):
            await one.call("version")


async def test_plugin_dirs_linking_one_package_compile_it_once_and_tracebacks_name_the_real_file(
        tmp_path: Path) -> None:
    package = write_package(tmp_path / "installed", TOOLBOX)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "toolbox").symlink_to(package / "toolbox")
    async with PythonModuleRuntime() as runtime:
        one = await runtime.load(request(tmp_path / "a", "python:toolbox.plugin:Toolbox", tmp_path, name="a"))
        assert runtime.codes.compiles == 2  # toolbox/__init__.py and toolbox/plugin.py
        two = await runtime.load(request(tmp_path / "b", "python:toolbox.plugin:Toolbox", tmp_path, name="b"))
        assert runtime.codes.compiles == 2, "a second directory linking the same files compiles nothing"
        with pytest.raises(PluginRuntimeError) as caught:
            await two.call("fail", ["boom"])
        await one.cleanup()
        await two.cleanup()
    tb = caught.value.plugin_traceback  # type: ignore[attr-defined]
    assert str(package / "toolbox" / "plugin.py") in tb, tb


async def test_an_edit_that_keeps_the_size_and_mtime_is_compiled_again(tmp_path: Path) -> None:
    write_package(tmp_path, {"edited/__init__.py": "", "edited/plugin.py": "class P:\n    def answer(self):\n        return 'one'\n"})
    module = tmp_path / "edited" / "plugin.py"
    stamp = module.stat()
    async with PythonModuleRuntime() as runtime:
        first = await runtime.load(request(tmp_path, "python:edited.plugin:P", tmp_path))
        assert await first.call("answer") == "one"
        module.write_text(module.read_text().replace("one", "two"))  # same length
        os.utime(module, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        assert module.stat().st_size == stamp.st_size and module.stat().st_mtime_ns == stamp.st_mtime_ns
        second = await runtime.load(request(tmp_path, "python:edited.plugin:P", tmp_path))
        assert await second.call("answer") == "two"
        await first.cleanup()
        await second.cleanup()


async def test_a_missing_module_names_the_paths_searched(tmp_path: Path) -> None:
    async with PythonModuleRuntime() as runtime:
        with pytest.raises(EntryPointNotFoundError) as caught:
            await runtime.load(request(tmp_path, "python:nopkg.plugin:Nope", tmp_path))
    assert str(tmp_path / "nopkg" / "plugin.py") in str(caught.value)
    assert caught.value.retryable is False


async def test_a_missing_class_names_the_module_file(tmp_path: Path) -> None:
    write_package(tmp_path, TOOLBOX)
    async with PythonModuleRuntime() as runtime:
        with pytest.raises(EntryPointNotFoundError, match=r"plugin\.py defines no 'Missing'"):
            await runtime.load(request(tmp_path, "python:toolbox.plugin:Missing", tmp_path))


@pytest.mark.parametrize("entry", ["python:", "python:pkg.mod", "python:pkg-x.mod:C", "python:pkg.mod:C:D"])
async def test_a_malformed_entry_point_says_what_is_expected(tmp_path: Path, entry: str) -> None:
    async with PythonModuleRuntime() as runtime:
        with pytest.raises(EntryPointNotFoundError, match=r"spec\.entryPoint: expected 'python:package\.module:Class'"):
            await runtime.load(request(tmp_path, entry, tmp_path))


async def test_a_syntax_error_is_a_load_error_and_leaves_nothing_imported(tmp_path: Path) -> None:
    write_package(tmp_path, {"broken/__init__.py": "", "broken/plugin.py": "class Broken(:\n"})
    before = set(sys.modules)
    async with PythonModuleRuntime() as runtime:
        with pytest.raises(PluginLoadError, match="SyntaxError") as caught:
            await runtime.load(request(tmp_path, "python:broken.plugin:Broken", tmp_path))
    assert "plugin.py" in caught.value.plugin_traceback  # type: ignore[attr-defined]
    assert {m for m in set(sys.modules) - before if m.startswith("_mfx_")} == set()


async def test_plugin_exceptions_keep_the_plugins_traceback(tmp_path: Path) -> None:
    write_package(tmp_path, TOOLBOX)
    logs: list[PluginLogRecord] = []
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path, log=logs.append))
        with pytest.raises(PluginRuntimeError, match="fail\\(\\) raised ValueError: boom") as caught:
            await instance.call("fail", ["boom"])
    tb = caught.value.plugin_traceback  # type: ignore[attr-defined]
    assert str(tmp_path / "toolbox" / "plugin.py") in tb and "raise ValueError(message)" in tb
    assert logs and logs[-1].fields["traceback"] == tb


async def test_an_exception_in_initialize_is_an_init_error(tmp_path: Path) -> None:
    write_package(tmp_path, {"bad/__init__.py": "", "bad/plugin.py": """
        class Bad:
            def initialize(self, config):
                raise RuntimeError("refusing " + config["x"])
        """})
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:bad.plugin:Bad", tmp_path))
        with pytest.raises(PluginInitError, match="refusing this"):
            await instance.initialize({"x": "this"})


START_STEPS = {"steps/__init__.py": "", "steps/plugin.py": """
    import threading
    import time

    class Sync:
        def initialize(self, config):
            if config.get("refuse"):
                raise RuntimeError("refusing " + config["refuse"])
            self.config = config
            self.threads = [threading.get_ident()]

        def start(self):
            self.threads.append(threading.get_ident())
            time.sleep(self.config.get("startFor", 0))

        def health(self):
            self.threads.append(threading.get_ident())
            return self.config.get("healthy", True)

    class AsyncStart(Sync):
        async def start(self):
            self.threads.append(threading.get_ident())

    class Hangs(Sync):
        def start(self):
            self.threads.append(threading.get_ident())
            self.release = threading.Event()
            try:
                import steps_signal  # a test that must know when start() waits puts it in sys.modules
            except ImportError:
                pass
            else:
                steps_signal.started.set()
            self.release.wait(30)

        def stop(self):
            self.threads.append("stopped")

    class NoHooks:
        pass
    """}


async def test_load_started_runs_every_synchronous_step_on_one_worker_thread(tmp_path: Path) -> None:
    write_package(tmp_path, START_STEPS)
    async with PythonModuleRuntime() as runtime:
        done = await runtime.load_started(request(tmp_path, "python:steps.plugin:Sync", tmp_path, config={"a": 1}),
                                          until=StartStep.CHECKED, health_seconds=5.0)
        assert done.reached is StartStep.CHECKED and done.error is None
        assert isinstance(done.instance, PythonModuleInstance)
        plugin = done.instance.plugin
        assert plugin.config == {"a": 1}
        assert len(set(plugin.threads)) == 1, "initialize, start and health share one hop"
        assert plugin.threads[0] != threading.get_ident(), "and it is not the event loop's thread"
        assert done.health_seconds >= 0
        await done.instance.cleanup()

        partly = await runtime.load_started(request(tmp_path, "python:steps.plugin:Sync", tmp_path, name="q"),
                                            until=StartStep.INITIALIZED, health_seconds=5.0)
        assert partly.reached is StartStep.INITIALIZED and len(partly.instance.plugin.threads) == 1
        await partly.instance.cleanup()

        bare = await runtime.load_started(request(tmp_path, "python:steps.plugin:NoHooks", tmp_path, name="r"),
                                          until=StartStep.CHECKED, health_seconds=5.0)
        assert bare.reached is StartStep.CHECKED and bare.error is None, "hooks are optional"
        await bare.instance.cleanup()


async def test_load_started_leaves_an_async_hook_to_the_caller(tmp_path: Path) -> None:
    write_package(tmp_path, START_STEPS)
    async with PythonModuleRuntime() as runtime:
        done = await runtime.load_started(request(tmp_path, "python:steps.plugin:AsyncStart", tmp_path),
                                          until=StartStep.CHECKED, health_seconds=5.0)
        assert done.reached is StartStep.INITIALIZED and done.error is None
        assert len(done.instance.plugin.threads) == 1, "start() was not called"
        await done.instance.cleanup()


@pytest.mark.parametrize(("config", "error", "reached", "says"), [
    ({"refuse": "this"}, PluginInitError, StartStep.LOADED, "refusing this"),
    ({"healthy": False}, PluginRuntimeError, StartStep.STARTED, "unhealthy"),
    ({"startFor": 0.3}, PluginTimeoutError, StartStep.INITIALIZED, "start() did not return within 0.2s"),
])
async def test_load_started_reports_a_failing_step_as_its_own_call_would(
        tmp_path: Path, config: dict[str, Any], error: type[Exception], reached: StartStep, says: str) -> None:
    write_package(tmp_path, START_STEPS)
    async with PythonModuleRuntime() as runtime:
        done = await runtime.load_started(request(tmp_path, "python:steps.plugin:Sync", tmp_path, config=config,
                                                  start_timeout_seconds=0.2),
                                          until=StartStep.CHECKED, health_seconds=5.0)
        assert type(done.error) is error and says in str(done.error)
        assert done.reached is reached, "the step after it is the one that failed"
        if reached is StartStep.STARTED:
            assert len(done.instance.plugin.threads) == 3, "the health check was made"
        await done.instance.cleanup()


async def test_load_started_gives_up_on_a_step_that_hangs_and_runs_nothing_after_it(tmp_path: Path) -> None:
    write_package(tmp_path, START_STEPS)
    async with PythonModuleRuntime() as runtime:
        done = await runtime.load_started(request(tmp_path, "python:steps.plugin:Hangs", tmp_path,
                                                  start_timeout_seconds=0.2),
                                          until=StartStep.CHECKED, health_seconds=0.1)
        assert isinstance(done.error, PluginTimeoutError) and "start() did not return" in str(done.error)
        assert done.reached is StartStep.INITIALIZED
        done.instance.plugin.release.set()
        await done.instance.cleanup()


def test_a_chain_given_up_runs_nothing_after_the_step_it_was_in(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_package(tmp_path, START_STEPS)
    signal = types.SimpleNamespace(started=threading.Event())
    monkeypatch.setitem(sys.modules, "steps_signal", signal)
    finder = PluginFinder()
    sys.meta_path.insert(0, finder)
    try:
        chain = StartChain(request(tmp_path, "python:steps.plugin:Hangs", tmp_path),
                           PythonEntryPoint.parse("python:steps.plugin:Hangs"), finder,
                           until=StartStep.CHECKED, config={}, health_seconds=5.0)
        worker = threading.Thread(target=chain.run)
        worker.start()
        assert signal.started.wait(30), "start() runs and waits"
        loaded = chain.give_up()
        assert loaded is chain.loaded, "the import had returned: the module is the giver-up's"
        plugin = loaded.plugin
        plugin.release.set()
        worker.join(30)
        assert not worker.is_alive()
        assert len(plugin.threads) == 2, "initialize and start ran, and no health() after them"
        loaded.unload()
    finally:
        sys.meta_path.remove(finder)


@pytest.mark.parametrize("method", ["_secret", "stop", "initialize", "config", "info", "nothing"])
async def test_call_reaches_public_service_methods_only(tmp_path: Path, method: str) -> None:
    write_package(tmp_path, TOOLBOX)
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path))
        assert await instance.call("add", {"a": 2, "b": 3}) == 5
        with pytest.raises(PluginRuntimeError) as caught:
            await instance.call(method)
    assert caught.value.reason == "MethodNotFound" and "add" in str(caught.value)


async def test_a_blocking_sync_method_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    write_package(tmp_path, TOOLBOX)
    release = threading.Event()
    results: list[str] = []
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path))
        with anyio.fail_after(30):  # a hang guard: on the loop thread this would deadlock
            async with anyio.create_task_group() as tg:

                async def blocked_call() -> None:
                    results.append(await instance.call("wait_for", [release]))

                tg.start_soon(blocked_call)
                await anyio.wait_all_tasks_blocked()
                assert results == []  # still blocked in its thread, yet this loop runs
                release.set()
    assert results == ["released"]


async def test_a_call_that_overruns_the_timeout_raises_deadline_exceeded(tmp_path: Path) -> None:
    write_package(tmp_path, TOOLBOX)
    release = threading.Event()
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path,
                                              limits=Limits(timeout_seconds=0.05)))
        try:
            with pytest.raises(PluginTimeoutError) as caught:
                await instance.call("wait_for", [release])
        finally:
            release.set()  # let the abandoned worker thread end
    assert caught.value.reason == "DeadlineExceeded" and "spec.resources.limits.timeout" in str(caught.value)


async def test_max_concurrency_bounds_calls_in_flight(tmp_path: Path) -> None:
    write_package(tmp_path, TOOLBOX)
    gate = anyio.Event()
    entered: list[int] = []
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path,
                                              limits=Limits(max_concurrency=2)))
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(instance.call, "gate", [gate, entered])
            await anyio.wait_all_tasks_blocked()
            assert len(entered) == 2
            gate.set()
        assert len(entered) == 5 and instance.plugin.peak == 2


@pytest.mark.parametrize("config", [{"healthy": False}, {"healthy": {"ok": False, "message": "disk gone"}}])
async def test_an_unhealthy_answer_raises(tmp_path: Path, config: dict[str, Any]) -> None:
    write_package(tmp_path, TOOLBOX)
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path))
        await instance.initialize({"healthy": True})
        await instance.health()
        await instance.update_config(config)
        with pytest.raises(PluginRuntimeError) as caught:
            await instance.health()
    assert caught.value.reason == "Unhealthy"


async def test_a_synchronous_health_has_a_quick_form_for_the_probe_rounds(tmp_path: Path) -> None:
    # The periodic probes call it on their round's thread: the same answers as health(), a
    # raised exception with its traceback in the plugin's log, and nothing else to wait for.
    write_package(tmp_path, {**TOOLBOX, "toolbox/broken.py": """
        class Broken:
            def health(self):
                raise OSError("the device went away")
        """})
    logs: list[PluginLogRecord] = []
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path))
        await instance.initialize({"healthy": True})
        assert isinstance(instance, QuickHealth)
        check = instance.quick_health()
        assert check is not None
        assert await anyio.to_thread.run_sync(check) is True
        await instance.update_config({"healthy": {"ok": False, "message": "disk gone"}})
        with pytest.raises(PluginRuntimeError, match="unhealthy: disk gone") as caught:
            await anyio.to_thread.run_sync(check)
        assert caught.value.reason == "Unhealthy"
        broken = await runtime.load(request(tmp_path, "python:toolbox.broken:Broken", tmp_path, name="broken",
                                            log=logs.append))
        check = broken.quick_health()
        assert check is not None
        with pytest.raises(PluginRuntimeError, match=r"broken: health\(\) raised OSError: the device went away"):
            await anyio.to_thread.run_sync(check)
    assert 'raise OSError("the device went away")' in logs[-1].fields["traceback"]


async def test_no_quick_health_for_an_async_health(tmp_path: Path) -> None:
    write_package(tmp_path, {**TOOLBOX, "toolbox/waiting.py": """
        class Waiting:
            async def health(self):
                return True
        """})
    async with PythonModuleRuntime() as runtime:
        waiting = await runtime.load(request(tmp_path, "python:toolbox.waiting:Waiting", tmp_path, name="w"))
        assert waiting.quick_health() is None  # it runs on the event loop: no thread to save


async def test_a_health_check_is_not_held_up_by_calls_taking_every_slot_of_max_concurrency(tmp_path: Path) -> None:
    # A plugin serving as many calls as it takes is busy, not unhealthy: its health check runs
    # beside them, the usual way and the quick one alike.
    write_package(tmp_path, TOOLBOX)
    release = threading.Event()
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path,
                                              limits=Limits(max_concurrency=1, timeout_seconds=30)))
        await instance.initialize({"healthy": True})
        async with anyio.create_task_group() as tg:
            tg.start_soon(instance.call, "wait_for", [release])
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(10):  # a guard against a hang: behind the limiter it would wait 30 s
                await instance.health()
            check = instance.quick_health()
            assert check is not None and await anyio.to_thread.run_sync(check) is True
            release.set()


async def test_a_health_check_stuck_in_the_plugin_holds_one_thread_however_often_it_is_probed(
    tmp_path: Path
) -> None:
    # Each probe gives up on it at its timeout; were each to call health() again, a plugin
    # stuck in it would take one more thread of the plugins' shared pool every interval.
    write_package(tmp_path, {**TOOLBOX, "toolbox/stuck.py": """
        import threading

        class Stuck:
            def __init__(self):
                self.calls = 0
                self.release = threading.Event()
                self.returned = threading.Event()

            def health(self):
                self.calls += 1
                self.release.wait(60)
                self.returned.set()
                return True
        """})
    async with PythonModuleRuntime() as runtime:
        logs: list[PluginLogRecord] = []
        stuck = await runtime.load(request(tmp_path, "python:toolbox.stuck:Stuck", tmp_path, name="stuck",
                                           limits=Limits(timeout_seconds=0.1), log=logs.append))
        plugin = stuck.plugin
        with pytest.raises(PluginTimeoutError, match=r"stuck: health\(\) did not return within 0.1s"):
            await stuck.health()
        for _ in range(5):  # the probes after it: answered at once, health() not called again
            with pytest.raises(PluginTimeoutError, match=r"^stuck: health\(\) has not returned from the call made "
                                                         r"\d+\.\d+s ago; it is not called again until it does$"):
                await stuck.health()
            check = stuck.quick_health()
            assert check is not None
            with pytest.raises(PluginRuntimeError, match="has not returned"):
                await anyio.to_thread.run_sync(check)
        assert plugin.calls == 1
        # mfx's own refusals are no failure of the plugin's: nothing of them in its log.
        assert [r.message for r in logs if "has not returned" in r.message] == []
        # The pool serves the other plugins meanwhile: the stuck call does not count.
        toolbox = await runtime.load(request(tmp_path, "python:toolbox.plugin:Toolbox", tmp_path))
        with anyio.fail_after(30):  # a guard against a hang, not a timing
            assert await toolbox.call("add", [2, 3]) == 5
        plugin.release.set()
        await anyio.to_thread.run_sync(plugin.returned.wait, 30)
        with anyio.fail_after(30):
            while True:  # the stuck call has returned: health() is called again, and answers
                try:
                    await stuck.health()
                    break
                except PluginTimeoutError:  # the instant between its return and its guard's end
                    await anyio.lowlevel.checkpoint()
        assert plugin.calls == 2


async def test_a_given_checksum_covers_the_entry_module_file(tmp_path: Path) -> None:
    entry_file = HELLO_DIR / "hello_python" / "plugin.py"
    good = "sha256:" + hashlib.sha256(entry_file.read_bytes()).hexdigest()
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(HELLO_DIR, "python:hello_python.plugin:HelloPlugin", tmp_path,
                                              checksum=good))
        assert instance.details["checksum"] == good
        with pytest.raises(ChecksumMismatchError, match=good):
            await runtime.load(request(HELLO_DIR, "python:hello_python.plugin:HelloPlugin", tmp_path,
                                       checksum="sha256:" + "a" * 64))


async def test_the_checksum_covers_the_package_that_runs_when_a_module_has_the_same_name(tmp_path: Path) -> None:
    # Python imports the package "plugin/" before a module "plugin.py" beside it: the checksum
    # must cover the package's file, or a verified "plugin.py" would vouch for code never run.
    write_package(tmp_path, {
        "twin/__init__.py": "",
        "twin/plugin.py": "from mfx.sdk.plugin import Plugin\nclass Twin(Plugin):\n    which = 'module'\n",
        "twin/plugin/__init__.py": "from mfx.sdk.plugin import Plugin\nclass Twin(Plugin):\n    which = 'package'\n",
    })
    runs = tmp_path / "twin" / "plugin" / "__init__.py"
    beside = tmp_path / "twin" / "plugin.py"
    entry = "python:twin.plugin:Twin"
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(tmp_path, entry, tmp_path,
                                              checksum="sha256:" + hashlib.sha256(runs.read_bytes()).hexdigest()))
        assert instance.details["file"] == str(runs)
        assert instance.plugin.which == "package"
        with pytest.raises(ChecksumMismatchError):
            await runtime.load(request(tmp_path, entry, tmp_path,
                                       checksum="sha256:" + hashlib.sha256(beside.read_bytes()).hexdigest()))


async def test_the_slowstart_testkit_records_its_lifecycle(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    entry = "python:testkit.slowstart:SlowStartPlugin"
    async with PythonModuleRuntime() as runtime:
        instance = await runtime.load(request(TESTKIT_DIR, entry, tmp_path))
        await instance.initialize({"name": "a", "startDelay": 0.01, "recordFile": str(record)})
        await instance.start()
        await instance.health()
        assert await instance.call("ping", {"value": 7}) == {"pong": 7, "name": "a"}
        await instance.update_config({"name": "a", "failHealth": True, "recordFile": str(record)})
        with pytest.raises(PluginRuntimeError, match="failHealth"):
            await instance.health()
        await instance.stop()

        crashing = await runtime.load(request(TESTKIT_DIR, entry, tmp_path))
        await crashing.initialize({"name": "b", "crashOnStart": True, "recordFile": str(record)})
        with pytest.raises(PluginRuntimeError, match="crashOnStart"):
            await crashing.start()
    events = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(e["event"], e["name"]) for e in events] == [
        ("start_begin", "a"), ("start_end", "a"), ("stop", "a"), ("start_begin", "b")]
    assert events[1]["t"] - events[0]["t"] >= 0.009  # the start delay was honoured


async def cycle(runtime: PythonModuleRuntime, make: Callable[[], LoadRequest]) -> None:
    instance: PythonModuleInstance = await runtime.load(make())
    await instance.initialize({"greeting": "Hey"})
    await instance.start()
    assert await instance.call("greet", ["x"]) == "Hey, x!"
    await instance.stop()
    await instance.cleanup()


async def test_load_unload_cycles_do_not_leak(tmp_path: Path) -> None:
    def make() -> LoadRequest:
        return request(HELLO_DIR, "python:hello_python.plugin:HelloPlugin", tmp_path)

    process = psutil.Process()
    meta_path_before = len(sys.meta_path)
    async with PythonModuleRuntime() as runtime:
        for _ in range(100):  # warm up caches and allocator pools
            await cycle(runtime, make)
        gc.collect()
        before = process.memory_info().rss
        for _ in range(1000):
            await cycle(runtime, make)
        gc.collect()
        growth = process.memory_info().rss - before
    assert growth < 10 * 1024 * 1024, f"RSS grew {growth / 2**20:.1f} MiB over 1000 load/unload cycles"
    assert not [m for m in sys.modules if m.startswith("_mfx_p_")], "modules of unloaded plugins remain"
    assert len(sys.meta_path) == meta_path_before


async def test_a_start_cancelled_from_outside_is_stopped_and_unloaded(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    write_package(tmp_path, START_STEPS)
    signal = types.SimpleNamespace(started=threading.Event())
    monkeypatch.setitem(sys.modules, "steps_signal", signal)
    async with PythonModuleRuntime() as runtime:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(runtime.load_started, request(tmp_path, "python:steps.plugin:Hangs", tmp_path,
                                                                start_timeout_seconds=30),
                                  until=StartStep.CHECKED, health_seconds=5.0))
            assert await anyio.to_thread.run_sync(signal.started.wait, 30), "start() runs and waits"
            tg.cancel_scope.cancel()  # the caller gives up (say, the plugin was deleted) while start() hangs
        hung = [m for name, m in sys.modules.items() if name.startswith("_mfx_p_") and name.endswith(".plugin")]
        assert not hung, "its modules were unloaded"
        plugin = next(o for o in gc.get_objects() if type(o).__name__ == "Hangs")
        assert plugin.threads[-1] == "stopped", "stop() was called"
        plugin.release.set()
