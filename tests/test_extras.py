"""price(), max_cost budgets, webhooks, API keys, resources, LoRA uploads and request()."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from runninghub_async import (
    AuthenticationError,
    BudgetExceededError,
    CostBudget,
    InvalidParametersError,
    Price,
    ProtocolError,
    RunningHub,
    ServerError,
    TaskNotFoundError,
)
from runninghub_async._batch import run_batch
from runninghub_async._live import MAX_AUTO_LIMIT
from runninghub_async._pricing import catalog_price
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_POLL, FAST_RETRY, ClientFactory
from .hostile import KEY, serve, task_body

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
GOOD = {"prompt": "a lighthouse", "resolution": "1k"}


# -- price ---------------------------------------------------------------------------------


async def test_price_comes_from_the_api(client: RunningHub, fake: FakeRunningHub) -> None:
    """The price preview answers the price; nothing is created."""
    price = await client.price(T2I, {**GOOD, "resolution": "4k"})
    assert price == Price(
        Decimal("0.5"),
        "CNY",
        "预计消耗 0.50 CNY",
        source="api",
        endpoint=T2I,
        text_en="Estimated cost 0.50 CNY",
    )
    assert len(fake.tasks) == 0
    assert fake.stats.requests_by_route["price"] == 1


async def test_price_of_a_documented_name_and_an_app_run(client: RunningHub) -> None:
    """A model's documented name resolves to its path; app runs have a price too."""
    by_name = await client.price("nano-banana-pro/text-to-image-channel-low-price", GOOD)
    assert by_name.endpoint == T2I
    app = await client.price("run/ai-app/1937084629516193794", {"nodeInfoList": []})
    assert app.amount > 0


async def test_price_checks_params_locally_first(client: RunningHub, fake: FakeRunningHub) -> None:
    """Bad params or an unknown model: InvalidParametersError, no request."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.price(T2I, {**GOOD, "resolution": "9k"})
    assert caught.value.field == "resolution"
    with pytest.raises(InvalidParametersError):
        await client.price("../etc", GOOD)
    assert fake.stats.requests_total == 0


@pytest.fixture
async def price_server() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[str]]]:
    """A small server whose price preview answers a given body (the fake always has a price)."""
    runners: list[web.AppRunner] = []

    async def start(answer: dict[str, Any]) -> str:
        async def preview(request: web.Request) -> web.Response:
            return web.json_response(answer)

        app = web.Application()
        app.router.add_post("/openapi/v2/price-preview/{path:.+}", preview)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(
    "answer",
    [
        {"errorCode": "", "errorMessage": "", "estimatedPrice": None, "currency": "CNY"},
        {"errorCode": "1000", "errorMessage": "unknown path"},
    ],
    ids=["no-price", "unknown-endpoint"],
)
async def test_price_falls_back_to_the_catalog(
    price_server: Callable[[dict[str, Any]], Awaitable[str]], answer: dict[str, Any]
) -> None:
    """No price in the answer, or errorCode 1000: the catalog's price, source "catalog"."""
    base_url = await price_server(answer)
    async with RunningHub(api_key="k", base_url=base_url, retry=FAST_RETRY) as client:
        price = await client.price(T2I, {**GOOD, "resolution": "2k"})
        assert (price.amount, price.currency, price.source) == (Decimal("0.4"), "CNY", "catalog")
        assert price.endpoint == T2I
        with pytest.raises((LookupError, ServerError)):
            await client.price("run/workflow/123", {})  # the catalog knows no workflows


# -- max_cost -------------------------------------------------------------------------------


