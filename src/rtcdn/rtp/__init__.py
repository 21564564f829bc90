"""The RTP layer: raw packets in and out (rewrite, sinks, history, keyframes), and the frame
conversions (:mod:`.depacketize`: RTP → access units, :mod:`.packetize`: access units → RTP)."""

from .packet import (
    HISTORY_SIZE,
    KEYFRAME_DETECTORS,
    RTP_HEADER_SIZE,
    KeyframeDetector,
    PacketHistory,
    RtpError,
    RtpRewriter,
    RtpSink,
    TrackInfo,
    Transmit,
    extension_id_map,
    header_length,
    keyframe_detector,
    rewrite_extensions,
    stamp,
    unwrap_rtx,
)

__all__ = [
    "HISTORY_SIZE",
    "KEYFRAME_DETECTORS",
    "RTP_HEADER_SIZE",
    "KeyframeDetector",
    "PacketHistory",
    "RtpError",
    "RtpRewriter",
    "RtpSink",
    "TrackInfo",
    "Transmit",
    "extension_id_map",
    "header_length",
    "keyframe_detector",
    "rewrite_extensions",
    "stamp",
    "unwrap_rtx",
]
