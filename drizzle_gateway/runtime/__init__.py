"""The runtime layer: sessions, dispatch, fan-out, deadlines, the request runner, pacing, limits, auth.

It knows nothing of Tornado: a session speaks to its peer through `peer.Peer`.
Imports the wire, schema, brokers and contract layers.
"""
