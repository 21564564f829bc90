"""Moved to :mod:`rtcdn.wcs.client`; this re-export goes once relay.py and __init__.py import from there."""

from ..wcs.client import AgentError as AgentError
from ..wcs.client import WcsAgent as WcsAgent
from ..wcs.client import agent_url as agent_url
