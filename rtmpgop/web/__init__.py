"""Static pages served by the HTTP front end (viewer, stream list, LL-HLS player)."""
