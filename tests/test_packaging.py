"""The files a deployment reads agree with each other."""

from __future__ import annotations

import configparser
import json

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


def test_deploy_files_start_the_service_and_check_health() -> None:
    procfile = (ROOT / "Procfile").read_text()
    assert procfile.startswith("web: waitress-serve ")
    assert "$PORT" in procfile
    assert "--call ordergate.app:get_app" in procfile
    deploy = json.loads((ROOT / "railway.json").read_text())["deploy"]
    assert deploy["healthcheckPath"] == "/readyz"
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert deploy["startCommand"] == "python -m ordergate serve"
    railway_ts = (ROOT / ".railway" / "railway.ts").read_text()
    assert 'healthcheck: "/readyz"' in railway_ts
    assert 'start: "python -m ordergate serve"' in railway_ts


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme
    assert "make test" in readme
