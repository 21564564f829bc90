"""rtcdn: a WebRTC streaming server and CDN speaking the Flashphoner WCS WebSDK protocol."""

import logging

__version__ = "0.1.0"

logging.getLogger("rtcdn").addHandler(logging.NullHandler())
