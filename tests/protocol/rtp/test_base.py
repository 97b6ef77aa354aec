"""PacketOrder: the per-packet bookkeeping every depacketizer starts with."""

from rtmpgop.protocol.rtp.base import PacketOrder
from rtmpgop.protocol.rtp.packet import RTPPacket


def test_packet_order_unwraps_timestamps_and_flags_sequence_gaps():
    order = PacketOrder()
    steps = [order.step(RTPPacket(96, seq, ts, 1, b"ab"))
             for seq, ts in ((0xFFFE, 0xFFFFFF00), (0xFFFF, 0xFFFFFF00), (0, 0x100), (2, 0x200))]
    assert [(ts, gap) for ts, gap, _ in steps] == [
        (0xFFFFFF00, False), (0xFFFFFF00, False), ((1 << 32) + 0x100, False),
        ((1 << 32) + 0x200, True)]  # the wrap of both counters is not a gap; seq 1 missing is
    assert all(type(v) is memoryview and bytes(v) == b"ab" for _, _, v in steps)
    data = memoryview(b"xyz")
    assert order.step(RTPPacket(96, 3, 0x200, 1, data))[2] is data  # no new view
