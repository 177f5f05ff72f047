"""Upload: the v2 envelope, fetching the file back, size limit, missing field, auth."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._support import bearer

pytestmark = pytest.mark.anyio

_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def _upload(
    http: aiohttp.ClientSession,
    fake: FakeRunningHub,
    data: bytes,
    filename: str | None = "photo.png",
    *,
    field: str = "file",
    key: str | None = None,
) -> dict[str, object]:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=filename, content_type="application/octet-stream")
    url = f"{fake.base_url}/openapi/v2/media/upload/binary"
    async with http.post(url, data=form, headers=bearer(key or fake.api_key)) as response:
        assert response.status == 200
        answer: dict[str, object] = await response.json()
        return answer


async def test_upload_answers_the_documented_envelope_and_serves_the_file_back() -> None:
    """An upload answers code 0 with type/download_url/fileName/size; the URL gives the bytes."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _upload(http, fake, _PNG)
        name = f"openapi/{hashlib.sha256(_PNG).hexdigest()[:32]}.png"
        assert answer == {
            "code": 0,
            "message": "success",
            "data": {
                "type": "image",
                "download_url": f"{fake.base_url}/files/uploads/{name}",
                "fileName": name,
                "size": str(len(_PNG)),
            },
        }
        async with http.get(f"{fake.base_url}/files/uploads/{name}") as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            assert await response.read() == _PNG
        assert fake.uploads == {name: _PNG}
        assert fake.stats.uploads == 1
        assert fake.stats.downloads == 1


@pytest.mark.parametrize(
    ("filename", "kind"),
    [("clip.mp4", "video"), ("voice.WAV", "audio"), ("bundle.zip", "zip"), ("a.jpeg", "image")],
)
async def test_upload_type_follows_the_extension(filename: str, kind: str) -> None:
    """The upload's type is image, video, audio or zip by file extension."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _upload(http, fake, b"some bytes", filename)
    data = answer["data"]
    assert isinstance(data, dict)
    assert data["type"] == kind
    assert data["fileName"].endswith("." + filename.rsplit(".", 1)[1].lower())


async def test_upload_without_a_usable_name_is_typed_by_its_bytes() -> None:
    """A file named without a known extension is recognised by its PNG signature."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _upload(http, fake, _PNG, "blob")
    data = answer["data"]
    assert isinstance(data, dict)
    assert data["type"] == "image"
    assert data["fileName"].endswith(".png")


async def test_upload_over_the_limit_gets_809_and_stores_nothing() -> None:
    """A file bigger than upload_max_bytes gets code 809 and is not kept."""
    async with FakeRunningHub(upload_max_bytes=1000) as fake, aiohttp.ClientSession() as http:
        answer = await _upload(http, fake, b"\x00" * 200_000)
        assert answer == {"code": 809, "message": "APIKEY_FILE_SIZE_EXCEEDED | 文件大小超出限制"}
        assert fake.uploads == {}
        exact = await _upload(http, fake, _PNG[:1000])
        assert exact["code"] == 0
    assert fake.stats.rejections == {"809": 1}


async def test_upload_without_a_file_field_gets_301() -> None:
    """A multipart body without a 'file' field gets code 301 PARAMS_INVALID."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _upload(http, fake, _PNG, field="image")
        assert answer["code"] == 301
        assert str(answer["message"]).startswith("PARAMS_INVALID")
        url = f"{fake.base_url}/openapi/v2/media/upload/binary"
        async with http.post(url, json={"file": "x"}, headers=bearer(fake.api_key)) as response:
            assert (await response.json())["code"] == 301
    assert fake.uploads == {}


async def test_upload_of_an_unsupported_file_gets_301() -> None:
    """An empty file, or one neither named nor recognisable as a documented type, gets 301."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        assert (await _upload(http, fake, b"plain text", "notes.txt"))["code"] == 301
        assert (await _upload(http, fake, b"", "empty.png"))["code"] == 301


async def test_upload_with_a_bad_key_gets_401_in_the_body() -> None:
    """An upload with an unknown key answers code 401 ApiKey verification failed."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _upload(http, fake, _PNG, key="wrong")
    assert answer == {"code": 401, "message": "ApiKey verification failed: API Key不存在"}
    assert fake.uploads == {}
