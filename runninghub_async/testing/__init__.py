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
* ``POST /openapi/v2/<endpoint>``: submit (Bearer auth).  Answers the bare v2
  object: a 19-digit numeric ``taskId``, ``status`` ``"QUEUED"``/``"RUNNING"``,
  a 32-hex ``clientId`` and ``promptTips`` as a JSON string.  Checks, in order:
  key (1002), rate (1003), known endpoint (1000), key type (1014), JSON object
  body (1007), ``webhookUrl`` (1007), the catalog schema of the model (1007,
  the message names every violated field), concurrency (421).  A rejected
  submit creates nothing.  Known endpoints are every model of the library's
  catalog (RunningHub's registry plus the nano lite pages) and
  ``run/ai-app/<id>`` / ``run/workflow/<id>``, which accept any JSON object.
* ``POST /openapi/v2/query``: the documented object (``taskId``, ``status``,
  ``errorCode``, ``errorMessage``, ``failedReason``, ``usage``, ``results``,
  ``clientId`` ``""``, ``promptTips`` ``""``).  Unknown id: status ``""``,
  errorCode 1004, ``usage`` null.
* ``POST /openapi/v2/media/upload/binary``: multipart field ``file``; the file
  can be fetched back from ``download_url`` and is kept in ``fake.uploads``.
  Too big: code 809 (the body is read in chunks and reading stops at the
  limit); no ``file`` field, an empty file or a type that is neither named by
  its extension nor recognised by its magic bytes: code 301.
* ``GET /openapi/v2/queue/status``, ``POST /uc/openapi/accountStatus`` (body
  ``{"apikey": ...}``), ``POST /task/openapi/cancel`` (body ``{"apiKey", "taskId"}``).
* ``GET /files/outputs/<taskId>/<n>.<ext>``: a small valid file of the model's
  output type: a 64x64 PNG whose colours derive from the task id, the index and
  the prompt (image; also AI apps and workflows), a minimal MP4 (video), a WAV of
  silence (audio), a ``.txt`` (text; the query result also carries it in
  ``text``) or a GLB (3d); ``GET /files/uploads/openapi/<name>``.
  No auth; requests that carry ``Authorization`` anyway are counted.
* ``/_fake/``: control API without auth or faults: ``GET /_fake/stats``,
  ``GET /_fake/tasks``, ``POST /_fake/tasks/<id>/finish``,
  ``POST /_fake/tasks/<id>/fail`` (optional ``{"code": "1015", "message": ...}``),
  ``POST /_fake/faults`` (a `Fault` as JSON), ``DELETE /_fake/faults``.

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
* ``host="127.0.0.1"``, ``port=0`` (0 = a free port).

Controls for tests: ``fake.finish(id)``, ``fake.fail(id, code, message)``,
``await fake.wait_for(predicate, timeout=10)``, ``fake.tasks`` (`FakeTask`
snapshots), ``fake.stats`` (a `FakeStats` snapshot), ``fake.uploads``,
``fake.add_fault(...)``, ``fake.clear_faults()``.

Faults
------
`Fault` rules (``faults=``, ``fake.add_fault``, ``POST /_fake/faults``) inject
``http_500``/``http_502``/``http_503`` (nginx HTML page, request not handled),
``reset`` (connection aborted, request not handled), ``slow`` (handled at once,
answer held back ``delay`` seconds), ``malformed_json`` (handled, answer cut in
half) and ``drop_after_accept`` (submit handled, connection aborted), per route,
with ``probability``, ``times`` and ``after`` schedules.

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
"""

from __future__ import annotations

from ._durations import lognormal as lognormal
from ._faults import Fault as Fault
from ._models import FakeStats as FakeStats
from ._models import FakeTask as FakeTask
from ._server import FakeRunningHub as FakeRunningHub

__all__ = ["FakeRunningHub", "FakeStats", "FakeTask", "Fault", "lognormal"]
