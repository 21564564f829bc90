"""Audio transcoding, the one transcode of the server: AAC (RTMP) ↔ Opus (WebRTC), off the event loop.

:class:`~.audio.AudioTranscoder` converts one stream's frames (:class:`rtcdn.rtp.frame.Frame`) on a
worker thread of its own; :mod:`.asc` reads and writes the AAC AudioSpecificConfig that RTMP's
sequence header carries. Video is never transcoded. Besides :mod:`rtcdn.rtp` this package imports
only PyAV.
"""

from .asc import AudioSpecificConfig, audio_specific_config, parse_asc
from .audio import AudioTranscoder
from .timeline import GAP_FILL_LIMIT, Timeline

__all__ = [
    "GAP_FILL_LIMIT",
    "AudioSpecificConfig",
    "AudioTranscoder",
    "Timeline",
    "audio_specific_config",
    "parse_asc",
]
