"""The emulator's service endpoints, in-process: both dialects, envelope codes, credits."""

from __future__ import annotations

import functools
import io
import json
import re
from typing import Any

import anyio
import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")
from conftest import EMULATOR_AUTH, make_emulator, red_circle
from PIL import Image

from recraft_async import Operation, Rate
from recraft_async.testing import Duration, KieEmulator, sample_images

UPSCALE = "/api/v1/recraft/upscale"
REMOVE = "/api/v1/recraft/remove-background"
CREATE = "/api/v1/jobs/createTask"
RECORD = "/api/v1/jobs/recordInfo"
CIRCLE = red_circle()
# In-process only: on the fake clock, the emulator on the loop's (its windows, task times
# and latency pass in virtual time).
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


# Tasks of 50 ms; no read limit: these tests poll fast, and the limit has its own.
make = functools.partial(make_emulator, duration=Duration.fixed(0.05), read_rate=None, clock="loop")


async def read(client, path: str, task_id: str) -> Any:
    answer = await client.get(path, params={"taskId": task_id})
    assert answer.status_code == 200
    return answer.json()


async def until_done(client, path: str, task_id: str, key: str = "successFlag") -> Any:
    with anyio.fail_after(5):
        while True:
            body = await read(client, path, task_id)
            data = body["data"]
            if data and data.get(key) not in (0, "waiting", "queuing", "generating"):
                return data
            await anyio.sleep(0.01)


async def test_upscale_round_trip_returns_a_bigger_image():
    """Submit, read processing then success, download a result of exactly 4x the sides."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(UPSCALE, json={"image_url": url, "scale": 4, "format": "JPG"})
        assert answer.status_code == 200
        body = answer.json()
        assert body["code"] == 200
        assert body["msg"] == "success"
        task_id = body["data"]["taskId"]
        first = await read(client, f"{UPSCALE}/record-info", task_id)
        assert first["data"]["successFlag"] == 0
        assert first["data"]["completeTime"] is None
        data = await until_done(client, f"{UPSCALE}/record-info", task_id)
        assert data["successFlag"] == 1
        assert data["errorCode"] is None
        result = await client.get(data["response"]["resultUrls"][0])
    image = Image.open(io.BytesIO(result.content))
    assert (image.format, image.size) == ("JPEG", (1024, 1024))
    assert emu.credits == pytest.approx(100_000 - 0.5)  # the price ignores the scale


async def test_remove_background_round_trip_returns_a_transparent_png():
    """The result is an RGBA PNG, transparent at the corners, opaque in the middle."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(REMOVE, json={"image_url": url, "output_format": "PNG"})
        task_id = answer.json()["data"]["taskId"]
        data = await until_done(client, f"{REMOVE}/record-info", task_id)
        result = await client.get(data["response"]["resultUrls"][0])
    assert result.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(result.content))
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert image.getpixel((128, 128))[3] == 255  # type: ignore[index]
    assert emu.credits == pytest.approx(100_000 - 1)


async def test_market_dialect_create_task_and_record_info():
    """createTask/recordInfo speak state, resultJson (a JSON string), failCode/failMsg."""
    emu = make(not_ready_for=0.0)  # read at once: the record itself, not the moment before
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(
            CREATE, json={"model": "recraft/crisp-upscale", "input": {"image": url}}
        )
        task_id = answer.json()["data"]["taskId"]
        first = await read(client, RECORD, task_id)
        assert first["data"]["state"] in {"waiting", "queuing", "generating"}
        assert first["data"]["model"] == "recraft/crisp-upscale"
        data = await until_done(client, RECORD, task_id, key="state")
        assert data["state"] == "success"
        assert json.loads(data["param"])["input"]["image"] == url
        urls = json.loads(data["resultJson"])["resultUrls"]
        result = await client.get(urls[0])
    assert Image.open(io.BytesIO(result.content)).size == (512, 512)
    assert emu.credits == pytest.approx(100_000 - 0.5)


async def test_market_task_ids_have_the_documented_shape_and_stay_unique():
    """task_recraft_ + 13-digit epoch ms + a counter; seed ids keep their own prefix."""
    emu = make(rate=None)
    url = emu.add_image("c.png", CIRCLE)
    body = {"model": "recraft/remove-background", "input": {"image": url}}
    before = int(emu.service.clock.wall() * 1000)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        ids = [(await client.post(CREATE, json=body)).json()["data"]["taskId"] for _ in range(30)]
        seed = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
    after = int(emu.service.clock.wall() * 1000)
    assert len(set(ids)) == 30
    for task_id in ids:
        match = re.fullmatch(r"task_recraft_(\d{13})(\d{3,})", task_id)
        assert match is not None, task_id
        assert before - 1 <= int(match[1]) <= after + 1
    assert seed.startswith("recraft_upscale_")


