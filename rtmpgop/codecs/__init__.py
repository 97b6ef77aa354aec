"""Codec bitstream helpers: NAL/OBU types, SPS parsing, config records, CODECS strings."""
