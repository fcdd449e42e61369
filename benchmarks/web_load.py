"""A load generator for the window and the API, in its own process: CLIENTS connections at
once, each sending one request after another (a new connection per request: gunicorn's sync
workers close them), until REQUESTS are done or SECONDS have passed. Prints JSON: count,
errors, requests/s, p50 and p99 in ms.

    python -m benchmarks.web_load BASE_URL REQUESTS_FILE CLIENTS REQUESTS SECONDS [TOKEN [RATE]]

With RATE (requests per second, all clients together) the load is open: requests arrive at
random (Poisson) times at that rate whether or not earlier ones were answered, as departments
working at their own pace do; the latency of each is counted from its arrival. Without it the
clients are closed loops: each sends its next request the moment it has an answer, which
measures the server saturated (latency then ~ clients × the time one write holds the lock).

Each line of REQUESTS_FILE is a path to GET, or ``POST <path> <JSON body>``; with TOKEN every
request carries it as a bearer token. A POST line is sent once (they are writes: each differs).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from urllib.parse import urlsplit


async def one(host: str, port: int, line: str, token: str | None) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        method, path, body = "GET", line, b""
        if line.startswith("POST "):
            _, path, text = line.split(" ", 2)
            method, body = "POST", text.encode("utf-8")
        request = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        if token:
            request.append(f"Authorization: Bearer {token}")
        if method == "POST":
            request += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(request) + "\r\n\r\n").encode("utf-8") + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for header in head.split(b"\r\n")[1:]:
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            await reader.read()
        else:
            await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def run(base: str, paths: list[str], clients: int, requests: int,
              seconds: float, token: str | None = None, rate: float | None = None
              ) -> dict[str, float]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    left = [requests]
    deadline = time.perf_counter() + seconds
    rng = random.Random(7)
    writes = iter([p for p in paths if p.startswith("POST ")])
    reads = [p for p in paths if not p.startswith("POST ")]

    async def send(path: str, since: float) -> None:
        """One request; its latency counted from ``since`` (its start, or its arrival)."""
        nonlocal errors
        try:
            status = await one(host, port, path, token)
        except (OSError, asyncio.IncompleteReadError):
            status = 0
        latencies.append((time.perf_counter() - since) * 1000)
        if status not in (200, 201):
            errors += 1

    async def client() -> None:
        while left[0] > 0 and time.perf_counter() < deadline:
            left[0] -= 1
            path = reads[rng.randrange(len(reads))] if reads else next(writes, None)
            if path is None:
                return
            await send(path, time.perf_counter())

    async def arrival(path: str, due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await send(path, due)

    started = time.perf_counter()
    if rate:
        due, arrivals = started, []
        for _ in range(min(requests, int(rate * seconds))):
            due += rng.expovariate(rate)
            path = reads[rng.randrange(len(reads))] if reads else next(writes, None)
            if path is None:
                break
            arrivals.append(arrival(path, due))
        await asyncio.gather(*arrivals)
    else:
        await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"count": len(ordered), "errors": errors, "requests_per_s": len(ordered) / elapsed,
            "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def main() -> None:
    base, paths_file, clients, requests, seconds = sys.argv[1:6]
    token = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None
    rate = float(sys.argv[7]) if len(sys.argv) > 7 else None
    with open(paths_file, encoding="utf-8") as file:
        paths = [line.strip() for line in file if line.strip()]
    print(json.dumps(asyncio.run(run(base, paths, int(clients), int(requests),
                                     float(seconds), token, rate))))


if __name__ == "__main__":
    main()
