"""Optional bearer keys, compared in constant time against every configured key."""

from __future__ import annotations

import hmac

from .errors import APIError


def check(authorization: str | None, keys: tuple[str, ...]) -> None:
    """Raise 401 unless ``Authorization: Bearer <key>`` names one of ``keys`` (no keys: everyone is let in)."""
    if not keys:
        return
    scheme, _, given = (authorization or "").partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    matched = False
    for key in keys:  # every key is compared, whatever matched, so the time does not depend on which one
        matched |= hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8"))
    if not matched:
        raise APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>' with a key this server "
                       "was started with (--api-key, OVOZ_API_KEYS).", code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
