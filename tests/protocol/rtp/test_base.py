"""PacketOrder and the Depacketizer base: the per-packet bookkeeping every depacketizer shares."""

from rtmpgop.protocol.rtp.base import Depacketizer, PacketOrder
from rtmpgop.protocol.rtp.packet import RTPPacket


def test_packet_order_unwraps_timestamps_and_flags_sequence_gaps():
    order = PacketOrder()
    steps = [order.step(seq, ts)
             for seq, ts in ((0xFFFE, 0xFFFFFF00), (0xFFFF, 0xFFFFFF00), (0, 0x100), (2, 0x200))]
    assert steps == [
        (0xFFFFFF00, False), (0xFFFFFF00, False), ((1 << 32) + 0x100, False),
        ((1 << 32) + 0x200, True)]  # the wrap of both counters is not a gap; seq 1 missing is


class _Recorder(Depacketizer):
    def __init__(self):
        self.got = []

    def receive(self, seq, timestamp, marker, payload):
        self.got.append((seq, timestamp, marker, payload))
        return []


def test_push_hands_the_packet_fields_to_receive_with_a_memoryview_payload():
    d = _Recorder()
    data = memoryview(b"xyz")
    d.push(RTPPacket(96, 7, 0x200, 1, b"ab", marker=True))
    d.push(RTPPacket(96, 8, 0x300, 1, data))
    (s1, t1, m1, p1), (s2, t2, m2, p2) = d.got
    assert (s1, t1, m1, bytes(p1), type(p1)) == (7, 0x200, True, b"ab", memoryview)
    assert (s2, t2, m2) == (8, 0x300, False) and p2 is data  # no new view