async def test_a_budget_stops_submitting_before_it_would_be_passed(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """0.40 per item, max 1.00: two items run, the third comes back unsent, nothing after."""
    budget = CostBudget(client.price, "1.00")
    params = [{**GOOD, "prompt": f"item {n}"} for n in range(6)]
    items = []
    async with anyio.create_task_group() as tg:
        async def one(index: int, p: Mapping[str, Any]) -> Any:
            return await client.submit(T2I, p)

        batch = run_batch(tg, one, params, 1, budget=budget, endpoint=T2I)
        items = [item async for item in batch]
    assert sorted(i.index for i in items if i.ok) == [0, 1]
    (stopped,) = [i for i in items if not i.ok]
    assert stopped.index == 2
    assert isinstance(stopped.error, BudgetExceededError)
    assert stopped.error.spent == Decimal("0.8")
    assert len(fake.tasks) == 2
    assert budget.spent == Decimal("0.8")
    assert fake.stats.requests_by_route["price"] == 3


async def test_a_budget_prices_identical_params_once_and_gives_back_refused_items(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """The price cache is per (endpoint, params); a refused submit releases its reservation."""
    budget = CostBudget(client.price, 10)
    assert await budget.reserve(T2I, GOOD)
    assert await budget.reserve(T2I, dict(GOOD))
    assert budget.spent == Decimal("0.8")
    assert fake.stats.requests_by_route["price"] == 1
    budget.release(T2I, GOOD)
    assert budget.spent == Decimal("0.4")
    with pytest.raises(ValueError, match="max_cost"):
        CostBudget(client.price, "-1")


async def test_run_many_max_cost(client: RunningHub, fake: FakeRunningHub) -> None:
    """run_many(..., max_cost=) stops before the budget would be passed."""
    params = [{**GOOD, "prompt": f"item {n}"} for n in range(5)]
    items = [i async for i in client.run_many(T2I, params, window=1, max_cost="0.80")]
    assert len(fake.tasks) == 2
    assert isinstance(items[-1].error, BudgetExceededError)


@pytest.mark.parametrize("amount", ["-5", "-Infinity", "Infinity", "NaN", "sNaN", -0.01])
async def test_a_price_that_is_no_amount_fails_closed(amount: object) -> None:
    """A negative price made room under max_cost (all 10 sent), NaN a raw decimal error."""
    submits = 0

    async def preview(request: web.Request) -> web.Response:
        body = {"estimatedPrice": amount, "currency": "USD", "errorCode": "", "errorMessage": ""}
        return web.json_response(body)

    async def submit(request: web.Request) -> web.Response:
        nonlocal submits
        submits += 1
        return task_body(str(1000 + submits), "QUEUED")

    routes = {
        ("POST", "/openapi/v2/price-preview/{tail:.*}"): preview,
        ("POST", "/openapi/v2/{tail:.*}"): submit,
    }
    async with serve(routes) as base:
        async with RunningHub(
            api_key=KEY, base_url=base, retry=FAST_RETRY, requests_per_second=None
        ) as client:
            with pytest.raises(ProtocolError, match="not a finite amount"):
                await client.price(T2I, GOOD)
            items = [i async for i in client.run_many(T2I, [GOOD] * 10, max_cost="1.00")]
    assert submits == 0
    assert len(items) == 10
    assert all(isinstance(i.error, ProtocolError) for i in items)


async def test_a_budget_refuses_a_negative_price_from_any_source() -> None:
    """``CostBudget`` takes any ``price_of``: it checks the amounts itself."""

    async def price_of(endpoint: str, params: Mapping[str, Any]) -> Price:
        return Price(Decimal(params["amount"]), "CNY")

    budget = CostBudget(price_of, "1")
    with pytest.raises(ProtocolError):
        await budget.reserve(T2I, {"amount": "-1"})
    with pytest.raises(ProtocolError):
        await budget.reserve(T2I, {"amount": "NaN"})
    assert budget.spent == 0
    assert await budget.reserve(T2I, {"amount": "0.5"})


@pytest.mark.parametrize(
    "count", [1e308, math.inf, 10**400, "inf"], ids=["1e308", "inf", "10**400", "'inf'"]
)
def test_the_catalog_prices_no_absurd_count(count: object) -> None:
    """An overflowing count has no price (it raised decimal.InvalidOperation, or priced 1)."""
    model = "alibaba/qwen-image-2.0/text-to-image"
    assert catalog_price(model, {"prompt": "x", "imageNum": count}) is None
    two = catalog_price(model, {"prompt": "x", "imageNum": 2})
    assert two is not None
    assert two.amount == Decimal("0.26")


# -- hostile answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"download_url": "javascript:alert(1)", "fileName": "x.png"},
        {"download_url": 12345, "fileName": "x.png"},
        {"download_url": "", "fileName": "x.png"},
        {"download_url": "/relative/x.png", "fileName": "x.png"},
        {"download_url": "https://cdn.example/x.png", "fileName": ""},
    ],
)
async def test_an_upload_answer_without_a_usable_url_is_a_protocol_error(
    data: dict[str, Any],
) -> None:
    """Such answers went into a paid submit as imageUrls; nothing is submitted now."""
    submits: list[str] = []

    async def upload(request: web.Request) -> web.Response:
        await request.read()
        answer = {"code": 0, "msg": "ok", "data": {**data, "size": 72, "type": "image"}}
        return web.json_response(answer)

    async def submit(request: web.Request) -> web.Response:
        submits.append(request.path)
        return task_body("1001", "QUEUED")

    routes = {
        ("POST", "/openapi/v2/media/upload/binary"): upload,
        ("POST", "/openapi/v2/{tail:.*}"): submit,
    }
    image = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    async with serve(routes) as base:
        async with RunningHub(
            api_key=KEY, base_url=base, retry=FAST_RETRY, requests_per_second=None
        ) as client:
            with pytest.raises(ProtocolError, match="upload"):
                await client.submit_edit_image("x", [image])
            with pytest.raises(ProtocolError, match="upload"):
                await client.submit_app("123", {"1.image": image})
            with pytest.raises(ProtocolError, match="upload"):
                await client.upload(image)
    assert submits == []


