"""Bytes in and out of a plugin's linear memory, as the mfx WebAssembly ABI passes them.

The host asks the guest's ``alloc`` for a buffer, writes the request there, and reads the
response where the packed ``(ptr << 32) | len`` result of ``call`` points; every pointer
the guest hands back is checked against the memory's size before it is used.
"""

from __future__ import annotations

from mfx.errors import MemoryLimitExceededError, PluginInitError, ProtocolError
from mfx.runtimes.wasm_abi import LiveStore

WASM_PAGE = 65536


def put(live: LiveStore, data: bytes, *, plugin: str, memory_limit: int) -> int:
    """Copy ``data`` into a buffer from the guest's ``alloc``; 0 for no data."""
    if not data:
        return 0
    ptr = live.alloc(live.store, len(data))
    size = live.memory.data_len(live.store)
    if ptr == 0 or ptr < 0 or ptr + len(data) > size:
        if ptr == 0 and size + WASM_PAGE > memory_limit:
            raise MemoryLimitExceededError(
                f"{plugin}: alloc({len(data)}) failed with linear memory at {size} bytes "
                f"(limit {memory_limit}); raise spec.resources.limits.memory")
        raise ProtocolError(
            f"{plugin}: alloc({len(data)}) returned {ptr}, outside linear memory "
            f"({size} bytes)")
    live.memory.write(live.store, data, ptr)
    return ptr


def call_init(live: LiveStore, config: bytes, *, plugin: str, memory_limit: int) -> None:
    """``init(config)``; ``PluginInitError`` when the guest rejects the config."""
    assert live.init is not None
    ptr = put(live, config, plugin=plugin, memory_limit=memory_limit)
    status = live.init(live.store, ptr, len(config))
    if ptr:
        live.dealloc(live.store, ptr, len(config))
    if status != 0:
        raise PluginInitError(
            f"{plugin}: init returned {status} (non-zero: config rejected); see the "
            "plugin's log for why", reason="InitializeFailed")


def call_method(live: LiveStore, method: bytes, payload: bytes, *, plugin: str, memory_limit: int,
                max_message_bytes: int) -> tuple[bytes, int]:
    """``call(method, payload)``: the response and the linear memory's size after it."""
    store = live.store
    # One buffer for method and params: one alloc, one write, one dealloc.
    request = method + payload
    ptr = put(live, request, plugin=plugin, memory_limit=memory_limit)
    packed = live.call(store, ptr, len(method), ptr + len(method), len(payload))
    packed &= 0xFFFF_FFFF_FFFF_FFFF
    out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
    size = live.memory.data_len(store)
    if out_ptr + out_len > size:
        raise ProtocolError(
            f"{plugin}.{method.decode(errors='replace')}: call returned a response at "
            f"{out_ptr}+{out_len}, outside linear memory ({size} bytes)")
    if out_len > max_message_bytes:
        raise ProtocolError(
            f"{plugin}.{method.decode(errors='replace')}: response of {out_len} bytes "
            f"exceeds maxMessageSize ({max_message_bytes} bytes)")
    out = bytes(live.memory.read(store, out_ptr, out_ptr + out_len))
    if out_len:
        live.dealloc(store, out_ptr, out_len)
    live.dealloc(store, ptr, len(request))
    return out, size
