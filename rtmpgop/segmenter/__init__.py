"""Sans-IO fMP4 and LL-HLS writers."""
