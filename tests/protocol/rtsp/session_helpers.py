"""In-memory plumbing between ServerConnection and ClientConnection (no sockets)."""

from rtmpgop.protocol.rtsp import events as ev


class ServerApp:
    """A minimal application answering server events the way the io glue will."""

    def __init__(self, server, tracks=None, rtp_info=None):
        self.server = server
        self.tracks = tracks or []
        self.rtp_info = rtp_info or {}
        self.events = []

    def drain(self):
        while (e := self.server.next_event()) is not None:
            self.events.append(e)
            if isinstance(e, ev.DescribeRequest):
                if e.path == "live/x":
                    self.server.accept_describe(self.tracks)
                else:
                    self.server.reject(404)
            elif isinstance(e, ev.AnnounceRequest):
                self.server.accept_announce()
            elif isinstance(e, ev.PlayRequest):
                self.server.accept_play(self.rtp_info)
            elif isinstance(e, ev.RecordRequest):
                self.server.accept_record()

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]


def pump(app, client, now=0.0, rounds=50):
    """Move bytes both ways until nothing moves; returns the client's events."""
    out = []
    for _ in range(rounds):
        moved = False
        for buf in client.data_to_send():
            app.server.receive_data(bytes(buf), now)
            moved = True
        app.drain()
        data = b"".join(bytes(b) for b in app.server.data_to_send())
        if data:
            client.receive_data(data, now)
            moved = True
        while (e := client.next_event()) is not None:
            out.append(e)
        if not moved:
            break
    return out
