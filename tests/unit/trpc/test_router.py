"""The procedure router: registration, input validation errors, error mapping, tracked events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from chaingraph_executor.errors import ErrorKind, ExecutorError, NotFound
from chaingraph_executor.trpc import UNDEFINED, Router, TRPCError, tracked
from chaingraph_executor.trpc.router import Tracked, is_data_stream, strip_undefined


class ListInput(BaseModel):
    limit: int = Field(default=10, le=100)
    cursor: str | None = None


class Nested(BaseModel):
    options: ListInput


def make_router(**kwargs: Any) -> Router:
    router = Router(**kwargs)

    @router.query("flows.list", input=ListInput)
    async def list_flows(ctx: Any, input: ListInput) -> dict[str, Any]:
        return {"limit": input.limit, "ctx": ctx}

    @router.query("nested", input=Nested)
    async def nested(ctx: Any, input: Nested) -> int:
        return input.options.limit

    @router.mutation("raw")
    def raw(ctx: Any, input: Any) -> Any:  # a plain (sync) handler is fine
        return input

    @router.subscription("events")
    async def events(ctx: Any, input: Any) -> AsyncIterator[Any]:
        yield tracked("1", {"n": 1})
        yield {"n": 2}

    @router.subscription("notIterable")
    async def not_iterable(ctx: Any, input: Any) -> int:
        return 1

    @router.query("fails")
    async def fails(ctx: Any, input: Any) -> None:
        raise NotFound("flow not found")

    return router


async def test_registration_and_lookup() -> None:
    router = make_router()
    assert "flows.list" in router and len(router) == 6
    proc = router.get("flows.list")
    assert proc is not None and proc.type == "query"
    assert router.get("nope") is None
    assert await proc.call("ctx", {"limit": 5}) == {"limit": 5, "ctx": "ctx"}
    raw = router.get("raw")
    assert raw is not None and await raw.call(None, UNDEFINED) is UNDEFINED
    with pytest.raises(ValueError, match="already registered"):
        router.add("raw", "mutation", lambda c, i: None)
    with pytest.raises(ValueError, match="invalid procedure path"):
        router.add("a,b", "query", lambda c, i: None)


async def test_include_nests_routers() -> None:
    inner = make_router()
    outer = Router()
    outer.include(inner, prefix="v1")
    proc = outer.get("v1.flows.list")
    assert proc is not None and await proc.call(None, {}) == {"limit": 10, "ctx": None}


async def test_validation_error_names_the_field_and_carries_zod_error() -> None:
    proc = make_router().get("flows.list")
    assert proc is not None
    with pytest.raises(TRPCError) as info:
        await proc.call(None, {"limit": 500})
    err = info.value
    assert err.code == "BAD_REQUEST"
    assert err.message == "Invalid input: limit: Input should be less than or equal to 100"
    assert err.data_extra == {
        "zodError": {
            "formErrors": [],
            "fieldErrors": {"limit": ["Input should be less than or equal to 100"]},
        }
    }


async def test_validation_of_nested_and_root_errors() -> None:
    router = make_router()
    nested = router.get("nested")
    assert nested is not None
    with pytest.raises(TRPCError) as info:
        await nested.call(None, {"options": {"limit": "many"}})
    assert info.value.message.startswith("Invalid input: options.limit: Input should be a valid integer")
    assert info.value.data_extra["zodError"]["fieldErrors"]["options"][0].startswith("limit: ")
    with pytest.raises(TRPCError) as root:
        await nested.call(None, UNDEFINED)  # no input at all
    assert root.value.data_extra["zodError"]["formErrors"]
    no_zod = make_router(zod_error=False).get("flows.list")
    assert no_zod is not None
    with pytest.raises(TRPCError) as plain:
        await no_zod.call(None, {"limit": 500})
    assert plain.value.data_extra == {}


async def test_undefined_members_are_absent_for_validation() -> None:
    proc = make_router().get("flows.list")
    assert proc is not None
    assert await proc.call(None, {"limit": 3, "cursor": UNDEFINED}) == {"limit": 3, "ctx": None}
    value = {"a": [1, UNDEFINED, {"b": UNDEFINED}], "c": UNDEFINED}
    assert strip_undefined(value) == {"a": [1, None, {}]}
    assert value["c"] is UNDEFINED  # not modified in place
    plain = {"a": [1, 2]}
    assert strip_undefined(plain) is plain


async def test_subscriptions() -> None:
    router = make_router()
    proc = router.get("events")
    assert proc is not None
    items = [item async for item in await proc.call(None, UNDEFINED)]
    assert items == [Tracked("1", {"n": 1}), {"n": 2}]
    bad = router.get("notIterable")
    assert bad is not None
    with pytest.raises(TRPCError, match="did not return an observable or a AsyncGenerator"):
        await bad.call(None, UNDEFINED)


def test_tracked_ids_are_checked() -> None:
    assert tracked("a", 1) == Tracked("a", 1)
    for bad in ("", "a\nb", "a\rb", "a\0b"):
        with pytest.raises(ValueError):
            tracked(bad, 1)


def test_error_mapping() -> None:
    def mapper(exc: Exception) -> TRPCError | None:
        if isinstance(exc, ExecutorError) and exc.kind is ErrorKind.NOT_FOUND:
            return TRPCError("NOT_FOUND", exc.message)
        return None

    router = make_router(error_mapper=mapper)
    mapped = router.to_trpc_error(NotFound("flow not found"))
    assert (mapped.code, mapped.message) == ("NOT_FOUND", "flow not found")
    assert isinstance(mapped.__cause__, NotFound)
    internal = router.to_trpc_error(RuntimeError("kaboom"))
    assert (internal.code, internal.message) == ("INTERNAL_SERVER_ERROR", "kaboom")
    same = TRPCError("CONFLICT", "x")
    assert router.to_trpc_error(same) is same
    shape = router.error_shape(RuntimeError("kaboom"), path="boom", dev=True)
    assert shape["data"]["path"] == "boom" and "kaboom" in shape["data"]["stack"]
    assert make_router().to_trpc_error(NotFound("x")).code == "INTERNAL_SERVER_ERROR"


async def test_is_data_stream() -> None:
    async def gen() -> AsyncIterator[int]:
        yield 1

    async def coro() -> int:
        return 1

    pending = coro()
    assert is_data_stream(gen())
    assert is_data_stream({"later": pending})
    assert not is_data_stream({"now": 1})
    assert not is_data_stream([gen])
    assert await pending == 1
