"""AAC ↔ Opus on real media made here with PyAV: a 440 Hz tone, encoded, transcoded, decoded again.

The tone starts after a stretch of silence, so the onset in the decoded output shows where the
transcoder put the input's timeline (A/V sync): its time (output frame pts + sample index) must match
the onset's time in the input within a millisecond.
"""

from __future__ import annotations

import array
import asyncio
import math
import threading
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise
from typing import Literal

import av
import pytest
from av.audio.codeccontext import AudioCodecContext

from rtcdn.rtp.frame import Frame
from rtcdn.transcode import AudioSpecificConfig, AudioTranscoder, audio_specific_config, parse_asc
from rtcdn.transcode.asc import SAMPLE_RATES

BASE = 1000.0
"pts of the input's first sample (seconds)."
ONSET = 0.3
"The tone starts this long after BASE."


def _codec(name: str, mode: Literal["r", "w"]) -> AudioCodecContext:
    context = av.CodecContext.create(name, mode)
    assert isinstance(context, AudioCodecContext)
    return context


def encoded_tone(
    codec: str, rate: int = 48000, channels: int = 2, seconds: float = 1.0
) -> tuple[list[Frame], bytes]:
    """Frames of silence then a 440 Hz tone from ``BASE + ONSET`` (``aac`` or ``opus``), and the extradata.

    Packets are stamped as FFmpeg stamps them (the first at -priming), which is what FLV and RTP carry.
    """
    encoder = _codec("aac" if codec == "aac" else "libopus", "w")
    encoder.sample_rate, encoder.layout = rate, "stereo" if channels == 2 else "mono"
    encoder.format = "fltp" if codec == "aac" else "flt"
    encoder.bit_rate = 128000 if codec == "aac" else 64000
    encoder.time_base = Fraction(1, rate)
    encoder.open()
    size, total, packets = encoder.frame_size, round(seconds * rate), []
    for start in range(0, total, size):
        values = [
            0.0 if i < ONSET * rate else 0.5 * math.sin(2 * math.pi * 440 * i / rate)
            for i in range(start, min(start + size, total))
        ]
        frame = av.AudioFrame(format=encoder.format.name, layout=encoder.layout.name, samples=len(values))
        if codec == "aac":
            for plane in frame.planes:
                plane.update(array.array("f", values).tobytes())
        else:
            frame.planes[0].update(array.array("f", [v for v in values for _ in range(channels)]).tobytes())
        frame.sample_rate, frame.pts, frame.time_base = rate, start, encoder.time_base
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    clock = rate if codec == "aac" else 48000
    frames = [
        Frame(
            "audio",
            codec,
            (bytes(p),),
            (0xFFFFF000 + (p.pts or 0)) & 0xFFFFFFFF,
            clock,
            True,
            BASE + (p.pts or 0) / rate,
        )
        for p in packets
    ]
    return frames, encoder.extradata or b""


def decoded(
    codec: str, frames: list[Frame], extradata: bytes | None = None
) -> list[tuple[float, list[float]]]:
    """(pts, first channel's samples) of each frame, decoded with PyAV; rate 48000 unless AAC says otherwise."""
    decoder = _codec(codec, "r")
    if codec == "opus":
        decoder.sample_rate, decoder.layout = 48000, "stereo"
    if extradata:
        decoder.extradata = extradata
    out = []
    for frame in frames:
        samples: list[float] = []
        for audio in decoder.decode(av.Packet(frame.payload[0])):
            assert audio.format.name in ("fltp", "flt")
            step = 1 if audio.format.is_planar else audio.layout.nb_channels
            samples += memoryview(bytes(audio.planes[0])).cast("f")[: audio.samples * step : step].tolist()
        out.append((frame.pts, samples))
    return out


def onset(timed: list[tuple[float, list[float]]], rate: int) -> float:
    return next(pts + i / rate for pts, samples in timed for i, v in enumerate(samples) if abs(v) > 0.05)


def frequency(samples: list[float], rate: int) -> float:
    """From upward zero crossings: numpy-free and good to a few Hz over half a second."""
    ups = [i for i in range(1, len(samples)) if samples[i - 1] < 0 <= samples[i]]
    return (len(ups) - 1) * rate / (ups[-1] - ups[0])


def run(transcoder: AudioTranscoder, frames: list[Frame]) -> list[Frame]:
    out = [f for frame in frames for f in transcoder.convert(frame)]
    return out + transcoder.convert(None)


