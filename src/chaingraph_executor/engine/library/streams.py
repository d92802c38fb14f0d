"""Stream nodes: produce a stream item by item, transform one while it is produced, collect one.

A stream output is published as soon as the node opens it, so its consumers start at once and
read items as they arrive; the stream ends when its producer node ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, json_type, render_template
from chaingraph_executor.engine.nodes import Input, Output
from chaingraph_executor.engine.streams import StreamChannel

_MAX_ITEMS = 100_000


class _StreamNode(LibraryNode):
    category = "streams"

    def read_stream(self, ctx: NodeContext, port: str) -> StreamChannel:
        value = ctx.inputs.get(port)
        if value is None:
            raise self.fail(f"input '{port}' has no value")
        if not isinstance(value, StreamChannel):
            raise self.fail(f"input '{port}' must be a stream, got {json_type(value)}")
        return value


class StreamRange(_StreamNode):
    type = "stream.range"
    title = "Number stream"
    description = (
        f"Stream `count` numbers from `start` (step 1), `intervalMs` apart (at most {_MAX_ITEMS:,})."
    )
    count = Input(PortType.NUMBER, default=5)
    start = Input(PortType.NUMBER, default=0)
    intervalMs = Input(PortType.NUMBER, default=0)
    stream = Output(PortType.STREAM)

    async def execute(self, ctx: NodeContext) -> None:
        count = self.read_integer(ctx, "count")
        start = self.read_number(ctx, "start")
        interval = self.read_number(ctx, "intervalMs")
        if not 0 <= count <= _MAX_ITEMS:
            raise self.fail(f"count must be between 0 and {_MAX_ITEMS:,}, got {count}")
        if interval < 0:
            raise self.fail(f"intervalMs must not be negative, got {interval}")
        channel = ctx.open_stream("stream")
        for i in range(count):
            if i and interval:
                await asyncio.sleep(interval / 1000)
            channel.send(start + i)
            await asyncio.sleep(0)  # let consumers see each item as it comes
        channel.close()


class StreamMapText(_StreamNode):
    type = "stream.map-text"
    title = "Map stream to text"
    description = (
        "Render `template` (`{{item}}`, `{{item.x}}`, `{{index}}`) for each item of `stream` as it "
        "arrives, writing the texts to the stream `out`."
    )
    stream = Input(PortType.STREAM)
    template = Input(PortType.STRING, default="{{item}}")
    out = Output(PortType.STREAM)

    async def execute(self, ctx: NodeContext) -> None:
        source = self.read_stream(ctx, "stream")
        template = self.read_string(ctx, "template")
        out = ctx.open_stream("out")
        index = 0
        async for item in source:
            text, unknown = render_template(template, {"item": item, "index": index})
            if unknown:
                raise self.fail(f"item {index}: unknown placeholder '{unknown[0]}'")
            out.send(text)
            index += 1
        out.close()


class StreamCollect(_StreamNode):
    type = "stream.collect"
    title = "Collect stream"
    description = "Wait for `stream` to end and publish all its items as the array `items`."
    stream = Input(PortType.STREAM)
    items = Output(PortType.ARRAY)
    count = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = await self.read_stream(ctx, "stream").collect()
        return {"items": items, "count": len(items)}


STREAM_NODES: tuple[type[LibraryNode], ...] = (StreamRange, StreamMapText, StreamCollect)
