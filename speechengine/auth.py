"""API-key checking: ``Authorization: Bearer <key>`` (the OpenAI SDK's way) or ``Api-Key: <key>``,
compared in constant time against every configured key."""

from __future__ import annotations

import hmac

from speechengine.errors import AuthenticationError


def presented_key(headers) -> str | None:
    key = headers.get("api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def check_api_key(presented: str | None, keys: list[str]) -> None:
    """Raise AuthenticationError (401) unless ``presented`` equals one of ``keys``. No keys = open."""
    if not keys:
        return
    if not presented:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>' or 'Api-Key: <key>'")
    given = presented.encode()
    ok = False
    for key in keys:  # no early exit: the time taken does not depend on which key matched
        ok |= hmac.compare_digest(given, key.encode())
    if not ok:
        raise AuthenticationError("incorrect API key provided")
