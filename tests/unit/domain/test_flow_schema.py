"""The committed JSON Schema matches the flow model, and documents parse as the schema says."""

from __future__ import annotations

import json
from pathlib import Path

from chaingraph_executor.domain.flow import flow_json_schema, parse_flow

ROOT = Path(__file__).resolve().parents[3]


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "schema" / "flow.schema.json").read_text())
    assert committed == json.loads(json.dumps(flow_json_schema())), (
        "schema/flow.schema.json is stale: regenerate it with "
        "`python -c 'from chaingraph_executor.domain.flow import flow_json_schema; ...'` (see docs)"
    )


def test_schema_names_the_edge_fields_as_chaingraph_does() -> None:
    edge = flow_json_schema()["$defs"]["Edge"]
    assert {"sourceNodeId", "sourcePortId", "targetNodeId", "targetPortId"} <= set(edge["required"])


def test_round_trip_keeps_the_document() -> None:
    doc = {
        "id": "f",
        "metadata": {"name": "n", "ownerID": "me", "version": 2, "tags": ["x"], "description": ""},
        "nodes": [{"id": "a", "type": "math.add", "inputs": {"a": 1}, "ports": [], "metadata": {}}],
        "edges": [],
    }
    assert parse_flow(doc).to_json() == doc
