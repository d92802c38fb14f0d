"""The HTTP request node (the one built-in node doing network I/O, with httpx).

Uses the host's shared ``httpx.AsyncClient`` from ``ctx.services["http_client"]`` when there
is one, else a client of its own for the request.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, json_type, text_of
from chaingraph_executor.engine.nodes import Input, Output

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_SCALARS = (str, int, float, bool)
_SNIPPET = 200


class HttpRequest(LibraryNode):
    type = "http.request"
    title = "HTTP request"
    category = "http"
    description = (
        "Send an HTTP request. `body`: objects and arrays go as JSON, text as is. The response "
        "body is parsed when it is JSON. With `failOnError` (default) a 4xx/5xx status fails the "
        "node; network errors and timeouts always do."
    )
    method = Input(PortType.ENUM, default="GET", options=METHODS)
    url = Input(PortType.STRING, required=True, description="http:// or https:// URL")
    headers = Input(PortType.OBJECT, description="header name -> value")
    query = Input(
        PortType.OBJECT,
        description="query parameters added to the URL's; an array value repeats the parameter",
    )
    body = Input(PortType.ANY)
    timeoutMs = Input(PortType.NUMBER, default=30000)
    failOnError = Input(PortType.BOOLEAN, default=True)
    status = Output(PortType.NUMBER)
    ok = Output(PortType.BOOLEAN, description="status is 2xx")
    responseHeaders = Output(PortType.OBJECT, description="lower-case names; repeated headers joined by ', '")
    responseBody = Output(PortType.ANY, description="parsed JSON when the response is JSON, else text")
    text = Output(PortType.STRING, description="the response body as text")

    def _url(self, ctx: NodeContext) -> httpx.URL:
        raw = self.read_string(ctx, "url").strip()
        if not raw:
            raise self.fail("input 'url' is empty")
        try:
            url = httpx.URL(raw)
        except httpx.InvalidURL as exc:
            raise self.fail(f"invalid URL '{raw}': {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise self.fail(f"invalid URL '{raw}': an absolute http:// or https:// URL is needed")
        return url

    def _headers(self, ctx: NodeContext) -> dict[str, str]:
        headers = {}
        for name, value in (self.opt_object(ctx, "headers") or {}).items():
            if value is None:
                continue
            if not isinstance(value, _SCALARS):
                raise self.fail(f"header '{name}' must be text, got {json_type(value)}")
            headers[name] = text_of(value)
        return headers

    def _query(self, ctx: NodeContext) -> httpx.QueryParams:
        params: list[tuple[str, str | int | float | bool | None]] = []
        for name, value in (self.opt_object(ctx, "query") or {}).items():
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                if not isinstance(item, _SCALARS):
                    raise self.fail(
                        f"query parameter '{name}' must be text or a number, got {json_type(item)}"
                    )
                params.append((name, text_of(item)))
        return httpx.QueryParams(params)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        method = self.read_string(ctx, "method").upper()
        if method not in METHODS:
            raise self.fail(f"unknown method '{method}' (use {', '.join(METHODS)})")
        url = self._url(ctx)
        timeout_ms = self.read_number(ctx, "timeoutMs")
        if timeout_ms <= 0:
            raise self.fail(f"timeoutMs must be positive, got {timeout_ms}")
        fail_on_error = self.read_boolean(ctx, "failOnError")
        headers = self._headers(ctx)
        params = self._query(ctx)
        if params:  # the URL's own query is kept; `query` wins for the names it sets
            url = url.copy_merge_params(params)
        body = ctx.inputs.get("body")
        content: bytes | None = None
        if isinstance(body, str):
            content = body.encode()
        elif body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"

        label = f"{method} {url}"
        shared = ctx.services.get("http_client")
        client = shared if isinstance(shared, httpx.AsyncClient) else httpx.AsyncClient()
        try:
            response = await client.request(
                method,
                url,
                headers=headers,
                content=content,
                timeout=timeout_ms / 1000,
                follow_redirects=True,
            )
        except httpx.TimeoutException:
            raise self.fail(f"{label} timed out after {timeout_ms:g} ms") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            reason = str(exc) or type(exc).__name__
            raise self.fail(f"{label} failed: {reason}") from None
        finally:
            if client is not shared:
                await client.aclose()

        text = response.text
        status = response.status_code
        if fail_on_error and status >= 400:
            snippet = text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")
            detail = f": {snippet}" if snippet else ""
            raise self.fail(f"{label} returned {status} {response.reason_phrase}{detail}")
        response_headers: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            key = name.lower()
            response_headers[key] = f"{response_headers[key]}, {value}" if key in response_headers else value
        parsed: Any = text
        if "json" in response.headers.get("content-type", "").lower() and text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        return {
            "status": status,
            "ok": 200 <= status < 300,
            "responseHeaders": response_headers,
            "responseBody": parsed,
            "text": text,
        }


HTTP_NODES: tuple[type[LibraryNode], ...] = (HttpRequest,)
