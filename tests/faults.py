"""Servers that fail for real, for the fault tests: nothing mocked.

- ``closed_port()``: a local port with nothing behind it (connections are refused at once).
- ``hung_server()``: a listener whose connections are accepted but never answered, like a Redis
  stopped with SIGSTOP or behind a black-holing network: only a client's deadline gets it out.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port nobody listens on; held bound (not listening) so nothing takes it meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def hung_server() -> Iterator[int]:
    """A port whose connections complete and then hear nothing, ever.

    The kernel accepts connections into the listen backlog, so a client's connect succeeds and
    its commands are sent; nobody reads them and nothing is written back.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
