"""``vigil features serve``: Feast's HTTP feature server with its write endpoints closed.

Feast's app answers reads (``POST /get-online-features``) and writes (``/push``,
``/write-to-online-store``, ``/materialize*``) alike, with no credential. Vigil serves it behind
one gate:

- reads (:data:`READ_PATHS`) are open to whoever can reach the address;
- every other path needs ``Authorization: Bearer <VIGIL_FEATURES_TOKEN>`` (401 without one, 403
  with a wrong one); with no token configured those paths do not exist (404);
- the server binds 127.0.0.1 unless ``--host`` says otherwise, and a non-loopback address needs a
  token, so nothing reachable from another machine can write.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

# (method, path) pairs anyone who reaches the server may call.
READ_PATHS = frozenset(
    {
        ("GET", "/health"),
        ("POST", "/get-online-features"),
        ("POST", "/retrieve-online-documents"),
    }
)
REGISTRY_TTL_SEC = 5


class WriteGate:
    """ASGI middleware: reads pass; anything else needs the bearer token (404 with none set)."""

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in READ_PATHS:
            await self.app(scope, receive, send)
            return
        status = self._refusal(dict(scope.get("headers") or []).get(b"authorization", b""))
        if status is None:
            await self.app(scope, receive, send)
            return
        detail = {
            401: "this endpoint needs Authorization: Bearer <VIGIL_FEATURES_TOKEN>",
            403: "wrong token",
            404: "not found (this server serves reads only)",
        }[status]
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, authorization: bytes) -> int | None:
        """The status that refuses a non-read request, or None when it may pass."""
        if not self.token:
            return 404
        scheme, _, given = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return 401
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return 403
        return None


def create_app():
    """The gated Feast app for the current settings (uvicorn's factory, once per worker)."""
    from feast.feature_server import get_app
    from feast.permissions.server.utils import (
        ServerType,
        init_auth_manager,
        init_security_manager,
        str_to_auth_manager_type,
    )

    from vigil.serving.features import store

    fs = store()
    auth_type = str_to_auth_manager_type(fs.config.auth_config.type)
    init_security_manager(auth_type=auth_type, fs=fs)
    init_auth_manager(
        auth_type=auth_type, server_type=ServerType.REST, auth_config=fs.config.auth_config
    )
    return WriteGate(get_app(fs, REGISTRY_TTL_SEC), config.features_token())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int) -> None:
    """Refuse, in one sentence, a port out of range or in use and a public address without a token."""
    if not 1 <= port <= 65535:
        raise UserError(f"port {port} is not a TCP port: pass --port between 1 and 65535.")
    if not is_loopback(host) and not config.features_token():
        raise UserError(
            f"serving on {host} (beyond 127.0.0.1) needs a token: set VIGIL_FEATURES_TOKEN "
            "or drop --host."
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"port {port} on {host} is in use or not available ({exc.strerror}): "
                "stop what runs there or pass another --port."
            ) from None


def serve(port: int = 6566, host: str = "127.0.0.1", workers: int = 1) -> None:
    """Run the gated feature server; blocks until stopped."""
    import uvicorn

    from vigil.serving.features import _require_applied, store
    from vigil.serving.online_check import check_online_store

    check_address(host, port)
    fs = store()
    _require_applied(fs)
    check_online_store()  # SQLite: never serve values read from a damaged file
    writes = "writes with the bearer token" if config.features_token() else "reads only"
    log.info(
        "feast: serving %s on http://%s:%d (%s online store, %s)",
        fs.project,
        host,
        port,
        config.online_store(),
        writes,
    )
    uvicorn.run(
        "vigil.serving.server:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )
