"""Serving the review app: on a socket bound before uvicorn starts (a taken port is one clear error), loopback by
default, with a warning for any other address; and in a background thread, for tests and screenshots.

Whatever the address, the app answers only ``Host`` headers that are an IP address or one of the names of
:func:`allowed_hosts`: a page of another site that rebinds its name to this machine (DNS rebinding) is refused."""

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
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, any of 127.0.0.0/8 or ``::1``, or ``localhost``) reaches this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The names a ``Host`` header may give to a server bound to ``host`` (IP addresses are always accepted): the
    loopback names, ``host`` itself, ``extra`` (``--allow-host``) and, beyond loopback, this machine's name."""
    names = {*LOOPBACK_NAMES, host.lower(), *(name.lower() for name in extra)}
    if not is_loopback(host):
        hostname = socket.gethostname().lower()
        names |= {hostname, hostname.partition(".")[0]}
    return sorted(names)


def check_address(host: str, port: int) -> None:
    """Refuse an empty ``host`` and a ``port`` outside 0 (any free one) to 65535, before anything else is done.

    Raises:
        UserInputError: naming ``--host`` or ``--port``.
    """
    if not host.strip():
        raise UserInputError("--host is empty: give an address such as 127.0.0.1 (this machine only) or 0.0.0.0")
    if not 0 <= port <= 65535:
        raise UserInputError(f"--port {port}: expected 0 (any free port) to 65535")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one).

    Raises:
        UserInputError: naming ``--host`` / ``--port`` when the address cannot be bound.
    """
    check_address(host, port)
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


def serve(app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, out: TextIO | None = None) -> None:
    """Serve ``app`` until Ctrl-C (then one line, no traceback); prints the address (and a warning when it is not
    loopback) to ``out`` (default: the standard error). Opens no browser."""
    check_address(host, port)
    out = out or sys.stderr
    if not is_loopback(host):
        print(
            f"warning: serving on {host}: anyone who can reach this machine on port {port} can see these images and "
            "write labels (there is no login); requests are answered only when they name this machine by an "
            "address or a known name (a page of another site rebinding its name to this machine, DNS rebinding, is "
            "refused); use the default --host 127.0.0.1 unless you mean it",
            file=out,
        )
    sock = bind(host, port)
    print(f"semiyolo review: open {base_url(host, sock)}/ (Ctrl-C stops)", file=out, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        print("semiyolo review: stopped", file=out, flush=True)
    finally:
        sock.close()


def base_url(host: str, sock) -> str:
    """``http://host:port`` of a bound socket, an IPv6 address in brackets."""
    return f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"


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
        yield base_url(host, sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
