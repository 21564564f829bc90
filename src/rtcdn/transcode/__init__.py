"""Transcoding, only where both ends cannot take the same codec, always off the event loop.

:class:`~.audio.AudioTranscoder`: AAC (RTMP) ↔ Opus (WebRTC), the one unavoidable transcode;
:mod:`.asc` reads and writes the AAC AudioSpecificConfig that RTMP's sequence header carries.
:class:`~.video.VideoTranscoder`: VP8/VP9 → H.264 for RTMP peers, only with
``rtmp_transcode_video=true`` (off by default: such streams are refused to RTMP players). Each
converts one stream's frames (:class:`rtcdn.rtp.frame.Frame`) on a worker thread of its own.
Besides :mod:`rtcdn.rtp` this package imports only PyAV.
"""

from .asc import AudioSpecificConfig, audio_specific_config, parse_asc
from .audio import AudioTranscoder
from .timeline import GAP_FILL_LIMIT, Timeline
from .video import VideoTranscoder, default_bit_rate

__all__ = [
    "GAP_FILL_LIMIT",
    "AudioSpecificConfig",
    "AudioTranscoder",
    "Timeline",
    "VideoTranscoder",
    "audio_specific_config",
    "default_bit_rate",
    "parse_asc",
]
