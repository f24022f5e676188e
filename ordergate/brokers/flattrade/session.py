"""FlatTrade's daily login: the token, where it is kept, and when it stops working.

The user signs in at FlatTrade and is sent back to ``/auth/flattrade/callback`` with a
``code``; :meth:`~ordergate.brokers.flattrade.broker.FlatTradeBroker.log_in` exchanges it for a
token that works until the next 05:00 IST. Tokens are kept in the ``broker_sessions`` table of
the journal's database (shared by replicas, like the journal); ``FLATTRADE_TOKEN`` from the
environment works too. The token is a credential: never logged, shown or exported.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordergate.pipeline.errors import BrokerAuthError
from ordergate.redact import register

IST = timezone(timedelta(hours=5, minutes=30), "IST")
LOGIN_PATH = "/auth/flattrade"
SESSION_EXPIRED = f"FlatTrade session expired: log in at {LOGIN_PATH}"

metadata = sa.MetaData()

# The table the journal module created before this one owned it: same name and columns, so
# databases written by earlier versions keep their logins.
sessions = sa.Table(
    "broker_sessions",
    metadata,
    sa.Column("broker", sa.String(80), primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("obtained_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


class SessionExpired(BrokerAuthError):
    """No valid daily login: the user must sign in at ``/auth/flattrade`` (422)."""

    def __init__(self, broker: str | None = None) -> None:
        super().__init__(SESSION_EXPIRED, broker=broker)


@dataclass(frozen=True)
class Session:
    """A broker login: its token and when it stops working (seconds since the epoch)."""

    token: str = field(repr=False)
    obtained_at: float
    expires_at: float


def next_expiry(now: float) -> float:
    """FlatTrade tokens stop working at the next 05:00 IST."""
    local = datetime.fromtimestamp(now, IST)
    expiry = local.replace(hour=5, minute=0, second=0, microsecond=0)
    if expiry <= local:
        expiry += timedelta(days=1)
    return expiry.timestamp()


class SessionStore:
    """Broker logins in a database (the journal's engine), one row per broker."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def save(self, broker: str, session: Session) -> None:
        """Store ``broker``'s login, replacing the one before."""
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.broker == broker))
            conn.execute(
                sessions.insert().values(
                    broker=broker,
                    token=session.token,
                    obtained_at=session.obtained_at,
                    expires_at=session.expires_at,
                )
            )

    def load(self, broker: str) -> Session | None:
        """``broker``'s stored login, expired or not; None if it never logged in."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.broker == broker)).first()
        return None if row is None else Session(row.token, row.obtained_at, row.expires_at)

    def drop(self, broker: str, token: str) -> None:
        """Forget ``broker``'s login if it is still ``token`` (the broker said it expired)."""
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.broker == broker, sessions.c.token == token))


class Tokens:
    """The token one broker signs its requests with: the stored login while it is valid (re-read
    every 10 s: another replica may renew it), else ``FLATTRADE_TOKEN``."""

    def __init__(self, broker: str, env_token: str) -> None:
        self.broker = broker
        self._env_token = env_token
        self._store: SessionStore | None = None
        self._stored: tuple[str, float] | None = None  # (token, expires_at) as last read
        self._stored_read = -1e9
        self._lock = threading.Lock()

    def use(self, store: SessionStore) -> None:
        """Keep logins in ``store``, where every replica finds them."""
        self._store = store
        self._stored_read = -1e9

    def stored(self, token: str, now: float, expires: float) -> None:
        """A new login: store it and sign with it from now on."""
        if self._store is not None:
            self._store.save(self.broker, Session(token, now, expires))
        with self._lock:
            self._stored, self._stored_read = (token, expires), time.monotonic()

    def current(self) -> str | None:
        """The token to sign with; None when there is none."""
        now = time.monotonic()
        if self._store is not None and now - self._stored_read > 10:
            stored = self._store.load(self.broker)
            if stored is not None:
                register(stored.token)  # a login another replica stored
            with self._lock:
                self._stored = (stored.token, stored.expires_at) if stored is not None else None
                self._stored_read = now
        stored_now = self._stored
        if stored_now is not None and stored_now[1] > time.time():
            return stored_now[0]
        return self._env_token or None

    def expired(self, token: str) -> None:
        """FlatTrade said ``token`` no longer works: forget it everywhere."""
        with self._lock:
            if self._env_token == token:
                self._env_token = ""
            if self._stored is not None and self._stored[0] == token:
                self._stored = None
        if self._store is not None:
            self._store.drop(self.broker, token)
