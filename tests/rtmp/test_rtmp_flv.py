"""rtmp.flv and rtmp.codecs: tag bodies both ways, real libx264/AAC/Opus data (PyAV), E-RTMP from FFmpeg 9."""

from __future__ import annotations

import random

import pytest
from rtmp_media import FFMPEG9, audio, ffmpeg_flv, flv_file_tags, h264

from rtcdn.rtmp import amf0, flv
from rtcdn.rtmp.codecs import AudioSpecificConfig, AvcConfig, OpusHead, join_avcc, split_annexb, split_avcc
from rtcdn.rtmp.errors import FlvError
from rtcdn.rtmp.flv import AudioPacketType, AudioTag, FrameType, PacketType, VideoTag


def test_avc_configuration_record_of_real_libx264() -> None:
    stream = h264()
    config = AvcConfig.parse(stream.config)
    assert config.length_size == 4 and len(config.sps) == 1 and len(config.pps) == 1
    assert config.sps[0][0] & 0x1F == 7 and config.pps[0][0] & 0x1F == 8
    assert (config.profile, config.compatibility, config.level) == tuple(config.sps[0][1:4])
    assert config.build() == stream.config
    assert AvcConfig.from_parameter_sets(config.sps, config.pps).build() == stream.config
    keyframes = [ts for ts, key, _ in stream.frames if key]
    assert keyframes == [0, 1000, 2000]
    for _, key, au in stream.frames:
        units = split_avcc(au)
        assert units and all(u[0] & 0x1F in ((5, 6) if key else (1, 6)) for u in units)
        assert join_avcc(units) == au


def test_avc_config_keeps_extension_and_refuses_bad_records() -> None:
    record = bytes.fromhex("01640028ffe1000467640028") + bytes.fromhex("01000468ee3cb0") + b"\xfd\xf8\xf8\x00"
    config = AvcConfig.parse(record)
    assert config.profile == 100 and config.extension == b"\xfd\xf8\xf8\x00" and config.build() == record
    for bad, message in [
        (record[:5], "truncated"),
        (b"\x02" + record[1:], "version 2"),
        (record[:4] + b"\xfe" + record[5:], "length size 3"),
        (record[:9], "SPS is truncated"),
        (record[:12], "truncated"),
    ]:
        with pytest.raises(FlvError, match=message):
            AvcConfig.parse(bad)
    with pytest.raises(FlvError, match="SPS of at least 4 bytes"):
        AvcConfig.from_parameter_sets([b"\x67"], [])


@pytest.mark.parametrize("length_size", [1, 2, 4])
def test_avcc_framing(length_size: int) -> None:
    units = [b"\x65" + bytes(range(50)), b"\x06\x05", b"\x41" * 200]
    data = join_avcc(units, length_size) if length_size > 1 else join_avcc(units[:2], 1)
    expected = units if length_size > 1 else units[:2]
    assert split_avcc(data, length_size) == expected
    with pytest.raises(FlvError, match="overruns"):
        split_avcc(data[:-1], length_size)
    if length_size > 1:
        with pytest.raises(FlvError, match="length prefix is cut"):
            split_avcc(data + b"\x00", length_size)


def test_annexb_split() -> None:
    data = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88\x80\x00\x00"
    assert split_annexb(data) == [b"\x67\x42", b"\x68\xce", b"\x65\x88\x80"]
    assert split_annexb(b"no start code") == []


