"""The HTTP request node against a local server (127.0.0.1, a free port, no internet)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import Run, flow_doc, run_flow

REG = builtin_registry()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if url.path == "/echo":
            echo = {
                "method": self.command,
                "query": parse_qsl(url.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            self._send(200, json.dumps(echo).encode(), "application/json; charset=utf-8", {"X-Multi": "a"})
        elif url.path == "/text":
            self._send(200, b"plain ok", "text/plain")
        elif url.path == "/bad-json":
            self._send(200, b"{not json", "application/json")
        elif url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            self._send(code, f"status {code} body".encode(), "text/plain")
        elif url.path == "/slow":
            time.sleep(0.3)
            self._send(200, b"late", "text/plain")
        elif url.path == "/redirect":
            self._send(302, b"", "text/plain", {"Location": "/text"})
        else:
            self._send(404, b"", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # e.g. /slow writing to a client that timed out and left


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def request(services: dict[str, Any] | None = None, **inputs: Any) -> Run:
    return await run_flow(
        flow_doc([{"id": "h", "type": "http.request", "inputs": inputs}]), registry=REG, services=services
    )


async def outputs_of(**inputs: Any) -> dict[str, Any]:
    run = await request(**inputs)
    assert run.result.status == "completed", run.result.error_message
    return run.result.outputs["h"]


async def error_of(**inputs: Any) -> str:
    run = await request(**inputs)
    assert run.result.status == "failed"
    return str(run.of("node:failed")[0].data["error"].message)


async def test_get_json_with_query_and_headers(server: str) -> None:
    out = await outputs_of(
        url=f"{server}/echo?fixed=1",
        query={"q": "a b", "n": 2, "tag": ["x", "y"], "skip": None},
        headers={"X-Token": "t"},
    )
    assert out["status"] == 200 and out["ok"] is True
    body = out["responseBody"]
    assert body["method"] == "GET"
    assert body["query"] == [["fixed", "1"], ["q", "a b"], ["n", "2"], ["tag", "x"], ["tag", "y"]]
    assert body["headers"]["x-token"] == "t"
    assert out["responseHeaders"]["content-type"] == "application/json; charset=utf-8"
    assert out["responseHeaders"]["x-multi"] == "a"
    assert json.loads(out["text"]) == body


async def test_post_object_body_goes_as_json(server: str) -> None:
    out = await outputs_of(method="POST", url=f"{server}/echo", body={"name": "Ada", "tags": [1]})
    echo = out["responseBody"]
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"name": "Ada", "tags": [1]}
    assert echo["headers"]["content-type"] == "application/json"


async def test_put_text_body_goes_as_is(server: str) -> None:
    out = await outputs_of(
        method="PUT", url=f"{server}/echo", body="raw text", headers={"Content-Type": "text/plain"}
    )
    assert out["responseBody"]["body"] == "raw text"
    assert out["responseBody"]["headers"]["content-type"] == "text/plain"


async def test_text_response_and_redirect(server: str) -> None:
    out = await outputs_of(url=f"{server}/redirect")
    assert (out["status"], out["responseBody"], out["text"]) == (200, "plain ok", "plain ok")
    out = await outputs_of(url=f"{server}/bad-json")
    assert out["responseBody"] == "{not json"  # claimed JSON that is not: kept as text


async def test_error_status_fails_the_node_by_default(server: str) -> None:
    message = await error_of(url=f"{server}/status/404")
    assert message == f"http.request: GET {server}/status/404 returned 404 Not Found: status 404 body"
    message = await error_of(method="DELETE", url=f"{server}/status/503")
    assert message.startswith(f"http.request: DELETE {server}/status/503 returned 503 Service Unavailable")


async def test_error_status_is_an_output_without_fail_on_error(server: str) -> None:
    out = await outputs_of(url=f"{server}/status/500", failOnError=False)
    assert (out["status"], out["ok"], out["responseBody"]) == (500, False, "status 500 body")


async def test_error_status_feeds_an_error_handler(server: str) -> None:
    doc = flow_doc(
        [
            {"id": "h", "type": "http.request", "inputs": {"url": f"{server}/status/404"}},
            {"id": "handler", "type": "debug.log", "inputs": {"message": "request failed"}},
        ],
        [("h.__errorMessage", "handler.value")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert "returned 404" in run.of("node:debug-log-string")[0].data["log"]


async def test_timeout(server: str) -> None:
    t0 = time.perf_counter()
    message = await error_of(url=f"{server}/slow", timeoutMs=50)
    assert time.perf_counter() - t0 < 0.25
    assert message == f"http.request: GET {server}/slow timed out after 50 ms"


async def test_network_error_names_the_url() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    message = await error_of(url=f"http://127.0.0.1:{port}/x")
    assert message.startswith(f"http.request: GET http://127.0.0.1:{port}/x failed: ")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"url": "  "}, "http.request: input 'url' is empty"),
        (
            {"url": "example.com/x"},
            "http.request: invalid URL 'example.com/x': an absolute http:// or https:// URL is needed",
        ),
        (
            {"url": "ftp://host/x"},
            "http.request: invalid URL 'ftp://host/x': an absolute http:// or https:// URL is needed",
        ),
        ({"url": "http://h", "timeoutMs": 0}, "http.request: timeoutMs must be positive, got 0"),
        (
            {"url": "http://h", "headers": {"X": {"a": 1}}},
            "http.request: header 'X' must be text, got object",
        ),
        (
            {"url": "http://h", "query": {"q": [{"a": 1}]}},
            "http.request: query parameter 'q' must be text or a number, got object",
        ),
    ],
)
async def test_invalid_inputs(inputs: dict[str, Any], message: str) -> None:
    assert await error_of(**inputs) == message


async def test_missing_url_skips_the_node() -> None:
    run = await request()
    assert run.result.status == "completed"
    assert run.of("node:skipped")[0].data["reason"] == "required input 'url' has no value"


async def test_uses_the_shared_client_from_services(server: str) -> None:
    async with httpx.AsyncClient(headers={"X-Shared": "yes"}) as client:
        run = await request(services={"http_client": client}, url=f"{server}/echo")
        assert run.result.outputs["h"]["responseBody"]["headers"]["x-shared"] == "yes"
        assert not client.is_closed  # a shared client is left open