def check_tone(
    out: list[Frame], frames: list[Frame], timed: list[tuple[float, list[float]]], rate: int
) -> None:
    """Starts at the input's pts, monotonic, tone in place and at 440 Hz, duration kept within a frame."""
    assert out[0].pts == frames[0].pts
    assert all(b.pts > a.pts for a, b in pairwise(out))
    assert onset(timed, rate) == pytest.approx(BASE + ONSET, abs=0.001)  # A/V sync kept
    samples = [v for _, chunk in timed for v in chunk]
    tone = samples[round((ONSET + 0.05) * rate) : round((ONSET + 0.45) * rate)]
    assert frequency(tone, rate) == pytest.approx(440, abs=3)
    in_frame = 1024 / frames[0].clock_rate if frames[0].codec == "aac" else 0.02
    span_in = frames[-1].pts + in_frame - frames[0].pts
    out_frame = out[1].pts - out[0].pts
    assert abs(len(samples) / rate - span_in) < out_frame


@pytest.mark.parametrize("rate", [48000, 44100])
def test_aac_to_opus(rate: int) -> None:
    frames, asc = encoded_tone("aac", rate)
    transcoder = AudioTranscoder("aac", "opus", extradata=asc)
    assert transcoder.source_config == AudioSpecificConfig(2, rate, 2)
    out = run(transcoder, frames)
    assert {(f.codec, f.clock_rate, f.kind, f.keyframe) for f in out} == {("opus", 48000, "audio", True)}
    assert transcoder.priming == 312 and transcoder.frame_samples == 960
    assert all(f.pts - e.pts == pytest.approx(0.02) for e, f in pairwise(out))
    assert out[0].rtp_time == round(frames[0].rtp_time * 48000 / rate) & 0xFFFFFFFF
    assert all((f.rtp_time - e.rtp_time) & 0xFFFFFFFF == 960 for e, f in pairwise(out))
    timed = decoded("opus", out)
    assert {len(s) for _, s in timed} == {960}
    check_tone(out, frames, timed, 48000)
    assert 40 < sum(f.size for f in out) * 8 / len(out) / 0.02 / 1000 < 90  # kbps, ~64
    assert (transcoder.frames_in, transcoder.frames_out, transcoder.errors) == (len(frames), len(out), 0)
    assert transcoder.seconds_busy > 0


def test_opus_to_aac() -> None:
    frames, _ = encoded_tone("opus")
    transcoder = AudioTranscoder("opus", "aac")
    assert parse_asc(transcoder.extradata) == AudioSpecificConfig(2, 48000, 2)
    out = run(transcoder, frames)
    assert {(f.codec, f.clock_rate) for f in out} == {("aac", 48000)}
    assert out[0].rtp_time == frames[0].rtp_time  # same clock; the input's wraps past 2**32, so do they
    assert all((f.rtp_time - e.rtp_time) & 0xFFFFFFFF == 1024 for e, f in pairwise(out))
    check_tone(out, frames, decoded("aac", out, transcoder.extradata), 48000)


def test_aac_output_at_another_rate_and_mono() -> None:
    transcoder = AudioTranscoder("opus", "aac", sample_rate=44100, channels=1, bit_rate=64000)
    assert parse_asc(transcoder.extradata) == AudioSpecificConfig(2, 44100, 1)
    frames, _ = encoded_tone("opus", seconds=0.8)
    out = run(transcoder, frames)
    assert {f.clock_rate for f in out} == {44100}
    check_tone(out, frames, decoded("aac", out, transcoder.extradata), 44100)


def test_adts_input() -> None:
    frames, asc = encoded_tone("aac")
    config = parse_asc(asc)
    index = SAMPLE_RATES.index(config.sample_rate)

    def adts(raw: bytes) -> bytes:
        length = len(raw) + 7
        bits = (
            (0xFFF << 44)
            | (1 << 40)
            | ((config.object_type - 1) << 38)
            | (index << 34)
            | (config.channels << 30)
        )
        bits |= (length << 13) | (0x7FF << 2)
        return bits.to_bytes(7, "big") + raw

    transcoder = AudioTranscoder("aac", "opus")
    out = run(transcoder, [replace(f, payload=(adts(f.payload[0]),)) for f in frames])
    check_tone(out, frames, decoded("opus", out), 48000)


@pytest.mark.parametrize("shift", [0.1, 5.0, -0.15], ids=["gap-filled", "jump-ahead", "jump-back"])
def test_timeline_follows_gaps_and_jumps(shift: float) -> None:
    """Input frames 6..9 go missing, and the next input pts is ``shift`` after where the count expects it.

    Up to GAP_FILL_LIMIT the gap is silence and the output continuous; otherwise the output jumps
    with the input. Either way the tone plays at its input time.
    """
    frames, asc = encoded_tone("aac")
    missing = 4 * 1024 / 48000
    frames = frames[:6] + [replace(f, pts=f.pts - missing + shift) for f in frames[10:]]
    out = run(AudioTranscoder("aac", "opus", extradata=asc), frames)
    steps = {round((b.pts - a.pts) * 48000) for a, b in pairwise(out)}
    assert steps == ({960} if 0 < shift < 1 else {960, 960 + round(shift * 48000)})
    assert onset(decoded("opus", out), 48000) == pytest.approx(BASE + ONSET - missing + shift, abs=0.001)


def test_broken_frames_are_counted_and_skipped() -> None:
    frames, asc = encoded_tone("aac", seconds=0.5)
    junk = [
        replace(frames[1], payload=(b"\xff\xff\xff\xff garbage",)),
        replace(frames[1], payload=(b"",)),
        replace(frames[1], payload=(b"a", b"b")),
        replace(frames[1], codec="opus"),
        replace(frames[1], kind="video"),
    ]
    transcoder = AudioTranscoder("aac", "opus", extradata=asc)
    out = run(transcoder, frames[:5] + junk + frames[5:])
    assert transcoder.errors == len(junk)
    assert transcoder.frames_in == len(frames) + len(junk)
    good = run(AudioTranscoder("aac", "opus", extradata=asc), frames)
    assert [f.pts for f in out] == [f.pts for f in good]


def test_bad_configurations() -> None:
    for args, kwargs in [
        (("aac", "aac"), {}),
        (("opus", "vp8"), {}),
        (("aac", "opus"), {"sample_rate": 44100}),
        (("opus", "aac"), {"channels": 6}),
        (("aac", "opus"), {"extradata": b"\x12"}),
        (("opus", "aac"), {"sample_rate": 12345}),
    ]:
        with pytest.raises(ValueError):
            AudioTranscoder(*args, **kwargs)  # type: ignore[arg-type]


def test_audio_specific_config() -> None:
    for rate in SAMPLE_RATES:
        for channels in (1, 2, 6, 8):
            data = audio_specific_config(rate, channels)
            assert len(data) == 2 and parse_asc(data) == AudioSpecificConfig(2, rate, channels)
    assert audio_specific_config(48000, 2) == bytes.fromhex("1190")
    assert parse_asc(audio_specific_config(50000, 1)) == AudioSpecificConfig(2, 50000, 1)  # explicit rate
    ffmpeg = bytes.fromhex("1190 56e500")  # FFmpeg's encoder appends a sync extension (no SBR)
    assert parse_asc(ffmpeg) == AudioSpecificConfig(2, 48000, 2)
    assert parse_asc(bytes.fromhex("2b920800")) == AudioSpecificConfig(2, 22050, 2, 44100)  # explicit HE-AAC
    escaped = bytes.fromhex("f80640")  # object type 31 + 6 bits: 32, MPEG-1 Layer 1
    assert parse_asc(escaped) == AudioSpecificConfig(32, 48000, 2)
    for bad in (b"", b"\x11", bytes.fromhex("1690"), bytes.fromhex("0190"), bytes.fromhex("11c0")):
        with pytest.raises(ValueError):
            parse_asc(bad)
    for rate, channels, object_type in ((48000, 3 + 4, 2), (48000, 0, 2), (0, 2, 2), (48000, 2, 31)):
        with pytest.raises(ValueError):
            audio_specific_config(rate, channels, object_type)


def _workers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("transcode-")]


async def test_push_converts_off_the_loop_in_order_and_close_ends_the_thread() -> None:
    frames, _ = encoded_tone("opus", seconds=2.0)
    transcoder = AudioTranscoder("opus", "aac")
    loop_thread, threads = threading.current_thread(), set()
    convert = transcoder.convert

    def spy(frame: Frame | None) -> list[Frame]:
        threads.add(threading.current_thread())
        return convert(frame)

    transcoder.convert = spy  # type: ignore[method-assign]
    seen: list[int] = []
    futures = [transcoder.push(frame) for frame in frames] + [transcoder.push(None)]

    async def ticker() -> None:
        while not futures[-1].done():
            seen.append(transcoder.frames_in)
            await asyncio.sleep(0)

    results, _ = await asyncio.gather(asyncio.gather(*futures), ticker())
    assert any(0 < n < len(frames) for n in seen)  # the loop ran while the burst was converted
    assert loop_thread not in threads and {t.name for t in threads} == {"transcode-opus-aac_0"}
    out = [f for chunk in results for f in chunk]
    assert out == run(AudioTranscoder("opus", "aac"), frames)  # in order, same as synchronously
    assert transcoder.pending == 0 and "transcode-opus-aac_0" in _workers()
    await transcoder.close()
    await transcoder.close()
    assert _workers() == []
    assert await transcoder.push(frames[0]) == []


async def test_close_without_pushes_and_concurrently() -> None:
    transcoder = AudioTranscoder("aac", "opus", extradata=audio_specific_config(44100, 2))
    await asyncio.gather(transcoder.close(), transcoder.close())
    assert _workers() == []
