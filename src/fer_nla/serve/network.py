"""Checks on the address a server is to listen on, made before the model is loaded."""

from __future__ import annotations

import errno
import socket

from fer_nla.errors import InputError


def check_port_free(host: str, port: int) -> None:
    """Raises :class:`InputError` when ``host:port`` cannot be listened on: the port is taken
    (naming the fix: another ``port=``), the address is not this machine's, or the name does
    not resolve. The socket is closed again at once (another program may still take the port
    before the server binds it; the server then reports that itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise InputError(f"host={host!r}: cannot resolve it ({err.strerror}); give an address such as "
                         "host='127.0.0.1'") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                other = port + 1 if port < 65535 else 8000
                raise InputError(f"port={port} on {host} is already in use (another server?); stop it or choose "
                                 f"another port, e.g. port={other}") from None
            if err.errno == errno.EADDRNOTAVAIL:
                raise InputError(f"host={host!r} is not an address of this machine; use host='127.0.0.1' (this "
                                 "machine only) or host='0.0.0.0' (every network)") from None
            if err.errno == errno.EACCES:
                raise InputError(f"port={port} needs administrator rights on this system; choose port=1024 or "
                                 "higher, e.g. port=8000") from None
            raise
