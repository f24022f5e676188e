"""One redaction point: secrets are replaced by ``[redacted]`` before anything is written.

Every log line (ordergate's and falcon's, waitress's, apprise's, urllib3's: the root logger's one
handler, see :mod:`ordergate.logs`) and every error body the app answers goes through
:func:`redact`. It replaces

* every secret value the process knows: the webhook secret, the admin token, brokers' keys and
  tokens, notification URLs' parts, and every environment variable whose name says it holds a
  secret (``*SECRET*``, ``*TOKEN*``, ``*KEY*``, ``*PASSWORD*``, ``*PASSPHRASE*``), registered when
  the settings load (:func:`register_settings`) or when a token is obtained (:func:`register`);
* whatever follows ``/webhook/`` in a path (the path secret, right or wrong);
* the values of secret-named fields: ``"passphrase": "..."``, ``'api_secret': '...'``,
  ``apiKey=...``, ``signature=...``, ``jKey=...``, ``X-MBX-APIKEY: ...``, ``Bearer ...``, and the
  password of a ``scheme://user:password@host`` URL.

It costs a few microseconds on a 1 KB text (see the README), so error answers use it too.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values (ports, "true", short ids) would blank ordinary words everywhere

# Environment variables whose values are secrets, by name.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL", re.IGNORECASE)
# Option names (in broker settings, JSON bodies, query strings) whose values are secrets.
_FIELD = (
    r"passphrase|password|passwd|secret|api[_-]?secret|api[_-]?key|apikey|secret[_-]?key|"
    r"access[_-]?token|refresh[_-]?token|token|jkey|susertoken|signature|x-mbx-apikey|authorization"
)
_KEY_OPTION = re.compile(rf"^(?:{_FIELD})$|secret|token|password|passphrase|api_?key", re.IGNORECASE)

_PATH = re.compile(r"/webhook/[^\s\"'?#/<>]+")
# "passphrase": "x", 'api_secret': 'x', passphrase=x, apiKey=x, X-MBX-APIKEY: x
_QUOTED_FIELD = re.compile(
    rf"""(?P<key>(?P<q>["'])(?:{_FIELD})(?P=q)\s*:\s*)(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;}}\]]+)""",
    re.IGNORECASE,
)
_ASSIGNED = re.compile(rf"(?P<key>\b(?:{_FIELD})=)[^\s&\"',;)}}\]]+", re.IGNORECASE)
_HEADER = re.compile(r"(?P<key>\b(?:x-mbx-apikey|authorization)\s*:\s*)[^\r\n\"',}]+", re.IGNORECASE)
# (not "Basic": an English word; "Authorization: Basic ..." is the header pattern's)
_BEARER = re.compile(r"(?P<key>\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<key>\b[a-z][a-z0-9+.-]*://[^/\s:@\"']*:)[^/\s@\"']+(?=@)", re.IGNORECASE)
# Cheap substring tests first (a regex alternation scans a 1 KB text in ~100 µs): each
# pattern runs only on a text that has its words.
_FIELD_WORDS = ("pass", "secret", "key", "token", "signature")


class Secrets:
    """The process's known secret values; :meth:`redact` blanks them and the patterns above."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, values: Iterable[object]) -> None:
        """Remember every value of at least :data:`MIN_SECRET` characters (and its URL-quoted form)."""
        wanted: set[str] = set()
        for value in values:
            if not isinstance(value, str):
                continue
            value = value.strip()
            if len(value) >= MIN_SECRET and value != REDACTED:
                # as written, URL-quoted, and as JSON writes it (escaped, and ASCII-only)
                escaped = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
                wanted.update({value, quote(value, safe=""), *escaped})
        with self._lock:
            if not wanted <= set(self._values):
                self._values = tuple(sorted(set(self._values) | wanted, key=len, reverse=True))

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def redact(self, text: str) -> str:
        for value in self._values:  # longest first, so a secret's own parts go with it
            if value in text:
                text = text.replace(value, REDACTED)
        if "/webhook/" in text:
            text = _PATH.sub("/webhook/" + REDACTED, text)
        low = text.lower()
        if any(word in low for word in _FIELD_WORDS):
            if "'" in text or '"' in text:
                text = _QUOTED_FIELD.sub(_quoted, text)
            if "=" in text:
                text = _ASSIGNED.sub(_kept_key, text)
        if "x-mbx-apikey" in low or "authorization" in low:
            text = _HEADER.sub(_kept_key, text)
        if "bearer" in low:
            text = _BEARER.sub(_kept_key, text)
        if "://" in text and "@" in text:
            text = _USERINFO.sub(_kept_key, text)
        return text


def _kept_key(match: re.Match[str]) -> str:
    return match.group("key") + REDACTED


def _quoted(match: re.Match[str]) -> str:
    quote_char = match.group("q")
    return f"{match.group('key')}{quote_char}{REDACTED}{quote_char}"


known = Secrets()


def redact(text: str) -> str:
    """``text`` with every known secret and secret-looking value replaced by ``[redacted]``."""
    return known.redact(text)


_SECRET_KEY = re.compile(rf"(?:{_FIELD})", re.IGNORECASE)


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like ``value`` with every string redacted and the value of every
    secret-named key (``passphrase``, ``api_key``, ``token``, ...) replaced by ``[redacted]``,
    whatever its type: the structure stays, so its JSON stays valid."""
    if isinstance(value, str):
        return known.redact(value)
    if isinstance(value, Mapping):
        return {
            known.redact(str(k)): (
                REDACTED if _SECRET_KEY.fullmatch(str(k)) and v not in (None, "") else redact_value(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redacted_dumps(value: Any, dump: Callable[[Any], str]) -> str:
    """``dump(value)`` (a JSON text) with no secret in it.

    The text is checked whole (a few microseconds); only when something in it would be redacted
    is ``value`` redacted piece by piece (:func:`redact_value`) and dumped again, because
    replacing inside the text could cut a JSON value in half (``"token": {"a": 1}``).
    """
    text = dump(value)
    if known.redact(text) == text:
        return text
    return dump(redact_value(value))


def register(*values: object) -> None:
    """Secrets learnt at run time (a broker's daily token): from now on never written."""
    known.add(values)


def secret_environ(environ: Mapping[str, str]) -> list[str]:
    """The values of environment variables whose names say they hold a secret."""
    return [value for name, value in environ.items() if _SECRET_NAME.search(name)]


def _secret_options(node: Any, secret: bool = False) -> Iterable[str]:
    """Values under secret-named keys anywhere in ``node`` (broker options, nested or not)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _secret_options(value, secret or (isinstance(key, str) and bool(_KEY_OPTION.search(key))))
    elif isinstance(node, list):
        for item in node:
            yield from _secret_options(item, secret)
    elif secret and isinstance(node, str):
        yield node


def register_settings(data: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """What loaded settings hold that is secret: auth's secret and token, brokers' credentials,
    and the environment's secret-named variables (NOTIFY_URLS' parts are added by notifications)."""
    auth = data.get("auth")
    if isinstance(auth, Mapping):
        known.add([auth.get("secret"), auth.get("admin_token")])
    known.add(_secret_options(data.get("brokers")))
    known.add(secret_environ(environ))
