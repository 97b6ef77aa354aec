"""rtmpgop."""
