"""Every documented route answers; api-key list, price preview, resources, LoRA, webhook replay."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub, Fault

from ._clients import APP, WORKFLOW, hook_server, sdk_get, sdk_headers, sdk_post
from ._support import GOOD, T2I, bearer, post_json, query, submit

pytestmark = pytest.mark.anyio

_TASK = "1904163390028185602"

# Every route runninghub-api.md documents: (method, path, body kind, body).
# "v2" sends Bearer only, "legacy" adds apiKey to the JSON body, "form" is multipart.
DOCUMENTED: list[tuple[str, str, str, Any]] = [
    ("POST", f"/openapi/v2/{T2I}", "v2", GOOD),
    ("POST", "/openapi/v2/query", "v2", {"taskId": _TASK}),
    ("POST", "/openapi/v2/media/upload/binary", "form", None),
    ("GET", "/openapi/v2/queue/status", "v2", None),
    ("GET", "/openapi/v2/api-key/list", "v2", None),
    ("POST", f"/openapi/v2/price-preview/{T2I}", "v2", GOOD),
    ("POST", "/openapi/v2/resource/list", "v2", {"resourceType": "LORA", "current": 1, "size": 10}),
    ("POST", f"/openapi/v2/run/ai-app/{APP}", "v2", {"nodeInfoList": []}),
    ("POST", f"/openapi/v2/run/workflow/{WORKFLOW}", "v2", {}),
    ("POST", "/task/openapi/create", "legacy", {"workflowId": WORKFLOW}),
    ("POST", "/task/openapi/ai-app/run", "legacy", {"webappId": APP}),
    ("POST", "/task/openapi/quick-ai-app/run", "legacy", {"webappId": APP}),
    ("POST", "/task/openapi/status", "legacy", {"taskId": _TASK}),
    ("POST", "/task/openapi/outputs", "legacy", {"taskId": _TASK}),
    ("POST", "/task/openapi/cancel", "legacy", {"taskId": _TASK}),
    ("POST", "/task/openapi/upload", "form", None),
    ("POST", "/task/openapi/getWebhookDetail", "legacy", {"taskId": _TASK}),
    ("POST", "/task/openapi/retryWebhook", "legacy", {"webhookId": "1", "webhookUrl": ""}),
    ("POST", "/uc/openapi/accountStatus", "legacy", {"apikey": "test-key"}),
    ("POST", "/api/openapi/getJsonApiFormat", "legacy", {"workflowId": WORKFLOW}),
    ("GET", "/api/webapp/apiCallDemo", "query", {"webappId": APP}),
    ("POST", "/api/openapi/getLoraUploadUrl", "legacy", {"loraName": "x", "md5Hex": "0" * 32}),
]


@pytest.mark.parametrize(("method", "path", "kind", "body"), DOCUMENTED)
async def test_every_documented_route_is_served(
    method: str, path: str, kind: str, body: Any
) -> None:
    """No documented route answers 404 or 405; each answers JSON with a known envelope."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        key = fake.api_key
        url = f"{fake.base_url}{path}"
        kwargs: dict[str, Any] = {"headers": sdk_headers(key)}
        if kind == "v2" and body is not None:
            kwargs["json"] = body
        elif kind == "legacy":
            kwargs["json"] = {**body, "apiKey": key}
        elif kind == "query":
            kwargs["params"] = {**body, "apiKey": key}
        elif kind == "form":
            form = aiohttp.FormData()
            form.add_field("apiKey", key)
            form.add_field("file", b"\x89PNG\r\n\x1a\n0000", filename="a.png")
            kwargs = {"headers": bearer(key), "data": form}
        async with http.request(method, url, **kwargs) as response:
            assert response.status not in (404, 405), (path, response.status)
            answer = await response.json()
    assert "code" in answer or "errorCode" in answer, answer
    assert answer.get("code") != 1000
    assert answer.get("errorCode") not in ("1000", "1002")


