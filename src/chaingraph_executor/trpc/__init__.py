"""Pure tRPC v11 wire protocol: SuperJSON, envelopes, JSONL, SSE framing and the procedure router.

Shared by the server transport (``chaingraph_executor.api.trpc``) and Python clients; imports no
web framework. The protocol is described in ``docs/adr/0005-trpc-server.md`` and the upstream
PROTOCOL.md it cites.
"""

from __future__ import annotations

from chaingraph_executor.trpc.codes import CODES, TRPCError, TRPCErrorCode
from chaingraph_executor.trpc.request import RequestInfo, TransportKind
from chaingraph_executor.trpc.router import ErrorMapper, Procedure, Router, StreamReturn, Tracked, tracked
from chaingraph_executor.trpc.superjson import UNDEFINED, BigInt, SuperMap, Undefined
from chaingraph_executor.trpc.transformers import Transformer, TransformerName

__all__ = [
    "CODES",
    "UNDEFINED",
    "BigInt",
    "ErrorMapper",
    "Procedure",
    "RequestInfo",
    "Router",
    "StreamReturn",
    "SuperMap",
    "TRPCError",
    "TRPCErrorCode",
    "Tracked",
    "Transformer",
    "TransformerName",
    "TransportKind",
    "Undefined",
    "tracked",
]
