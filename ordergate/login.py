"""The daily broker login in a browser: ``GET /auth/flattrade`` and its callback.

FlatTrade issues API tokens only to a person who signs in at FlatTrade; the token stops
working at 05:00 IST. ``/auth/flattrade`` sends the browser to FlatTrade's sign-in for the
configured API key; FlatTrade sends it back to ``/auth/flattrade/callback?code=...`` (the
redirect URL registered with the key), where the code is exchanged for a token that is stored
in the journal database and never shown or logged.
"""

from __future__ import annotations

import logging
from datetime import datetime

import falcon

from ordergate.brokers.flattrade import IST, FlatTradeBroker
from ordergate.pipeline.errors import BrokerAuthError, Rejection
from ordergate.pipeline.money import dumps

log = logging.getLogger("ordergate")


class FlatTradeLogin:
    """``GET /auth/flattrade`` (redirect) and ``GET /auth/flattrade/callback`` (store the token)."""

    def __init__(self, brokers: list[FlatTradeBroker]) -> None:
        self.brokers = brokers

    def _broker(self) -> FlatTradeBroker:
        if not self.brokers:
            raise Rejection(
                "No route trades through FlatTrade in this environment", kind="not_found", code="no_flattrade"
            )
        return self.brokers[0]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_302
        resp.location = self._broker().login_redirect()
        resp.cache_control = ["no-store"]

    def on_get_callback(self, req: falcon.Request, resp: falcon.Response) -> None:
        broker = self._broker()
        # FlatTrade sends ?code=...&client=...; its docs call the parameter request_code
        code = (req.get_param("code") or req.get_param("request_code") or "").strip()
        if not code or len(code) > 512:
            raise Rejection("Missing login code: start the login at /auth/flattrade", kind="invalid", code="no_code")
        client = (req.get_param("client") or "").strip()
        if client and broker.user_id and client.upper() != broker.user_id.upper():
            raise BrokerAuthError(
                f"Signed in as {client}, but FLATTRADE_USER_ID is {broker.user_id}: sign in with that account",
                broker=broker.name,
            )
        expires = broker.log_in(code)
        until = datetime.fromtimestamp(expires, IST).strftime("%Y-%m-%d %H:%M IST")
        resp.content_type = falcon.MEDIA_JSON
        resp.cache_control = ["no-store"]
        resp.text = dumps({"success": True, "message": f"FlatTrade session stored; valid until {until}"})
