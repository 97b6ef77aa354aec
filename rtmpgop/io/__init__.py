"""The only code that imports asyncio, uvloop or socket: servers, protocol adapters, HTTP and
WebSocket front ends, worker threads. Adapters stay short and hold no protocol logic."""
