"""``ordergate send``: post one signal to a running ordergate and show its answer and trace.

Only the standard library (``http.client``): a tool to try a chain, not a client to depend on.
The passphrase is added to the body when asked to, and never printed.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ordergate.parse import parse_body
from ordergate.pipeline.errors import Rejection


class UnreadableInput(Exception):
    """The signal cannot be read: no such file, or not a JSON object."""


def default_url(environ: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{environ.get('PORT') or 8080}/webhook"


def read_signal(source: str | None, stdin: BinaryIO) -> bytes:
    """The body to send: ``-``/nothing reads stdin, ``{...}`` is inline JSON, anything else a file."""
    if source is None or source == "-":
        raw = stdin.read()
    elif source.lstrip().startswith("{"):
        raw = source.encode()
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise UnreadableInput(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        parse_body(raw)
    except Rejection as exc:
        raise UnreadableInput(exc.reason) from None
    return raw


def with_passphrase(raw: bytes, secret: str) -> bytes:
    """``raw`` with a ``passphrase`` field first, unless it has one; numbers stay as written."""
    payload = parse_body(raw)
    if "passphrase" in payload:
        return raw
    text = raw.decode("utf-8-sig")
    start = text.index("{") + 1
    field = f"{json.dumps('passphrase')}: {json.dumps(secret)}"
    return (text[:start] + field + ("" if not payload else ", ") + text[start:]).encode()


def shown_url(url: str) -> str:
    """The URL without secrets: ``/webhook/<secret>`` and user:password@ are masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path
    prefix, _, secret = path.partition("/webhook/")
    if secret:
        path = f"{prefix}/webhook/***"
    return f"{parts.scheme}://{netloc}{path}"


def post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
    """POST ``body`` as JSON; ``(status, reason, answer)``. Raises OSError when unreachable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {shown_url(url)}")
    path = parts.path if parts.path not in ("", "/") else "/webhook"
    if parts.query:
        path = f"{path}?{parts.query}"
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.reason, response.read()
    finally:
        conn.close()


def describe(status: int, reason: str, answer: bytes, elapsed_ms: float) -> list[str]:
    """The answer as lines: status, outcome, signal id and notes, then the stage-by-stage trace."""
    lines = [f"HTTP {status} {reason}  ({elapsed_ms:.0f} ms)"]
    try:
        body: Any = json.loads(answer)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = answer.decode("utf-8", "replace").strip()
        return [*lines, text[:500] + ("…" if len(text) > 500 else "")]
    lines.append(outcome_line(body))
    if body.get("signalId"):
        lines.append(f"signal {body['signalId']}")
    for note in body.get("notes") or ():
        lines.append(f"note: {note}")
    trace = body.get("trace")
    if isinstance(trace, list) and trace:
        lines += ["", *trace_table(trace)]
    return lines


def outcome_line(body: Mapping[str, Any]) -> str:
    duplicate = "duplicate, first answer: " if body.get("duplicate") else ""
    if body.get("success"):
        what = " ".join(str(body[k]) for k in ("side", "quantity", "symbol") if body.get(k) is not None)
        at = body.get("avgPrice") or body.get("price")
        where = f" on {body['route']} ({body.get('broker')})" if body.get("route") else ""
        return (
            f"{duplicate}success: order {body.get('orderId')} {body.get('status')}"
            f" — {what}{f' @ {at}' if at else ''}, executed {body.get('executedQty')}{where}"
        )
    if body.get("status") == "in progress":
        return f"{duplicate}in progress: the first copy has no outcome yet"
    stage = f" (stage {body['stage']})" if body.get("stage") else ""
    code = f" [{body['code']}]" if body.get("code") else ""
    unknown = ""
    if body.get("status") == "unknown":
        unknown = f"; outcome unknown, client order id {body.get('clientOrderId')}"
    return f"{duplicate}error: {body.get('error')}{stage}{code}{unknown}"


def trace_table(trace: list[Any]) -> list[str]:
    steps = [s for s in trace if isinstance(s, dict)]
    width = max([len("stage"), *(len(str(s.get("stage"))) for s in steps)])
    lines = [f"  {'stage'.ljust(width)}  {'outcome':<8}  {'µs':>8}"]
    total = 0
    for step in steps:
        micros = step.get("us")
        total += micros if isinstance(micros, int) else 0
        lines.append(f"  {str(step.get('stage')).ljust(width)}  {step.get('outcome')!s:<8}  {micros!s:>8}")
    lines.append(f"  {'total'.ljust(width)}  {'':<8}  {total:>8}")
    return lines


def send(
    source: str | None, url: str | None, secret: str | None, timeout: float, environ: Mapping[str, str] | None = None
) -> int:
    """Post the signal and print what came back: 0 on 2xx, 1 otherwise, 2 on unreadable input."""
    environ = os.environ if environ is None else environ
    url = url or default_url(environ)
    secret = secret if secret is not None else environ.get("WEBHOOK_SECRET") or None
    try:
        body = read_signal(source, sys.stdin.buffer)
    except UnreadableInput as exc:
        print(f"ordergate send: {exc}", file=sys.stderr)
        return 2
    if secret:
        body = with_passphrase(body, secret)
    print(f"POST {shown_url(url)}")
    started = time.perf_counter()
    try:
        status, reason, answer = post(url, body, timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        said = str(exc)
        for hidden in (secret, urlsplit(url).path.partition("/webhook/")[2]):
            said = said.replace(hidden, "***") if hidden else said
        print(f"ordergate send: no answer from {shown_url(url)}: {said}", file=sys.stderr)
        return 1
    print("\n".join(describe(status, reason, answer, (time.perf_counter() - started) * 1000)))
    return 0 if 200 <= status < 300 else 1
