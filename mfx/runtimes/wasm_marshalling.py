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
    ptr = live.alloc(len(data))
    size = live.memory.size()
    if ptr == 0 or ptr < 0 or ptr + len(data) > size:
        if ptr == 0 and size + WASM_PAGE > memory_limit:
            raise MemoryLimitExceededError(
                f"{plugin}: alloc({len(data)}) failed with linear memory at {size} bytes "
                f"(limit {memory_limit}); raise spec.resources.limits.memory")
        raise ProtocolError(
            f"{plugin}: alloc({len(data)}) returned {ptr}, outside linear memory "
            f"({size} bytes)")
    live.memory.write(ptr, data)
    return ptr


def call_init(live: LiveStore, config: bytes, *, plugin: str, memory_limit: int) -> None:
    """``init(config)``; ``PluginInitError`` when the guest rejects the config."""
    assert live.init is not None
    ptr = put(live, config, plugin=plugin, memory_limit=memory_limit)
    status = live.init(ptr, len(config))
    if ptr:
        live.dealloc(ptr, len(config))
    if status != 0:
        raise PluginInitError(
            f"{plugin}: init returned {status} (non-zero: config rejected); see the "
            "plugin's log for why", reason="InitializeFailed")


def call_method(live: LiveStore, method: bytes, payload: bytes, *, plugin: str, memory_limit: int,
                max_message_bytes: int) -> tuple[bytes, int]:
    """``call(method, payload)``: the response and the linear memory's size after it."""
    # One buffer for method and params: one alloc, one write, one dealloc.
    request = method + payload
    ptr = put(live, request, plugin=plugin, memory_limit=memory_limit)
    packed = live.call(ptr, len(method), ptr + len(method), len(payload))
    packed &= 0xFFFF_FFFF_FFFF_FFFF
    out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
    size = live.memory.size()
    if out_ptr + out_len > size:
        raise ProtocolError(
            f"{plugin}.{method.decode(errors='replace')}: call returned a response at "
            f"{out_ptr}+{out_len}, outside linear memory ({size} bytes)")
    if out_len > max_message_bytes:
        raise ProtocolError(
            f"{plugin}.{method.decode(errors='replace')}: response of {out_len} bytes "
            f"exceeds maxMessageSize ({max_message_bytes} bytes)")
    out = live.memory.read(out_ptr, out_len)
    if out_len:
        live.dealloc(out_ptr, out_len)
    live.dealloc(ptr, len(request))
    return out, size
