"""No cassette carries a key, a signature or a signed timestamp."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

CASSETTES = sorted((Path(__file__).parent / "cassettes").rglob("*.yaml"))
SIGNED = re.compile(r"(signature|timestamp|recvWindow)=", re.IGNORECASE)


def test_there_are_cassettes() -> None:
    assert len(CASSETTES) >= 5


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_cassette_has_no_secrets(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for interaction in data["interactions"]:
        request = interaction["request"]
        headers = {k.lower() for k in request.get("headers", {})}
        assert "x-mbx-apikey" not in headers
        assert "authorization" not in headers
        assert not SIGNED.search(request["uri"])
        assert not SIGNED.search(str(request.get("body") or ""))
