"""AI-app and ComfyUI-workflow runs, v2 and legacy, as the third-party clients send them."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._clients import APP, APP_NODE, PROMPT_NODE, WORKFLOW, hook_server, sdk_get, sdk_post
from ._support import bearer, post_json, query, submit

pytestmark = pytest.mark.anyio


async def test_legacy_create_runs_a_workflow_task_that_v2_query_and_legacy_routes_see() -> None:
    """run(): /task/openapi/create answers the documented data; the task is a real one."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        body = {
            "workflowId": WORKFLOW,
            "addMetadata": True,
            "usePersonalQueue": False,
            "nodeInfoList": [PROMPT_NODE],
        }
        answer = await sdk_post(http, fake, "/task/openapi/create", body)
        assert answer["code"] == 0
        assert answer["msg"] == "success"
        data = answer["data"]
        assert set(data) == {"netWssUrl", "taskId", "clientId", "taskStatus", "promptTips"}
        task_id = data["taskId"]
        assert len(task_id) == 19
        assert task_id.isdigit()
        assert data["taskStatus"] == "RUNNING"
        assert isinstance(data["netWssUrl"], str)
        assert json.loads(data["promptTips"])["result"] is True
        task = fake.tasks[task_id]
        assert task.endpoint == f"run/workflow/{WORKFLOW}"
        assert "apiKey" not in task.params
        assert task.params["nodeInfoList"] == [PROMPT_NODE]

        status = await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        assert status == {"code": 0, "msg": "", "data": "RUNNING"}
        fake.finish(task_id)
        status = await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        assert status["data"] == "SUCCESS"
        queried = await query(http, fake, task_id)
        assert queried["status"] == "SUCCESS"
        outputs = await sdk_post(http, fake, "/task/openapi/outputs", {"taskId": task_id})
        assert outputs["code"] == 0
        (item,) = outputs["data"]
        assert item["fileUrl"] == queried["results"][0]["url"]
        assert item["fileType"] == queried["results"][0]["outputType"]
        assert item["nodeId"] == queried["results"][0]["nodeId"]
        assert item["consumeMoney"] == queried["usage"]["consumeMoney"]
        async with http.get(item["fileUrl"]) as response:
            assert response.status == 200


async def test_legacy_ai_app_run_answers_like_create() -> None:
    """run_ai_app(): /task/openapi/ai-app/run with webappId and nodeInfoList."""
    async with FakeRunningHub(queue_time=None) as fake, aiohttp.ClientSession() as http:
        body = {"webappId": int(APP), "nodeInfoList": [APP_NODE], "instanceType": "default"}
        answer = await sdk_post(http, fake, "/task/openapi/ai-app/run", body)
        assert answer["code"] == 0
        data = answer["data"]
        assert data["taskStatus"] == "QUEUED"
        assert data["netWssUrl"] is None
        assert fake.tasks[data["taskId"]].endpoint == f"run/ai-app/{APP}"
        quick = await sdk_post(http, fake, "/task/openapi/quick-ai-app/run", {"webappId": APP})
        assert quick["code"] == 0
        assert len(fake.tasks) == 2


