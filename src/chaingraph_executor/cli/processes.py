"""``serve``, ``api``, ``worker``, ``migrate``, ``users …`` and ``check``."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from chaingraph_executor.cli._app import cli
from chaingraph_executor.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    Group,
    _is_database_error,
    _settings,
    executor_error,
    fail,
    first_line,
    mask_url,
)
from chaingraph_executor.errors import ExecutorError
from chaingraph_executor.settings import Mode

if TYPE_CHECKING:
    from chaingraph_executor.settings import Settings


# -------------------------------------------------------------------------------------- service
def database_options(fn: Any) -> Any:
    fn = click.option(
        "--data-dir",
        envvar="CHAINGRAPH_DATA_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False),
        help="where the embedded mode keeps its files [default: .chaingraph]",
    )(fn)
    fn = click.option(
        "--database-url",
        envvar="CHAINGRAPH_DATABASE_URL",
        show_envvar=True,
        help="application database: sqlite:///… or postgresql://… [default: SQLite in the data dir]",
    )(fn)
    return fn


def server_options(default_port: int | None = None) -> Any:
    def decorate(fn: Any) -> Any:
        fn = database_options(fn)
        fn = click.option(
            "--port",
            envvar="CHAINGRAPH_PORT",
            show_envvar=True,
            type=click.IntRange(0, 65535),
            default=default_port,
            help="port to listen on"
            + (f" [default: {default_port}]" if default_port else " [default: 4021]"),
        )(fn)
        fn = click.option(
            "--host",
            envvar="CHAINGRAPH_HOST",
            show_envvar=True,
            help="address to listen on [default: 127.0.0.1]",
        )(fn)
        return fn

    return decorate


def _check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (check --host)", EXIT_FAILED)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            fail(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(is another chaingraph running there? choose another --port)",
                EXIT_FAILED,
            )


def _run_role(
    role: Mode,
    host: str | None,
    port: int | None,
    data_dir: str | None,
    database_url: str | None,
    **extra: Any,
) -> None:
    from chaingraph_executor.logconfig import configure_logging
    from chaingraph_executor.serve import serve

    settings = _settings(
        mode=role, host=host, port=port, data_dir=data_dir, database_url=database_url, **extra
    )
    configure_logging(settings.log_level, settings.log_format)
    _check_port_free(settings.host, settings.port)
    serving = False

    def announce(line: str) -> None:
        nonlocal serving
        serving = True
        click.echo(line)

    def on_signal(signum: int, frame: Any) -> None:
        # While serving, uvicorn handles SIGINT/SIGTERM (graceful shutdown) and raises the
        # signal again once it stopped listening: by then the shutdown is under way, let the
        # services close (worker deregistration, DBOS) instead of dying here.
        if not serving:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(serve(settings, role, announce=announce))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot start: {exc.strerror or first_line(exc)}", EXIT_FAILED)
    except ExecutorError as exc:
        executor_error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback: one line
        if _is_database_error(exc):
            fail(
                f"cannot open the database {mask_url(settings.app_database_url)}: {first_line(exc)}",
                EXIT_UNAVAILABLE,
            )
        fail(f"cannot start the {role}: {first_line(exc)}", EXIT_FAILED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command()
@server_options()
def serve(host: str | None, port: int | None, data_dir: str | None, database_url: str | None) -> None:
    """Run the embedded service: API and worker in one process (SQLite by default, dev auth)."""
    _run_role("embedded", host, port, data_dir, database_url)


@cli.command()
@server_options()
def api(host: str | None, port: int | None, data_dir: str | None, database_url: str | None) -> None:
    """Run an API process (PostgreSQL): enqueues, signals, cancels and streams; never runs flows."""
    _run_role("api", host, port, data_dir, database_url)


@cli.command()
@server_options(default_port=9090)
@click.option(
    "--concurrency",
    envvar="CHAINGRAPH_WORKER_CONCURRENCY",
    show_envvar=True,
    type=click.IntRange(1),
    help="flows this worker runs at once [default: 10]",
)
@click.option(
    "--executor-id",
    envvar="CHAINGRAPH_EXECUTOR_ID",
    show_envvar=True,
    help="stable unique id of this worker [default: <hostname>-<pid>]",
)
def worker(
    host: str | None,
    port: int | None,
    data_dir: str | None,
    database_url: str | None,
    concurrency: int | None,
    executor_id: str | None,
) -> None:
    """Run a worker process (PostgreSQL): runs flows; its health endpoint listens on --port."""
    _run_role(
        "worker", host, port, data_dir, database_url, worker_concurrency=concurrency, executor_id=executor_id
    )


@cli.command()
@database_options
def migrate(database_url: str | None, data_dir: str | None) -> None:
    """Create or upgrade the application schema and the DBOS system schema."""
    from chaingraph_executor.backends.dbos.runtime import migrate_system_database
    from chaingraph_executor.backends.sql import migrate as migrate_app
    from chaingraph_executor.backends.sql import schema_status
    from chaingraph_executor.bootstrap import _ensure_sqlite_dirs

    settings = _settings(database_url=database_url, data_dir=data_dir)
    _ensure_sqlite_dirs(settings.app_database_url)
    _ensure_sqlite_dirs(settings.dbos_system_url)

    async def go() -> tuple[str | None, str]:
        await migrate_app(settings.app_database_url)
        await asyncio.to_thread(migrate_system_database, settings.dbos_system_url)
        return await schema_status(settings.app_database_url)

    try:
        current, head = asyncio.run(go())
    except Exception as exc:  # noqa: BLE001 - any failure is reported in one line
        code = EXIT_UNAVAILABLE if _is_database_error(exc) else EXIT_FAILED
        fail(f"migration of {mask_url(settings.app_database_url)} failed: {first_line(exc)}", code)
    click.echo(f"schema at {current} (head {head}); DBOS system schema ready")


# -------------------------------------------------------------------------------------- users
@cli.group(cls=Group)
def users() -> None:
    """Manage users and their API tokens (in the database, not through a server)."""


def _with_auth(database_url: str | None, data_dir: str | None, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from chaingraph_executor.backends.sql import SqlBackend
    from chaingraph_executor.services.auth import AuthService

    settings = _settings(database_url=database_url, data_dir=data_dir)
    url = settings.app_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    async def go() -> Any:
        async with SqlBackend(url, migrate=True, pool_size=1, max_overflow=0) as backend:
            return await fn(AuthService(backend.users, dev_mode=False))

    try:
        return asyncio.run(go())
    except ExecutorError as exc:
        executor_error(exc)
    except Exception as exc:
        if _is_database_error(exc) or isinstance(exc, OSError):
            fail(f"cannot open the database {mask_url(url)}: {first_line(exc)}", EXIT_UNAVAILABLE)
        raise


@users.command("add")
@click.argument("name")
@click.option(
    "--admin",
    is_flag=True,
    envvar="CHAINGRAPH_ADMIN",
    show_envvar=True,
    help="the user may see and control every execution",
)
@database_options
def users_add(name: str, admin: bool, database_url: str | None, data_dir: str | None) -> None:
    """Add a user and print its token (shown once; only its hash is stored)."""

    async def go(auth: Any) -> Any:
        return await auth.add_user(name, is_admin=admin)

    user, token = _with_auth(database_url, data_dir, go)
    click.echo(f"user {user.name} ({user.id}){' admin' if user.is_admin else ''}")
    click.echo(f"token: {token}")


@users.command("list")
@database_options
def users_list(database_url: str | None, data_dir: str | None) -> None:
    """List users."""

    async def go(auth: Any) -> Any:
        return await auth.list_users()

    found = _with_auth(database_url, data_dir, go)
    if not found:
        click.echo("no users (add one with `chaingraph users add NAME`)")
    for u in found:
        flags = ", ".join(f for f, on in (("admin", u.is_admin), ("revoked", u.revoked)) if on)
        click.echo(f"{u.id}  {u.name}  {u.created_at:%Y-%m-%d %H:%M}  {flags}".rstrip())


@users.command("revoke")
@click.argument("name_or_id")
@database_options
def users_revoke(name_or_id: str, database_url: str | None, data_dir: str | None) -> None:
    """Revoke a user's token."""

    async def go(auth: Any) -> None:
        await auth.revoke(name_or_id)

    _with_auth(database_url, data_dir, go)
    click.echo(f"revoked {name_or_id}")


