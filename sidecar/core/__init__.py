"""Plain vocabulary shared by every layer: status codes, errors, deadlines, calls, clocks.

Nothing here performs I/O or imports grpc or aiohttp.
"""
