"""The request and response plumbing every page shares: JSON in (size-limited), strict JSON
out, blocking work off the event loop."""

from __future__ import annotations

import json

import anyio.to_thread
from starlette.responses import JSONResponse, StreamingResponse

from .limits import LIMITS, LabError
from .sessions import plain


def answer(data, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(data), status_code=status)


def event_stream(messages) -> StreamingResponse:
    """Server-sent events from an async iterator of ``event: ...\ndata: ...\n\n`` strings, never
    cached nor buffered by a proxy, so each message reaches the page when it is made."""
    return StreamingResponse(messages, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def read_json(request, limit: int = LIMITS.body_bytes) -> dict:
    """The request's JSON object ({} for an empty body); 413 past ``limit`` bytes."""
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    kind = request.headers.get("content-type", "")
    if not kind.startswith("application/json"):  # a cross-site form cannot send this type
        raise LabError(415, f"send JSON with Content-Type: application/json, not {kind!r}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LabError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LabError(400, f"expected a JSON object, got {type(data).__name__}")
    return data


async def read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LabError(413, f"the request body has {declared} bytes, the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LabError(413, f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def in_thread(function, *args):
    """Run blocking NumPy work in a worker thread so the event loop keeps serving."""
    return await anyio.to_thread.run_sync(function, *args)
