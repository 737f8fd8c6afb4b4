"""``cometrunway report``: one self-contained HTML page of a batch, checked in a real browser.

The batch is real: a client with a journal against ``FakeCometAPI`` (two tasks succeed and
are downloaded, one fails, one create is ambiguous, one is refused). The page is read as
text (escaping, relative media paths, nothing fetched from elsewhere) and opened in
headless Chromium (no console errors, one card per journal row, media that exist, the
status filter, a screenshot).
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import attrs
import pytest
from headless_chromium import WINDOW, HeadlessChromium, find_chromium

from cometrunway import (
    AmbiguousSubmitError,
    APIError,
    Client,
    PollPolicy,
    RunwayTextToSpeech,
    TaskFailed,
    TextToVideo,
)
from cometrunway.cli import main
from cometrunway.cli._report import cards_for, read_entries, render_report, write_report
from cometrunway.journal import EntryState, JournalEntry
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

FAST = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, jitter=0)
FLAGGED = 'a <script>document.title="pwned"</script> cat'
REASON = "moderation <b>said no</b>"
INVALID = {"error": {"message": "bad prompt", "type": "comet_api_error", "code": "invalid_request"}}
MIN_SCREENSHOT_BYTES = 20_000  # a blank page is a few KB; five cards with posters are more


def tiny_png(width: int = 64, height: int = 36, rgb: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    """A valid PNG of one colour: a poster the browser can really decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def make_batch(folder: Path) -> tuple[Path, Path]:
    """A journal with every kind of row, and the downloads of the succeeded tasks."""
    journal, downloads = folder / "run.journal.sqlite", folder / "out"
    downloads.mkdir()
    lives = {FLAGGED: Lifecycle.by_polls(1, 1).failing(REASON, code="SAFETY.INPUT.TEXT")}
    fake_api = FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1), lifecycle_for=lives)
    async with fake_api as fake:
        async with Client("key", base_url=fake.url, poll=FAST, journal=journal) as client:
            done = [await client.submit(TextToVideo(p)) for p in ("a red fox", "a & lighthouse")]
            failing = await client.submit(TextToVideo(FLAGGED))
            fake.inject("submit", Fault.server_error(500, after_create=True))
            with pytest.raises(AmbiguousSubmitError):
                await client.submit(TextToVideo("a kite (answer lost)"))
            fake.inject("submit", Fault.response(400, INVALID))
            with pytest.raises(APIError):
                await client.submit(TextToVideo("refused"))
            for handle in done:
                await handle.download(downloads)
            with pytest.raises(TaskFailed):
                await failing
    for poster in downloads.glob("*.poster.png"):
        poster.write_bytes(tiny_png())  # the fake's outputs are not real images
    return journal, downloads


@pytest.fixture
def batch(tmp_path: Path) -> tuple[Path, Path]:
    return asyncio.run(make_batch(tmp_path))


def entry(task_id: str, *, outputs: tuple[str, ...], body: str = "{}") -> JournalEntry:
    return JournalEntry(
        key=f"k-{task_id}",
        request_type="RunwayTextToSpeech",
        path="/runwayml/v1/text_to_speech",
        body=body,
        poll_route="tasks",
        state=EntryState.DONE,
        task_id=task_id,
        status="SUCCEEDED",
        progress=1.0,
        outputs=outputs,
        error=None,
        error_code=None,
        created_at=100.0,
        updated_at=190.0,
        submitted_at=101.0,
    )


