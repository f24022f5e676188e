"""The NorenOMS PiConnect client, and the one place its failures become ordergate's errors.

Every call is ``POST <api_url>/<Route>`` with the raw body ``jData=<json>&jKey=<token>``, JSON
back. A request that fails on the way (connection, timeout, 5xx, an answer that is not JSON)
raises :class:`Unreachable`, which only :func:`translated` turns into an ordergate error; an
answer NorenOMS did give (``"stat": "Not_Ok"``) is read by the functions below it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from ordergate.pipeline.errors import BrokerAuthError, BrokerUnavailable, OrderOutcomeUnknown, Rejection


class Unreachable(Exception):
    """The request failed on the way (connection, timeout, 5xx): it may have reached the OMS."""


class NorenClient:
    """A small NorenOMS REST client: ``jData=<json>&jKey=<token>`` in, JSON out."""

    def __init__(self, api_url: str, timeout_s: float, session: requests.Session | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout_s
        self.http = session or requests.Session()  # trust_env: HTTPS_PROXY is honoured

    def call(self, route: str, data: dict[str, Any], token: str) -> Any:
        """POST one route; raise :class:`Unreachable` when the answer is lost or a 5xx."""
        body = "jData=" + json.dumps(data, separators=(",", ":")) + "&jKey=" + token
        try:
            response = self.http.post(f"{self.api_url}/{route}", data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unreachable(type(exc).__name__) from None
        if response.status_code >= 500:
            raise Unreachable(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise Unreachable(f"HTTP {response.status_code}: not JSON") from None

    def api_token(self, auth_url: str, payload: dict[str, str]) -> Any:
        """The daily login's token exchange, ``POST <auth_url>/apitoken`` with a JSON body."""
        try:
            response = self.http.post(f"{auth_url}/apitoken", json=payload, timeout=self.timeout)
            return response.json()
        except (requests.RequestException, ValueError):
            raise Unreachable("apitoken") from None


# -- error translation: the one place NorenOMS's failures become ordergate's errors ----------------


@contextmanager
def translated(broker: str, *, placing: bool = False, login: bool = False) -> Iterator[None]:
    """Turn a request lost on the way (:class:`Unreachable`) into ordergate's error.

    ``placing``: the request was a PlaceOrder, so the order may exist (OrderOutcomeUnknown, the
    adapter looks it up); otherwise nothing can exist yet and the signal may be re-sent
    (BrokerUnavailable). ``login``: the token exchange at FlatTrade's login service.
    """
    try:
        yield
    except Unreachable as exc:
        if placing:
            raise OrderOutcomeUnknown(broker=broker) from exc
        if login:
            raise BrokerUnavailable("FlatTrade's login service did not answer: try again", broker=broker) from None
        raise BrokerUnavailable(f"FlatTrade did not answer ({exc}): try again shortly", broker=broker) from None


def noren_error(message: str) -> str:
    """NorenOMS's ``emsg`` without its ``Error Occurred : 5`` prefix noise, one line."""
    return " ".join(message.split())[:200] or "no reason given"


def session_expired(answer: Any) -> bool:
    """NorenOMS says the token no longer works (``Session Expired : Invalid Session Key``)."""
    if isinstance(answer, dict) and answer.get("stat") == "Not_Ok":
        message = str(answer.get("emsg") or "")
        return "session expired" in message.lower() or "invalid session key" in message.lower()
    return False


def no_data(answer: Any) -> bool:
    """NorenOMS's "no data" (an empty order book, no holdings): an answer, not a failure."""
    return isinstance(answer, dict) and "no data" in str(answer.get("emsg", "")).lower()


def placed(answer: Any) -> str:
    """The order number PlaceOrder answered; a refusal raises with FlatTrade's reason."""
    if not isinstance(answer, dict) or answer.get("stat") != "Ok" or not answer.get("norenordno"):
        reason = noren_error(str(answer.get("emsg", ""))) if isinstance(answer, dict) else "no answer"
        raise Rejection(f"FlatTrade refused the order: {reason}", code="broker_rejected")
    return str(answer["norenordno"])


def rejected(order_no: str, row: dict[str, Any]) -> Rejection:
    """The OMS accepted order ``order_no`` and then rejected it (its history's ``rejreason``)."""
    reason = noren_error(str(row.get("rejreason") or "no reason given"))
    return Rejection(f"FlatTrade rejected order {order_no}: {reason}", code="broker_rejected")


def login_token(answer: Any, broker: str) -> str:
    """The token the login service answered; a refusal raises with FlatTrade's reason."""
    token = answer.get("token") if isinstance(answer, dict) else None
    # FlatTrade's docs print "status", its own token script and live answers use "stat"
    if not isinstance(answer, dict) or (answer.get("stat") or answer.get("status")) != "Ok" or not token:
        reason = noren_error(str(answer.get("emsg") or "")) if isinstance(answer, dict) else "no answer"
        raise BrokerAuthError(f"FlatTrade refused the login: {reason}", broker=broker)
    return str(token)


def failure(route: str, answer: Any, broker: str) -> BrokerUnavailable:
    """A read whose answer holds nothing usable: 503, the signal may be re-sent."""
    if isinstance(answer, dict) and answer.get("stat") == "Ok":
        reason = "no usable value in the answer"
    elif isinstance(answer, dict):
        reason = noren_error(str(answer.get("emsg", "")))
    else:
        reason = "unexpected answer"
    return BrokerUnavailable(f"FlatTrade {route} failed: {reason}", broker=broker)
