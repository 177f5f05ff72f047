"""Registers every route beyond the core ones of `_handlers`: apps, workflows, legacy, extras.

Route names double as fault routes: the part before the first dot is what a
`Fault`'s ``route`` matches, so every task-creating route is a ``submit``.
aiohttp resolves a request by its most specific path prefix first, so these
routes win over the ``/openapi/v2/{path}`` submit catch-all although they are
added after it.
"""

from __future__ import annotations

from aiohttp import web

from ._context import RouteContext
from ._legacy import Legacy
from ._lora import Loras
from ._misc_routes import Misc
from ._registry import Registry
from ._runs import Runs
from ._webhook_log import WebhookLog

__all__ = ["ExtraRoutes"]


class ExtraRoutes:
    """The handlers of the extra routes and the state they keep (webhook log, LoRAs)."""

    def __init__(self, ctx: RouteContext, registry: Registry) -> None:
        self.registry = registry
        self.webhooks = WebhookLog(ctx)
        self.loras = Loras(ctx)
        self._runs = Runs(ctx, registry)
        self._legacy = Legacy(ctx, registry)
        self._misc = Misc(ctx, self.loras)

    def register(self, app: web.Application) -> None:
        """Add every extra route to *app*."""
        runs, legacy, misc, add = self._runs, self._legacy, self._misc, app.router
        add.add_post("/openapi/v2/run/ai-app/{webapp_id}", runs.v2_app, name="submit.run_app")
        add.add_post(
            "/openapi/v2/run/workflow/{workflow_id}", runs.v2_workflow, name="submit.run_workflow"
        )
        add.add_post("/task/openapi/create", runs.legacy_create, name="submit.legacy_create")
        add.add_post("/task/openapi/ai-app/run", runs.legacy_app, name="submit.legacy_app")
        add.add_post(
            "/task/openapi/quick-ai-app/run", runs.legacy_app, name="submit.legacy_quick_app"
        )
        add.add_post("/task/openapi/status", legacy.status, name="status")
        add.add_post("/task/openapi/outputs", legacy.outputs, name="outputs")
        add.add_post("/task/openapi/upload", legacy.upload, name="upload.legacy")
        add.add_post("/api/openapi/getJsonApiFormat", legacy.workflow_json, name="workflow_json")
        add.add_get("/api/webapp/apiCallDemo", legacy.app_demo, name="app_info")
        add.add_post("/task/openapi/getWebhookDetail", self.webhooks.detail, name="webhook.detail")
        add.add_post("/task/openapi/retryWebhook", self.webhooks.retry, name="webhook.retry")
        add.add_post("/api/openapi/getLoraUploadUrl", self.loras.upload_url, name="lora.url")
        add.add_put("/files/lora/{md5}.safetensors", self.loras.put, name="lora.put")
        add.add_get("/openapi/v2/api-key/list", misc.api_keys, name="api_keys")
        add.add_post("/openapi/v2/price-preview/{path:.+}", misc.price_preview, name="price")
        add.add_post("/openapi/v2/resource/list", misc.resources, name="resources")
