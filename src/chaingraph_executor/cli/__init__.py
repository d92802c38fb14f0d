"""The ``chaingraph`` command line.

* ``chaingraph run FLOW.json``: runs a flow in this process (SQLite under ``.chaingraph``) or on a
  server (``--server``), with live progress, and exits with the run's outcome;
* ``serve`` / ``api`` / ``worker`` / ``migrate``: the service's processes;
* ``flows …`` / ``executions …``: a server's flows and executions, through the Python client;
* ``users …``: users and tokens, in the database directly;
* ``check``: configuration, database, schema and workers; ``version``.

Every option can also be set by the environment variable shown in ``--help``. Problems are one
``error: …`` line on stderr; exit codes: 0 ok (a run completed), 1 a run failed or was stopped
(or a command failed), 2 bad input (file, flow, ``--set``, token, arguments), 3 the server or
the database cannot be reached, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys

import click

from chaingraph_executor import __version__

# The command modules register their commands on import, in the order `--help` lists them.
from chaingraph_executor.cli import run  # noqa: F401  # isort: skip
from chaingraph_executor.cli import resources  # noqa: F401  # isort: skip
from chaingraph_executor.cli import processes  # noqa: F401  # isort: skip
from chaingraph_executor.cli._app import cli
from chaingraph_executor.cli._common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CliError, first_line

__all__ = ["cli", "main"]


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"chaingraph-executor {__version__}")


def main() -> None:
    """Entry point: click's parsing, then one ``error:`` line for anything that goes wrong."""
    try:
        cli.main(prog_name="chaingraph", standalone_mode=False)
    except CliError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining
        # when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except Exception as exc:
        if os.environ.get("CHAINGRAPH_DEBUG"):
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {first_line(exc)} "
            "(set CHAINGRAPH_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