def test_cli_writes_one_self_contained_page(batch: tuple[Path, Path]) -> None:
    journal, downloads = batch
    assert main(["report", str(journal), "--downloads", str(downloads)]) == 0
    page = (downloads / "report.html").read_text(encoding="utf-8")
    assert page.count('<article class="card"') == 5
    for group in ("succeeded", "failed", "ambiguous"):
        assert f'data-filter="{group}"' in page
    # Server- and user-chosen text is escaped, never markup.
    assert "<script>document.title" not in page
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page
    assert "moderation &lt;b&gt;said no&lt;/b&gt; [SAFETY.INPUT.TEXT]" in page
    # Nothing from elsewhere: no external URL in any src/href, no linked style or script.
    assert not re.search(r'(src|href|poster)="(https?:)?//', page)
    assert "<link" not in page
    assert "<script src" not in page
    # The ambiguous create comes with the exact settle commands.
    settle = re.findall(r'<pre class="settle">([^<]*)</pre>', page)
    assert len(settle) == 2
    assert settle[0].startswith(f"cometrunway settle --journal {journal} sha256:")
    assert settle[0].endswith(" --task-id TASK_ID")
    assert settle[1].endswith(" --resubmit")


def test_report_of_a_missing_journal_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["report", str(tmp_path / "nothing.sqlite")]) == 2
    assert not (tmp_path / "nothing.sqlite").exists()


def test_audio_and_image_outputs_get_their_own_elements(tmp_path: Path) -> None:
    (tmp_path / "speech.mp3").write_bytes(b"ID3")
    (tmp_path / "picture.png").write_bytes(tiny_png())
    entries = [
        entry("speech", outputs=("https://cdn.example/a/speech.mp3",)),
        entry("picture", outputs=("https://cdn.example/b/picture.png?sig=1",)),
        entry("nothing", outputs=("https://cdn.example/c/nothing.mp4",)),
    ]
    cards = cards_for(entries, journal="j.sqlite", downloads=tmp_path, page_dir=tmp_path)
    assert [(card.output, card.output_kind) for card in cards] == [
        ("speech.mp3", "audio"),
        ("picture.png", "image"),
        (None, None),
    ]
    assert [card.took_seconds for card in cards] == [89.0, 89.0, 89.0]
    page = render_report(cards, journal="j.sqlite", generated=datetime.now(UTC))
    assert '<audio controls preload="metadata" src="speech.mp3">' in page
    assert '<img alt="output" src="picture.png">' in page
    assert "no saved output" in page


async def test_page_paths_are_relative_to_where_the_page_is(tmp_path: Path) -> None:
    journal, downloads = await make_batch(tmp_path)
    page_path = tmp_path / "pages" / "batch.html"
    assert await write_report(str(journal), page_path, downloads=downloads) == 5
    sources = re.findall(r' (?:src|poster)="([^"]+)"', page_path.read_text(encoding="utf-8"))
    assert sources
    for source in sources:
        assert source.startswith("../out/")
        assert (page_path.parent / unquote(source)).is_file()
    assert len(await read_entries(str(journal))) == 5


# ---------------------------------------------------------------- credits


def test_cards_show_credits_spent_else_estimated_else_unknown_and_a_total() -> None:
    spent = attrs.evolve(entry("spent", outputs=()), cost=25.0, estimated_cost=20.0)
    estimated = attrs.evolve(entry("estimated", outputs=()), state=EntryState.SUBMITTED)
    estimated = attrs.evolve(estimated, status="RUNNING", estimated_cost=10.0)
    silent = entry("silent", outputs=())
    unsent = attrs.evolve(entry("unsent", outputs=()), state=EntryState.QUEUED, task_id=None)
    cards = cards_for(
        [spent, estimated, silent, unsent], journal="j.sqlite", downloads=None, page_dir=Path()
    )
    assert [card.credits for card in cards] == ["25 spent", "estimated 10", "unknown", None]
    page = render_report(cards, journal="j.sqlite", generated=datetime.now(UTC))
    assert page.count("<dt>credits</dt>") == 3  # a request never sent has no task to pay for
    assert '<dt>credits</dt><dd><span class="credits">estimated 10</span></dd>' in page
    assert "credits: 25 spent (estimated 30); unknown for 2 tasks" in page


