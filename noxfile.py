"""Developer sessions: ``nox`` runs tests, lint and typecheck; ``nox -s docs examples`` the rest.

``tests`` runs once per supported Python (``nox -s tests-3.12`` picks one); each interpreter
is looked up as ``python3.X`` on ``PATH`` (``.ci/run`` finds pyenv's and puts them there).
``tests_lowest`` installs the lowest versions the package's direct dependencies allow
(``uv pip install --resolution lowest-direct``), so the floors in pyproject.toml are tested,
not guessed; ``.ci/run`` runs it after the other Pythons' sessions.

Every session builds its own virtualenv with the standard library's ``venv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
# A missing interpreter fails the run instead of being skipped silently.
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYTHONS = ["3.11", "3.12", "3.13"]
LOWEST_PYTHON = PYTHONS[0]
LINTED = ["cometrunway", "tests", "examples", "bench"]
# Scripts written as users write them, type-checked as users would (strict).
TYPED_EXAMPLES = ["examples/typed_usage.py", "examples/journal_of_your_own.py"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on one Python (pass pytest arguments after ``--``)."""
    session.install("-e", ".[test,postgres]")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=LOWEST_PYTHON)
def tests_lowest(session: nox.Session) -> None:
    """The test suite at the lowest dependency versions pyproject.toml allows."""
    session.install("uv")
    # uv installs into the session's virtualenv (nox sets VIRTUAL_ENV); no interpreter download.
    session.run(
        "uv",
        "pip",
        "install",
        "--resolution",
        "lowest-direct",
        "-e",
        ".[test,postgres]",
        env={"UV_PYTHON_DOWNLOADS": "never"},
    )
    session.run("uv", "pip", "list", env={"UV_PYTHON_DOWNLOADS": "never"}, silent=False)
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package; a user-style script under mypy --strict and pyright
    (strict); pyright's type completeness score of the public surface."""
    session.install("-e", ".[lint,test]")
    session.run("mypy", "--strict", "cometrunway")
    session.run("mypy", "--strict", *TYPED_EXAMPLES)
    session.run("pyright", *TYPED_EXAMPLES)
    session.run("python", ".ci/type_completeness.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs; any Sphinx warning fails the build, and so do unrendered defaults."""
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
    session.run("python", "docs/check_html.py", "docs/_build/html")


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
