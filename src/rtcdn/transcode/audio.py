"""AAC ↔ Opus for one stream and direction, decoded, resampled and encoded with PyAV in a worker thread.

One :class:`AudioTranscoder` per publisher track that needs it: ``("aac", "opus")`` when an RTMP
publisher's AAC goes to WebRTC players, ``("opus", "aac")`` when a WebRTC publisher's Opus goes to
RTMP players. It lives as long as that track. :meth:`~AudioTranscoder.convert` is the synchronous
core (decode → ``av.AudioResampler`` to the target's rate, layout and sample format → a FIFO cut
into the encoder's frame size → encode); :meth:`~AudioTranscoder.push` runs it on the transcoder's
own single worker thread, so frames are converted in the order pushed and the event loop never
waits on a codec (PyAV releases the GIL inside them). :meth:`~AudioTranscoder.close` ends the thread.

Output: Opus 48 kHz, 20 ms (960-sample) frames, ~64 kbps, WebRTC's ``opus/48000/2``; or AAC-LC,
1024-sample frames, ~128 kbps, whose AudioSpecificConfig is :attr:`~AudioTranscoder.extradata`
(the RTMP sequence header). Opus: FFmpeg's ``libopus``, decoded as float; AAC: FFmpeg's native
``aac`` (floating-point planar). Opus input is decoded by ``libopus`` too: FFmpeg's native decoder
returns frames shorter or longer than their packets around SILK/CELT switches (456 then 984
samples), which would jitter the timeline.

Timing, A/V sync and the encoder delay: the decoded samples of an input frame start at its ``pts``
(RTP and FLV both stamp a frame with the time of its first decoded sample, priming included). The
output timeline starts at the first input's ``pts`` and advances by sample count, and a frame's
``rtp_time`` is the first input's ``rtp_time`` converted to the target's clock plus the same count.
An encoder's output lags its input by its priming (``initial_padding``: 312 samples for libopus,
i.e. the OpusHead pre-skip; 1024 for FFmpeg's AAC), so the first :attr:`~AudioTranscoder.priming`
decoded samples are dropped before the encoder, which puts the encoder's priming in their place:
sample *n* of the decoded output then plays at the same time as input sample *n*, and a receiver
that does not skip priming (a browser for RTP, any FLV player) stays in sync with the video.
An input ``pts`` more than half a frame after where the count expects it (lost frames, DTX) is
filled with silence up to :data:`~.timeline.GAP_FILL_LIMIT`; a later or earlier one moves the
timeline to it: the output ``pts`` jump with the input's (:class:`~.timeline.Timeline`).

Latency added by the codecs (media time, besides the conversion itself): Opus 312 samples
(6.5 ms), AAC 2048 (42.7 ms: FFmpeg's encoder returns a frame two frames late), plus up to one
output frame while the FIFO waits for a full one when the frame sizes differ (1024 vs 960).
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Literal

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.fifo import AudioFifo
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.packet import Packet

from ..rtp.frame import Frame
from .asc import AudioSpecificConfig, parse_asc
from .timeline import Timeline
from .worker import Worker, usable

OPUS_RATE = 48000
"Opus' RTP clock (RFC 7587), whatever rate the encoder works at."
AAC_PRIMING = 1024
"FFmpeg's native AAC encoder: ``initial_padding`` (libavcodec/aacenc.c), samples of priming."
BIT_RATES = {"opus": 64000, "aac": 128000}

_CODECS = {"aac": "aac", "opus": "libopus"}
"FFmpeg codec names, decoder and encoder alike."
_FORMATS = {"aac": "fltp", "opus": "flt"}
"Encoder input sample formats."


def _context(codec: str, mode: Literal["r", "w"]) -> AudioCodecContext:
    context = AudioCodecContext.create(_CODECS[codec], mode)
    if not isinstance(context, AudioCodecContext):
        raise TypeError(f"{_CODECS[codec]} is no audio codec")
    return context


class AudioTranscoder(Worker):
    """Converts one stream's audio frames from ``source`` to ``target`` (``aac`` / ``opus``).

    ``sample_rate`` and ``channels`` (1 or 2) are the output's; Opus output is always 48000.
    ``extradata``: the AAC input's AudioSpecificConfig (raw AAC frames, as FLV carries them);
    without it AAC input frames must be ADTS. Raises ValueError on a bad combination or ASC.

    The codecs open in the constructor, so :attr:`extradata` (the output's decoder configuration)
    is known before the first frame. Counters (read them from any thread): :attr:`frames_in`,
    :attr:`frames_out`, :attr:`errors` (input frames skipped: wrong codec, empty, undecodable, and
    codec failures) and :attr:`seconds_busy` (thread CPU time spent in :meth:`convert`).

    Lifecycle: construct when the track is announced; :meth:`push` each frame (or :meth:`convert`
    on a thread of the caller's); ``push(None)`` at the end of the stream for its last frames;
    ``await close()`` when the track goes (the worker thread starts with the first push).
    """

    def __init__(
        self,
        source: str,
        target: str,
        *,
        sample_rate: int = OPUS_RATE,
        channels: int = 2,
        bit_rate: int | None = None,
        extradata: bytes | None = None,
    ) -> None:
        if (source, target) not in (("aac", "opus"), ("opus", "aac")):
            raise ValueError(f"no transcode from {source!r} to {target!r}")
        if target == "opus" and sample_rate != OPUS_RATE:
            raise ValueError("Opus output is 48 kHz")
        if channels not in (1, 2):
            raise ValueError("the output has 1 or 2 channels")
        self.source, self.target = source, target
        self.sample_rate, self.channels = sample_rate, channels
        self.bit_rate = bit_rate or BIT_RATES[target]
        self.source_config: AudioSpecificConfig | None = None
        "The AAC input's parsed AudioSpecificConfig, when given."
        if extradata is not None and source == "aac":
            self.source_config = parse_asc(extradata)
        self._source_extradata = extradata if source == "aac" else None
        self._layout = "stereo" if channels == 2 else "mono"
        self._time_base = Fraction(1, sample_rate)
        self.frames_in = self.frames_out = self.errors = 0
        self.seconds_busy = 0.0
        super().__init__(f"transcode-{source}-{target}")
        try:
            self._open()
        except av.FFmpegError as error:  # e.g. a rate the AAC encoder does not support
            raise ValueError(f"cannot open the {target} encoder: {error}") from error
        self.extradata: bytes = self._encoder.extradata or b""
        "The output's decoder configuration: AAC's AudioSpecificConfig, or Opus' OpusHead."
        self.frame_samples: int = self._encoder.frame_size
        "Samples per output frame: 960 (Opus, 20 ms) or 1024 (AAC)."

    # --- state ----------------------------------------------------------------------------------

    def _open(self) -> None:
        """Fresh codecs and timeline: at construction and after the end of the stream."""
        decoder = _context(self.source, "r")
        if self.source == "opus":
            decoder.sample_rate, decoder.layout = OPUS_RATE, "stereo"
            decoder.options = {"request_sample_fmt": "flt"}
        elif self._source_extradata is not None:
            decoder.extradata = self._source_extradata
        encoder = _context(self.target, "w")
        encoder.sample_rate, encoder.layout = self.sample_rate, self._layout
        encoder.format = _FORMATS[self.target]
        encoder.bit_rate = self.bit_rate
        encoder.time_base = self._time_base
        if self.target == "opus":
            encoder.options = {"application": "audio", "frame_duration": "20"}
        encoder.open()
        self._decoder, self._encoder = decoder, encoder
        head = encoder.extradata or b""  # Opus: OpusHead, pre-skip at bytes 10..11 (RFC 7845 §5.1)
        self.priming = AAC_PRIMING if self.target == "aac" else int.from_bytes(head[10:12], "little")
        "The encoder's priming samples, dropped from the input's start (see the module's docstring)."
        self._trim = self.priming
        self._resampler: AudioResampler | None = None
        self._input_shape: tuple[str, str, int] | None = None
        self._fifo = AudioFifo()
        self._timeline = Timeline(self.sample_rate)  # counts FIFO samples: FIFO sample n is output sample n
        self._encoded = 0  # samples into the encoder (its input pts)
        self._emitted = 0  # output samples stamped

    # --- the synchronous core ---------------------------------------------------------------------

    def convert(self, frame: Frame | None) -> list[Frame]:
        """The output frames that ``frame`` completes; ``None`` ends the stream (drains the codecs).

        After the end the transcoder starts afresh: the next frame begins a new timeline. Broken
        frames are counted in :attr:`errors` and skipped; nothing raises. Call it from one thread
        at a time (:meth:`push` does so from the worker).
        """
        start = time.thread_time()
        try:
            if frame is None:
                return self._drain()
            self.frames_in += 1
            return self._convert(frame)
        except (av.FFmpegError, ValueError):  # a codec or the resampler gave up on this frame
            self.errors += 1
            return []
        finally:
            self.seconds_busy += time.thread_time() - start

    def _convert(self, frame: Frame) -> list[Frame]:
        if not usable(frame, "audio", self.source):
            self.errors += 1
            return []
        decoded = self._decoder.decode(Packet(frame.payload[0]))
        if not decoded:
            return []
        duration = sum(f.samples for f in decoded) / decoded[0].sample_rate
        silence = self._timeline.place(frame.pts, frame.rtp_time, frame.clock_rate, duration)
        if silence:
            self._silence(silence)
        out: list[Frame] = []
        for audio in decoded:
            self._resample(audio, out)
        return out

    def _silence(self, samples: int) -> None:
        silence = AudioFrame(format=_FORMATS[self.target], layout=self._layout, samples=samples)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        silence.sample_rate = self.sample_rate
        self._fifo.write(silence)
        self._timeline.written += samples

    def _resample(self, audio: AudioFrame | None, out: list[Frame]) -> None:
        """Decoded samples (``None``: the resampler's tail) → FIFO → whole encoder frames → ``out``."""
        if audio is not None:
            shape = (audio.format.name, audio.layout.name, audio.sample_rate)
            if shape != self._input_shape:  # the first frame, or the input changed: a new resampler
                if self._resampler is not None:
                    self._resample(None, out)
                self._resampler = AudioResampler(_FORMATS[self.target], self._layout, self.sample_rate)
                self._input_shape = shape
            audio.pts = None
        if self._resampler is None:
            return
        for converted in self._resampler.resample(audio):
            converted.pts = None
            self._fifo.write(converted)
            self._timeline.written += converted.samples
        self._encode(out, partial=False)

    def _encode(self, out: list[Frame], partial: bool) -> None:
        fifo, size = self._fifo, self.frame_samples
        if self._trim and fifo.samples:
            dropped = fifo.read(min(self._trim, fifo.samples))
            self._trim -= dropped.samples if dropped is not None else 0
        while fifo.samples >= size or (partial and fifo.samples):
            chunk = fifo.read(size, partial=partial)
            if chunk is None:
                break
            chunk.pts, chunk.time_base = self._encoded, self._time_base
            self._encoded += chunk.samples
            out += [self._stamp(packet) for packet in self._encoder.encode(chunk)]

    def _stamp(self, packet: Packet[Any]) -> Frame:
        """The output frame of an encoded packet: its timeline position is its first sample's."""
        rtp_time, pts = self._timeline.stamp(self._emitted)
        self._emitted += self.frame_samples
        self.frames_out += 1
        return Frame("audio", self.target, (bytes(packet),), rtp_time, self.sample_rate, True, pts)

    def _drain(self) -> list[Frame]:
        out: list[Frame] = []
        try:
            for audio in self._decoder.decode(None):
                self._resample(audio, out)
            self._resample(None, out)
            self._encode(out, partial=True)
            if self._encoded:
                out += [self._stamp(packet) for packet in self._encoder.encode(None)]
        finally:
            self._open()
        return out
