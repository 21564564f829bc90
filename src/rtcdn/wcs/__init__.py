"""The WCS front end: the Flashphoner WebSDK protocol over WebSocket (``handler``, ``session``), its
wire format (``messages``), the core's words in WCS's (``records``) and the client side that relays
use to talk to another WCS-protocol server."""