# -------------------------------------------------------------------------------------- check
@cli.command()
@database_options
def check(database_url: str | None, data_dir: str | None) -> None:
    """Check the configuration, the database, its schema and the workers seen recently.

    Exit code 0 when nothing failed (warnings allowed), 1 otherwise."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    results: list[tuple[str, str, str]] = []
    url = settings.app_database_url
    auth = "dev (everyone is an admin)" if settings.is_dev_auth else "tokens"
    results.append(
        (
            "ok",
            "config",
            f"mode {settings.mode}, database {mask_url(url)}, data dir {settings.data_dir}, auth {auth}",
        )
    )
    results += asyncio.run(_check_database(settings))
    width = max(len(name) for _, name, _ in results)
    for level, name, detail in results:
        click.echo(f"{level:<5} {name:<{width}}  {detail}")
    sys.exit(EXIT_FAILED if any(level == "FAIL" for level, _, _ in results) else EXIT_OK)


async def _check_database(settings: Settings) -> list[tuple[str, str, str]]:
    from chaingraph_executor.backends.sql import SqlBackend, schema_status

    url = settings.app_database_url
    out: list[tuple[str, str, str]] = []
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///"))
        if not await asyncio.to_thread(path.exists):
            out.append(
                (
                    "FAIL",
                    "database",
                    f"{path} does not exist yet: run `chaingraph migrate` or `chaingraph serve`",
                )
            )
            return out
    try:
        current, head = await asyncio.wait_for(schema_status(url), 15)
    except Exception as exc:  # noqa: BLE001 - any failure is reported in one line
        out.append(("FAIL", "database", f"cannot connect to {mask_url(url)}: {first_line(exc)}"))
        return out
    out.append(("ok", "database", f"reachable ({mask_url(url)})"))
    if current is None:
        out.append(("FAIL", "schema", f"not created (head {head}): run `chaingraph migrate`"))
        return out
    if current != head:
        out.append(("FAIL", "schema", f"at {current}, head is {head}: run `chaingraph migrate`"))
        return out
    out.append(("ok", "schema", f"at {current} (head)"))
    async with SqlBackend(url, pool_size=1, max_overflow=0, listen=False) as backend:
        workers = await backend.workers.list()
    now = datetime.now(UTC)
    alive = [w for w in workers if (now - w.heartbeat_at).total_seconds() <= settings.worker_dead_after_s]
    if alive:
        seen = ", ".join(
            f"{w.executor_id} ({(now - w.heartbeat_at).total_seconds():.0f} s ago)" for w in alive
        )
        out.append(("ok", "workers", f"{len(alive)} alive: {seen}"))
    else:
        stale = f" ({len(workers)} silent)" if workers else ""
        out.append(
            (
                "warn",
                "workers",
                f"none seen in the last {settings.worker_dead_after_s:g} s{stale}: executions wait until "
                "one runs (`chaingraph serve` or `chaingraph worker`)",
            )
        )
    return out
