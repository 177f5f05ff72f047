"""A fake RunningHub server for tests, demos and benchmarks.

`FakeRunningHub` is a real aiohttp server on 127.0.0.1 that follows
``runninghub-api.md`` field for field, so code under test talks HTTP to it
exactly as it would to RunningHub::

    from runninghub_async.testing import FakeRunningHub

    async with FakeRunningHub(api_keys=("test-key",), duration=(0.2, 1.0)) as fake:
        fake.base_url   # "http://127.0.0.1:<port>"
        fake.api_key    # "test-key"

Standalone, for benchmarks that run it in another process::

    python -m runninghub_async.testing --port 8787 --api-key test-key --duration 0.5,3

It prints its base URL on one line and serves until SIGINT/SIGTERM.

Routes
------
Every route runninghub-api.md documents.  v2 routes authenticate with
``Authorization: Bearer <key>`` and share one per-key rate limit; legacy routes
(``/task/openapi``, ``/api/...``, ``/uc/openapi``) take the key from the body and
answer ``{"code", "msg", "data"}``.  Every answer is HTTP 200 unless noted.

==========================================  ==================================================
Route                                       How the fake answers
==========================================  ==================================================
``POST /openapi/v2/<endpoint>``             Standard-model submit: the bare v2 object, a
                                            19-digit ``taskId``, ``status`` QUEUED/RUNNING,
                                            ``clientId``, ``promptTips`` (a JSON string).
                                            Checks in order: key 1002, rate 1003, known
                                            endpoint 1000, key type 1014, JSON object 1007,
                                            ``webhookUrl`` 1007, catalog schema 1007,
                                            concurrency 421.  Rejected submits create nothing.
``POST /openapi/v2/run/ai-app/<webappId>``  AI-app run: the same submit object.  Body
``POST /openapi/v2/run/workflow/<id>``      ``{nodeInfoList?, webhookUrl?, instanceType?,
                                            usePersonalQueue?, ...}``.  Unknown app 901,
                                            unknown workflow 380, malformed ``nodeInfoList``
                                            1007, a node/field the app or workflow lacks
                                            1101, then 421.  Not limited to SHARED keys.
``POST /openapi/v2/query``                  The documented object; unknown id: status ``""``,
                                            1004, ``usage`` null.  Sees every task, whichever
                                            route created it.
``POST /openapi/v2/price-preview/<ep>``     ``{errorCode, errorMessage, estimatedPrice (a
                                            number), currency, priceText, priceTextEn,
                                            freeLimit, freeLimitCount,
                                            remainingFreeLimitCount, isFreeThisCall}``;
                                            creates nothing.  Key 1002, rate 1003, unknown
                                            endpoint 1000, non-object body 1007.
``POST /openapi/v2/media/upload/binary``    Multipart ``file`` -> ``{"code": 0, "message",
                                            "data": {type, download_url, fileName, size}}``;
                                            809 too big, 301 no/empty/unknown file, 401 key.
``GET /openapi/v2/queue/status``            ``data {apiKeyType, concurrentLimit, runningCount,
                                            queuedCount, totalCurrentTasks}`` (strings).
``GET /openapi/v2/api-key/list``            ``data [{key (masked), apiKeyName, status 1,
                                            quotaLimit null, quotaUsed (money spent on the
                                            key's SUCCESS tasks), visible, expireAt,
                                            expireInMinute, createdAt}]``, one per
                                            configured key; 401 bad key, 1003 rate.
``POST /openapi/v2/resource/list``          ``{resourceType, resourceName?, baseModels?,
                                            tags?, current=1, size=10}`` -> ``data {records,
                                            size, current, total, pages, hasNext,
                                            hasPrevious}`` over seven public models plus the
                                            caller's uploaded LoRAs; 301 bad paging (size
                                            1..50).
``POST /task/openapi/create``               Workflow run ``{apiKey, workflowId,
                                            nodeInfoList?, webhookUrl?, workflow?,
                                            addMetadata?, instanceType?, usePersonalQueue?}``
                                            -> ``data {netWssUrl, taskId, clientId,
                                            taskStatus, promptTips}``.  806 key, 301 bad
                                            params (``workflow`` must be an API-format JSON
                                            string; nodes are then checked against it), 380
                                            unknown workflow, 803 node mismatch, 421.
``POST /task/openapi/ai-app/run``           App run ``{apiKey, webappId, nodeInfoList?,
``POST /task/openapi/quick-ai-app/run``     webhookUrl?, instanceType?}``: as create; 901
                                            unknown app.  quick-ai-app takes the same body.
``POST /task/openapi/status``               ``{apiKey, taskId}`` -> ``{"code": 0, "msg": "",
                                            "data": "RUNNING"}``; 807 unknown, 301 no id.
``POST /task/openapi/outputs``              ``data [{fileUrl, fileType, taskCostTime, nodeId,
                                            thirdPartyConsumeMoney, consumeMoney,
                                            consumeCoins}]`` once SUCCESS (the same files as
                                            query); 813 QUEUED, 804 RUNNING, 805 with
                                            ``data.failedReason`` FAILED or CANCEL, 807.
``POST /task/openapi/cancel``               ``{apiKey, taskId}`` -> code 0; 423 unknown
                                            (``cancel_not_found_code``), 805 already ended.
``POST /task/openapi/upload``               Multipart ``apiKey``, ``fileType``, ``file`` ->
                                            ``data {fileName: "api/<sha>.<ext>", fileType}``;
                                            809 too big, 301 no file, bad key HTTP 401
                                            ``{"code": -1, "msg": "ApiKey verification
                                            failed"}``.
``POST /task/openapi/getWebhookDetail``     ``{apiKey, taskId}`` -> ``data {id, userApiKey
                                            (masked), taskId, webhookUrl, eventData,
                                            callbackStatus, callbackResponse, retryCount,
                                            createTime, updateTime}``; code 1 no event.
``POST /task/openapi/retryWebhook``         ``{apiKey, webhookId, webhookUrl?}`` -> code 0,
                                            ``data`` null, and the event is POSTed again
                                            (to the new URL if given); code 1 unknown id.
``POST /uc/openapi/accountStatus``          ``{"apikey": ...}`` (lowercase) -> ``data
                                            {remainCoins, currentTaskCounts, remainMoney,
                                            currency, apiType}``; 1601 missing, 806 unknown.
``POST /api/openapi/getJsonApiFormat``      ``{apiKey, workflowId}`` -> ``data.prompt``, the
                                            API-format workflow as a JSON string; 380.
``GET /api/webapp/apiCallDemo``             ``?apiKey=..&webappId=..`` -> ``data {curl,
                                            accessEncrypted, webappName, statisticsInfo,
                                            nodeInfoList, covers, tags}``; 901 unknown app.
``POST /api/openapi/getLoraUploadUrl``      ``{apiKey, loraName, md5Hex}`` -> ``data {url,
                                            fileName: "api-lora-cn/<md5>.safetensors"}``; 301
                                            bad name or md5.
``PUT <that url>``                          Stores the LoRA (``fake.loras``); 403 bad
                                            signature, 400 ``BadDigest`` if the body's MD5
                                            differs.  No auth, like a pre-signed URL.
``GET /files/outputs/<taskId>/<n>.<ext>``   A small valid file of the model's output kind: a
                                            64x64 PNG (colours from the task id, index and
                                            prompt), a minimal MP4, a WAV of silence, a
                                            ``.txt`` (also inline as ``text``) or a GLB.
``GET /files/uploads/<fileName>``           The uploaded bytes (v2 ``openapi/...`` and legacy
                                            ``api/...``).  File routes need no auth; requests
                                            that carry ``Authorization`` anyway are counted.
``/_fake/...``                              Control API without auth or faults:
                                            ``GET /_fake/stats``, ``GET /_fake/tasks``,
                                            ``POST /_fake/tasks/<id>/finish``,
                                            ``POST /_fake/tasks/<id>/fail`` (optional
                                            ``{"code", "message"}``), ``POST /_fake/faults``
                                            (a `Fault` as JSON), ``DELETE /_fake/faults``.
==========================================  ==================================================

Knobs (keyword-only arguments of `FakeRunningHub`)
---------------------------------------------------
* ``api_keys=("test-key",)``: accepted keys; ``fake.api_key`` is the first.
* ``key_types={}``: ``apiType`` per key, default ``"SHARED"``; ``"NORMAL"`` and
  ``"EXCLUSIVE"`` keys get 1014 on standard-model endpoints.
* ``duration=(0.2, 1.0)``: time RUNNING: seconds, ``(min, max)`` uniform, a
  callable ``(FakeTask) -> float | None`` (see `lognormal`), or None = never
  (only ``finish()``/``fail()``/cancel end the task).
* ``queue_time=0.0``: time QUEUED before RUNNING, same forms.
* ``concurrency_limit=None``: unfinished tasks per key before 421.
* ``rate_limit=None``: requests per second per key before 1003.
* ``failure_rate=0.0`` and ``failure_codes=("1015", "1501", "1505")``: the
  chance a task that runs to its end fails, and the codes it picks from.
* ``seed=None``: seeds the one RNG behind ids, durations, failures and faults.
* ``faults=()``: `Fault` rules in force from the start.
* ``upload_max_bytes=30 MiB``: larger uploads get 809.
* ``validate=True``: schema-check submits to catalogued endpoints (1007).
* ``webhook_attempts=3``, ``webhook_retry_delay=0.2``, ``webhook_timeout=5.0``.
* ``concurrent_limit_report=None``: queue/status ``concurrentLimit``.
* ``currency="CNY"``, ``remain_money="999"``, ``remain_coins="99999"``: accountStatus.
* ``cancel_not_found_code=423``: cancel's answer for an unknown task.
* ``apps=None``: AI apps to know besides the defaults, ``{webappId: [{"nodeId",
  "fieldName", "fieldValue"?, "nodeName"?, "fieldType"?, "description"?}, ...]}``:
  the editable fields a run may set.  Defaults: ``1937084629516193794`` (node 12
  ``image``, node 52 ``text``) and ``1877265245566922753`` (node 6 ``text``, node
  5 ``width``/``height``).
* ``workflows=None``: ComfyUI workflows besides the defaults, ``{workflowId:
  API-format prompt}``; a run may set any ``inputs`` field of any node.  Defaults:
  ``1904163390028185602`` (text-to-image, SaveImage is node 9) and
  ``1947598452328525826`` (image-to-image, LoadImage is node 10).
* ``host="127.0.0.1"``, ``port=0`` (0 = a free port).

Controls for tests: ``fake.finish(id)``, ``fake.fail(id, code, message)``,
``await fake.wait_for(predicate, timeout=10)``, ``fake.tasks`` (`FakeTask`
snapshots), ``fake.stats`` (a `FakeStats` snapshot), ``fake.uploads``,
``fake.add_fault(...)``, ``fake.clear_faults()``, ``fake.add_app(id, nodes,
name=...)``, ``fake.add_workflow(id, prompt)``, ``fake.loras`` (uploaded LoRA bytes).
``fake.stats.requests_by_route`` counts requests by route name.

Faults
------
`Fault` rules (``faults=``, ``fake.add_fault``, ``POST /_fake/faults``) inject
``http_500``/``http_502``/``http_503`` (nginx HTML page, request not handled),
``reset`` (connection aborted, request not handled), ``slow`` (handled at once,
answer held back ``delay`` seconds), ``malformed_json`` (handled, answer cut in
half) and ``drop_after_accept`` (submit handled, connection aborted), per route,
with ``probability``, ``times`` and ``after`` schedules.  Route names: ``submit``
(every task-creating route, v2 and legacy), ``query``, ``upload`` (v2 and legacy),
``download``, ``account``, ``queue_status``, ``cancel``, ``status``, ``outputs``,
``webhook``, ``api_keys``, ``price``, ``resources``, ``app_info``,
``workflow_json``, ``lora``.

Choices where the real API is unknown ('?' in runninghub-api.md)
----------------------------------------------------------------
* **Bad or missing Bearer key**: task endpoints answer HTTP 200 with errorCode
  ``"1002"`` and ``"invalid api key | API Key无效"`` (the real text is unknown;
  806 has also been seen).  Upload answers ``{"code": 401, "message":
  "ApiKey verification failed: API Key不存在"}``, queue/status the same with
  ``msg``; both with HTTP 200.
* **HTTP status of business errors**: always 200, as observed; only injected
  faults produce 5xx.
* **Missing required params** (e.g. ``resolution`` on nano-pro) are rejected with
  1007, not defaulted; so are unknown param names (the real service may ignore
  them; rejecting catches typos).  Models the registry lists no params for take
  any body.  ``validate=False`` turns schema checks off.
* **webhookUrl on standard models**: accepted on every endpoint, stripped from
  the stored params, and a ``TASK_END`` webhook is delivered when the task ends.
  Its ``eventData`` is the legacy outputs shape, the only one documented:
  ``{"code":0,"msg":"success","data":[{"fileUrl","fileType","taskCostTime","nodeId"}]}``
  on success, ``{"code":805,"msg":"APIKEY_TASK_STATUS_ERROR","data":{"failedReason":{...}}}``
  on failure and on cancel (``failedReason`` ``{}`` then).  Retried on a
  connection error or non-2xx, ``webhook_attempts`` times, ``webhook_retry_delay``
  apart; no signature header.
* **usage while not terminal**: null.  On SUCCESS ``consumeMoney`` is the
  catalog's price for the params (per image times the outputs, per second times
  ``duration``; ``"0.10"`` where there is none),
  ``consumeCoins`` is 100 per CNY; FAILED and CANCEL tasks cost ``"0.00"``/``"0"``.
  ``taskCostTime`` is the whole seconds spent RUNNING.
* **Failed standard-model tasks**: status FAILED with one of ``failure_codes``
  (1015 generation failed, 1501 moderation, 1505 real-person photo), a bilingual
  message of our own wording and a ComfyUI-style ``failedReason``.
* **Concurrency** counts QUEUED + RUNNING tasks per key; over the limit a
  submit is rejected with 421 (as observed for NORMAL keys), never queued.
* **queue/status** reports ``concurrent_limit_report``, which defaults to the
  limit or, with no limit, 50 (the documented enterprise default).
* **Rate limit (1003)**: a per-key token bucket over all ``/openapi/v2`` calls;
  legacy endpoints and files are not limited.  No ``Retry-After``; never 429.
* **Cancel**: unknown task (or another key's) -> ``cancel_not_found_code``
  (423 ``TASK_NOT_FOUNED`` per the doc copy; pass 807 for the other reading);
  already-terminal task -> 805 ``APIKEY_TASK_STATUS_ERROR`` (undocumented);
  cancelled tasks report status ``"CANCEL"`` on query (as the official contract
  file lists) and stop counting toward concurrency.  Missing taskId -> 301.
* **Another key's task** on query answers 1004, as if it did not exist.
* **Upload**: success code 0 and ``fileName`` (the official form); the size
  limit defaults to 30 MB (the legacy limit); ``fileName`` is
  ``openapi/<sha256 prefix>.<ext>``.
* **accountStatus**: the key must be in the body as lowercase ``apikey``
  (missing -> 1601 even with a Bearer header); unknown key -> 806.
* **Results**: one file per task (``outputType`` its extension: png, mp4, wav,
  txt, glb), except ``imageNum``/``n`` params ask for more.
* **App and workflow runs** (codes for v2 runs are not documented): unknown app
  ``"901"``, unknown workflow ``"380"`` (the legacy numbers), malformed
  ``nodeInfoList`` ``"1007"``, a node field the app or workflow lacks ``"1101"``;
  legacy runs answer 901, 380, 301 and 803.  A ``nodeInfoList`` entry needs
  ``nodeId`` (string or integer), ``fieldName`` and a scalar ``fieldValue``;
  missing or empty ``nodeInfoList`` runs with the defaults.  ``instanceType``,
  ``addMetadata`` and ``usePersonalQueue`` are accepted and kept in the task's
  params, but change nothing (over the limit is still 421).
* **Legacy routes on any task**: status, outputs, cancel and webhook detail work
  for standard-model tasks too.  A cancelled task reads ``"CANCEL"`` on status
  and 805 with an empty ``failedReason`` on outputs.  Unknown or another key's
  task: 807 ``APIKEY_TASK_NOT_FOUND`` on status and outputs.  Legacy status
  answers ``msg`` ``""`` as the doc example does.
* **netWssUrl** of a legacy run points at the fake (``ws://.../ws/<taskId>``) but
  is not served; null while QUEUED.
* **Webhook log**: ``callbackStatus`` is ``PENDING`` while a delivery is under way;
  ``retryCount`` counts POSTs after the first; ``callbackResponse`` is the
  receiver's last answer or the connection error.  A resend keeps the ``id``.
* **Price preview**: the catalog spec's ``price`` when it has one (a number, a
  mapping by ``resolution`` or a callable of the params), else the documented
  table behind ``usage.consumeMoney`` (0.10 for endpoints it lacks), so a preview
  equals what the task then costs.  Not limited to SHARED keys; no schema check.
* **api-key/list** lists every configured key (the fake has no accounts);
  **resource/list** holds seven made-up public models plus the caller's LoRAs.
* **Legacy upload**: any extension (``bin`` if none), ``fileType`` echoed
  (``"input"`` if missing), the ``upload_max_bytes`` limit; a bad key answers HTTP
  401 ``{"code": -1, ...}`` as observed.
* **apiCallDemo's curl** shows a placeholder, never the caller's key.
"""

from __future__ import annotations

from ._durations import lognormal as lognormal
from ._faults import Fault as Fault
from ._models import FakeStats as FakeStats
from ._models import FakeTask as FakeTask
from ._server import FakeRunningHub as FakeRunningHub

__all__ = ["FakeRunningHub", "FakeStats", "FakeTask", "Fault", "lognormal"]