def test_legacy_avc_tags_both_ways() -> None:
    stream = h264()
    header = VideoTag("avc1", FrameType.KEY, PacketType.SEQUENCE_START, 0, stream.config)
    body = flv.build_video(header)
    assert body[:5] == b"\x17\x00\x00\x00\x00"
    assert flv.parse_video(body) == header and header.sequence_header and header.keyframe
    for cts in (0, 40, -40, 0x7FFFFF, -0x800000):
        tag = VideoTag("avc1", FrameType.INTER, PacketType.CODED_FRAMES, cts, stream.frames[1][2])
        assert flv.parse_video(flv.build_video(tag)) == tag and not tag.keyframe
    end = flv.build_video(VideoTag("avc1", FrameType.KEY, PacketType.SEQUENCE_END))
    assert end == b"\x17\x02\x00\x00\x00" and flv.parse_video(end).packet_type == PacketType.SEQUENCE_END
    with pytest.raises(ValueError, match="no packet type 3"):
        flv.build_video(VideoTag("avc1", 1, PacketType.CODED_FRAMES_X))
    with pytest.raises(FlvError, match="unknown AVCPacketType 5"):
        flv.parse_video(b"\x17\x05\x00\x00\x00")
    with pytest.raises(FlvError, match="truncated"):
        flv.parse_video(b"\x17\x01")
    command = flv.parse_video(b"\x57\x01")  # a legacy command frame: "end of client-side seeking"
    assert command.codec == "" and command.frame_type == FrameType.COMMAND and command.data == b"\x01"


@pytest.mark.parametrize(("codec_id", "name"), [(2, "unknown:2"), (4, "unknown:4"), (12, "unknown:12")])
def test_unknown_legacy_video_codecs(codec_id: int, name: str) -> None:
    tag = flv.parse_video(bytes([0x10 | codec_id]) + b"data")
    assert (tag.codec, tag.keyframe, tag.data) == (name, True, b"data")


def test_aac_from_pyav() -> None:
    aac = audio("aac")
    asc = AudioSpecificConfig.parse(aac.config)  # 11 88 56 e5 00: LC, 48 kHz, mono + SBR sync extension
    assert (asc.object_type, asc.sample_rate, asc.channels) == (2, 48000, 1)
    assert asc.build() == aac.config[:2]
    header = flv.build_audio(AudioTag("mp4a", AudioPacketType.SEQUENCE_START, aac.config))
    assert header[:2] == b"\xaf\x00"
    parsed = flv.parse_audio(header)
    assert (parsed.codec, parsed.sample_rate, parsed.channels, parsed.enhanced) == ("mp4a", 48000, 1, False)
    frame = flv.parse_audio(flv.build_audio(AudioTag("mp4a", AudioPacketType.CODED_FRAMES, aac.frames[3][1])))
    assert frame == AudioTag("mp4a", AudioPacketType.CODED_FRAMES, aac.frames[3][1])
    enhanced = flv.build_audio(AudioTag("mp4a", AudioPacketType.SEQUENCE_START, aac.config, enhanced=True))
    assert enhanced[:5] == b"\x90mp4a" and flv.parse_audio(enhanced).sample_rate == 48000


@pytest.mark.parametrize(
    ("asc", "expected"),
    [
        (AudioSpecificConfig(2, 44100, 2), "1210"),
        (AudioSpecificConfig(2, 8000, 1), "1588"),
        (AudioSpecificConfig(5, 24000, 2), "2b10"),
        (AudioSpecificConfig(2, 12345, 8), "1780181cb8"),  # explicit frequency, 7.1 is config 7
        (AudioSpecificConfig(42, 48000, 2), "f94640"),  # escaped object type (USAC)
    ],
)
def test_audio_specific_config_build_parse(asc: AudioSpecificConfig, expected: str) -> None:
    assert asc.build().hex() == expected
    assert AudioSpecificConfig.parse(asc.build()) == asc


def test_audio_specific_config_refuses() -> None:
    with pytest.raises(FlvError, match="frequency index 13"):
        AudioSpecificConfig.parse(bytes.fromhex("1688"))
    with pytest.raises(FlvError, match="channel configuration 9"):
        AudioSpecificConfig.parse(bytes.fromhex("1248"))
    with pytest.raises(FlvError, match="truncated"):
        AudioSpecificConfig.parse(b"\x17\x80")
    with pytest.raises(FlvError, match="truncated"):
        flv.parse_audio(b"\xaf\x00\x12")


