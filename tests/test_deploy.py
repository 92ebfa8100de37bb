"""deploy/ agrees with the application: the units run commands that exist, the environment example names only
settings that exist and starts a production site once its blanks are filled (and not before), nginx passes the
largest upload and sets the forwarded headers the application believes."""

from __future__ import annotations

import os
import re
import secrets
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chunfeng.cli import app
from chunfeng.db import Database
from chunfeng.settings import Settings
from chunfeng.web.app import create_app

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
NGINX = (DEPLOY / "nginx" / "chunfeng.conf").read_text(encoding="utf-8")
NGINX_DIRECTIVES = "\n".join(line.split("#")[0] for line in NGINX.splitlines())


def environment_file(path: Path = DEPLOY / "chunfeng.env.example") -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments skipped, one pair of quotes removed)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()[1:-1] if value.strip()[:1] in "'\"" and len(value.strip()) > 1 \
                else value.strip()
    return values


def unit_lines(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text(encoding="utf-8").splitlines() if line.startswith(key + "=")]


def production_settings(monkeypatch, values: dict[str, str]) -> Settings:
    for name in [n for n in os.environ if n.startswith("CHUNFENG_")]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_there_are_web_and_worker_units():
    assert {u.name for u in UNITS} == {"chunfeng-web@.service", "chunfeng-worker.service"}
    # One long-running worker: a timer starting it would let runs overlap the leases already prevent.
    assert not list((DEPLOY / "systemd").glob("*.timer"))
    assert unit_lines(DEPLOY / "systemd" / "chunfeng-worker.service", "ExecStart") == [
        "/opt/chunfeng/venv/bin/chunfeng worker"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_unit_runs_a_command_chunfeng_has_with_options_it_takes(unit):
    commands = unit_lines(unit, "ExecStart")
    assert commands
    for command in commands:
        words = shlex.split(command.lstrip("-").replace("%i", "8000"))
        assert words[0] == "/opt/chunfeng/venv/bin/chunfeng"
        # --help after the options: Click parses them all first, so a command or option it lacks exits 2.
        result = CliRunner().invoke(app, [*words[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)
    assert unit_lines(unit, "EnvironmentFile") == ["/etc/chunfeng/chunfeng.env"]


def test_web_processes_leave_the_schedule_to_the_worker_and_listen_where_nginx_sends(monkeypatch):
    web = DEPLOY / "systemd" / "chunfeng-web@.service"
    # Web processes run no periodic job by default, and nothing in the deployment turns that on.
    assert not production_settings(monkeypatch, {**environment_file(), "CHUNFENG_SECRET_KEY": "s" * 64,
                                                 "CHUNFENG_DATA_KEY": "0" * 32}).run_jobs_in_web
    assert not any("RUN_JOBS_IN_WEB" in line for line in unit_lines(web, "Environment"))
    assert "--host 127.0.0.1 --port %i" in unit_lines(web, "ExecStart")[0]
    upstream = re.search(r"upstream chunfeng \{(.*?)\}", NGINX, re.S).group(1)
    assert re.findall(r"server (127\.0\.0\.1):\d+;", upstream)


def test_the_environment_example_names_only_settings_that_exist():
    fields = set(Settings.model_fields)
    text = (DEPLOY / "chunfeng.env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?(CHUNFENG_[A-Z_]+)=", text, re.M))
    assert named and not {n for n in named if n.removeprefix("CHUNFENG_").lower() not in fields}
    for required in ("ENVIRONMENT", "DATABASE_URL", "SECRET_KEY", "DATA_KEY", "AUDIT_HEAD_FILE", "TRUSTED_PROXIES",
                     "COOKIE_SECURE", "DATA_DIR", "PUSH_STORE"):
        assert f"CHUNFENG_{required}" in environment_file(), required


def test_the_environment_example_refuses_to_start_until_its_keys_are_filled(monkeypatch):
    values = environment_file()
    assert values["CHUNFENG_SECRET_KEY"] == "" and values["CHUNFENG_DATA_KEY"] == ""  # placeholders, never secrets
    with pytest.raises(ValueError, match="CHUNFENG_SECRET_KEY"):
        production_settings(monkeypatch, values)
    with pytest.raises(ValueError, match="CHUNFENG_DATA_KEY"):
        production_settings(monkeypatch, {**values, "CHUNFENG_SECRET_KEY": secrets.token_urlsafe(48)})
    # The one-liners the example gives make a site that starts as production, behind nginx on this host.
    filled = {**values, "CHUNFENG_SECRET_KEY": secrets.token_urlsafe(48), "CHUNFENG_DATA_KEY": secrets.token_hex(16)}
    settings = production_settings(monkeypatch, filled)
    assert not settings.is_local and settings.cookie_secure and settings.trusted_proxies == "127.0.0.1"
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://")


def test_nginx_passes_the_largest_upload_and_sets_the_headers_the_application_believes(monkeypatch):
    body = re.search(r"client_max_body_size (\d+)m;", NGINX)
    for settings in (Settings(_env_file=None), production_settings(monkeypatch, {
            **environment_file(), "CHUNFENG_SECRET_KEY": "s" * 64, "CHUNFENG_DATA_KEY": "0" * 32})):
        largest = max(settings.evidence_max_mb, settings.import_max_file_mb,
                      settings.appeal_max_files * settings.appeal_file_max_mb)
        assert body and int(body.group(1)) > largest, (body, largest)
    assert "proxy_set_header X-Forwarded-For   $remote_addr;" in NGINX and "proxy_add_x_forwarded_for" not in NGINX_DIRECTIVES
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in NGINX
    assert re.search(r"listen 443 ssl", NGINX) and "return 301 https://" in NGINX
    # The README's "Behind nginx" shows the same headers the site file sets.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "X-Forwarded-For   $remote_addr" in readme and "X-Forwarded-Proto $scheme" in readme


def test_the_health_check_nginx_forwards_is_a_route_of_the_application(tmp_path):
    assert "location = /healthz" in NGINX
    application = create_app(Database(f"sqlite:///{tmp_path / 'c.db'}"), Settings(_env_file=None))
    assert "/healthz" in {getattr(route, "path", None) for route in application.routes}


def test_the_wheelhouse_the_readme_installs_from_is_a_make_target():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^wheelhouse:", makefile, re.M)
    deploying = (ROOT / "README.md").read_text(encoding="utf-8").split("## Deploying", 1)[1].split("\n## ", 1)[0]
    assert "make wheelhouse" in deploying and "--no-index --find-links" in deploying
    for command in ("chunfeng db upgrade", "chunfeng backup", "chunfeng restore"):
        assert command in deploying
