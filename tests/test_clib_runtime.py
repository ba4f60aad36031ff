"""C-ABI plugins: the effects processor's numbers, the ABI checks, and unloading."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import numpy as np
import pytest
import yaml

from mfx.errors import (
    AbiMismatchError,
    ChecksumMismatchError,
    EntryPointNotFoundError,
    InvalidConfigError,
    PluginInitError,
    PluginLoadError,
    PluginRuntimeError,
    PluginTimeoutError,
)
from mfx.runtimes.base import Limits, LoadRequest, PluginType, QuickHealth
from mfx.runtimes.clib import CLibraryInstance, CLibraryRuntime
from mfx.runtimes.dynamic_library import DynamicLibraryRuntime
from mfx.runtimes.python_module import PythonModuleInstance

REPO = Path(__file__).resolve().parent.parent
EFFECTS_SRC = REPO / "plugins" / "effects"
INCLUDE = REPO / "plugins" / "include"
RATE = 48000

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def effects_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libeffects.so built by its own Makefile with the system compiler, into a private dir."""
    out = tmp_path_factory.mktemp("effects-build")
    subprocess.run(["make", "-s", "-C", str(EFFECTS_SRC), f"OUTDIR={out}"], check=True)
    return out


def request(plugin_dir: Path, tmp_path: Path, entry: str = "libeffects.so", **kw: Any) -> LoadRequest:
    return LoadRequest(name="effects", version="1.0.0", type=PluginType.DYNAMIC_LIBRARY,
                       entry_point=entry, plugin_dir=plugin_dir, state_dir=tmp_path, **kw)


async def effects(runtime: CLibraryRuntime, effects_dir: Path, tmp_path: Path,
                  config: dict[str, Any]) -> CLibraryInstance:
    instance = await runtime.load(request(effects_dir, tmp_path))
    await instance.initialize(config)
    await instance.start()
    return instance


