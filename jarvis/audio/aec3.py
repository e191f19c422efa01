"""WebRTC's AEC3 (livekit's ``AudioProcessingModule``) called once per 10 ms frame for the echo canceller.

livekit's Python methods build, serialize and parse a protobuf message per call (~55 µs each, three calls per
frame: a third of the capture thread's CPU while Jarvis listens). The messages for one module never change when
its frames live in the same two buffers, so ``Aec3`` serializes them once and hands the same bytes to livekit's
``livekit_ffi_request`` for every frame; a reply other than the first frame's (the success reply) is parsed and
its error raised, as livekit's own method does. The stream delay hint is set once: AEC3 keeps it (measured: the
output is sample-identical to setting it before every frame). Where livekit's internals differ from what this
expects, its public methods are used instead.
"""
from __future__ import annotations

import ctypes
import logging

import numpy as np

log = logging.getLogger(__name__)


class Aec3:
    """``process(mic, far)``: int16 frames of ``frame`` samples (10 ms); returns AEC3's output for ``mic`` after
    it was handed ``far`` as the reference (a new array)."""

    def __init__(self, rtc, apm, rate: int, frame: int, delay_ms: int):
        self._rtc, self._apm, self.rate, self.frame = rtc, apm, rate, frame
        apm.set_stream_delay_ms(delay_ms)
        self._near = bytearray(2 * frame)
        self._far = bytearray(2 * frame)
        self._near_samples = np.frombuffer(self._near, np.int16)
        self._far_samples = np.frombuffer(self._far, np.int16)
        self._call = None
        try:
            self._call = _PreparedCalls(apm, self._near, self._far, rate)
        except Exception as exc:  # another livekit: its public methods still work
            log.info("AEC3 through livekit's public methods (%s)", exc)

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        self._far_samples[:] = far
        self._near_samples[:] = mic
        if self._call is not None:
            self._call.reverse()
            self._call.stream()
        else:
            self._apm.process_reverse_stream(self._rtc.AudioFrame(self._far, self.rate, 1, self.frame))
            self._apm.process_stream(self._rtc.AudioFrame(self._near, self.rate, 1, self.frame))
        return self._near_samples.copy()


class _PreparedCalls:
    """livekit's two per-frame requests, serialized once for the module's fixed buffers."""

    def __init__(self, apm, near: bytearray, far: bytearray, rate: int):
        from livekit.rtc._ffi_client import FfiClient
        from livekit.rtc._proto import ffi_pb2

        client = FfiClient.instance
        self._lib = client._ffi_lib
        self._response = ffi_pb2.FfiResponse
        handle = apm._ffi_handle.handle
        near_address = ctypes.addressof(ctypes.c_char.from_buffer(near))
        far_address = ctypes.addressof(ctypes.c_char.from_buffer(far))
        self._keep = (near, far)  # the addresses serialized below stay valid while this lives

        def message(field: str, address: int, size: int) -> bytes:
            request = ffi_pb2.FfiRequest()
            call = getattr(request, field)
            call.apm_handle, call.data_ptr, call.size, call.sample_rate, call.num_channels = \
                handle, address, size, rate, 1
            return request.SerializeToString()

        self._requests = {"apm_process_reverse_stream": message("apm_process_reverse_stream", far_address, len(far)),
                          "apm_process_stream": message("apm_process_stream", near_address, len(near))}
        self._args = {field: (ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ctypes.c_ubyte)), len(data))
                      for field, data in self._requests.items()}
        self._success: dict[str, bytes] = {}

    def reverse(self) -> None:
        self._request("apm_process_reverse_stream")

    def stream(self) -> None:
        self._request("apm_process_stream")

    def _request(self, field: str) -> None:
        data, length = self._args[field]
        reply, reply_length = ctypes.POINTER(ctypes.c_ubyte)(), ctypes.c_size_t()
        handle = self._lib.livekit_ffi_request(data, length, ctypes.byref(reply), ctypes.byref(reply_length))
        if not handle:
            raise RuntimeError(f"livekit's {field} request failed")
        try:
            answer = ctypes.string_at(reply, reply_length.value)
        finally:
            self._lib.livekit_ffi_drop_handle(ctypes.c_uint64(handle))
        if answer == self._success.get(field):
            return
        response = self._response()
        response.ParseFromString(answer)
        error = getattr(response, field).error
        if error:
            raise RuntimeError(error)
        if response.WhichOneof("message") != field:
            raise RuntimeError(f"livekit answered {response.WhichOneof('message')} to {field}")
        self._success[field] = answer