@pytest.mark.parametrize("kind", ["ai-app", "workflow"])
async def test_v2_runs_answer_the_bare_submit_object(kind: str) -> None:
    """/openapi/v2/run/<kind>/<id> with Bearer auth answers the v2 submit shape."""
    target, node = (APP, APP_NODE) if kind == "ai-app" else (WORKFLOW, PROMPT_NODE)
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        body = {"nodeInfoList": [node], "instanceType": "default", "usePersonalQueue": False}
        answer = await submit(http, fake, body, endpoint=f"run/{kind}/{target}")
        assert answer["errorCode"] == ""
        assert answer["status"] == "RUNNING"
        assert set(answer) == {
            "taskId",
            "status",
            "errorCode",
            "errorMessage",
            "results",
            "clientId",
            "promptTips",
        }
        assert fake.stats.submit_requests == 1
        assert fake.stats.requests_by_route[f"submit.run_{kind.replace('ai-', '')}"] == 1


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/task/openapi/create", {"workflowId": "404"}, 380),
        ("/task/openapi/create", {}, 301),
        ("/task/openapi/ai-app/run", {"webappId": "404"}, 901),
        ("/task/openapi/create", {"workflowId": WORKFLOW, "nodeInfoList": "x"}, 301),
        (
            "/task/openapi/create",
            {"workflowId": WORKFLOW, "nodeInfoList": [{"nodeId": "6", "fieldName": "text"}]},
            301,
        ),
        (
            "/task/openapi/create",
            {"workflowId": WORKFLOW, "nodeInfoList": [{**PROMPT_NODE, "nodeId": "99"}]},
            803,
        ),
        (
            "/task/openapi/create",
            {"workflowId": WORKFLOW, "nodeInfoList": [{**PROMPT_NODE, "fieldName": "nope"}]},
            803,
        ),
        ("/task/openapi/ai-app/run", {"webappId": APP, "nodeInfoList": [PROMPT_NODE]}, 803),
        ("/task/openapi/create", {"workflowId": WORKFLOW, "workflow": "{not json"}, 301),
        ("/task/openapi/create", {"workflowId": WORKFLOW, "webhookUrl": "ftp://x"}, 301),
    ],
)
async def test_legacy_runs_reject_in_the_documented_codes(
    path: str, body: dict[str, Any], code: int
) -> None:
    """Unknown ids 380/901, malformed params 301, nodeInfoList mismatch 803; nothing created."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await sdk_post(http, fake, path, body)
        assert answer["code"] == code
        assert answer["data"] is None
        assert len(fake.tasks) == 0
        assert fake.stats.rejections[str(code)] == 1


@pytest.mark.parametrize(
    ("endpoint", "body", "code"),
    [
        ("run/workflow/404", {}, "380"),
        ("run/ai-app/404", {}, "901"),
        (f"run/ai-app/{APP}", {"nodeInfoList": [{"nodeId": "12"}]}, "1007"),
        (f"run/ai-app/{APP}", {"nodeInfoList": [{**APP_NODE, "nodeId": "13"}]}, "1101"),
        (f"run/workflow/{WORKFLOW}", {"nodeInfoList": [{**PROMPT_NODE, "fieldValue": {}}]}, "1007"),
    ],
)
async def test_v2_runs_reject_with_error_codes(endpoint: str, body: Any, code: str) -> None:
    """v2 runs answer the bare error object: 380/901 unknown, 1007 malformed, 1101 mismatch."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake, body, endpoint=endpoint)
    assert answer["errorCode"] == code
    assert answer["taskId"] == ""
    assert answer["status"] == ""
    assert answer["errorMessage"]
    assert len(fake.tasks) == 0


async def test_inline_workflow_json_is_what_nodes_are_checked_against() -> None:
    """A legacy create with ``workflow`` checks nodeInfoList against that prompt instead."""
    prompt = {"1": {"class_type": "Note", "inputs": {"text": ""}}}
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        body = {
            "workflowId": WORKFLOW,
            "workflow": json.dumps(prompt),
            "nodeInfoList": [{"nodeId": "1", "fieldName": "text", "fieldValue": "hi"}],
        }
        assert (await sdk_post(http, fake, "/task/openapi/create", body))["code"] == 0
        body["nodeInfoList"] = [PROMPT_NODE]
        assert (await sdk_post(http, fake, "/task/openapi/create", body))["code"] == 803


