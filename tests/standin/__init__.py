"""Scripted stand-in upstream servers used by the end-to-end tests.

A stand-in plays the part of dockerd on a unix socket.  It records every
byte it receives on every connection and answers according to the request
path (see ``server.py`` for the list of scripted behaviours).
"""

from .server import ConnRecord, Request, Standin

__all__ = ["ConnRecord", "Request", "Standin"]
