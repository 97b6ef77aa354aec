"""Sans-IO protocol cores: no sockets, no asyncio, no clock reads (DESIGN.md 4)."""
