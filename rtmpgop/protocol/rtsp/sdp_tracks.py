"""SDP media <-> ``rtmpgop.media.Track``, and the RTP payload handlers for each track.

Read (ANNOUNCE from a publisher, DESCRIBE answer from a camera), per the digest section 4:
- H.264 (RFC 6184 8.1): ``sprop-parameter-sets`` (base64 SPS,PPS; Annex-B start codes inside
  are stripped; a broken or absent set means "learn in-band"), ``packetization-mode`` 0 or 1
  (2 is refused).
- H.265 (RFC 7798 7.1): ``sprop-vps/sps/pps`` (comma lists, first used); ``sprop-max-don-diff``
  > 0 is refused (DONL fields), as gortsplib does.
- AAC: ``mpeg4-generic`` (RFC 3640) with ``config`` (hex AudioSpecificConfig), ``mode``,
  ``sizelength``...; ``MP4A-LATM`` (RFC 6416) with ``cpresent=0`` and its ``config`` (hex
  StreamMuxConfig).
- Opus (RFC 7587): ``opus/48000/2`` always; mono only when ``sprop-stereo=0``/``stereo=0`` is
  explicit (FFmpeg writes no fmtp for stereo Opus).
- AV1 (``AV1/90000``, AOM AV1 RTP 7.2): the av1C is learned from the in-band sequence
  header (the optional ``profile``/``level-idx``/``tier`` are informative only).
A track whose configuration is not in the SDP has ``CodecConfig(codec)`` with an empty record;
the depacketizer then learns it in-band and returns it with the first frame.

Write (DESCRIBE answer to players): ``media_for_track`` builds the m= section from the
track's configuration record; controls are ``trackID=N``.
"""

from __future__ import annotations

import base64
import binascii

from rtmpgop import codecs
from rtmpgop.codecs import aac as caac
from rtmpgop.codecs import h264 as c264
from rtmpgop.codecs import h265 as c265
from rtmpgop.codecs import opus as copus
from rtmpgop.codecs.bits import BitReader
from rtmpgop.errors import CodecError, SDPError, Unsupported
from rtmpgop.media import VIDEO_CLOCK, Codec, CodecConfig, Track
from rtmpgop.protocol.rtp.aac import (
    AACDepacketizer, AACPacketizer, AUHeaderFormat, LATMDepacketizer)
from rtmpgop.protocol.rtp.av1 import AV1Depacketizer, AV1Packetizer
from rtmpgop.protocol.rtp.h264 import H264Depacketizer, H264Packetizer
from rtmpgop.protocol.rtp.h265 import H265Depacketizer, H265Packetizer
from rtmpgop.protocol.rtp.opus import OpusDepacketizer, OpusPacketizer
from rtmpgop.protocol.rtsp.sdp import MediaDescription

ENCODINGS = {"H264": Codec.H264, "H265": Codec.H265, "AV1": Codec.AV1,
             "MPEG4-GENERIC": Codec.AAC, "MP4A-LATM": Codec.AAC, "OPUS": Codec.OPUS}
DYNAMIC_PT = {Codec.H264: 96, Codec.H265: 96, Codec.AV1: 96, Codec.AAC: 97, Codec.OPUS: 111}


def _b64(value: str) -> bytes:
    v = "".join(value.split())
    v += "=" * (-len(v) % 4)
    try:
        return base64.b64decode(v, validate=False)
    except (binascii.Error, ValueError):
        raise SDPError("bad base64 parameter set", value=value[:40]) from None


def _nals(value: str | None) -> list[bytes]:
    """Parameter sets from a comma list of base64 values (Annex-B prefixes stripped)."""
    if not value:
        return []
    out = []
    for item in value.split(","):
        if item.strip():
            out += [bytes(n) for n in c264.split_annexb(_b64(item))]
    return out


def _hex(value: str | None, what: str) -> bytes:
    try:
        return bytes.fromhex((value or "").strip())
    except ValueError:
        raise SDPError(f"bad hex {what}", value=(value or "")[:40]) from None


