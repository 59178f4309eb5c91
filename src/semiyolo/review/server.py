"""Serving the review app: on a socket bound before uvicorn starts (a taken port is one clear error), loopback by
default, with a warning for any other address; and in a background thread, for tests and screenshots."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

import uvicorn
from fastapi import FastAPI

from ..errors import UserInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str] | None:
    """The ``Host`` headers a server bound to ``host`` accepts: loopback names for a loopback address (a page
    that rebinds its domain to 127.0.0.1 is refused), any for another address."""
    return ["127.0.0.1", "localhost"] if is_loopback(host) else None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one).

    Raises:
        UserInputError: naming ``--host`` / ``--port`` when the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise UserInputError(f"--host {host} --port {port}: cannot listen there ({err.strerror or err})") from None
    return sock


def serve(app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, out: TextIO = sys.stderr) -> None:
    """Serve ``app`` until Ctrl-C; prints the address (and a warning when it is not loopback). Opens no browser."""
    if not is_loopback(host):
        print(
            f"warning: serving on {host}: anyone who can reach this machine on port {port} can see these images and "
            "write labels (there is no login); use the default --host 127.0.0.1 unless you mean it",
            file=out,
        )
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"semiyolo review: open http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C stops)", file=out, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])


@contextlib.contextmanager
def background_server(app: FastAPI, host: str = DEFAULT_HOST, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on a free port of ``host`` in a thread; yields its base URL, stops it on exit."""
    sock = bind(host, 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the review server did not start within {timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
