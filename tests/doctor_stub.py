"""A stand-in for KIE as the doctor meets it (respx), in the documented shapes by default.

Each doctor test changes one thing (a field's type, a state, the upload's answer...) and
looks for it in the doctor's table. Nothing leaves the process: respx answers every
request, and an unmatched one fails the test.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from recraft_async._doctor._png import circle_png

API = "https://api.kie.ai"
UPLOADS = "https://kieai.redpandaai.co"
FILES = "https://tempfile.test"
KEY = "sk-doctor-secret-7f3a"
SIGNATURE = "sig=very-secret-signature"
PRICES = {"recraft/crisp-upscale": 0.5, "recraft/remove-background": 1.0}
NOT_READABLE = "not readable"  # a state that answers {"code": 422, "msg": "recordInfo is null"}


class Stub:
    """The service's answers; change an attribute before running the doctor."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.balance = 10.0
        self.states: list[str] = ["waiting", "generating", "success"]  # one per read, then the last
        self.key = KEY
        self.record_changes: dict[str, Any] = {}  # field -> value; ... removes the field
        self.upload_changes: dict[str, Any] = {}
        self.surcharge = 0.0  # credits charged per task beyond the published price
        self.rate_limited_reads = 0
        self.retry_after: str | None = None
        self.submits = 0
        self.uploads = 0
        self._reads: dict[str, int] = {}
        self._models: dict[str, str] = {}
        router.get(f"{API}/api/v1/chat/credit").mock(side_effect=self.credit)
        router.post(f"{UPLOADS}/api/file-stream-upload").mock(side_effect=self.upload)
        router.post(f"{API}/api/v1/jobs/createTask").mock(side_effect=self.submit)
        router.get(f"{API}/api/v1/jobs/recordInfo").mock(side_effect=self.read)
        router.post(f"{API}/api/v1/common/download-url").mock(side_effect=self.link)
        router.get(url__startswith=f"{FILES}/results/").mock(side_effect=self.result)

    def _refused(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return httpx.Response(200, json={"code": 401, "msg": "Unauthorized"})
        return None

    def credit(self, request: httpx.Request) -> httpx.Response:
        """``GET /api/v1/chat/credit``."""
        return self._refused(request) or httpx.Response(
            200, json={"code": 200, "msg": "success", "data": self.balance}
        )

    def upload(self, request: httpx.Request) -> httpx.Response:
        """``POST /api/file-stream-upload``: the documented answer, with ``upload_changes``."""
        self.uploads += 1
        data = {
            "fileName": "doctor.png",
            "filePath": "recraft-async/doctor/doctor.png",
            "downloadUrl": f"{FILES}/uploads/doctor-{self.uploads}.png?{SIGNATURE}",
            "fileSize": 928,
            "mimeType": "image/png",
            "uploadedAt": "2025-01-01T12:00:00.000Z",
        }
        _apply(data, self.upload_changes)
        body = {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data}
        return self._refused(request) or httpx.Response(200, json=body)

    def submit(self, request: httpx.Request) -> httpx.Response:
        """``POST /api/v1/jobs/createTask``: charges the published price."""
        refused = self._refused(request)
        if refused:
            return refused
        self.submits += 1
        model = json.loads(request.content)["model"]
        task_id = f"task_recraft_17651773738{self.submits}"
        self._models[task_id] = model
        self.balance -= PRICES[model] + self.surcharge
        return httpx.Response(
            200, json={"code": 200, "msg": "success", "data": {"taskId": task_id}}
        )

    def read(self, request: httpx.Request) -> httpx.Response:
        """``GET /api/v1/jobs/recordInfo``: the next state of ``states``."""
        if self.rate_limited_reads:
            self.rate_limited_reads -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(
                429, json={"code": 429, "msg": "Rate limit exceeded"}, headers=headers
            )
        task_id = request.url.params["taskId"]
        seen = self._reads.get(task_id, 0)
        self._reads[task_id] = seen + 1
        state = self.states[min(seen, len(self.states) - 1)]
        if state == NOT_READABLE:
            return httpx.Response(
                200, json={"code": 422, "msg": "recordInfo is null", "data": None}
            )
        done = state in ("success", "fail")
        record: dict[str, Any] = {
            "taskId": task_id,
            "model": self._models[task_id],
            "state": state,
            "param": json.dumps({"model": self._models[task_id]}),
            "resultJson": json.dumps({"resultUrls": [f"{FILES}/results/{task_id}.png?{SIGNATURE}"]})
            if state == "success"
            else "",
            "failCode": "422" if state == "fail" else "",
            "failMsg": "bad image" if state == "fail" else "",
            "costTime": 15000 if done else None,
            "createTime": 1698765400000,
            "updateTime": 1698765432000,
            "completeTime": 1698765415000 if done else None,
        }
        _apply(record, self.record_changes)
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": record})

    def link(self, request: httpx.Request) -> httpx.Response:
        """``POST /api/v1/common/download-url``: a fresh link to the same file."""
        url = json.loads(request.content)["url"]
        return self._refused(request) or httpx.Response(
            200, json={"code": 200, "msg": "success", "data": url.split("?")[0] + "?fresh=1"}
        )

    def result(self, request: httpx.Request) -> httpx.Response:
        """A result file: a PNG, served without the key."""
        assert "authorization" not in request.headers
        return httpx.Response(200, content=circle_png(), headers={"content-type": "image/png"})


def _apply(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value
