"""Downloads that cannot trust the wire: bodies with no length cut short, task ids that clean
to the same file name, and ``.part`` files left by a download that was killed."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import attrs
import pytest
from support import FAST_RETRY, client_for

from cometrunway import RetryPolicy, Task, TaskStatus, TextToVideo
from cometrunway.download import DownloadInterrupted, download_task
from cometrunway.download.integrity import truncation_problem
from cometrunway.download.parts import LOCKS, PART_SUFFIX
from cometrunway.testing import FakeCometAPI, Fault

MEDIA = resources.files("cometrunway.testing") / "media"
VIDEO = (MEDIA / "video.mp4").read_bytes()
#: A minimal but well-formed JPEG: SOI, a comment segment, EOI.
JPEG = b"\xff\xd8\xff\xfe\x00\x06test\xff\xd9"


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def problem_of(data: bytes) -> str | None:
    with tempfile.TemporaryFile() as file:
        file.write(data)
        return truncation_problem(file)


# ---------------------------------------------------------------- the checks themselves


@pytest.mark.parametrize(
    "name", ["video.mp4", "image.png", "poster.png", "last_frame.png", "audio.mp3"]
)
def test_whole_media_pass(name: str) -> None:
    assert problem_of((MEDIA / name).read_bytes()) is None


def test_a_whole_jpeg_passes_even_with_zero_padding() -> None:
    assert problem_of(JPEG) is None
    assert problem_of(JPEG + b"\x00" * 100) is None


@pytest.mark.parametrize("name", ["video.mp4", "image.png", "poster.png"])
def test_every_cut_of_a_video_or_png_is_caught(name: str) -> None:
    data = (MEDIA / name).read_bytes()
    step = max(1, len(data) // 400)
    # Under 8 bytes neither type can be recognised (an unknown type passes, see below).
    cuts = [*range(8, len(data), step), len(data) - 1]
    missed = [cut for cut in cuts if problem_of(data[:cut]) is None]
    assert missed == []


def test_a_cut_jpeg_an_empty_body_and_a_short_id3_tag_are_caught() -> None:
    assert problem_of(JPEG[:-1]) is not None
    assert problem_of(b"") == "the body was empty"
    id3_claiming_1000_bytes = b"ID3\x04\x00\x00\x00\x00\x07\x68" + b"\x00" * 20
    assert problem_of(id3_claiming_1000_bytes) == "its ID3 tag is cut short"


def test_an_mp4_without_moov_is_caught() -> None:
    ftyp_size = int.from_bytes(VIDEO[:4], "big")
    moov_size = int.from_bytes(VIDEO[ftyp_size : ftyp_size + 4], "big")
    without_moov = VIDEO[:ftyp_size] + VIDEO[ftyp_size + moov_size :]
    assert "moov" in (problem_of(without_moov) or "")


def test_unknown_types_pass() -> None:
    assert problem_of(b"just some text with no type") is None


# ---------------------------------------------------------------- a raw server with no length


@attrs.define
class RawServer:
    """Answers each GET with whatever ``answer(index, range_header)`` returns, then closes:
    HTTP with no Content-Length and no chunking, as a minimal server may send."""

    answer: Callable[[int, str | None], bytes]
    ranges: list[str | None] = attrs.Factory(list)
    url: str = ""
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        match = re.search(r"^range:\s*(.+?)\r$", head, re.IGNORECASE | re.MULTILINE)
        self.ranges.append(match.group(1) if match else None)
        writer.write(self.answer(len(self.ranges) - 1, self.ranges[-1]))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def unframed(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n" + body


class NoFetch:
    async def fetch(self, task_id: str, *, route: str = "feed") -> Task:
        raise AssertionError("no URL here expires")


def task_at(url: str) -> Task:
    return Task("t-1", TaskStatus.SUCCEEDED, outputs=(f"{url}/video.mp4",))


async def test_a_cut_body_with_no_length_is_not_accepted(tmp_path: Path) -> None:
    async with RawServer(lambda i, r: unframed(VIDEO[: len(VIDEO) // 2])) as server:
        with pytest.raises(DownloadInterrupted, match="cut short"):
            await download_task(NoFetch(), task_at(server.url), tmp_path, retry=FAST_RETRY)
    assert names_in(tmp_path) == []  # no file, no part left behind


async def test_a_cut_body_with_no_length_resumes_with_range(tmp_path: Path) -> None:
    half = len(VIDEO) // 2

    def answer(index: int, range_header: str | None) -> bytes:
        if index == 0:
            return unframed(VIDEO[:half])
        assert range_header == f"bytes={half}-"
        head = f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {half}-{len(VIDEO) - 1}/*"
        return f"{head}\r\nConnection: close\r\n\r\n".encode() + VIDEO[half:]

    async with RawServer(answer) as server:
        paths = await download_task(NoFetch(), task_at(server.url), tmp_path, retry=FAST_RETRY)
    assert server.ranges == [None, f"bytes={half}-"]
    assert paths[0].read_bytes() == VIDEO


async def test_a_whole_body_with_no_length_is_accepted(tmp_path: Path) -> None:
    async with RawServer(lambda i, r: unframed(VIDEO)) as server:
        paths = await download_task(NoFetch(), task_at(server.url), tmp_path, retry=FAST_RETRY)
    assert server.ranges == [None]
    assert paths[0].read_bytes() == VIDEO


# ---------------------------------------------------------------- names that collide


async def test_ids_that_clean_to_one_name_get_their_own_files(
    fake: FakeCometAPI, tmp_path: Path
) -> None:
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        one = attrs.evolve(task, task_id="a/b", poster_url=None, last_frame_url=None)
        two = attrs.evolve(task, task_id="a:b", poster_url=None, last_frame_url=None)
        three = attrs.evolve(task, task_id="ab", poster_url=None, last_frame_url=None)
        paths = await client.download_many([one, two, three], tmp_path)
    names = [p.name for [p] in paths]
    assert len(set(names)) == 3
    assert names[2] == "ab.mp4"  # an id that is already a safe name keeps it
    assert all(name.startswith("ab") for name in names)
    assert names_in(tmp_path) == sorted(names)


# ---------------------------------------------------------------- leftovers of a killed run


@pytest.mark.skipif(not LOCKS, reason="adopting leftovers needs POSIX flock")
async def test_a_killed_downloads_part_is_resumed_and_others_removed(
    fake: FakeCometAPI, tmp_path: Path
) -> None:
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        whole = fake.output_bytes(task.task_id, "video.mp4")
        only_video = attrs.evolve(task, poster_url=None, last_frame_url=None)
        # What a SIGKILL leaves: part files with a prefix of the output and no lock held.
        big = tmp_path / f".{task.task_id}.mp4.1a2b3c4d{PART_SUFFIX}"
        small = tmp_path / f".{task.task_id}.mp4.5e6f7a8b{PART_SUFFIX}"
        big.write_bytes(whole[:6000])
        small.write_bytes(whole[:100])
        paths = await client.download(only_video, tmp_path)
    cdn = [r.headers for r in fake.requests if r.kind == "cdn"]
    assert [h.get("Range") for h in cdn] == ["bytes=6000-"]
    assert paths[0].read_bytes() == whole
    assert names_in(tmp_path) == [paths[0].name]


@pytest.mark.skipif(not LOCKS, reason="locks need POSIX flock")
async def test_a_part_still_being_written_is_left_alone(fake: FakeCometAPI, tmp_path: Path) -> None:
    import fcntl

    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        only_video = attrs.evolve(task, poster_url=None, last_frame_url=None)
        live = tmp_path / f".{task.task_id}.mp4.0000aaaa{PART_SUFFIX}"
        with live.open("w+b") as held:
            held.write(b"another process is writing this")
            held.flush()
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a live download holds it
            paths = await client.download(only_video, tmp_path)
            assert live.exists()
    cdn = [r.headers for r in fake.requests if r.kind == "cdn"]
    assert [h.get("Range") for h in cdn] == [None]
    assert paths[0].read_bytes() == fake.output_bytes(task.task_id, "video.mp4")


# ---------------------------------------------------------------- the shared retry policy


async def test_a_huge_retry_after_is_capped_by_the_retry_policy(
    fake: FakeCometAPI, tmp_path: Path
) -> None:
    policy = RetryPolicy(max_tries=3, base_delay=0.001, max_delay=0.01, max_retry_after=0.01)
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        only_video = attrs.evolve(task, poster_url=None, last_frame_url=None)
        busy = Fault.response(503, "busy", headers={"Retry-After": "999999999"})
        fake.inject("cdn", busy)
        # Waiting out what the server asked would never end: the policy's cap applies.
        paths = await asyncio.wait_for(
            download_task(client, only_video, tmp_path, retry=policy), timeout=30
        )
    assert paths[0].read_bytes() == fake.output_bytes(task.task_id, "video.mp4")
