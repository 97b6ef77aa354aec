"""The GoP channel hub: Hub -> Channel(path) -> GoP ring -> Subscription cursors (DESIGN.md 1)."""

from rtmpgop.channels.channel import Channel
from rtmpgop.channels.gop import GoP
from rtmpgop.channels.hub import Hub, InvalidPath, normalize_path
from rtmpgop.channels.subscription import Subscription

__all__ = ["Channel", "GoP", "Hub", "InvalidPath", "Subscription", "normalize_path"]