def test_a_page_without_tasks_says_no_credits_were_spent() -> None:
    unsent = attrs.evolve(entry("unsent", outputs=()), state=EntryState.QUEUED, task_id=None)
    cards = cards_for([unsent], journal="j.sqlite", downloads=None, page_dir=Path())
    page = render_report(cards, journal="j.sqlite", generated=datetime.now(UTC))
    assert "credits: none (no task was created)" in page


async def test_the_credits_a_batch_journaled_reach_its_page(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal.sqlite"
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with Client("key", base_url=fake.url, poll=FAST, journal=journal) as client:
            tasks = [await (await client.submit(RunwayTextToSpeech(t))) for t in ("Hi.", "Bye.")]
    spent = [task.cost for task in tasks if task.cost is not None]
    assert len(spent) == len(tasks)
    await write_report(str(journal), tmp_path / "page.html", downloads=None)
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    shown = re.findall(r'<span class="credits">([^<]*)</span>', page)
    assert shown == [f"{cost:g} spent" for cost in spent]
    assert f"credits: {sum(spent):g} spent (estimated {sum(spent):g})" in page


# ---------------------------------------------------------------- in a real browser

MEDIA_READY = """
Promise.all([...document.querySelectorAll("video, audio")].map((m) =>
  m.readyState >= 1 || m.error ? null : new Promise((done) => {
    m.addEventListener("loadedmetadata", done, { once: true });
    m.addEventListener("error", done, { once: true });
  })
)).then(() => ({
  cards: document.querySelectorAll(".card").length,
  title: document.title,
  prompts: [...document.querySelectorAll(".prompt")].map((p) => p.textContent),
  injected: document.querySelectorAll(".card script, .card b").length,
  media: [...document.querySelectorAll("video, audio, img")].flatMap((m) =>
    [m.src, m.poster].filter(Boolean)),
  images: [...document.querySelectorAll("img")].map((i) => i.naturalWidth),
}))
"""
SHOW_FAILED = """
document.querySelector('.filters button[data-filter="failed"]').click();
[...document.querySelectorAll(".card")].filter((c) => !c.hidden).map((c) => c.dataset.group)
"""


def keep_screenshot(png: bytes) -> None:
    """Write it where COMETRUNWAY_REPORT_SCREENSHOT says, to look at it."""
    target = os.environ.get("COMETRUNWAY_REPORT_SCREENSHOT")
    if target:
        Path(target).write_bytes(png)


@pytest.mark.slow
async def test_the_page_in_headless_chromium(tmp_path: Path) -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    journal, downloads = await make_batch(tmp_path)
    page_path = downloads / "report.html"
    await write_report(str(journal), page_path, downloads=downloads)

    async with HeadlessChromium.start() as browser, browser.open(page_path.as_uri()) as page:
        seen = await page.evaluate(MEDIA_READY)
        screenshot = await page.screenshot()
        failed_only = await page.evaluate(SHOW_FAILED)
        errors = list(page.errors)

    assert errors == []
    assert seen["cards"] == 5
    assert seen["title"].startswith("cometrunway batch")  # the prompt's script never ran
    assert seen["injected"] == 0
    assert FLAGGED in seen["prompts"]
    media = [Path(unquote(urlparse(url).path)) for url in seen["media"]]
    assert len(media) == 4  # two videos and their posters
    assert all(path.is_file() and path.parent == downloads for path in media), media
    assert failed_only == ["failed", "failed"]  # the failed task and the refused create
    assert screenshot.startswith(b"\x89PNG")
    width, height = struct.unpack(">II", screenshot[16:24])
    assert (width, height) == WINDOW
    assert len(screenshot) > MIN_SCREENSHOT_BYTES
    keep_screenshot(screenshot)


@pytest.mark.slow
def test_batch_with_downloads_writes_the_page_beside_them(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox\na lighthouse\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--fake", "--fake-speed", "50", "--download", str(out)]
    assert main([*args, "--plain"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('data-group="succeeded"') == 2
    assert page.count("<video ") == 2
