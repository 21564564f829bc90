"""The human side of the HTTP ports: the index page, the WebSDK demo pages under ``/client2/`` and
WCS's ``/?action=stat`` node statistics."""

from .site import DEMOS, EMBED_PLAYER, Pages

__all__ = ["DEMOS", "EMBED_PLAYER", "Pages"]
