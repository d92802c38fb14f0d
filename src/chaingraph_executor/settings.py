"""The one settings object. Environment variables use the prefix ``CHAINGRAPH_`` (``.env`` is read
too); command-line flags override them. Build it once, in the CLI, and pass it down."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["embedded", "api", "worker"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAINGRAPH_", env_file=".env", extra="ignore")

    mode: Mode = Field("embedded", description="embedded (API + worker, SQLite), api, or worker")
    data_dir: Path = Field(Path(".chaingraph"), description="where the embedded mode keeps its files")
    database_url: str | None = Field(
        None, description="application database; default sqlite:///<data_dir>/chaingraph.db"
    )
    dbos_database_url: str | None = Field(
        None,
        description="DBOS system database; default: <data_dir>/dbos.sqlite on SQLite, the "
        "application database on PostgreSQL",
    )
    db_pool_size: int = Field(10, ge=1, description="connections kept open to the application database")
    db_driver_pool_size: int = Field(
        5, ge=1, description="PostgreSQL connections kept open for the hot one-statement paths"
    )
    db_max_overflow: int = Field(
        0, ge=0, description="extra connections under load, each closed after use (a new session each time)"
    )
    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(4021, ge=0, le=65535, description="port of the API (HTTP and WebSocket)")
    dev_auth: bool | None = Field(
        None, description="everyone is an admin; default true in embedded mode, false otherwise"
    )
    node_modules: list[str] = Field(
        default_factory=list,
        description="Python modules with extra node types (comma-separated list in JSON)",
    )
    start_timeout_s: float = Field(300.0, gt=0, description="how long a created execution waits for start")
    worker_concurrency: int = Field(10, ge=1, description="flows one worker runs at once")
    executor_id: str | None = Field(
        None, description="stable unique id of this worker; default <hostname>-<pid> (unique, not stable)"
    )
    application_version: str = Field("chaingraph-executor-3", description="pinned DBOS application version")
    heartbeat_interval_s: float = Field(2.0, gt=0, description="how often a worker reports it is alive")
    worker_dead_after_s: float = Field(10.0, gt=0, description="silence after which a worker counts as dead")
    queue_poll_s: float = Field(0.05, gt=0, description="DBOS queue polling interval (fallback only)")
    control_poll_s: float = Field(1.0, gt=0, description="control channel poll fallback")
    event_poll_s: float = Field(1.0, gt=0, description="event subscription poll fallback")
    event_batch_size: int = Field(2000, ge=1, description="events written per transaction at most")
    max_depth: int = Field(100, ge=1, le=100, description="deepest allowed child execution")
    max_request_bytes: int = Field(1_048_576, ge=1024, description="largest accepted HTTP body")
    max_batch_size: int = Field(50, ge=1, description="most calls in one HTTP batch")
    max_subscriptions_per_connection: int = Field(100, ge=1, description="per WebSocket connection")
    max_ws_message_bytes: int = Field(1_048_576, ge=1024, description="largest accepted WebSocket message")
    shutdown_grace_s: float = Field(
        2.0, ge=0, description="how long a worker lets running flows finish on stop"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["console", "json"] = Field("console", description="console or json")

    @property
    def app_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'chaingraph.db'}"

    @property
    def dbos_system_url(self) -> str:
        if self.dbos_database_url:
            return self.dbos_database_url
        url = self.app_database_url
        if url.startswith("sqlite"):
            return f"sqlite:///{self.data_dir / 'dbos.sqlite'}"
        return url

    @property
    def is_dev_auth(self) -> bool:
        return self.dev_auth if self.dev_auth is not None else self.mode == "embedded"

    @property
    def worker_id(self) -> str:
        return self.executor_id or f"{socket.gethostname()}-{os.getpid()}"
