"""Who is calling: the principal of the request's bearer token, or the public."""

from __future__ import annotations

from flask import g, request

from domain.permissions import check_permitted
from web.app import door
from workflows.reads import Reader
from workflows.tokens import TokenRefused, Tokens


def caller() -> Reader:
    """The token's principal; without an Authorization header, the public. A header that is
    present must hold a genuine token (else 401), never falls back to the public."""
    if "caller" in g:
        found: Reader = g.caller
        return found
    header = request.headers.get("Authorization")
    with door().window() as win:
        if header is None:
            reader = win.public
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise TokenRefused("not a bearer token")
            reader = Tokens(win.ledger).authenticate(token)
    g.caller = reader
    return reader


def signer(command: str) -> Reader:
    """The caller, who must hold a token (401 without one) and may run ``command`` (403 if not;
    docs/PERMISSIONS.md): for a write, the authority whose key signs what the request writes;
    for a read only token holders make (the query log, the checks, the tokens), the reader."""
    reader = caller()
    if reader.role == "public":
        raise TokenRefused("a write needs a token")
    check_permitted(command, reader.name, reader.role)
    return reader