def test_opus_head_from_pyav_and_enhanced_opus_tags() -> None:
    opus = audio("libopus")
    head = OpusHead.parse(opus.config)
    assert (head.channels, head.input_sample_rate, head.mapping_family) == (1, 48000, 0)
    assert head.build() == opus.config
    start = flv.build_audio(AudioTag("Opus", AudioPacketType.SEQUENCE_START, opus.config))
    assert start[:5] == b"\x90Opus"
    tag = flv.parse_audio(start)
    assert (tag.codec, tag.sample_rate, tag.channels, tag.enhanced, tag.sequence_header) == (
        "Opus",
        48000,
        1,
        True,
        True,
    )
    frame = flv.build_audio(AudioTag("Opus", AudioPacketType.CODED_FRAMES, opus.frames[1][1]))
    assert frame[:1] == b"\x91" and flv.parse_audio(frame).data == opus.frames[1][1]
    surround = OpusHead(6, mapping_family=1, mapping=bytes([4, 2, 0, 4, 1, 2, 3, 5]))
    assert OpusHead.parse(surround.build()) == surround
    with pytest.raises(FlvError, match="OpusHead"):
        OpusHead.parse(b"OpusTags" + bytes(11))
    with pytest.raises(FlvError, match="0 channels"):
        OpusHead.parse(b"OpusHead\x01\x00" + bytes(9))


@pytest.mark.parametrize(
    ("body", "codec", "rate", "channels"),
    [
        (b"\x72g711", "pcma", 8000, 1),
        (b"\x83u", "pcmu", 8000, 2),
        (b"\xb2spx", "speex", 16000, 1),
        (b"\x2f\xff\xfb", ".mp3", 44100, 2),
        (b"\x66nelly", "unknown:6", 11025, 1),
        (b"\xf0", "unknown:15", 5512, 1),
    ],
)
def test_legacy_audio_codecs(body: bytes, codec: str, rate: int, channels: int) -> None:
    tag = flv.parse_audio(body)
    assert (tag.codec, tag.sample_rate, tag.channels, tag.data) == (codec, rate, channels, body[1:])


def test_g711_build() -> None:
    assert flv.build_audio(AudioTag("pcma", AudioPacketType.CODED_FRAMES, b"x", channels=1)) == b"\x72x"
    assert flv.build_audio(AudioTag("pcmu", AudioPacketType.CODED_FRAMES, b"x", channels=2)) == b"\x83x"
    with pytest.raises(ValueError, match="codec 'speex'"):
        flv.build_audio(AudioTag("speex", AudioPacketType.CODED_FRAMES, b"x"))


@pytest.mark.parametrize("fourcc", ["avc1", "hvc1", "vp08", "vp09", "av01"])
def test_enhanced_video_tags_both_ways(fourcc: str) -> None:
    cts = 80 if fourcc in ("avc1", "hvc1") else 0
    for tag in [
        VideoTag(fourcc, FrameType.KEY, PacketType.SEQUENCE_START, 0, b"config", True),
        VideoTag(fourcc, FrameType.KEY, PacketType.CODED_FRAMES, cts, b"frame", True),
        VideoTag(fourcc, FrameType.INTER, PacketType.CODED_FRAMES_X, 0, b"frame", True),
        VideoTag(fourcc, FrameType.KEY, PacketType.SEQUENCE_END, 0, b"", True),
        VideoTag(fourcc, FrameType.COMMAND, PacketType.METADATA, 0, amf0.encode("colorInfo", {}), True),
    ]:
        body = flv.build_video(tag)
        assert body[0] & 0x80 and body[1:5] == fourcc.encode()
        assert flv.parse_video(body) == tag
    head = flv.build_video(VideoTag(fourcc, FrameType.KEY, PacketType.CODED_FRAMES, cts, b"x", True))
    assert len(head) == 1 + 4 + (3 if cts else 0) + 1


