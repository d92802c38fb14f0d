"""The ``chaingraph`` command group; the commands register on it from their modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from chaingraph_executor import __version__
from chaingraph_executor.cli._common import (
    Group,
)

if TYPE_CHECKING:
    pass


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="chaingraph")
def cli() -> None:
    """chaingraph-executor: run flows as durable executions and stream their events.

    Start with `chaingraph run examples/hello-world.json`; `chaingraph serve` runs the service.
    """
