"""Server-to-server relays: rtcdn as a WebSDK client of another WCS-protocol server."""

from ..wcs.client import AgentError, WcsAgent, agent_url
from .relay import Relay, RelayError, RelayManager

__all__ = ["AgentError", "Relay", "RelayError", "RelayManager", "WcsAgent", "agent_url"]