async def test_market_create_task_takes_only_input_image():
    """Scale or format in input is refused with 422: the model pages document image alone."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        scaled = await client.post(
            CREATE, json={"model": "recraft/crisp-upscale", "input": {"image": url, "scale": 4}}
        )
        formatted = await client.post(
            CREATE,
            json={"model": "recraft/remove-background", "input": {"image": url, "format": "PNG"}},
        )
    assert scaled.json()["code"] == 422
    assert "takes only input.image" in scaled.json()["msg"]
    assert "scale" in scaled.json()["msg"]
    assert formatted.json()["code"] == 422
    assert emu.stats.tasks_created == 0


async def test_market_remove_background_and_a_failed_market_task():
    """The jobs API serves background removal; a bad input reads state fail with failMsg."""
    emu = make()
    small = emu.add_image("small.png", sample_images(64)[0][1])
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(
            CREATE, json={"model": "recraft/remove-background", "input": {"image": small}}
        )
        task_id = answer.json()["data"]["taskId"]
        data = await until_done(client, RECORD, task_id, key="state")
    assert data["state"] == "fail"
    assert data["failCode"] == "422"
    assert "256-4096" in data["failMsg"]
    assert data["resultJson"] == ""


async def test_record_info_times_are_the_exact_epoch_milliseconds():
    """createTime/completeTime are epoch ms; completeTime is the fixed finish moment."""
    emu = make(duration=Duration.fixed(0.1))
    url = emu.add_image("c.png", CIRCLE)
    before = emu.service.clock.wall()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(UPSCALE, json={"image_url": url})
        task_id = answer.json()["data"]["taskId"]
        data = await until_done(client, f"{UPSCALE}/record-info", task_id)
    (info,) = emu.task_info()
    assert before <= info.created <= info.finished
    assert info.finished - info.created == pytest.approx(0.1)
    assert data["createTime"] == round(info.created * 1000)
    assert data["completeTime"] == round(info.finished * 1000)
    assert info.first_final_read is not None
    assert info.first_final_read >= info.finished


async def test_tasks_finish_whether_or_not_anyone_polls():
    """A task read for the first time long after its finish moment is already done."""
    emu = make(duration=Duration.fixed(0.02))
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        await anyio.sleep(0.05)
        data = (await read(client, f"{UPSCALE}/record-info", task_id))["data"]
    assert data["successFlag"] == 1
    assert emu.stats.status_reads == 1


async def test_wrong_key_answers_http_200_with_code_401_everywhere():
    """A wrong or missing key is refused in the body, with each page's documented message."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers={"Authorization": "Bearer nope"}) as client:
        answers = [
            await client.post(UPSCALE, json={"image_url": url}),
            await client.get(f"{UPSCALE}/record-info", params={"taskId": "x"}),
            await client.get(RECORD, params={"taskId": "x"}),
            await client.get("/api/v1/chat/credit"),
            await client.post("/api/file-base64-upload", json={"base64Data": "AA=="}),
        ]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json()["code"] == 401
    msgs = [answer.json()["msg"] for answer in answers]
    assert msgs[1:3] == ["Unauthorized"] * 2
    assert msgs[0] == msgs[3] == "You do not have access permissions"
    assert msgs[4] == "Authentication failed: Invalid API Key"
    async with emu.http_client() as client:
        assert (await client.get("/api/v1/chat/credit")).json()["code"] == 401
    assert emu.stats.tasks_created == 0


async def test_custom_key_and_base_url():
    """api_key= sets the accepted key; base_url= the host in the URLs it answers."""
    emu = make(api_key="sk-mine", base_url="https://emu.invalid:9/")
    url = emu.add_image("c.png", CIRCLE)
    assert url == "https://emu.invalid:9/_emulator/files/images/c.png"
    async with emu.http_client(headers={"Authorization": "Bearer sk-mine"}) as client:
        answer = await client.post(UPSCALE, json={"image_url": url})
        task_id = answer.json()["data"]["taskId"]
        data = await until_done(client, f"{UPSCALE}/record-info", task_id)
    assert data["response"]["resultUrls"][0].startswith("https://emu.invalid:9/_emulator/")
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        assert (await client.get("/api/v1/chat/credit")).json()["code"] == 401


