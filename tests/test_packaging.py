"""The files a deployment reads agree with each other."""

from __future__ import annotations

import configparser
import re

from tests.conftest import ROOT


def _pins(lines: list[str]) -> list[str]:
    return sorted(line.strip().lower() for line in lines if line.strip() and not line.strip().startswith("#"))


def test_requirements_txt_pins_what_setup_cfg_pins() -> None:
    # Railway's builder installs requirements.txt and never reads setup.cfg.
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    declared = _pins(parser["options"]["install_requires"].splitlines())
    shipped = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert declared == shipped
    assert all("==" in pin for pin in declared)


START = "python -m ordergate serve"


def test_every_start_path_runs_ordergate_serve() -> None:
    # One command wherever the service starts (Railpack reads the Procfile when nothing else sets
    # a start command; `railway config apply` sets railway.ts's), so the drain on SIGTERM, the
    # notification flush, WAITRESS_THREADS and the one-line configuration errors hold everywhere.
    procfile = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    assert procfile == [f"web: {START}"]
    railway_ts = (ROOT / ".railway" / "railway.ts").read_text()
    assert re.findall(r'^\s*start: "([^"]*)"', railway_ts, re.M) == [START]
    assert re.findall(r'^\s*healthcheck: "([^"]*)"', railway_ts, re.M) == ["/readyz"]
    assert 'RAILWAY_DEPLOYMENT_DRAINING_SECONDS: "30"' in railway_ts


def test_one_railway_configuration_system() -> None:
    # Railway: "A service cannot be managed by both systems at the same time"; a railway.json
    # (or .toml) would also stop `railway config plan` for the service it manages.
    assert not (ROOT / "railway.json").exists()
    assert not (ROOT / "railway.toml").exists()
    assert sorted(p.name for p in (ROOT / ".railway").iterdir()) == ["railway.ts"]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying on Railway") :]
    section = section[: section.index("\n## ", 3)]
    assert "railway config plan" in section
    assert "railway config apply" in section
    assert "waitress-serve" not in section
    assert "get_app" not in readme


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme
    assert "make test" in readme