async def test_bad_keys_are_refused_on_runs() -> None:
    """Legacy runs with an unknown apiKey get 806; v2 runs without Bearer get 1002."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        body = {"workflowId": WORKFLOW}
        answer = await sdk_post(http, fake, "/task/openapi/create", body, key="wrong")
        assert answer == {"code": 806, "msg": "APIKEY_USER_NOT_FOUND", "data": None}
        url = f"{fake.base_url}/openapi/v2/run/workflow/{WORKFLOW}"
        assert (await post_json(http, url, {}))["errorCode"] == "1002"
        assert len(fake.tasks) == 0


async def test_runs_share_the_concurrency_limit_with_standard_models() -> None:
    """Standard-model, v2-run and legacy-run tasks fill the same slots; over it: 421."""
    fake = FakeRunningHub(concurrency_limit=2, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        first = (await submit(http, fake))["taskId"]
        await submit(http, fake, {}, endpoint=f"run/ai-app/{APP}")
        legacy = await sdk_post(http, fake, "/task/openapi/create", {"workflowId": WORKFLOW})
        assert legacy == {"code": 421, "msg": "TASK_QUEUE_MAXED", "data": None}
        v2 = await submit(http, fake, {}, endpoint=f"run/workflow/{WORKFLOW}")
        assert v2["errorCode"] == "421"
        fake.finish(first)
        legacy = await sdk_post(http, fake, "/task/openapi/create", {"workflowId": WORKFLOW})
        assert legacy["code"] == 0
        assert len(fake.tasks) == 3


async def test_v2_runs_are_rate_limited_and_legacy_runs_are_not() -> None:
    """The per-key bucket covers /openapi/v2 runs (1003); legacy runs pass."""
    fake = FakeRunningHub(rate_limit=1, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        assert (await submit(http, fake, {}, endpoint=f"run/ai-app/{APP}"))["errorCode"] == ""
        limited = await submit(http, fake, {}, endpoint=f"run/ai-app/{APP}")
        assert limited["errorCode"] == "1003"
        legacy = await sdk_post(http, fake, "/task/openapi/ai-app/run", {"webappId": APP})
        assert legacy["code"] == 0


async def test_app_and_workflow_tasks_fire_webhooks_when_they_end() -> None:
    """A run with webhookUrl gets TASK_END with the legacy outputs eventData."""
    async with hook_server(200) as hook, FakeRunningHub(duration=0) as fake:
        async with aiohttp.ClientSession() as http:
            body = {"webappId": APP, "webhookUrl": hook.url}
            task_id = (await sdk_post(http, fake, "/task/openapi/ai-app/run", body))["data"][
                "taskId"
            ]
            await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
            outputs = await sdk_post(http, fake, "/task/openapi/outputs", {"taskId": task_id})
    (payload,) = hook.received
    assert payload["event"] == "TASK_END"
    assert payload["taskId"] == task_id
    event = json.loads(payload["eventData"])
    assert event["code"] == 0
    assert [i["fileUrl"] for i in event["data"]] == [i["fileUrl"] for i in outputs["data"]]
    assert fake.tasks[task_id].webhook_url == hook.url
    assert "webhookUrl" not in fake.tasks[task_id].params


async def test_apps_and_workflows_knobs_and_methods_register_more() -> None:
    """apps=/workflows= and add_app/add_workflow make new ids runnable and inspectable."""
    fake = FakeRunningHub(
        apps={"42": [{"nodeId": "3", "fieldName": "seed", "fieldValue": "1"}]},
        workflows={"77": {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}},
        duration=None,
    )
    async with fake, aiohttp.ClientSession() as http:
        node = {"nodeId": "3", "fieldName": "seed", "fieldValue": 7}
        assert (await submit(http, fake, {"nodeInfoList": [node]}, endpoint="run/ai-app/42"))[
            "errorCode"
        ] == ""
        flow = await sdk_post(http, fake, "/api/openapi/getJsonApiFormat", {"workflowId": "77"})
        assert json.loads(flow["data"]["prompt"])["1"]["class_type"] == "SaveImage"
        assert (await submit(http, fake, {}, endpoint="run/ai-app/43"))["errorCode"] == "901"
        fake.add_app(43, [{"nodeId": "1", "fieldName": "text"}], name="Later app")
        assert (await submit(http, fake, {}, endpoint="run/ai-app/43"))["errorCode"] == ""
        demo = await sdk_get(
            http, fake, "/api/webapp/apiCallDemo", {"webappId": "43", "apiKey": fake.api_key}
        )
        assert demo["data"]["webappName"] == "Later app"
        fake.add_workflow("78", {"5": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}})
        body = {
            "workflowId": "78",
            "nodeInfoList": [{"nodeId": 5, "fieldName": "image", "fieldValue": "api/x.png"}],
        }
        assert (await sdk_post(http, fake, "/task/openapi/create", body))["code"] == 0
        # The defaults are still there.
        assert (await submit(http, fake, {}, endpoint=f"run/workflow/{WORKFLOW}"))[
            "errorCode"
        ] == ""


def test_bad_app_and_workflow_definitions_are_refused() -> None:
    """A node without nodeId/fieldName, or a workflow node without inputs: ValueError."""
    with pytest.raises(ValueError, match="nodeId"):
        FakeRunningHub(apps={"1": [{"fieldName": "x"}]})
    with pytest.raises(ValueError, match="inputs"):
        FakeRunningHub(workflows={"1": {"3": {"class_type": "KSampler"}}})


async def test_app_demo_lists_the_editable_nodes() -> None:
    """get_ai_app_api_demo(): GET apiCallDemo with apiKey in the query string."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        params = {"webappId": APP, "apiKey": fake.api_key}
        answer = await sdk_get(http, fake, "/api/webapp/apiCallDemo", params)
        assert answer["code"] == 0
        data = answer["data"]
        assert {"curl", "accessEncrypted", "webappName", "statisticsInfo", "covers", "tags"} <= set(
            data
        )
        nodes = {(n["nodeId"], n["fieldName"]) for n in data["nodeInfoList"]}
        assert nodes == {("12", "image"), ("52", "text")}
        assert fake.api_key not in data["curl"]
        missing = await sdk_get(http, fake, "/api/webapp/apiCallDemo", {**params, "webappId": "9"})
        assert missing == {"code": 901, "msg": "WEBAPP_NOT_EXISTS", "data": None}
        bad = await sdk_get(http, fake, "/api/webapp/apiCallDemo", {**params, "apiKey": "x"})
        assert bad["code"] == 806


