"""The audio layer: ALSA devices, the sink engine with its writer thread, and the pipeline
from decoded blocks to the device.

Public names are re-exported here; the modules behind them are private to the layer.
"""

from mfx.audio.alsa_device import AlsaDevice, DeviceParams, PcmDevice, list_devices, translate_error
from mfx.audio.dsp import (
    Fader,
    GainRamp,
    Resampler,
    Volume,
    db_to_linear,
    linear_to_db,
    map_channels,
)
from mfx.audio.formats import SampleFormat, TpdfDither, float_to_pcm, pcm_from_bytes, pcm_to_float
from mfx.audio.paced_device import PacedDevice, Pacing
from mfx.audio.pipeline import DecodedStream, Pipeline, PipelineState, PlayedPosition, Processor
from mfx.audio.ring_buffer import FrameRingBuffer, StreamId
from mfx.audio.sink import SinkEngine
from mfx.audio.sink_status import SinkState, SinkStatus
from mfx.audio.stream_clock import StreamPosition, StreamState
from mfx.audio.writer_timing import XrunCause

__all__ = [
    "AlsaDevice",
    "DecodedStream",
    "DeviceParams",
    "Fader",
    "FrameRingBuffer",
    "GainRamp",
    "PacedDevice",
    "Pacing",
    "PcmDevice",
    "Pipeline",
    "PipelineState",
    "PlayedPosition",
    "Processor",
    "Resampler",
    "SampleFormat",
    "SinkEngine",
    "SinkState",
    "SinkStatus",
    "StreamId",
    "StreamPosition",
    "StreamState",
    "TpdfDither",
    "Volume",
    "XrunCause",
    "db_to_linear",
    "float_to_pcm",
    "linear_to_db",
    "list_devices",
    "map_channels",
    "pcm_from_bytes",
    "pcm_to_float",
    "translate_error",
]
