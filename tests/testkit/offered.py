"""Open-loop traffic for emulator tests (tests only): requests at a given rate over time, each on a
keep-alive connection that is idle at its due time (a new one if none is), whatever the answers'
latency. Constant arrivals, so that a test knows exactly what was offered in every window; bounded
in time and in connections. Raw HTTP on asyncio (testkit.rawhttp's request bytes), in a thread of
its own so that a test can poll the emulator meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from testkit.rawhttp import invocation, parse_answers


@dataclass
class Offered:
    sent: int = 0
    status: Counter = field(default_factory=Counter)  # answers by HTTP status
    started: float = 0.0  # monotonic
    finished: float = 0.0
    unanswered: int = 0


async def _offer(
    port: int,
    endpoint: str,
    rate: Callable[[float], float | None],
    result: Offered,
    max_connections: int,
    start: float | None,
    headers: bytes = b"",
) -> None:
    request = invocation(endpoint.encode(), headers=headers)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0
    tasks: set[asyncio.Task] = set()

    async def one() -> None:
        nonlocal opened
        if idle:
            reader, writer = idle.pop()
        else:
            opened += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        buf = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                result.unanswered += 1
                writer.close()
                return
            answers, buf = parse_answers(buf + chunk)
            if answers:
                result.status[answers[0].status] += 1
                break
        idle.append((reader, writer))

    loop = asyncio.get_running_loop()
    result.started = t0 = start if start is not None else time.monotonic()
    due = t0
    while True:
        now = time.monotonic()
        r = rate(now - t0)
        if r is None:
            break
        if r <= 0:
            due = now + 0.01
            await asyncio.sleep(0.01)
            continue
        if due > now:
            await asyncio.sleep(due - now)
        if len(tasks) >= max_connections:
            raise RuntimeError(
                f"more than {max_connections} requests in flight: the test's endpoint never answers"
            )
        task = loop.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        result.sent += 1
        due += 1.0 / r
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    result.finished = time.monotonic()
    for _, writer in idle:
        writer.close()


def offer_in_thread(
    port: int,
    endpoint: str,
    rate: Callable[[float], float | None],
    max_connections: int = 2000,
    start: float | None = None,
    headers: bytes = b"",
) -> tuple[threading.Thread, Offered]:
    """Start offering ``rate(t)`` requests per second (t: seconds since ``start``; None ends it);
    ``headers``: more request header lines (``b"Name: value\r\n"``)."""
    result = Offered()

    def run() -> None:
        asyncio.run(_offer(port, endpoint, rate, result, max_connections, start, headers))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result