def test_enhanced_video_modex_command_multitrack_unknown() -> None:
    # ModEx (TimestampOffsetNano, 3 bytes of data) then CodedFramesX
    modex = (
        bytes([0x80 | 1 << 4 | PacketType.MODEX, 2]) + b"\x00\x01\x02" + bytes([0 << 4 | 3]) + b"hvc1" + b"F"
    )
    tag = flv.parse_video(modex)
    assert (tag.codec, tag.packet_type, tag.data) == ("hvc1", PacketType.CODED_FRAMES_X, b"F")
    big = (
        bytes([0x80 | 1 << 4 | PacketType.MODEX, 255]) + (299).to_bytes(2, "big") + bytes(300) + b"\x01av01Z"
    )
    assert flv.parse_video(big).data == b"Z" and flv.parse_video(big).codec == "av01"
    command = flv.parse_video(bytes([0x80 | 5 << 4 | PacketType.CODED_FRAMES, 1]))
    assert (command.codec, command.frame_type, command.data) == ("", FrameType.COMMAND, b"\x01")
    multi = flv.parse_video(
        bytes([0x80 | 1 << 4 | PacketType.MULTITRACK, 0 << 4 | 1]) + b"hvc1" + b"\x00rest"
    )
    assert (multi.codec, multi.packet_type) == ("hvc1", PacketType.MULTITRACK)
    many = flv.parse_video(bytes([0x80 | 1 << 4 | PacketType.MULTITRACK, 2 << 4 | 1]) + b"hvc1\x00")
    assert many.codec == "unknown:multitrack"
    assert flv.parse_video(b"\x91vvc1data").codec == "unknown:vvc1"
    assert flv.parse_video(b"\x91\x00\x01\x02\x03").codec == "unknown:00010203"
    with pytest.raises(FlvError, match="truncated"):
        flv.parse_video(b"\x91hvc1\x00")  # the composition time is cut
    with pytest.raises(ValueError, match="codec 'vvc1'"):
        flv.build_video(VideoTag("vvc1", 1, 1, 0, b"", True))


def test_enhanced_audio_modex_multitrack_multichannel() -> None:
    modex = bytes([0x90 | AudioPacketType.MODEX, 2]) + b"\x00\x00\x10" + bytes([0 << 4 | 1]) + b"Opusframe"
    assert flv.parse_audio(modex).data == b"frame"
    multi = flv.parse_audio(bytes([0x90 | AudioPacketType.MULTITRACK, 0 << 4 | 1]) + b"Opus\x00x")
    assert (multi.codec, multi.packet_type) == ("Opus", AudioPacketType.MULTITRACK)
    # FFmpeg 9 sends this after the Opus sequence start: native order, 1 channel, FrontCenter
    channels = flv.parse_audio(b"\x94Opus\x01\x01\x00\x00\x00\x04")
    assert (channels.packet_type, channels.data) == (
        AudioPacketType.MULTICHANNEL_CONFIG,
        b"\x01\x01\x00\x00\x00\x04",
    )
    assert (
        flv.parse_audio(b"\x91fLaCx").codec == "fLaC"
        and flv.parse_audio(b"\x91abcdx").codec == "unknown:abcd"
    )


def test_classify_for_the_drop_policy() -> None:
    assert flv.classify_video(b"\x17\x00\x00\x00\x00") == (True, True)
    assert flv.classify_video(b"\x17\x01\x00\x00\x00") == (True, False)
    assert flv.classify_video(b"\x27\x01\x00\x00\x00") == (False, False)
    assert flv.classify_video(b"\x90hvc1") == (True, True)
    assert flv.classify_video(b"\x93hvc1") == (True, False)
    assert flv.classify_video(b"\xa3hvc1") == (False, False)
    assert flv.classify_video(b"\xd4hvc1") == (False, True)  # metadata
    assert flv.classify_video(b"\x57\x00") == (False, True)  # command frame
    assert flv.classify_video(b"") == (False, False)
    assert flv.audio_is_config(b"\xaf\x00\x12\x10") and not flv.audio_is_config(b"\xaf\x01x")
    assert flv.audio_is_config(b"\x90OpusHead") and not flv.audio_is_config(b"\x91Opus")
    assert not flv.audio_is_config(b"\x72") and not flv.audio_is_config(b"\x72xx")


