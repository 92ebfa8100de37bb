"""The project's promises about itself: the linter is clean, the README's commands exist and work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from chunfeng.cli import app

ROOT = Path(__file__).parent.parent


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contract_holds():
    """pyproject's import-linter contracts: no domain imports the web except its routes.py, and the base layer
    (db, errors, settings, documents, files, paging, …) imports no domain."""
    run = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run([sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_one_home_for_each_shared_mechanism():
    """A mechanism every domain shares is written once: its tell-tale call appears in its home module only."""
    homes = {
        "FileResponse(": "web/downloads.py",  # every download
        "BackgroundTask(path.unlink": "web/downloads.py",
        "import weasyprint": "documents.py",  # HTML → PDF
        "Environment(": "documents.py",  # the one Jinja environment
        "FileSystemLoader(": "documents.py",
        ".offset(": "paging.py",  # count, then page
        "@app.exception_handler(ChunfengError)": "web/app.py",  # domain errors → pages, once
    }
    source = ROOT / "src" / "chunfeng"
    for needle, home in homes.items():
        found = sorted(str(p.relative_to(source)) for p in source.rglob("*.py") if needle in p.read_text(encoding="utf-8"))
        assert found == [home], f"{needle!r} in {found}, expected only in {home}"


def test_quick_start_has_exactly_two_commands_and_make_knows_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_documented_command_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Commands", 1)[1].split("```", 2)[1]
    for line in block.splitlines():
        words = line.split("#")[0].split()
        if len(words) < 2 or words[0] != "chunfeng" or words[1].startswith("-"):
            continue
        for sub in " ".join(words[2:3]).split("|"):
            args = [words[1]] + ([sub.strip()] if sub.strip() and sub.strip()[0].isalpha() and sub.strip().islower() else [])
            result = CliRunner().invoke(app, [*args, "--help"])
            assert result.exit_code == 0, (line, result.output)


def test_no_asset_comes_from_the_internet():
    for path in (ROOT / "src" / "chunfeng").rglob("*"):
        if path.suffix in {".html", ".css", ".js"} and path.name != "htmx.min.js":
            assert not re.search(r"(src|href)=\"https?://", path.read_text(encoding="utf-8")), path


def test_license_file_matches_pyproject_and_changelog_names_every_migration():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'license = "Apache-2.0"' in pyproject
    assert "Apache License\n                           Version 2.0" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for migration in sorted((ROOT / "src" / "chunfeng" / "migrations" / "versions").glob("[0-9]*.py")):
        number = migration.name[:4]
        # An installer reads the changelog to learn which migrations a release brings.
        assert re.search(rf"\b{number}\b", changelog), f"CHANGELOG.md does not mention migration {number}"


def test_version_prints_the_pyproject_version():
    # `chunfeng --version` exited 2 ("Missing command"): Click wants a sub-command before the callback runs.
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M).group(1)
    result = subprocess.run([sys.executable, "-m", "chunfeng", "--version"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"chunfeng {version}"


def test_no_template_writes_a_bare_ampersand_in_a_url():
    """Issue 14.2: a literal "&not_claimed=" in an href is the entity "&not;" to a browser. Query separators in
    templates are written "&amp;" (values built in Jinja expressions are escaped by autoescape)."""
    import re

    bare = re.compile(r'(?:href|hx-get|hx-post|action|src)="[^"]*&(?!(?:amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);)[^"]*"')
    found = [f"{p.relative_to(ROOT)}: {m.group()}" for p in (ROOT / "src/chunfeng").rglob("*.html")
             for m in bare.finditer(p.read_text(encoding="utf-8"))]
    assert not found, found
# The modules that may read the settings from the environment. settings.py defines the reader; cli_support.py
# calls it once per command (`cli_support.settings()`, which also configures the process) and every command,
# cli.py and the per-domain cli.py modules alike, takes its values from there. The web application gets its
# Settings as create_app's argument (from `chunfeng serve` or a test), so web/app.py needs no reader either.
# Everything else receives what it needs as a parameter, or through runtime.configure.
SETTINGS_READERS = {"settings.py", "cli_support.py"}


def test_settings_are_read_only_at_the_entry_points():
    package = ROOT / "src" / "chunfeng"
    readers = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                     if "get_settings(" in path.read_text(encoding="utf-8"))
    assert readers == sorted(SETTINGS_READERS), "get_settings() below the entry points: pass the value down instead"


def test_no_get_route_starts_a_task():
    """Long work (an import, a campaign run, a large export) is a task; a route that starts one must be a POST behind
    the form's CSRF token, or a link on another site could set a national export running in an official's name."""
    import ast

    def called(node) -> set[str]:
        return {c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id for c in ast.walk(node)
                if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute | ast.Name)}

    offenders = []
    for path in sorted((ROOT / "src" / "chunfeng").rglob("*.py")):
        functions = [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        starting = {"start", "start_export", "start_task"}
        starting |= {f.name for f in functions if called(f) & starting}  # a module's helper that starts one
        for f in functions:
            is_get = any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "get"
                         for d in f.decorator_list)
            if is_get and called(f) & starting:
                offenders.append(f"{path.relative_to(ROOT)}:{f.lineno} {f.name}")
    assert offenders == []