async def test_workflow_json_answers_the_api_format_prompt_as_a_string() -> None:
    """get_workflow_json(): data.prompt is a JSON string whose nodes carry class_type/inputs."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await sdk_post(
            http, fake, "/api/openapi/getJsonApiFormat", {"workflowId": WORKFLOW}
        )
        assert answer["code"] == 0
        prompt = json.loads(answer["data"]["prompt"])
        assert prompt["9"]["class_type"] == "SaveImage"
        assert all("inputs" in node for node in prompt.values())
        missing = await sdk_post(http, fake, "/api/openapi/getJsonApiFormat", {"workflowId": "1"})
        assert missing == {"code": 380, "msg": "WORKFLOW_NOT_EXISTS", "data": None}


async def test_v2_run_drop_after_accept_fault_applies_to_runs() -> None:
    """Faults on route "submit" cover runs: drop_after_accept creates the task, no answer."""
    from runninghub_async.testing import Fault

    fake = FakeRunningHub(duration=None, faults=[Fault("drop_after_accept", route="submit")])
    async with fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/task/openapi/create"
        with pytest.raises(aiohttp.ClientError):
            await post_json(http, url, {"apiKey": fake.api_key, "workflowId": WORKFLOW})
        url = f"{fake.base_url}/openapi/v2/run/ai-app/{APP}"
        with pytest.raises(aiohttp.ClientError):
            await post_json(http, url, {}, bearer(fake.api_key))
    assert len(fake.tasks) == 2