async def test_auto_max_in_flight_takes_a_bounded_limit_from_the_server() -> None:
    """``concurrentLimit`` 10**30 became 10**30 slots (and run_many's default window)."""

    async def queue_status(request: web.Request) -> web.Response:
        data = {
            "concurrentLimit": 10**30,
            "runningCount": "0",
            "queuedCount": "0",
            "totalCurrentTasks": "0",
            "apiKeyType": "SHARED",
        }
        return web.json_response({"code": 0, "msg": "ok", "data": data})

    async with serve({("GET", "/openapi/v2/queue/status"): queue_status}) as base:
        async with RunningHub(
            api_key=KEY, base_url=base, max_in_flight="auto", requests_per_second=None
        ) as client:
            assert client.statistics().limiter.max_in_flight == MAX_AUTO_LIMIT


# -- webhooks -------------------------------------------------------------------------------


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[str]]]:
    """A webhook receiver: its base URL, and the paths it was called on."""
    calls: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", calls
    finally:
        await runner.cleanup()


async def test_webhook_detail_and_resend(
    client: RunningHub, fake: FakeRunningHub, hooks: tuple[str, list[str]]
) -> None:
    """The detail names the delivery; a resend to a new URL reaches it."""
    url, calls = hooks
    job = await client.submit(T2I, GOOD, webhook_url=f"{url}/first")
    await job.wait()
    await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
    detail = await client.webhook_detail(job.task_id)
    assert detail.task_id == job.task_id
    assert detail.webhook_url == f"{url}/first"
    assert detail.callback_status == "SUCCESS"
    assert detail.retry_count == 0
    assert '"fileUrl"' in detail.event_data
    await client.resend_webhook(job.task_id, webhook_url=f"{url}/second")
    await fake.wait_for(lambda f: f.stats.webhook_deliveries == 2)
    assert calls == ["/first", "/second"]


async def test_webhook_detail_of_a_task_without_one_is_not_found(client: RunningHub) -> None:
    """Legacy code 1 ("webhook event does not exist") is TaskNotFoundError."""
    job = await client.submit(T2I, GOOD)
    with pytest.raises(TaskNotFoundError) as caught:
        await client.webhook_detail(job.task_id)
    assert caught.value.code == "1"
    with pytest.raises(ValueError, match="not a RunningHub task id"):
        await client.webhook_detail("not-an-id")


# -- keys, resources, LoRA ------------------------------------------------------------------


async def test_api_keys_are_listed_masked(client: RunningHub, fake: FakeRunningHub) -> None:
    """One entry per key; the key is masked; quota_used is money."""
    await client.run(T2I, GOOD)
    (info,) = await client.api_keys()
    assert info.key != fake.api_key
    assert info.key.startswith(fake.api_key[:3])
    assert info.name == "key-1"
    assert info.quota_used == Decimal("0.4")
    assert info.visible is True


async def test_resources_are_paged_and_filtered(client: RunningHub, fake: FakeRunningHub) -> None:
    """Filters and paging reach the route; records come back typed."""
    page = await client.resources("CHECKPOINT", page_size=1)
    assert (page.total, page.pages, page.page, page.has_next) == (2, 2, 1, True)
    (record,) = page.records
    assert record.type == "CHECKPOINT"
    assert record.base_models
    flux = await client.resources(base_models=["FLUX.1"], name="lora")
    assert [r.name for r in flux.records] == ["flux_realism_lora.safetensors"]
    assert flux.records[0].tags == ("flux-family", "realism")
    before = fake.stats.requests_total
    with pytest.raises(ValueError, match="page_size"):
        await client.resources(page_size=51)
    assert fake.stats.requests_total == before


