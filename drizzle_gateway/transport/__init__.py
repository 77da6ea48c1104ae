"""The transport layer: Tornado's websocket handler, the outbox, the frame reader, the HTTP server, routes.

The one module that touches Tornado's private names is `tornado_internals`.
Imports every layer below it.
"""
