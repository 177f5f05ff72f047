"""Results of the routes beyond submit and query: prices, webhooks, keys, resources, LoRAs.

Frozen attrs classes with Python names, like ``_models``; ``_wire`` maps them to
RunningHub's camelCase.  Every field has a default, because these routes are
less documented than the task routes and a missing key must never break a call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs

__all__ = [
    "ApiKeyInfo",
    "LoraGrant",
    "LoraUpload",
    "Price",
    "Resource",
    "ResourcePage",
    "WebhookDetail",
]


@attrs.frozen
class Price:
    """What one call of an endpoint with given params is expected to cost.

    Attributes:
        amount: the estimated price of one call.
        currency: ``"CNY"`` (runninghub.cn), ``"USD"`` (runninghub.ai), as RunningHub says.
        text: RunningHub's own wording of the price (``priceText``), if any.
        source: ``"api"`` when RunningHub's price preview answered it, ``"catalog"``
            when it came from the packaged price list (always CNY, may be out of date).
        endpoint: the endpoint path it is the price of.
        text_en: the English wording (``priceTextEn``), if any.
        free: this call would be free (``isFreeThisCall``).
        free_calls_left: free calls left today (``remainingFreeLimitCount``), if any.
    """

    amount: Decimal
    currency: str
    text: str | None = None
    source: Literal["api", "catalog"] = "api"
    endpoint: str = ""
    text_en: str | None = None
    free: bool = False
    free_calls_left: int | None = None


@attrs.frozen
class WebhookDetail:
    """A task's webhook delivery as RunningHub records it (``getWebhookDetail``).

    Attributes:
        id: the webhook event id (what a resend names).
        task_id: the task it reports.
        webhook_url: where it was sent.
        event_data: the payload's ``eventData``, a JSON string.
        callback_status: ``"SUCCESS"`` or ``"FAILED"`` (or a state in between).
        callback_response: what the receiver answered, or the connection error.
        retry_count: deliveries after the first.
        create_time: when it was first sent, as RunningHub writes it.
        update_time: when it last changed.
    """

    id: str
    task_id: str = ""
    webhook_url: str = ""
    event_data: str = ""
    callback_status: str = ""
    callback_response: str | None = None
    retry_count: int = 0
    create_time: str | None = None
    update_time: str | None = None


@attrs.frozen
class ApiKeyInfo:
    """One API key of the account (``/openapi/v2/api-key/list``); the key itself is masked.

    Attributes:
        key: the key with its middle starred out.
        name: the name given to it.
        status: RunningHub's status number (1: enabled).
        quota_limit: the spending cap, if any.
        quota_used: money spent through the key.
        visible: whether the key is shown in the web console.
        expire_at: when it expires, if ever.
        expire_in_minute: minutes left before it expires, if it does.
        created_at: when it was made.
    """

    key: str
    name: str = ""
    status: int | None = None
    quota_limit: Decimal | None = None
    quota_used: Decimal | None = None
    visible: bool | None = None
    expire_at: str | None = None
    expire_in_minute: int | None = None
    created_at: str | None = None


@attrs.frozen
class Resource:
    """A model file RunningHub lists (``/openapi/v2/resource/list``): a checkpoint, a LoRA...

    Attributes:
        id: its id.
        name: its file name (``resourceName``).
        type: ``"CHECKPOINT"``, ``"LORA"``, ``"UNET"``, ...
        create_time: when it was added.
        description: its description.
        node_model_name: the name a ComfyUI loader node takes.
        base_models: the base models of its versions (``"FLUX.1"``, ``"SDXL 1.0"``).
        tags: its tag names.
    """

    id: str
    name: str = ""
    type: str = ""
    create_time: str | None = None
    description: str = ""
    node_model_name: str = ""
    base_models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@attrs.frozen
class ResourcePage:
    """One page of `Resource` records.

    Attributes:
        records: the resources on this page.
        page: this page's number, from 1.
        page_size: resources per page.
        total: resources matching, over every page.
        pages: how many pages there are.
        has_next: a later page exists.
    """

    records: tuple[Resource, ...] = ()
    page: int = 1
    page_size: int = 10
    total: int = 0
    pages: int = 0
    has_next: bool = False


@attrs.frozen
class LoraGrant:
    """Where to PUT a LoRA file (``getLoraUploadUrl``): a pre-signed URL and the name it gets."""

    url: str
    file_name: str


@attrs.frozen
class LoraUpload:
    """A LoRA file uploaded with ``RunningHub.upload_lora``.

    Attributes:
        name: the name it was uploaded under.
        file_name: what a workflow's LoRA loader node takes (``api-lora-cn/<md5>.safetensors``).
        md5: the hex MD5 of its content.
        size: its size in bytes.
    """

    name: str
    file_name: str
    md5: str
    size: int