async def test_resources_take_one_base_model_as_a_str(client: RunningHub) -> None:
    """``"FLUX.1"`` was sent as six base models, "F", "L", "U", ..."""
    flux = await client.resources(base_models="FLUX.1", name="lora")
    assert [r.name for r in flux.records] == ["flux_realism_lora.safetensors"]


@pytest.mark.parametrize(
    "options",
    [
        {"resource_type": 42},
        {"name": 7},
        {"tags": "12"},
        {"tags": [1, "2"]},
        {"tags": [True]},
        {"base_models": [b"FLUX.1"]},
        {"base_models": 1},
    ],
)
async def test_resources_refuse_wrong_types_before_sending(
    client: RunningHub, fake: FakeRunningHub, options: dict[str, Any]
) -> None:
    """They were sent as they were (a str of digits as a list of one-digit tags)."""
    before = fake.stats.requests_total
    with pytest.raises(TypeError):
        await client.resources(**options)
    assert fake.stats.requests_total == before


async def test_upload_lora_puts_the_file_and_it_is_listed(
    client: RunningHub, fake: FakeRunningHub, tmp_path: Path
) -> None:
    """getLoraUploadUrl, then a key-less PUT of the bytes whose MD5 was signed."""
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"lora weights " * 50_000)
    uploaded = await client.upload_lora(lora, name="my-style")
    assert uploaded.file_name == f"api-lora-cn/{uploaded.md5}.safetensors"
    assert fake.loras[uploaded.file_name] == lora.read_bytes()
    assert fake.stats.file_requests_with_auth == 0
    listed = await client.resources("LORA", name="my-style")
    assert [r.name for r in listed.records] == ["my-style"]


# -- request() -----------------------------------------------------------------------------


async def test_request_on_a_legacy_route_adds_the_key_and_maps_errors(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """/task/openapi/status gets apiKey in its body; 807 raises TaskNotFoundError."""
    job = await client.submit(T2I, GOOD)
    answer = await client.request("POST", "/task/openapi/status", {"taskId": job.task_id})
    assert answer["code"] == 0
    assert answer["data"] in ("QUEUED", "RUNNING", "SUCCESS")
    with pytest.raises(TaskNotFoundError) as caught:
        await client.request("POST", "/task/openapi/status", {"taskId": "1" * 19})
    assert caught.value.code == "807"
    account = await client.request("POST", "/uc/openapi/accountStatus")
    assert account["data"]["apiType"] == "SHARED"


async def test_request_on_v2_routes_returns_json_and_maps_errors(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """GET queue/status decodes; a v2 1004 raises TaskNotFoundError; 1000 ServerError."""
    status = await client.request("GET", "/openapi/v2/queue/status")
    assert status["data"]["apiKeyType"] == "SHARED"
    with pytest.raises(TaskNotFoundError):
        await client.request("POST", "/openapi/v2/query", {"taskId": "1" * 19})
    with pytest.raises(ServerError):
        await client.request("POST", "/openapi/v2/no-such/endpoint", {})


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "openapi/v2/x"), ("BREW", "/x"), ("GET", "//evil.example/x"), ("GET", "/a/../b")],
)
async def test_request_refuses_bad_methods_and_paths(
    client: RunningHub, fake: FakeRunningHub, method: str, path: str
) -> None:
    """Nothing is sent for a bad method or path."""
    with pytest.raises(ValueError, match=r"method|path"):
        await client.request(method, path)
    assert fake.stats.requests_total == 0


async def test_request_never_puts_the_key_in_a_url(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """A path carrying the key is refused (it would reach logs and proxies)."""
    with pytest.raises(ValueError, match="must not go into a URL") as caught:
        await client.request("GET", f"/api/webapp/apiCallDemo?apiKey={fake.api_key}&webappId=1")
    assert fake.api_key not in str(caught.value)
    assert fake.stats.requests_total == 0


async def test_a_bad_key_is_an_authentication_error_everywhere(
    make_client: ClientFactory,
) -> None:
    """v2 and legacy routes both map a bad key to AuthenticationError."""
    async with make_client(api_key="wrong", poll=FAST_POLL) as client:
        with pytest.raises(AuthenticationError):
            await client.api_keys()
        with pytest.raises(AuthenticationError):
            await client.webhook_detail("1" * 19)
        with pytest.raises(AuthenticationError):
            await client.price(T2I, GOOD)
