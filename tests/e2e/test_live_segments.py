"""The real web server wired by the runtime: an API order change schedules one recompute."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.clock import FixedClock
from bot.config import ApiConfig, Config
from bot.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from carebot.runtime import SEGMENTS_JOB
from tests.conftest import make_config
from tests.e2e.conftest import Chat, start_chat
from tests.e2e.test_webhook import free_port

SECRET = "live-segments-secret-0123456789abcdef"


@pytest.fixture
async def live(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> AsyncIterator[tuple[Chat, str]]:
    port = free_port()
    base: Config = make_config(tmp_path)
    config = dataclasses.replace(
        base,
        api=ApiConfig(enabled=True, secret=SECRET),
        web=dataclasses.replace(base.web, port=port),
    )
    async for chat in start_chat(demo_database, config, clock):
        yield chat, f"http://127.0.0.1:{port}/api/v1"


async def test_an_api_order_schedules_a_single_debounced_recompute(
    live: tuple[Chat, str], clock: FixedClock
) -> None:
    chat, api = live
    claire = chat.care.repos.customers.by_external_id("12651")
    assert claire is not None
    stats = "SELECT orders, key_customer FROM customer_stats WHERE customer_id = ?"
    orders_before, key_before = chat.care.db.conn.execute(stats, [claire.id]).fetchone()
    assert key_before == 0
    queue = chat.care.application.job_queue
    assert queue is not None
    async with aiohttp.ClientSession() as session:
        for n in range(3):  # a burst of orders: still one pending recompute
            body = json.dumps(
                {
                    "external_id": f"LIVE-{n}",
                    "customer_external_id": "12651",
                    "placed_at": clock.now().isoformat(),
                    "items": [
                        {
                            "sku": "21844",
                            "description": "RETRO SPOT MUG",
                            "quantity": 100,
                            "unit_price": 50,
                        }
                    ],
                }
            ).encode()
            at = int(clock.now().timestamp()) - n
            headers = {
                TIMESTAMP_HEADER: str(at),
                SIGNATURE_HEADER: sign(SECRET, at, body),
                "Content-Type": "application/json",
            }
            async with session.post(f"{api}/orders", data=body, headers=headers) as response:
                assert response.status == 201
    pending = [job for job in queue.get_jobs_by_name(SEGMENTS_JOB) if not job.removed]
    assert len(pending) == 1
    await pending[0].run(chat.care.application)  # what the timer would do 30 s later
    after = chat.care.db.conn.execute(stats, [claire.id]).fetchone()
    assert after == (orders_before + 3, 1)  # three 5,000 GBP orders make Claire a key customer
