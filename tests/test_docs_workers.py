"""The "Many workers" page's FastAPI example runs as written, on a PostgreSQL journal."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from cometrunway.testing import FakeCometAPI

pytest.importorskip("psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'")

PAGE = Path(__file__).resolve().parents[1] / "docs" / "workers.md"


def fastapi_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    (example,) = [b for b in blocks if "FastAPI(lifespan" in b]
    return example


async def test_the_fastapi_example_dedupes_and_answers_from_the_journal(
    postgres_url: str, fake: FakeCometAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMETAPI_KEY", "sk-docs-example")
    monkeypatch.setenv("COMETAPI_BASE_URL", fake.url)
    source = re.sub(r'DATABASE = ".*?"', f"DATABASE = {postgres_url!r}", fastapi_example())
    namespace: dict[str, object] = {}
    exec(compile(source, str(PAGE), "exec"), namespace)
    app = namespace["app"]
    async with (
        app.router.lifespan_context(app),  # type: ignore[attr-defined]
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://app",
        ) as http,
    ):
        first = (await http.post("/videos", params={"prompt": "a fox"})).json()
        again = (await http.post("/videos", params={"prompt": "a fox"})).json()
        assert first == again  # the same prompt twice: one task
        assert len(fake.tasks) == 1
        result = (await http.get(f"/videos/{first['task_id']}")).json()
    assert result["state"] == "done" and result["status"] == "SUCCEEDED"
    assert result["outputs"]