async def test_api_key_list_answers_masked_keys_and_spend() -> None:
    """list_api_keys(): GET, Bearer; one masked item per key; quotaUsed is the key's spend."""
    fake = FakeRunningHub(api_keys=("first-secret-key", "second-secret-key"), duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.finish(task_id)
        answer = await sdk_get(http, fake, "/openapi/v2/api-key/list", {})
        assert answer["code"] == 0
        first, second = answer["data"]
        assert set(first) == {
            "key",
            "apiKeyName",
            "status",
            "quotaLimit",
            "quotaUsed",
            "visible",
            "expireAt",
            "expireInMinute",
            "createdAt",
        }
        assert "secret" not in first["key"]
        assert first["key"].startswith("fir")
        assert first["status"] == 1
        assert first["quotaUsed"] == pytest.approx(0.4)  # nano-pro 1k, documented price
        assert second["quotaUsed"] == 0
        async with http.get(f"{fake.base_url}/openapi/v2/api-key/list") as response:
            assert (await response.json())["code"] == 401


@pytest.mark.parametrize(
    ("endpoint", "body", "price"),
    [
        (T2I, {"prompt": "fox", "resolution": "4k"}, 0.5),
        ("rhart-image-n-pro-official/edit", {"prompt": "x", "resolution": "2k"}, 1.0),
        ("rhart-image-v1/text-to-image", {"prompt": "x"}, 0.05),
        ("seedream-v4/text-to-image", {"prompt": "x"}, 0.10),
        (f"run/ai-app/{APP}", {"nodeInfoList": []}, 0.10),
    ],
)
async def test_price_preview_answers_the_documented_shape(
    endpoint: str, body: dict[str, Any], price: float
) -> None:
    """preview_model_price(): POST price-preview/<endpoint> with the submit body."""
    async with FakeRunningHub(currency="USD") as fake, aiohttp.ClientSession() as http:
        path = f"/openapi/v2/price-preview/{endpoint}"
        answer = await sdk_post(http, fake, path, body, legacy=False)
    assert answer["errorCode"] == ""
    assert answer["errorMessage"] == ""
    assert answer["estimatedPrice"] == pytest.approx(price)
    assert answer["currency"] == "USD"
    assert answer["isFreeThisCall"] is False
    assert {"priceText", "priceTextEn", "freeLimit", "freeLimitCount"} <= set(answer)
    assert len(fake.tasks) == 0


async def test_price_preview_matches_what_the_task_costs_and_refuses_bad_calls() -> None:
    """The preview equals usage.consumeMoney of the same call; unknown path 1000, no key 1002."""
    body = {"prompt": "fox", "resolution": "2k"}
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        path = f"/openapi/v2/price-preview/{T2I}"
        preview = await sdk_post(http, fake, path, body, legacy=False)
        task_id = (await submit(http, fake, body))["taskId"]
        fake.finish(task_id)
        usage = (await query(http, fake, task_id))["usage"]
        assert float(usage["consumeMoney"]) == pytest.approx(preview["estimatedPrice"])
        unknown = await sdk_post(http, fake, "/openapi/v2/price-preview/no/such", {}, legacy=False)
        assert unknown["errorCode"] == "1000"
        no_key = await post_json(http, f"{fake.base_url}{path}", body)
        assert no_key["errorCode"] == "1002"


async def test_resource_list_filters_and_pages() -> None:
    """list_public_models(): records filtered by type and name, paged by current/size."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        path = "/openapi/v2/resource/list"
        answer = await sdk_post(
            http, fake, path, {"resourceType": "UNET", "current": 1, "size": 2}, legacy=False
        )
        assert answer["code"] == 0
        data = answer["data"]
        assert data["total"] == 3
        assert data["pages"] == 2
        assert data["hasNext"] is True
        assert data["hasPrevious"] is False
        assert len(data["records"]) == 2
        assert all(r["resourceType"] == "UNET" for r in data["records"])
        record = data["records"][0]
        assert {"id", "resourceName", "versions", "owner", "tags"} <= set(record)
        second = await sdk_post(
            http, fake, path, {"resourceType": "UNET", "current": 2, "size": 2}, legacy=False
        )
        assert len(second["data"]["records"]) == 1
        assert second["data"]["hasNext"] is False
        named = await sdk_post(
            http,
            fake,
            path,
            {"resourceType": "CHECKPOINT", "resourceName": "XL", "baseModels": ["SDXL 1.0"]},
            legacy=False,
        )
        assert [r["resourceName"] for r in named["data"]["records"]] == [
            "sd_xl_base_1.0.safetensors"
        ]
        bad = await sdk_post(http, fake, path, {"size": 51}, legacy=False)
        assert bad["code"] == 301


async def test_lora_upload_url_then_put_stores_it_and_lists_it() -> None:
    """upload_lora(): getLoraUploadUrl, PUT octet-stream to data.url; a bad digest is refused."""
    content = b"safetensors bytes"
    md5 = hashlib.md5(content).hexdigest()
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        body = {"loraName": "my-style", "md5Hex": md5}
        answer = await sdk_post(http, fake, "/api/openapi/getLoraUploadUrl", body)
        assert answer["code"] == 0
        data = answer["data"]
        assert data["fileName"] == f"api-lora-cn/{md5}.safetensors"
        headers = {"Content-Type": "application/octet-stream"}
        async with http.put(data["url"], data=b"other bytes", headers=headers) as response:
            assert response.status == 400
        forged = data["url"].replace("signature=", "signature=x")
        async with http.put(forged, data=content, headers=headers) as response:
            assert response.status == 403
        async with http.put(data["url"], data=content, headers=headers) as response:
            assert response.status == 200
        assert fake.loras == {data["fileName"]: content}
        listed = await sdk_post(
            http, fake, "/openapi/v2/resource/list", {"resourceType": "LORA"}, legacy=False
        )
        names = [r["resourceName"] for r in listed["data"]["records"]]
        assert "my-style" in names
        bad = await sdk_post(http, fake, "/api/openapi/getLoraUploadUrl", {"loraName": "x"})
        assert bad["code"] == 301


async def test_webhook_detail_and_retry_replay_a_failed_delivery() -> None:
    """get_webhook_detail() reports FAILED after the retries; retry_webhook() resends it."""
    async with hook_server(500) as down, hook_server(200) as up:
        fake = FakeRunningHub(duration=None, webhook_attempts=3, webhook_retry_delay=0)
        async with fake, aiohttp.ClientSession() as http:
            answer = await sdk_post(
                http,
                fake,
                "/task/openapi/ai-app/run",
                {"webappId": APP, "webhookUrl": down.url},
            )
            task_id = answer["data"]["taskId"]
            none_yet = await sdk_post(
                http, fake, "/task/openapi/getWebhookDetail", {"taskId": task_id}
            )
            assert none_yet == {"code": 1, "msg": "webhook event does not exist", "data": None}
            fake.finish(task_id)
            await fake.wait_for(lambda f: f.stats.webhook_failures == 1)
            detail = await sdk_post(
                http, fake, "/task/openapi/getWebhookDetail", {"taskId": task_id}
            )
            assert detail["code"] == 0
            event = detail["data"]
            assert set(event) == {
                "id",
                "userApiKey",
                "taskId",
                "webhookUrl",
                "eventData",
                "callbackStatus",
                "callbackResponse",
                "retryCount",
                "createTime",
                "updateTime",
            }
            assert event["callbackStatus"] == "FAILED"
            assert event["retryCount"] == 2
            assert event["webhookUrl"] == down.url
            assert "500" in event["callbackResponse"]
            assert event["userApiKey"] != fake.api_key
            assert json.loads(event["eventData"])["code"] == 0

            retry = await sdk_post(
                http,
                fake,
                "/task/openapi/retryWebhook",
                {"webhookId": event["id"], "webhookUrl": up.url},
            )
            assert retry == {"code": 0, "msg": "success", "data": None}
            await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
            detail = await sdk_post(
                http, fake, "/task/openapi/getWebhookDetail", {"taskId": task_id}
            )
            assert detail["data"]["callbackStatus"] == "SUCCESS"
            assert detail["data"]["webhookUrl"] == up.url
            assert detail["data"]["retryCount"] == 3
            unknown = await sdk_post(
                http, fake, "/task/openapi/retryWebhook", {"webhookId": "123", "webhookUrl": up.url}
            )
            assert unknown["code"] == 1
    assert len(down.received) == 3
    (payload,) = up.received
    assert payload["taskId"] == task_id


@pytest.mark.parametrize(
    ("route", "method", "path", "body"),
    [
        ("status", "POST", "/task/openapi/status", {"taskId": _TASK}),
        ("outputs", "POST", "/task/openapi/outputs", {"taskId": _TASK}),
        ("webhook", "POST", "/task/openapi/getWebhookDetail", {"taskId": _TASK}),
        ("api_keys", "GET", "/openapi/v2/api-key/list", None),
        ("price", "POST", f"/openapi/v2/price-preview/{T2I}", GOOD),
        ("resources", "POST", "/openapi/v2/resource/list", {}),
        ("workflow_json", "POST", "/api/openapi/getJsonApiFormat", {"workflowId": WORKFLOW}),
        ("lora", "POST", "/api/openapi/getLoraUploadUrl", {}),
        ("submit", "POST", "/task/openapi/create", {"workflowId": WORKFLOW}),
        ("upload", "POST", "/task/openapi/upload", None),
    ],
)
async def test_faults_apply_to_the_new_routes_by_name(
    route: str, method: str, path: str, body: Any
) -> None:
    """A Fault on a route name hits that route only; the request is counted under its name."""
    fake = FakeRunningHub(faults=[Fault("http_503", route=route, times=1)])
    async with fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}{path}"
        payload = None if body is None else {**body, "apiKey": fake.api_key}
        async with http.request(method, url, json=payload, headers=sdk_headers(fake.api_key)) as r:
            assert r.status == 503
        async with http.request(method, url, json=payload, headers=sdk_headers(fake.api_key)) as r:
            assert r.status in (200, 401)
        other = await post_json(
            http, f"{fake.base_url}/openapi/v2/query", {"taskId": _TASK}, bearer(fake.api_key)
        )
        assert other["errorCode"] == "1004"
    assert fake.stats.faults_injected == {"http_503": 1}
    assert (
        sum(n for name, n in fake.stats.requests_by_route.items() if name.split(".")[0] == route)
        == 2
    )


async def test_requests_by_route_counts_every_route() -> None:
    """stats.requests_by_route names the route of each request, old routes included."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        await query(http, fake, task_id)
        await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
    assert fake.stats.requests_by_route == {"submit": 1, "query": 1, "status": 2}
