"""Output downloads against FakeCometAPI's ``/cdn``: byte-exact files, no credentials sent
to the output host, expired-URL refresh, Range resume, safe names, and no partial files."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import attrs
import pytest
from support import FAST_RETRY, KEY, client_for

from cometrunway import (
    APIError,
    RunwayImageToVideo,
    Task,
    TaskFailed,
    TaskStatus,
    TextToVideo,
    TransportError,
)
from cometrunway.download import (
    BatchDownloadError,
    DownloadError,
    DownloadInterrupted,
    OutputExpired,
    OutputRejected,
    download_task,
    output_filename,
)
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

FILES = ("video.mp4", "poster.png", "last_frame.png")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


def cdn_requests(fake: FakeCometAPI) -> list[Mapping[str, str]]:
    return [r.headers for r in fake.requests if r.kind == "cdn"]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def contents(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def expected_names(task_id: str) -> list[str]:
    return [f"{task_id}.mp4", f"{task_id}.poster.png", f"{task_id}.last_frame.png"]


async def test_folder_download_is_byte_exact(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        paths = await handle.download(tmp_path / "out")
    task_id = handle.task_id
    assert [p.name for p in paths] == expected_names(task_id)
    for path, name in zip(paths, FILES, strict=True):
        assert path.parent == (tmp_path / "out").resolve()
        assert path.read_bytes() == fake.output_bytes(task_id, name)
    assert leftovers(tmp_path) == []


async def test_the_output_host_never_sees_credentials(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        await client.download(task, tmp_path)
    polls = [r for r in fake.requests if r.kind == "poll"]
    assert polls and all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in polls)
    cdn = cdn_requests(fake)
    assert len(cdn) == 3
    for headers in cdn:
        lowered = {name.lower() for name in headers}
        assert "authorization" not in lowered
        assert "x-runway-version" not in lowered
        assert "cookie" not in lowered
        assert KEY not in " ".join(str(v) for v in headers.values())


async def test_file_destination_puts_extras_beside_it(fake: FakeCometAPI, tmp_path: Path) -> None:
    dest = tmp_path / "renders" / "cat.mp4"
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        paths = await handle.download(dest)
    assert paths == [
        dest.resolve(),
        dest.with_name("cat.poster.png").resolve(),
        dest.with_name("cat.last_frame.png").resolve(),
    ]
    assert dest.read_bytes() == fake.output_bytes(handle.task_id, "video.mp4")


async def test_image_outputs_keep_their_extension(fake: FakeCometAPI, tmp_path: Path) -> None:
    from cometrunway import ReferenceImage, RunwayTextToImage

    request = RunwayTextToImage("a hat", reference_images=[ReferenceImage("https://e.com/r.png")])
    async with client_for(fake) as client:
        handle = await client.submit(request)
        paths = await handle.download(tmp_path)
    assert [p.name for p in paths] == [f"{handle.task_id}.png"]
    assert paths[0].read_bytes() == fake.output_bytes(handle.task_id, "image.png")


async def test_progress_reports_each_file(fake: FakeCometAPI, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []

    async def progress(done: int, total: int | None) -> None:  # async callbacks work too
        seen.append((done, total))

    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle.download(tmp_path, progress=progress)
    sizes = [len(fake.output_bytes(handle.task_id, name)) for name in FILES]
    assert seen[0] == (0, sizes[0])
    assert [(size, size) in seen for size in sizes] == [True] * 3  # each file reaches its end
    assert all(total in sizes and 0 <= done <= (total or 0) for done, total in seen)


async def test_expired_url_is_refreshed_by_one_poll(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        polls = fake.request_count("poll")
        fake.inject("cdn", Fault.expired(410))
        paths = await handle.download(tmp_path)
    assert fake.request_count("poll") == polls + 1
    assert fake.pending_faults("cdn") == 0
    for path, name in zip(paths, FILES, strict=True):
        assert path.read_bytes() == fake.output_bytes(handle.task_id, name)


async def test_refresh_uses_the_handles_poll_route(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(RunwayImageToVideo("https://example.com/cat.jpg"))
        await handle
        fake.inject("cdn", Fault.expired(403))
        await handle.download(tmp_path)
    last_poll = [r for r in fake.requests if r.kind == "poll"][-1]
    assert last_poll.path == f"/runwayml/v1/tasks/{handle.task_id}"


async def test_bare_task_guesses_its_route(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        task = await (await client.submit(RunwayImageToVideo("https://example.com/cat.jpg")))
        fake.inject("cdn", Fault.expired(404))
        await client.download(task, tmp_path)  # a Task carries no route: T1 means "tasks"
    last_poll = [r for r in fake.requests if r.kind == "poll"][-1]
    assert last_poll.path == f"/runwayml/v1/tasks/{task.task_id}"


async def test_still_expired_after_refresh_raises(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        polls = fake.request_count("poll")
        fake.inject("cdn", Fault.expired(403), times=2)
        with pytest.raises(OutputExpired) as info:
            await handle.download(tmp_path)
    assert fake.request_count("poll") == polls + 1  # re-polled once, not more
    error = info.value
    assert isinstance(error, APIError) and isinstance(error, DownloadError)
    assert error.status == 403
    assert "127.0.0.1" in str(error) and "client.fetch" in str(error)
    assert contents(tmp_path) == []


async def test_interrupted_download_resumes_with_range(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        fake.inject("cdn", Fault.drop_mid_body(0.5))
        paths = await handle.download(tmp_path)
    ranges = [h.get("Range") for h in cdn_requests(fake)]
    assert ranges[0] is None
    match = re.fullmatch(r"bytes=(\d+)-", ranges[1] or "")
    assert match is not None and int(match.group(1)) > 0
    assert paths[0].read_bytes() == fake.output_bytes(handle.task_id, "video.mp4")
    assert leftovers(tmp_path) == []


async def test_a_server_ignoring_range_makes_it_start_over(
    fake: FakeCometAPI, tmp_path: Path
) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        whole = fake.output_bytes(handle.task_id, "video.mp4")
        fake.inject("cdn", Fault.drop_mid_body(0.3))
        fake.inject("cdn", Fault.response(200, whole, content_type="video/mp4"))
        paths = await handle.download(tmp_path)
    assert cdn_requests(fake)[1].get("Range", "").startswith("bytes=")
    assert paths[0].read_bytes() == whole


async def test_a_wrong_partial_answer_makes_it_start_over(
    fake: FakeCometAPI, tmp_path: Path
) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        whole = fake.output_bytes(handle.task_id, "video.mp4")
        size = len(whole)
        wrong = Fault.response(
            206,
            whole[:10],
            content_type="video/mp4",
            headers={"Content-Range": f"bytes 0-9/{size}"},
        )
        fake.inject("cdn", Fault.drop_mid_body(0.5))
        fake.inject("cdn", wrong)
        paths = await handle.download(tmp_path)
    assert "Range" not in cdn_requests(fake)[2]  # the restart asks for the whole file
    assert paths[0].read_bytes() == whole


async def test_transient_errors_are_retried(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        fake.inject("cdn", Fault.server_error(503), times=2)
        paths = await handle.download(tmp_path)
    assert paths[0].read_bytes() == fake.output_bytes(handle.task_id, "video.mp4")


async def test_persistent_failure_leaves_no_partial_file(
    fake: FakeCometAPI, tmp_path: Path
) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        fake.inject("cdn", Fault.drop_mid_body(0.5))  # half a file lands in the temp file
        fake.inject("cdn", Fault.server_error(503), times=10)
        with pytest.raises(DownloadInterrupted) as info:
            await handle.download(tmp_path)
    assert isinstance(info.value, TransportError)
    assert "127.0.0.1" in str(info.value)
    assert contents(tmp_path) == []


async def test_a_refusal_is_not_retried(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        fake.inject("cdn", Fault.response(400, "no"), times=5)
        with pytest.raises(OutputRejected) as info:
            await handle.download(tmp_path)
    assert info.value.status == 400
    assert fake.request_count("cdn") == 1
    assert contents(tmp_path) == []


async def test_cancelling_leaves_no_temporary_file(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        fake.inject("cdn", Fault.delay(30))
        download = asyncio.create_task(handle.download(tmp_path))
        async with asyncio.timeout(5):
            while fake.request_count("cdn") == 0:
                await asyncio.sleep(0.005)
        assert len(leftovers(tmp_path)) == 1
        download.cancel()
        with pytest.raises(asyncio.CancelledError):
            await download
    assert contents(tmp_path) == []


EVIL = [
    ("../../etc/passwd", "http://h/x/../../evil.sh"),
    ("..", "http://h/a%2F..%2F..%2Fevil.mp4"),
    ("/abs/path", "http://h/C:%5Cwindows%5Cevil.exe"),
    ("a\\..\\b", "http://h/file.mp4?name=../../x.sh#../y"),
    (".hidden", "http://h/noext"),
    ("", "http://h/weird.m p4"),
    ("ok-id_1.2", "http://h/video.MP4"),
    ("x" * 500, "http://h/" + "y" * 300 + ".mp4"),
    ("tâche/ünï", "http://h/%00.png"),
]


@pytest.mark.parametrize(("task_id", "url"), EVIL)
@pytest.mark.parametrize("role", ["video", "poster", "last_frame", "2"])
def test_names_are_always_safe(task_id: str, url: str, role: str, tmp_path: Path) -> None:
    name = output_filename(task_id, url, role)
    assert SAFE_NAME.match(name), name
    assert ".." not in name.split(".")[0] and "/" not in name and "\\" not in name
    assert len(name) < 140
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_names_follow_the_role_and_extension() -> None:
    url = "https://cdn.example.com/attachments/bac2acce.mp4?X-Amz-Signature=abc"
    assert output_filename("t-1", url) == "t-1.mp4"
    assert output_filename("t-1", "https://c/p.JPG", "poster") == "t-1.poster.jpg"
    assert output_filename("t-1", "https://c/frame", "last_frame") == "t-1.last_frame.png"
    assert output_filename("t-1", "https://c/video", "video") == "t-1.mp4"
    assert output_filename("t-1", "https://c/b.webm", "2") == "t-1.2.webm"


async def test_hostile_task_ids_stay_inside_dest(fake: FakeCometAPI, tmp_path: Path) -> None:
    dest = tmp_path / "inside"
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        evil = attrs.evolve(
            task,
            task_id="../../../escaped",
            outputs=(task.outputs[0] + "?name=../../x.sh",),
            poster_url=None,
            last_frame_url=None,
        )
        paths = await client.download(evil, dest)
    assert len(paths) == 1
    assert re.fullmatch(r"escaped-[0-9a-f]{12}\.mp4", paths[0].name)
    assert paths[0].parent == dest.resolve()
    assert paths[0].read_bytes() == fake.output_bytes(task.task_id, "video.mp4")
    assert contents(tmp_path) == ["inside"]


async def test_only_finished_tasks_download(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        failed = Task("t1", TaskStatus.FAILED, error="moderation")
        with pytest.raises(TaskFailed):
            await client.download(failed, tmp_path)
        with pytest.raises(ValueError, match="not finished"):
            await client.download(Task("t2", TaskStatus.RUNNING), tmp_path)
        with pytest.raises(DownloadError, match="no output URL"):
            await client.download(Task("t3", TaskStatus.SUCCEEDED), tmp_path)
    assert contents(tmp_path) == []


async def test_a_session_with_credentials_is_refused(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as bad:
            with pytest.raises(ValueError, match="credentials"):
                await download_task(client, task, tmp_path, session=bad)
        async with aiohttp.ClientSession() as good:
            paths = await download_task(client, task, tmp_path, session=good)
            assert not good.closed  # a borrowed session is left open
    assert len(paths) == 3
    assert fake.request_count("cdn") == 3


async def test_download_many_attempts_every_task(tmp_path: Path) -> None:
    lives = {"bad": Lifecycle().failing("moderation", "SAFETY.INPUT.TEXT")}
    async with FakeCometAPI(lifecycle_for=lives) as fake, client_for(fake) as client:
        handles = await client.submit_many([TextToVideo(p) for p in ("a", "bad", "c")])
        with pytest.raises(BatchDownloadError) as info:
            await client.download_many(handles, tmp_path, max_concurrency=2)
        good = await client.download_many([handles[0], handles[2]], tmp_path / "again")
    error = info.value
    assert [p is None for p in error.paths] == [False, True, False]
    assert len(error.exceptions) == 1
    assert isinstance(error.exceptions[0], TaskFailed)
    assert error.exceptions[0].index == 1  # type: ignore[attr-defined]
    for paths, handle in zip(
        (error.paths[0], error.paths[2]), (handles[0], handles[2]), strict=True
    ):
        assert paths is not None
        assert paths[0].read_bytes() == fake.output_bytes(handle.task_id, "video.mp4")
    assert [len(paths) for paths in good] == [3, 3]
    assert leftovers(tmp_path) == []


async def test_download_many_checks_its_arguments(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        with pytest.raises(ValueError, match="max_concurrency"):
            await client.download_many([], tmp_path, max_concurrency=0)
        with pytest.raises(TypeError):
            await client.download_many([], tmp_path, max_concurrency=1.5)  # type: ignore[arg-type]
        assert await client.download_many([], tmp_path) == []


async def test_an_unsatisfiable_range_starts_over(fake: FakeCometAPI, tmp_path: Path) -> None:
    async with client_for(fake) as client:
        handle = await client.submit(TextToVideo("a cat"))
        await handle
        size = len(fake.output_bytes(handle.task_id, "video.mp4"))
        fake.inject("cdn", Fault.drop_mid_body(0.5))
        fake.inject("cdn", Fault.response(416, "", headers={"Content-Range": f"bytes */{size}"}))
        paths = await handle.download(tmp_path)
    assert "Range" not in cdn_requests(fake)[2]
    assert paths[0].read_bytes() == fake.output_bytes(handle.task_id, "video.mp4")


async def test_a_task_gone_when_refreshing_raises_expired(tmp_path: Path) -> None:
    async with FakeCometAPI(allow_cancel=True) as fake, client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        async with aiohttp.ClientSession() as http:
            url = f"{fake.url}/runwayml/v1/tasks/{task.task_id}"
            headers = {"Authorization": f"Bearer {KEY}"}
            async with http.delete(url, headers=headers) as answer:
                assert answer.status == 204
        fake.inject("cdn", Fault.expired(410))
        with pytest.raises(OutputExpired, match="re-polling the task failed") as info:
            await client.download(task, tmp_path)
    assert info.value.status == 410
    polled = [r.path for r in fake.requests if r.kind == "poll"][-2:]
    assert polled == ["/runway/feed", f"/runwayml/v1/tasks/{task.task_id}"]  # both routes tried
    assert contents(tmp_path) == []


async def test_signed_queries_stay_out_of_errors_and_logs(
    fake: FakeCometAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "X-Amz-Signature=SECRETSIG123"
    async with client_for(fake) as client:
        task = await (await client.submit(TextToVideo("a cat")))
        signed = attrs.evolve(
            task, outputs=(f"{task.outputs[0]}?{secret}",), poster_url=None, last_frame_url=None
        )
        with caplog.at_level("DEBUG", logger="cometrunway"):
            fake.inject("cdn", Fault.drop_mid_body(0.5))
            fake.inject("cdn", Fault.server_error(503), times=5)
            with pytest.raises(DownloadInterrupted) as interrupted:
                await client.download(signed, tmp_path)
            fake.inject("cdn", Fault.response(400, "no"))
            with pytest.raises(OutputRejected) as rejected:
                await client.download(signed, tmp_path)
    for error in (interrupted.value, rejected.value):
        chain = [str(error), repr(error), str(error.__cause__), str(error.__context__)]
        assert "SECRETSIG123" not in " ".join(chain)
        assert "/cdn/" in str(error)  # the path is shown: it says which file
    assert "SECRETSIG123" not in caplog.text


async def test_an_unreachable_host_is_a_transport_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    task = Task("t-1", TaskStatus.SUCCEEDED, outputs=(f"http://127.0.0.1:{port}/x.mp4?sig=SECRET",))

    class NoFetch:
        async def fetch(self, task_id: str, *, route: str = "feed") -> Task:
            raise AssertionError("a connection failure is not an expired URL")

    with pytest.raises(DownloadInterrupted, match=re.escape("127.0.0.1")) as info:
        await download_task(NoFetch(), task, tmp_path, retry=FAST_RETRY)
    assert "SECRET" not in str(info.value)
    assert contents(tmp_path) == []
