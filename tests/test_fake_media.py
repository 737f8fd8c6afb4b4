"""The real, tiny media files FakeCometAPI serves as outputs: each is what it claims to be
(by its own structure, not by name), small, and served with the right Content-Type."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from importlib import resources

import aiohttp
import pytest

from cometrunway import (
    ReferenceImage,
    RunwayImageToVideo,
    RunwaySoundEffect,
    RunwayTextToImage,
    RunwayTextToSpeech,
    TextToVideo,
)
from cometrunway.models import Request
from cometrunway.protocol import HTTPResponse, build_submit, parse_submit
from cometrunway.testing import FakeCometAPI

KEY = "sk-test"
MEDIA_BUDGET = 200 * 1024  # all files together stay well under this
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def media(name: str) -> bytes:
    return resources.files("cometrunway.testing").joinpath("media", name).read_bytes()


def mp4_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The top-level ISO BMFF boxes: (type, payload)."""
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
            header = 16
        assert size >= header, f"bad box size at {offset}"
        yield kind, data[offset + header : offset + size]
        offset += size
    assert offset == len(data), "boxes do not end at the end of the file"


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    assert data.startswith(PNG_SIGNATURE)
    offset = len(PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + payload) == crc, f"bad CRC in {kind!r}"
        yield kind, payload
        offset += 12 + length


def test_mp4_is_h264_with_moov_before_mdat() -> None:
    boxes = list(mp4_boxes(media("video.mp4")))
    kinds = [kind for kind, _ in boxes]
    assert kinds[0] == b"ftyp"
    assert b"moov" in kinds
    assert b"mdat" in kinds
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # plays while downloading
    ftyp = boxes[0][1]
    assert ftyp[:4] in (b"isom", b"mp42", b"iso5")
    moov = dict(boxes)[b"moov"]
    assert b"avc1" in moov  # an H.264 sample entry
    assert b"avcC" in moov


@pytest.mark.parametrize("name", ["poster.png", "last_frame.png", "image.png"])
def test_pngs_are_whole_images(name: str) -> None:
    chunks = list(png_chunks(media(name)))
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1] == (b"IEND", b"")
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (320, 180)
    assert any(kind == b"IDAT" for kind, _ in chunks)


def test_mp3_starts_with_frames_or_id3() -> None:
    data = media("audio.mp3")
    if data.startswith(b"ID3"):
        size = data[6:10]
        data = data[10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3]) :]
    header = struct.unpack(">I", data[:4])[0]
    assert header >> 21 == 0x7FF  # frame sync: eleven set bits
    layer = (header >> 17) & 0b11
    assert layer == 0b01  # layer III
    frames = data.count(data[:2])
    assert frames >= 10  # about a second of audio, not one stray header


def test_all_media_together_are_small() -> None:
    names = ["video.mp4", "poster.png", "last_frame.png", "image.png", "audio.mp3"]
    total = sum(len(media(name)) for name in names)
    assert total < MEDIA_BUDGET


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def create(http: aiohttp.ClientSession, fake: FakeCometAPI, request: Request) -> str:
    built = build_submit(request, api_key=KEY)
    async with http.post(fake.url + built.path, data=built.body, headers=list(built.headers)) as r:
        return parse_submit(HTTPResponse(r.status, r.headers, await r.read()))


@pytest.mark.parametrize(
    ("request_model", "served"),
    [
        (
            TextToVideo("a cat"),
            {"video.mp4": "video/mp4", "poster.png": "image/png", "last_frame.png": "image/png"},
        ),
        (RunwayImageToVideo("https://e.com/c.jpg"), {"video.mp4": "video/mp4"}),
        (
            RunwayTextToImage("a hat", reference_images=[ReferenceImage("https://e.com/r.png")]),
            {"image.png": "image/png"},
        ),
        (RunwayTextToSpeech("Hello."), {"audio.mp3": "audio/mpeg"}),
        (RunwaySoundEffect("Rain."), {"audio.mp3": "audio/mpeg"}),
    ],
)
async def test_the_fake_serves_the_media_with_their_types(
    session: aiohttp.ClientSession, request_model: Request, served: dict[str, str]
) -> None:
    async with FakeCometAPI() as fake:
        task_id = await create(session, fake, request_model)
        fake.finish(task_id)
        for name, content_type in served.items():
            async with session.get(fake.output_url(task_id, name)) as r:
                assert r.status == 200
                assert r.headers["Content-Type"] == content_type
                assert await r.read() == media(name) == fake.output_bytes(task_id, name)


async def test_output_size_serves_synthetic_bytes_instead(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeCometAPI(output_size=1000) as fake:
        task_id = await create(session, fake, TextToVideo("a cat"))
        fake.finish(task_id)
        async with session.get(fake.output_url(task_id)) as r:
            body = await r.read()
    assert len(body) == 1000
    assert body != media("video.mp4")[:1000]