def _int(m: MediaDescription, name: str, default: int) -> int:
    v = m.param(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise SDPError(f"bad fmtp {name}", value=v[:20]) from None


def _latm_asc(smc: bytes) -> tuple[bytes, int]:
    """(AudioSpecificConfig, numSubFrames + 1) from a StreamMuxConfig (ISO 14496-3 1.7.3,
    audioMuxVersion 0, one program and layer)."""
    r = BitReader(smc)
    if r.u(1):
        raise Unsupported("LATM audioMuxVersion 1")
    if not r.flag():
        raise Unsupported("LATM without allStreamsSameTimeFraming")
    subframes = r.u(6) + 1
    if r.u(4) or r.u(3):
        raise Unsupported("LATM with several programs or layers")
    aot = r.u(5)
    if aot == 31:
        aot = 32 + r.u(6)
    idx = r.u(4)
    rate = r.u(24) if idx == 15 else caac.SAMPLE_RATES[idx] if idx < len(caac.SAMPLE_RATES) \
        else 0
    ch = r.u(4)
    if not rate:
        raise SDPError("bad LATM sampling frequency index", index=idx)
    return caac.build_asc(aot, rate, caac.CHANNEL_CONFIGS.get(ch, ch)), subframes


def _config(m: MediaDescription, codec: Codec) -> CodecConfig:
    enc = m.encoding.upper()
    try:
        if codec is Codec.H264:
            mode = m.param("packetization-mode", "0").strip()
            if mode == "2":
                raise Unsupported("H.264 packetization-mode=2 (interleaved) is not supported")
            nals = _nals(m.param("sprop-parameter-sets"))
            sps = [n for n in nals if n[0] & 0x1F == 7]
            pps = [n for n in nals if n[0] & 0x1F == 8]
            if sps and pps:
                return codecs.make_config(codec, c264.build_avcc(sps[:1], pps[:1]))
        elif codec is Codec.H265:
            if _int(m, "sprop-max-don-diff", 0) > 0:
                raise Unsupported("H.265 with DONL (sprop-max-don-diff > 0) is not supported")
            vps, sps, pps = (_nals(m.param(k)) for k in ("sprop-vps", "sprop-sps", "sprop-pps"))
            if vps and sps and pps:
                return codecs.make_config(codec, c265.build_hvcc(vps[:1], sps[:1], pps[:1]))
        elif codec is Codec.AAC and enc == "MP4A-LATM":
            if m.param("cpresent", "1") != "0":
                raise Unsupported("MP4A-LATM with in-band StreamMuxConfig (cpresent=1)")
            asc, _ = _latm_asc(_hex(m.param("config"), "config"))
            return codecs.make_config(codec, asc)
        elif codec is Codec.AAC:
            cfg = m.param("config")
            if cfg:
                return codecs.make_config(codec, _hex(cfg, "config"))
        elif codec is Codec.OPUS:
            stereo = m.param("sprop-stereo", m.param("stereo", "1"))
            return codecs.make_config(codec, copus.build_opus_head(1 if stereo == "0" else 2))
    except CodecError:
        pass  # broken or stale parameter sets: learn them in-band
    return CodecConfig(codec, sample_rate=m.clock_rate if codec.kind.value == "audio" else 0)


def track_from_media(m: MediaDescription, track_id: int) -> Track:
    """The hub track announced by one SDP media section.

    Raises ``Unsupported`` for codecs and modes we do not carry, ``SDPError`` on malformed
    parameters.
    """
    codec = ENCODINGS.get(m.encoding.upper())
    if codec is None:
        raise Unsupported("codec not supported", encoding=m.encoding, kind=m.kind)
    clock = VIDEO_CLOCK if codec.kind.value == "video" else m.clock_rate
    if codec is Codec.OPUS:
        clock = copus.OPUS_CLOCK
    return Track(track_id, _config(m, codec), clock)


def depacketizer_for(m: MediaDescription, track: Track):
    """A depacketizer (``push(RTPPacket) -> list[Frame]``) for the track of media ``m``.

    Raises ``Unsupported`` for formats without one and ``SDPError`` on bad RFC 3640
    parameters.
    """
    cfg = track.config if track.config.record else None
    if track.codec is Codec.H264:
        return H264Depacketizer(cfg)
    if track.codec is Codec.AV1:
        return AV1Depacketizer(cfg)
    if track.codec is Codec.H265:
        return H265Depacketizer(cfg)
    if track.codec is Codec.OPUS:
        return OpusDepacketizer(track.config)
    if track.codec is Codec.AAC and m.encoding.upper() == "MPEG4-GENERIC":
        mode = (m.param("mode") or "").lower()
        lbr = mode == "aac-lbr"
        fmt = AUHeaderFormat(
            size_length=_int(m, "sizelength", 6 if lbr else 13),
            index_length=_int(m, "indexlength", 2 if lbr else 3),
            index_delta_length=_int(m, "indexdeltalength", 2 if lbr else 3),
            cts_delta_length=_int(m, "ctsdeltalength", 0),
            dts_delta_length=_int(m, "dtsdeltalength", 0),
            random_access_indication=_int(m, "randomaccessindication", 0) == 1,
            stream_state_indication=_int(m, "streamstateindication", 0),
            auxiliary_data_size_length=_int(m, "auxiliarydatasizelength", 0))
        if not (0 < fmt.size_length <= 32 and fmt.index_length <= 32):
            raise SDPError("bad RFC 3640 AU header lengths", sizelength=fmt.size_length)
        return AACDepacketizer(cfg, fmt)
    if track.codec is Codec.AAC and cfg is not None:  # MP4A-LATM
        _, subframes = _latm_asc(_hex(m.param("config"), "config"))
        return LATMDepacketizer(cfg, subframes)
    raise Unsupported("no depacketizer for this format", encoding=m.encoding)


def media_for_track(track: Track, control: str, payload_type: int | None = None
                    ) -> MediaDescription:
    """The SDP media section announcing ``track`` to a player.

    Raises ``Unsupported`` for codecs RTSP play does not carry (VP9, JPEG, WebP).
    Clients that do not know AV1 over RTP (FFmpeg 5.1) skip such a media.
    """
    cfg = track.config
    pt = payload_type if payload_type is not None else DYNAMIC_PT.get(track.codec, 96)
    if track.codec is Codec.H264:
        fmtp = [("packetization-mode", "1")]
        if cfg.record:
            rec = c264.parse_avcc(cfg.record)
            sets = ",".join(base64.b64encode(n).decode() for n in (*rec.sps[:1], *rec.pps[:1]))
            fmtp.append(("sprop-parameter-sets", sets))
            if rec.sps and len(rec.sps[0]) >= 4:
                fmtp.append(("profile-level-id", rec.sps[0][1:4].hex().upper()))
        return MediaDescription("video", 0, "RTP/AVP", pt, "H264", VIDEO_CLOCK,
                                fmtp=tuple(fmtp), control=control)
    if track.codec is Codec.H265:
        fmtp = []
        if cfg.record:
            rec = c265.parse_hvcc(cfg.record)
            for key, arr in (("sprop-vps", rec.vps), ("sprop-sps", rec.sps),
                             ("sprop-pps", rec.pps)):
                if arr:
                    fmtp.append((key, base64.b64encode(arr[0]).decode()))
        return MediaDescription("video", 0, "RTP/AVP", pt, "H265", VIDEO_CLOCK,
                                fmtp=tuple(fmtp), control=control)
    if track.codec is Codec.AV1:
        return MediaDescription("video", 0, "RTP/AVP", pt, "AV1", VIDEO_CLOCK, control=control)
    if track.codec is Codec.AAC:
        fmtp = (("streamtype", "5"), ("profile-level-id", "1"), ("mode", "AAC-hbr"),
                ("sizelength", "13"), ("indexlength", "3"), ("indexdeltalength", "3"),
                ("config", cfg.record.hex().upper()))
        return MediaDescription("audio", 0, "RTP/AVP", pt, "MPEG4-GENERIC", track.clock_rate,
                                cfg.channels or None, fmtp=fmtp, control=control)
    if track.codec is Codec.OPUS:
        stereo = "1" if cfg.channels != 1 else "0"
        return MediaDescription("audio", 0, "RTP/AVP", pt, "opus", 48000, 2,
                                fmtp=(("sprop-stereo", stereo),), control=control)
    raise Unsupported("codec cannot be played over RTSP", codec=track.codec.value)


def packetizer_for(track: Track, payload_type: int, ssrc: int, **kw):
    """A packetizer (``packetize(payload, pts) -> list[bytes]``) for ``track``.

    ``kw``: ``mtu``, ``initial_seq``, ``initial_timestamp``. Raises ``Unsupported``.
    """
    if track.codec is Codec.H264:
        return H264Packetizer(payload_type, ssrc, config=track.config, **kw)
    if track.codec is Codec.H265:
        return H265Packetizer(payload_type, ssrc, config=track.config, **kw)
    if track.codec is Codec.AV1:
        return AV1Packetizer(payload_type, ssrc, **kw)
    if track.codec is Codec.AAC:
        return AACPacketizer(payload_type, ssrc, **kw)
    if track.codec is Codec.OPUS:
        return OpusPacketizer(payload_type, ssrc, **kw)
    raise Unsupported("codec cannot be played over RTSP", codec=track.codec.value)
