"""Developer sessions: ``nox`` runs tests, lint and typecheck; ``nox -s docs examples`` the rest.

Every session builds its own virtualenv with the standard library's ``venv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pass pytest arguments after ``--``)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "cometrunway", "tests")
    session.run("ruff", "format", "--check", "cometrunway", "tests")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[lint]")
    session.run("mypy", "--strict", "cometrunway")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs; any Sphinx warning fails the build."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def examples(session: nox.Session) -> None:
    """Run every script in examples/, offline against the in-process FakeCometAPI."""
    session.install("-e", ".")
    env = {"COMETAPI_KEY": "", "COMETAPI_BASE_URL": ""}  # never the real, billed API
    scripts = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        session.error("no examples found")
    for script in scripts:
        session.log(f"running {script.name}")
        session.run("python", os.fspath(script), env=env)