def test_metadata_messages() -> None:
    meta = {"width": 320.0, "videocodecid": 7.0}
    sent = flv.build_metadata(meta, set_data_frame=True)
    assert flv.parse_data(sent) == ("onMetaData", [amf0.EcmaArray(meta)])
    assert flv.parse_metadata(sent) == meta and flv.parse_metadata(flv.build_metadata(meta)) == meta
    assert flv.parse_metadata(amf0.encode("|RtmpSampleAccess", True, True)) is None
    assert flv.parse_metadata(amf0.encode("onMetaData", "not a map")) is None
    with pytest.raises(FlvError, match="handler name"):
        flv.parse_data(amf0.encode(1.0))


async def test_enhanced_tags_from_ffmpeg9() -> None:
    """FFmpeg 9's FLV muxer: HEVC/VP9/AV1 in enhanced video tags (SequenceStart, CodedFrames(X),
    Metadata colorInfo), Opus in enhanced audio (with a MultichannelConfig), H.264 + AAC legacy."""
    cases = [
        (("-c:v", "libx265", "-preset", "ultrafast", "-c:a", "libopus"), "hvc1", "Opus"),
        (("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "aac"), "vp09", "mp4a"),
        (("-c:v", "libsvtav1", "-preset", "12", "-c:a", "libopus"), "av01", "Opus"),
        (("-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"), "avc1", "mp4a"),
    ]
    for args, vcodec, acodec in cases:
        tags = flv_file_tags(await ffmpeg_flv(FFMPEG9, *args))
        video = [flv.parse_video(body) for kind, _, body in tags if kind == 9]
        sounds = [flv.parse_audio(body) for kind, _, body in tags if kind == 8]
        assert {t.codec for t in video} == {vcodec} and {a.codec for a in sounds} == {acodec}
        assert video[0].sequence_header and video[0].enhanced == (vcodec != "avc1")
        coded = [t for t in video if t.packet_type in (PacketType.CODED_FRAMES, PacketType.CODED_FRAMES_X)]
        assert coded[0].keyframe and len(coded) >= 10
        if vcodec != "avc1":
            metadata = next(t for t in video if t.packet_type == PacketType.METADATA)
            assert amf0.decode(metadata.data)[0] == "colorInfo"
        assert sounds[0].sequence_header and sounds[0].sample_rate == 48000 and sounds[0].channels == 1
        if acodec == "Opus":
            assert OpusHead.parse(sounds[0].data).channels == 1
            assert sounds[1].packet_type == AudioPacketType.MULTICHANNEL_CONFIG
        meta = flv.parse_metadata(next(body for kind, _, body in tags if kind == 18))
        assert meta is not None and meta["width"] == 160.0


def test_hostile_bodies_raise_only_flv_error() -> None:
    rng = random.Random(11)
    stream = h264()
    samples = [
        flv.build_video(VideoTag("avc1", 1, 0, 0, stream.config)),
        flv.build_video(VideoTag("hvc1", 1, 1, 33, b"frame", True)),
        flv.build_audio(AudioTag("Opus", 0, audio("libopus").config)),
        flv.build_audio(AudioTag("mp4a", 0, audio("aac").config)),
        b"\x97\x02\x00\x01\x02\x03hvc1",
    ]
    parsers = [flv.parse_video, flv.parse_audio, AvcConfig.parse, AudioSpecificConfig.parse, OpusHead.parse]
    for _ in range(3000):
        data = bytearray(rng.choice(samples) if rng.random() < 0.7 else rng.randbytes(rng.randrange(24)))
        for _ in range(rng.randrange(0, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randrange(len(data) + 1)] if rng.random() < 0.5 else data
        for parse in parsers:
            try:
                parse(bytes(data))
            except FlvError:
                pass
        try:
            split_avcc(bytes(data), rng.choice([1, 2, 4]))
        except FlvError:
            pass