async def test_empty_balance_answers_402_and_creates_nothing():
    """Too few credits for the price: code 402 with HTTP 200, no task, no charge."""
    emu = make(credits=1.5)
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        accepted = await client.post(REMOVE, json={"image_url": url})
        refused = await client.post(REMOVE, json={"image_url": url})
        balance = await client.get("/api/v1/chat/credit")
    assert accepted.json()["code"] == 200
    assert (refused.status_code, refused.json()["code"]) == (200, 402)
    assert set(refused.json()) == {"code", "msg"}
    assert balance.json()["data"] == pytest.approx(0.5)
    assert emu.stats.tasks_created == 1


async def test_a_fractional_balance_is_answered_as_a_float():
    """The credit endpoint never truncates: 100 - 0.5 reads 99.5, whole balances as ints."""
    emu = make(credits=100)
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        whole = (await client.get("/api/v1/chat/credit")).json()
        await client.post(UPSCALE, json={"image_url": url})
        fractional = (await client.get("/api/v1/chat/credit")).json()
    assert whole == {"code": 200, "msg": "success", "data": 100}
    assert isinstance(fractional["data"], float)
    assert fractional["data"] == pytest.approx(99.5)


async def test_prices_are_configurable_per_operation():
    """prices= sets the credits of each operation; the scale never changes them."""
    emu = make(prices={Operation.UPSCALE: 3, "remove-background": 0.25})
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        await client.post(UPSCALE, json={"image_url": url, "scale": 2})
        await client.post(UPSCALE, json={"image_url": url, "scale": 4})
        await client.post(REMOVE, json={"image_url": url})
    assert emu.prices == {Operation.UPSCALE: 3.0, Operation.REMOVE_BACKGROUND: 0.25}
    assert emu.stats.credits_spent == pytest.approx(6.25)
    with pytest.raises(ValueError, match="prices"):
        make(prices={Operation.UPSCALE: -1})


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        (UPSCALE, {}, "image_url is required"),
        (UPSCALE, {"image_url": "u", "scale": 3}, "scale must be 2 or 4"),
        (UPSCALE, {"image_url": "u", "scale": True}, "scale must be 2 or 4"),
        (UPSCALE, {"image_url": "u", "format": "GIF"}, "format must be PNG or JPG"),
        (REMOVE, {"image_url": "u", "output_format": "JPG"}, "output_format must be PNG"),
        (REMOVE, {"image_url": "u", "callBackUrl": "ftp://x"}, "callBackUrl"),
        (REMOVE, [1, 2], "JSON object"),
        (CREATE, {"model": "x/y", "input": {"image": "u"}}, "model must be"),
        (CREATE, {"model": "recraft/crisp-upscale"}, "input must be"),
        (
            CREATE,
            {"model": "recraft/crisp-upscale", "input": {"image": "u", "scale": 2}},
            "takes only input.image",
        ),
        (CREATE, {"model": "recraft/remove-background", "input": {}}, "input.image is required"),
    ],
)
async def test_validation_problems_answer_422(path, body, words):
    """Bad submit bodies answer code 422 with a message, and create nothing."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(path, json=body)
    assert answer.status_code == 200
    assert answer.json()["code"] == 422
    assert words in answer.json()["msg"]
    assert emu.stats.tasks_created == 0
    assert emu.credits == pytest.approx(100_000)


async def test_non_json_submit_answers_422():
    """A body that is not JSON is a validation error, with only code and msg."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        garbage = await client.post(UPSCALE, content=b"{nope")
    assert garbage.json()["code"] == 422
    assert set(garbage.json()) == {"code", "msg"}


@pytest.mark.parametrize("path", [RECORD, f"{UPSCALE}/record-info", f"{REMOVE}/record-info"])
@pytest.mark.parametrize("params", [{}, {"taskId": ""}], ids=["missing", "empty"])
async def test_a_read_without_task_id_answers_the_documented_400(path, params):
    """Both dialects: {"code": 400, "msg": "taskId parameter is required"}, HTTP 200."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.get(path, params=params)
    assert answer.status_code == 200
    assert answer.json() == {"code": 400, "msg": "taskId parameter is required"}


async def test_unknown_task_and_wrong_operation_answer_404():
    """Unknown ids, and a task read through the other operation's endpoint, are not found."""
    emu = make(not_ready_for=0.0)  # its market read comes at once and must find the task
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        unknown = await read(client, f"{UPSCALE}/record-info", "no-such-task")
        crossed = await read(client, f"{REMOVE}/record-info", task_id)
        market = await read(client, "/api/v1/jobs/recordInfo", task_id)
    assert unknown == crossed == {"code": 404, "msg": "Task not found"}
    assert market["code"] == 200  # the jobs API reads every model's tasks
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        assert await read(client, RECORD, "task_recraft_1765177373893") == unknown


@pytest.mark.parametrize(
    ("method", "path", "status", "msg"),
    [
        ("GET", "/api/v1/no-such-thing", 404, "Not Found"),
        ("GET", "/", 404, "Not Found"),
        ("GET", CREATE, 405, "Method Not Allowed"),
        ("POST", RECORD, 405, "Method Not Allowed"),
    ],
)
async def test_unknown_routes_and_methods_answer_in_the_envelope(method, path, status, msg):
    """404 and 405 carry KIE's JSON envelope (and Allow for 405), not plain text."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.request(method, path)
    assert answer.status_code == status
    assert answer.json() == {"code": status, "msg": msg}
    if status == 405:
        assert answer.headers["allow"]


async def test_foreign_url_fails_creation_with_status_3_and_costs_nothing():
    """An image the emulator does not hold is unreachable: status 3, no credit spent."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(UPSCALE, json={"image_url": "https://example.invalid/a.png"})
        task_id = answer.json()["data"]["taskId"]
        data = (await read(client, f"{UPSCALE}/record-info", task_id))["data"]
    assert data["successFlag"] == 3
    assert "unreachable image" in data["errorMessage"]
    assert data["response"] is None
    assert emu.credits == pytest.approx(100_000)


async def test_bad_input_fails_the_task_with_status_2():
    """An image outside the published limits is accepted, then fails with a message."""
    emu = make()
    url = emu.add_image("tiny.png", sample_images(64)[0][1])
    broken = emu.add_image("broken.png", b"\x89PNG not really")
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        small = (await client.post(REMOVE, json={"image_url": url})).json()["data"]["taskId"]
        bad = (await client.post(UPSCALE, json={"image_url": broken})).json()["data"]["taskId"]
        small_data = await until_done(client, f"{REMOVE}/record-info", small)
        bad_data = await until_done(client, f"{UPSCALE}/record-info", bad)
    assert small_data["successFlag"] == 2
    assert "sides" in small_data["errorMessage"]
    assert bad_data["successFlag"] == 2
    assert "decode" in bad_data["errorMessage"]


async def test_result_of_one_task_is_valid_input_for_the_next():
    """A remove-background result can be upscaled: results are the emulator's own files."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        first = (await client.post(REMOVE, json={"image_url": url})).json()["data"]["taskId"]
        done = await until_done(client, f"{REMOVE}/record-info", first)
        cut = done["response"]["resultUrls"][0]
        second = (await client.post(UPSCALE, json={"image_url": cut})).json()["data"]["taskId"]
        data = await until_done(client, f"{UPSCALE}/record-info", second)
        result = await client.get(data["response"]["resultUrls"][0])
    image = Image.open(io.BytesIO(result.content))
    assert (image.mode, image.size) == ("RGBA", (512, 512))


async def test_results_are_served_only_once_the_task_succeeded():
    """A pending task's result URL and unknown files answer 404."""
    emu = make(duration=Duration.fixed(60))
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        early = await client.get(f"/_emulator/results/{task_id}.png")
        missing = await client.get("/_emulator/files/images/none.png")
        stored = await client.get(url)
    assert early.status_code == 404
    assert missing.status_code == 404
    assert stored.content == CIRCLE


async def test_rate_limit_is_a_sliding_window_answering_429_with_retry_after():
    """Over the limit: HTTP 429, body 429, Retry-After; no task and no credit spent."""
    emu = make(rate=Rate(3, per=0.3))
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        accepted = [await client.post(UPSCALE, json={"image_url": url}) for _ in range(3)]
        refused = await client.post(UPSCALE, json={"image_url": url})
        await anyio.sleep(0.3)
        again = await client.post(UPSCALE, json={"image_url": url})
    assert all(a.json()["code"] == 200 for a in accepted)
    assert refused.status_code == 429
    assert refused.json() == {"code": 429, "msg": "Rate limit exceeded"}
    assert refused.headers["Retry-After"] == "1"
    assert 0 < int(refused.headers["retry-after-ms"]) <= 300
    assert again.json()["code"] == 200
    assert emu.stats.rate_limited == 1
    assert emu.stats.read_rate_limited == 0
    assert emu.stats.tasks_created == 4
    assert emu.credits == pytest.approx(100_000 - 4 * 0.5)


async def test_no_rate_limit_when_rate_is_none():
    """rate=None lets every submit through."""
    emu = make(rate=None)
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        codes = [
            (await client.post(UPSCALE, json={"image_url": url})).json()["code"] for _ in range(30)
        ]
    assert set(codes) == {200}


async def test_stats_count_submits_per_image_reads_and_pending_peak():
    """Stats, in Python and at GET /_emulator/stats and /_emulator/tasks."""
    emu = make(duration=Duration.fixed(60))
    a = emu.add_image("a.png", CIRCLE)
    b = emu.add_image("b.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        ids = [
            (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
            for url in (a, a, b)
        ]
        await client.post(REMOVE, json={"image_url": a})
        await read(client, f"{UPSCALE}/record-info", ids[0])
        stats = (await client.get("/_emulator/stats")).json()
        tasks = (await client.get("/_emulator/tasks")).json()["tasks"]
    assert emu.stats.submits[("upscale", a)] == 2
    assert emu.stats.submits[("upscale", b)] == 1
    assert emu.stats.submits[("remove-background", a)] == 1
    assert {"operation": "upscale", "imageUrl": a, "count": 2} in stats["submits"]
    assert stats["status_reads"] == 1
    assert stats["read_rate_limited"] == 0
    assert stats["max_pending"] == 4
    assert stats["credits"] == pytest.approx(100_000 - 3 * 0.5 - 1)
    assert {t["taskId"] for t in tasks} >= set(ids)
    assert all(t["finishTime"] - t["createTime"] == pytest.approx(60) for t in tasks)


async def test_max_pending_counts_only_tasks_not_yet_finished():
    """Tasks that ended before a submit do not count towards the pending peak."""
    emu = make(duration=Duration.fixed(0.02))
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        for _ in range(3):
            await client.post(UPSCALE, json={"image_url": url})
            await anyio.sleep(0.03)
    assert emu.stats.max_pending == 1


async def test_processing_time_follows_the_duration_and_time_scale():
    """Finish moments are duration samples times the time scale, reproducible by seed."""
    emu = make(duration=Duration.uniform(10, 20), time_scale=0.001, seed=7)
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        for _ in range(5):
            await client.post(UPSCALE, json={"image_url": url})
    spans = [t.finished - t.created for t in emu.task_info()]
    assert all(0.01 <= span <= 0.02 for span in spans)
    assert len(set(spans)) == 5


async def test_default_emulator_answers_in_well_under_a_second():
    """With its defaults a task typically takes a fraction of a second."""
    emu = KieEmulator(seed=1)  # seeded: the lognormal tail may pass a second, now and then
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        for _ in range(10):
            await client.post(REMOVE, json={"image_url": url})
    spans = sorted(t.finished - t.created for t in emu.task_info())
    assert spans[len(spans) // 2] < 0.5


async def test_latency_delays_every_answer_of_the_service():
    """latency= holds each service answer back, like a network round trip; never the side door."""
    delays = []

    class Counted:
        """A fixed 0.3 s latency that notes each answer it delays."""

        def sample(self, _rng):
            delays.append(0.3)
            return 0.3

    emu = make(latency=Counted())
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        started = anyio.current_time()
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        await read(client, f"{UPSCALE}/record-info", task_id)
        elapsed = anyio.current_time() - started
        service_answers = len(delays)
        await client.get("/_emulator/stats")
    assert elapsed == pytest.approx(0.6)  # virtual seconds: the submit's and the read's
    assert service_answers == 2
    assert len(delays) == service_answers  # the side door answered without a delay


async def test_side_door_adds_images_over_http():
    """POST /_emulator/images/<name> stores the body and answers its URL."""
    emu = make()
    async with emu.http_client() as client:
        answer = await client.post("/_emulator/images/x.png", content=CIRCLE)
        url = answer.json()["url"]
        assert (await client.get(url)).content == CIRCLE
    assert url.endswith("/_emulator/files/images/x.png")