def sine(freq: float, seconds: float, channels: int = 2, amplitude: float = 0.25) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    mono = (amplitude * np.sin(2 * math.pi * freq * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1).copy()


def measured_gain_db(instance: CLibraryInstance, freq: float) -> float:
    """Run one second of sine through in 1024-frame blocks; compare the settled second half."""
    signal = sine(freq, 1.0)
    out = signal.copy()
    for start in range(0, len(out), 1024):
        out[start:start + 1024] = instance.process(np.ascontiguousarray(out[start:start + 1024]), RATE)
    half = len(signal) // 2
    rms_in = np.sqrt(np.mean(signal[half:].astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(out[half:].astype(np.float64) ** 2))
    return 20 * math.log10(rms_out / rms_in)


def rbj_response_db(kind: str, f0: float, q: float, gain_db: float, freq: float) -> float:
    """|H(e^jw)| of the RBJ cookbook biquad, in plain Python (the reference)."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / RATE
    cw, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    sa = 2 * math.sqrt(a) * alpha
    if kind == "peaking":
        b = (1 + alpha * a, -2 * cw, 1 - alpha * a)
        den = (1 + alpha / a, -2 * cw, 1 - alpha / a)
    elif kind == "lowshelf":
        b = (a * ((a + 1) - (a - 1) * cw + sa), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sa))
        den = ((a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sa)
    else:
        b = (a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - sa))
        den = ((a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sa)
    z = complex(math.cos(2 * math.pi * freq / RATE), -math.sin(2 * math.pi * freq / RATE))
    h = (b[0] + b[1] * z + b[2] * z * z) / (den[0] + den[1] * z + den[2] * z * z)
    return 20 * math.log10(abs(h))


async def test_gain_is_exact_to_float_precision_and_in_place(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, {"gainDb": -6.0})
        block = np.random.default_rng(1).uniform(-1, 1, (1024, 2)).astype(np.float32)
        expected = block * np.float32(10 ** (-6.0 / 20))
        out = instance.process(block, RATE)
        assert out is block  # processed in place: the pipeline's own buffer, no copy
        np.testing.assert_array_max_ulp(out, expected, maxulp=1)
        await instance.health()


async def test_a_gain_change_is_ramped_across_one_block(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, {"gainDb": 0.0})
        await instance.update_config({"gainDb": -20.0})
        target = np.float32(10 ** (-20.0 / 20))
        ramp = instance.process(np.ones((512, 2), np.float32), RATE)[:, 0]
        assert ramp[0] > 0.99  # starts at the old gain, no jump
        assert ramp[-1] == target  # and ends exactly at the new one
        assert np.all(np.diff(ramp) < 0)
        assert np.max(np.abs(np.diff(ramp))) < 0.01  # no step large enough to click
        steady = instance.process(np.ones((512, 2), np.float32), RATE)
        assert np.all(steady == target)


async def test_a_peaking_band_has_its_gain_at_the_centre_frequency(effects_dir: Path, tmp_path: Path) -> None:
    band = {"type": "peaking", "freq": 1000.0, "q": 1.0, "gainDb": 6.0}
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, {"eq": [band]})
        assert abs(measured_gain_db(instance, 1000.0) - 6.0) < 0.1


@pytest.mark.parametrize(("kind", "f0", "freq"), [
    ("peaking", 1000.0, 300.0), ("lowshelf", 200.0, 50.0), ("lowshelf", 200.0, 4000.0),
    ("highshelf", 4000.0, 12000.0), ("highshelf", 4000.0, 300.0)])
async def test_bands_match_the_cookbook_response(effects_dir: Path, tmp_path: Path, kind: str,
                                                 f0: float, freq: float) -> None:
    band = {"type": kind, "freq": f0, "q": 0.7071, "gainDb": -9.0}
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, {"eq": [band]})
        expected = rbj_response_db(kind, f0, 0.7071, -9.0, freq)
        assert abs(measured_gain_db(instance, freq) - expected) < 0.1


async def test_the_manifests_config_passes_its_schema_and_the_plugin(effects_dir: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load((EFFECTS_SRC / "plugin.yaml").read_text())["spec"]
    assert (spec["type"], spec["entryPoint"], spec["interfaces"]) == ("dynamic_library", "libeffects.so", ["AudioProcessor"])
    jsonschema.validate(spec["config"], spec["configSchema"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"eq": [{"type": "notch", "freq": 100}]}, spec["configSchema"])
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, spec["config"])
        instance.process(sine(440, 0.1), RATE)
        await instance.health()


async def test_bad_config_is_refused_with_the_plugins_reason(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        instance = await runtime.load(request(effects_dir, tmp_path))
        with pytest.raises(PluginInitError, match="eq\\[\\].type: expected peaking, lowshelf or highshelf, got 'notch'"):
            await instance.initialize({"eq": [{"type": "notch", "freq": 100}]})
        await instance.initialize({"gainDb": -6.0})
        with pytest.raises(InvalidConfigError, match="unknown field 'volume'"):
            await instance.update_config({"volume": 3})
        # the refused config changed nothing
        block = np.ones((16, 1), np.float32)
        assert np.all(instance.process(block, RATE) == np.float32(10 ** (-6.0 / 20)))


async def test_generic_calls_carry_json_samples_and_info(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, {"gainDb": 20 * math.log10(0.5)})
        out = await instance.call("process", {"samples": [1.0, -1.0, 0.5, 0.25], "channels": 2, "sampleRate": RATE})
        np.testing.assert_allclose(out["samples"], [0.5, -0.5, 0.25, 0.125], rtol=1e-6)
        assert await instance.call("info") == {"name": "effects", "version": "1.0.0", "abi": 1}
        with pytest.raises(PluginRuntimeError, match="available: info, process"):
            await instance.call("explode")


async def test_non_finite_output_makes_the_instance_unhealthy(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path,
                                 {"eq": [{"type": "peaking", "freq": 500, "gainDb": 3}]})
        block = np.zeros((64, 2), np.float32)
        block[3, 0] = np.nan
        instance.process(block, RATE)
        with pytest.raises(PluginRuntimeError) as caught:
            await instance.health()
        assert caught.value.reason == "Unhealthy"


async def test_the_quick_health_check_runs_on_the_callers_thread_and_gives_way_to_a_call_in_flight(
    effects_dir: Path, tmp_path: Path
) -> None:
    # The periodic probes' path: mfx_plugin_health called right here, no hand-off to the
    # plugin's thread; a call holding the instance makes it say "busy" instead of waiting.
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path,
                                 {"eq": [{"type": "peaking", "freq": 500, "gainDb": 3}]})
        assert isinstance(instance, QuickHealth)
        check = instance.quick_health()
        assert check() is True
        with instance._lock:  # a process() or configure() in flight on another thread
            assert check() is False
        block = np.zeros((64, 2), np.float32)
        block[3, 0] = np.nan
        instance.process(block, RATE)
        with pytest.raises(PluginRuntimeError, match="mfx_plugin_health returned") as caught:
            check()
        assert caught.value.reason == "Unhealthy"
        await instance.cleanup()
        with pytest.raises(PluginRuntimeError, match="unloaded"):
            check()


async def test_instances_are_independent_copies(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        loud = await effects(runtime, effects_dir, tmp_path, {"gainDb": 6.0})
        quiet = await effects(runtime, effects_dir, tmp_path, {"gainDb": -6.0})
        assert loud.details["library"] != quiet.details["library"]
        assert not loud.details["library"].startswith(str(effects_dir))
        a = loud.process(np.ones((8, 2), np.float32), RATE)
        b = quiet.process(np.ones((8, 2), np.float32), RATE)
        assert a[0, 0] > 1.9 and b[0, 0] < 0.51


async def test_the_checksum_is_verified_on_the_loaded_bytes(effects_dir: Path, tmp_path: Path) -> None:
    good = "sha256:" + hashlib.sha256((effects_dir / "libeffects.so").read_bytes()).hexdigest()
    async with CLibraryRuntime() as runtime:
        instance = await runtime.load(request(effects_dir, tmp_path, checksum=good))
        assert same_bytes(Path(instance.details["library"]), effects_dir / "libeffects.so")
        with pytest.raises(ChecksumMismatchError) as caught:
            await runtime.load(request(effects_dir, tmp_path, checksum="sha256:" + "b" * 64))
        assert good in str(caught.value)


def mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


def exists(path: str) -> bool:
    return Path(path).exists()


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


async def test_cleanup_unmaps_the_library_and_calls_fail_cleanly(effects_dir: Path, tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        instance = await effects(runtime, effects_dir, tmp_path, {})
        library = instance.details["library"]
        assert library in mapped_files()
        await instance.stop()
        await instance.cleanup()
        assert library not in mapped_files()  # dlclose really unmapped it
        assert not exists(library)
        with pytest.raises(PluginRuntimeError, match="after stop"):
            instance.process(np.ones((4, 2), np.float32), RATE)


def build_fake(tmp_path: Path, *, abi: int = 1, omit: str = "") -> Path:
    """A hostile or outdated plugin: compiled for real, missing a symbol or off-ABI."""
    functions = {
        "mfx_plugin_info": 'const char *mfx_plugin_info(void) { return "{\\"name\\": \\"fake\\", \\"abi\\": ABI}"; }'.replace("ABI", str(abi)),
        "mfx_plugin_abi_version": f"int mfx_plugin_abi_version(void) {{ return {abi}; }}",
        "mfx_plugin_init": "void *mfx_plugin_init(const char *c, char *e, size_t n) { (void)c; (void)e; (void)n; static int x; return &x; }",
        "mfx_plugin_configure": "int mfx_plugin_configure(void *h, const char *c, char *e, size_t n) { (void)h; (void)c; (void)e; (void)n; return 0; }",
        "mfx_plugin_process": "int mfx_plugin_process(void *h, float *f, size_t n, int c, int r) { (void)h; (void)f; (void)n; (void)c; (void)r; return 0; }",
        "mfx_plugin_health": "int mfx_plugin_health(void *h) { (void)h; return 0; }",
        "mfx_plugin_shutdown": "void mfx_plugin_shutdown(void *h) { (void)h; }",
    }
    source = tmp_path / "fake.c"
    source.write_text("#include <stddef.h>\n" + "\n".join(v for k, v in functions.items() if k != omit) + "\n")
    out = tmp_path / "libfake.so"
    subprocess.run(["cc", "-O2", "-fPIC", "-shared", "-Wall", "-Werror", "-o", str(out), str(source)], check=True)
    return out


async def test_a_missing_symbol_is_named(tmp_path: Path) -> None:
    build_fake(tmp_path, omit="mfx_plugin_health")
    async with CLibraryRuntime() as runtime:
        with pytest.raises(PluginLoadError, match=r"does not export mfx_plugin_health\(\)"):
            await runtime.load(request(tmp_path, tmp_path, "libfake.so"))


async def test_a_different_abi_version_is_refused(tmp_path: Path) -> None:
    build_fake(tmp_path, abi=2)
    async with CLibraryRuntime() as runtime:
        with pytest.raises(AbiMismatchError, match="plugin ABI 2, this mfx speaks 1") as caught:
            await runtime.load(request(tmp_path, tmp_path, "libfake.so"))
    assert caught.value.retryable is False


async def test_a_missing_library_says_to_build_it(tmp_path: Path) -> None:
    async with CLibraryRuntime() as runtime:
        with pytest.raises(EntryPointNotFoundError, match="make plugins"):
            await runtime.load(request(tmp_path, tmp_path, "lib/nothing.so"))


async def test_dynamic_library_dispatches_on_the_entry_point(effects_dir: Path, tmp_path: Path) -> None:
    hello = REPO / "plugins" / "hello-python"
    async with DynamicLibraryRuntime() as runtime:
        c = await runtime.load(request(effects_dir, tmp_path))
        py = await runtime.load(request(hello, tmp_path, "python:hello_python.plugin:HelloPlugin"))
        assert isinstance(c, CLibraryInstance) and isinstance(py, PythonModuleInstance)
        with pytest.raises(EntryPointNotFoundError, match="'python:package.module:Class' or a path to a .so"):
            await runtime.load(request(tmp_path, tmp_path, "plugin.wasm"))


def test_the_effects_source_builds_warning_free_with_werror(tmp_path: Path) -> None:
    command = subprocess.run(["make", "-n", "-B", "-C", str(EFFECTS_SRC), f"OUTDIR={tmp_path}"],
                             check=True, capture_output=True, text=True).stdout
    for flag in ("-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"):
        assert flag in command.split()
    subprocess.run(["make", "-s", "-B", "-C", str(EFFECTS_SRC), f"OUTDIR={tmp_path}"], check=True)
    assert (tmp_path / "libeffects.so").is_file()


def plugin_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mfx-clib:effects"]


def busy_seconds(error: Exception) -> float:
    """The seconds an error says the plugin's thread has been busy (a lower bound is all a test
    may check of a duration: how long past it depends on the machine)."""
    found = re.search(r"for (\d+\.\d)s", str(error))
    assert found is not None, error
    return float(found.group(1))


async def initialized(runtime: CLibraryRuntime, effects_dir: Path, tmp_path: Path,
                      call_timeout: float) -> CLibraryInstance:
    """The effects plugin at 0 dB, with ``call_timeout`` as its calls' deadline."""
    instance = await runtime.load(request(effects_dir, tmp_path, limits=Limits(timeout_seconds=call_timeout)))
    await instance.initialize({"gainDb": 0.0})
    return instance


async def test_calls_behind_a_stuck_one_time_out_on_the_same_thread_and_never_run_late(
    effects_dir: Path, tmp_path: Path
) -> None:
    # The audio thread holds the instance while process() runs: calls queued behind a
    # process() that never ends come back at their deadline; however many there are, the
    # plugin keeps one thread (one each would pile up a thread per health probe).
    async with CLibraryRuntime(tmp_path / "private") as runtime:
        instance = await initialized(runtime, effects_dir, tmp_path, 0.2)
        await instance.start()
        await instance.health()
        with instance._lock:  # a process() call that does not return
            with pytest.raises(PluginTimeoutError, match=r"^effects: health did not return within 0.2s$"):
                await instance.health()
            # A configure given up before the plugin's thread took it never happens later.
            with pytest.raises(PluginTimeoutError, match=r"effects: update_config did not return within 0.2s "
                                                         r"\(it never started: the plugin's thread has been busy "
                                                         r"with health for (\d+\.\d)s\)") as refused:
                await instance.update_config({"gainDb": -20.0})
            assert busy_seconds(refused.value) >= 0.2  # at least the health call's own deadline
            for _ in range(5):
                with pytest.raises(PluginTimeoutError):
                    await instance.health()
            assert len(plugin_threads()) == 1
        # The stuck call returns once the lock is free; the next call runs after it.
        await instance.health()
        assert len(plugin_threads()) == 1  # the plugin's calls run on a thread of its own
        assert np.all(instance.process(np.ones((512, 2), np.float32), RATE) == 1.0)  # still 0 dB
        threads = plugin_threads()
        await instance.cleanup()
    for thread in threads:  # cleanup ends the plugin's thread
        thread.join(timeout=10)
        assert not thread.is_alive()


async def test_cleanup_of_a_plugin_stuck_in_a_call_unloads_the_library_once_the_call_returns(
    effects_dir: Path, tmp_path: Path
) -> None:
    async with CLibraryRuntime(tmp_path / "private") as runtime:
        instance = await initialized(runtime, effects_dir, tmp_path, 0.2)
        [thread] = plugin_threads()
        with instance._lock:  # the library does not return from a call
            with pytest.raises(PluginTimeoutError):
                await instance.health()
            with pytest.raises(PluginTimeoutError):
                await instance.stop()
            # Unloading under the stuck call would crash the daemon: cleanup says why it waits.
            with anyio.fail_after(30), pytest.raises(
                PluginTimeoutError, match=r"^effects: the plugin's thread has been in health for (\d+\.\d)s; "
                                          r"the library is unloaded once that call returns$") as waiting:
                await instance.cleanup()
            assert busy_seconds(waiting.value) >= 0.2
            assert instance._lib.cdll is not None and thread.is_alive()
        thread.join(timeout=30)  # the call returns, the unload runs after it, the thread ends
        assert not thread.is_alive()
        assert instance._lib.cdll is None and not instance._lib.path.exists()


async def test_a_probe_deadline_shorter_than_the_call_timeout_ends_the_wait(
    effects_dir: Path, tmp_path: Path
) -> None:
    # A health probe's own timeout (healthCheck.timeout) cancels its wait for a call that C
    # code holds up, however long the plugin's call timeout is.
    async with CLibraryRuntime(tmp_path / "private") as runtime:
        instance = await initialized(runtime, effects_dir, tmp_path, 60)
        with instance._lock, anyio.fail_after(30):  # a guard against a hang, not a timing
            for _ in range(3):
                with anyio.move_on_after(0.1) as probe:
                    await instance.health()
                assert probe.cancelled_caught
            assert len(plugin_threads()) == 1
        await instance.health()
        await instance.cleanup()
