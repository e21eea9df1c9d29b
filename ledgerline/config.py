"""Settings, in one place: command-line flags, then environment, then config file, then defaults.

Environment variables
    ``DATABASE_URL``              an external PostgreSQL, as its schema owner (otherwise the
                                  embedded server); used for migrations and admin commands
    ``LEDGERLINE_APP_DATABASE_URL``  the runtime's own login (owns nothing, may not rewrite the
                                  log); derived from the owner's when unset
    ``LEDGERLINE_DATA_DIR``       where the embedded server and local state live (``./.ledgerline``)
    ``LEDGERLINE_CONFIG``         a TOML file with any of the keys below
    ``LEDGERLINE_HOST`` / ``LEDGERLINE_PORT``   where ``serve`` listens (127.0.0.1:8000)
    ``KAFKA_BOOTSTRAP_SERVERS``   Kafka brokers; when set, projections run in Kafka workers

Config file keys: ``database_url``, ``app_database_url``, ``data_dir``, ``host``, ``port``,
``kafka_bootstrap_servers``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerline.errors import LedgerlineError
from ledgerline.streaming import STREAMING_VARIABLES

ENV_DATABASE_URL = "DATABASE_URL"
ENV_APP_DATABASE_URL = "LEDGERLINE_APP_DATABASE_URL"
ENV_DATA_DIR = "LEDGERLINE_DATA_DIR"
ENV_CONFIG = "LEDGERLINE_CONFIG"
ENV_HOST = "LEDGERLINE_HOST"
ENV_PORT = "LEDGERLINE_PORT"
ENV_KAFKA = "KAFKA_BOOTSTRAP_SERVERS"
ENV_SIGNING_KEY = "LEDGERLINE_SIGNING_KEY"
ENV_LOG_ORIGIN = "LEDGERLINE_LOG_ORIGIN"
ENV_MAX_BODY = "LEDGERLINE_MAX_BODY_BYTES"
ENV_MAX_BATCH_BODY = "LEDGERLINE_MAX_BATCH_BODY_BYTES"
ENV_METRICS_TOKEN = "LEDGERLINE_METRICS_TOKEN"  # noqa: S105 - the variable's name
ENV_CACHE_MAX_MB = "LEDGERLINE_CACHE_MAX_MB"
ENV_SNAPSHOT_EVERY = "LEDGERLINE_SNAPSHOT_EVERY"
ENVIRONMENT_VARIABLES = (
    ENV_DATABASE_URL,
    ENV_APP_DATABASE_URL,
    ENV_DATA_DIR,
    ENV_CONFIG,
    ENV_HOST,
    ENV_PORT,
    ENV_KAFKA,
    ENV_SIGNING_KEY,
    ENV_LOG_ORIGIN,
    ENV_MAX_BODY,
    ENV_MAX_BATCH_BODY,
    ENV_METRICS_TOKEN,
    ENV_CACHE_MAX_MB,
    ENV_SNAPSHOT_EVERY,
    "LEDGERLINE_LOG_LEVEL",
    "LEDGERLINE_METRICS_PORT",
    "LEDGERLINE_LOG_FORMAT",
    *STREAMING_VARIABLES,
)

_KEYS = {
    "database_url",
    "app_database_url",
    "data_dir",
    "host",
    "port",
    "kafka_bootstrap_servers",
    "max_body_bytes",
    "max_batch_body_bytes",
    "metrics_token",
    "cache_max_mb",
    "snapshot_every",
}


class ConfigError(LedgerlineError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    app_database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    kafka_bootstrap_servers: str | None = None
    max_body_bytes: int | None = None
    max_batch_body_bytes: int | None = None
    metrics_token: str | None = None
    cache_max_mb: int = 512
    snapshot_every: int = 1000

    def as_environment(self) -> dict[str, str]:
        """These settings as the environment variables that give them back (for workers)."""
        from replay.log import ENV_SIGNING_KEY, signing_key_path

        env = {
            ENV_DATA_DIR: str(self.data_dir.resolve()),
            ENV_HOST: self.host,
            ENV_PORT: str(self.port),
            ENV_CACHE_MAX_MB: str(self.cache_max_mb),
            ENV_SNAPSHOT_EVERY: str(self.snapshot_every),
            ENV_SIGNING_KEY: str(signing_key_path(self.data_dir).resolve()),
        }
        optional = {  # not DATABASE_URL: workers log in as the runtime, never as the owner
            ENV_APP_DATABASE_URL: self.app_database_url,
            ENV_KAFKA: self.kafka_bootstrap_servers,
            ENV_MAX_BODY: self.max_body_bytes,
            ENV_MAX_BATCH_BODY: self.max_batch_body_bytes,
            ENV_METRICS_TOKEN: self.metrics_token,
        }
        env.update({k: str(v) for k, v in optional.items() if v is not None})
        return env

    def api_options(self) -> dict[str, object]:
        """What the HTTP app takes from the settings (body limits, the metrics token)."""
        return {
            "max_body_bytes": self.max_body_bytes,
            "max_batch_body_bytes": self.max_batch_body_bytes,
            "metrics_token": self.metrics_token,
        }


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(_KEYS))}"
        )
    return data


def _port(value: Any, source: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{source}: port {port} is outside 1-65535")
    return port


def _positive_int(value: Any, key: str, least: int = 1) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a whole number") from None
    if number < least:
        raise ConfigError(f"{key}: {number} must be at least {least}")
    return number


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings; ``flags`` holds command-line values (``None`` when not given)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    config_path = flags.get("config") or env.get(ENV_CONFIG)
    file_values = _read_config_file(Path(config_path)) if config_path else {}

    def pick(key: str, env_key: str | None) -> Any:
        if key in flags:
            return flags[key]
        if env_key and env.get(env_key):
            return env[env_key]
        return file_values.get(key)

    for key in ("database_url", "app_database_url", "data_dir", "host", "kafka_bootstrap_servers"):
        value = file_values.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"config file {config_path}: {key} must be a string")
    database_url = pick("database_url", ENV_DATABASE_URL)
    app_database_url = pick("app_database_url", ENV_APP_DATABASE_URL)
    data_dir = Path(pick("data_dir", ENV_DATA_DIR) or ".ledgerline")
    host = pick("host", ENV_HOST) or "127.0.0.1"
    port_value = pick("port", ENV_PORT)
    port = _port(port_value, "port") if port_value is not None else 8000
    kafka = pick("kafka_bootstrap_servers", ENV_KAFKA)
    limits = {
        key: _positive_int(pick(key, env_key), key)
        for key, env_key in (
            ("max_body_bytes", ENV_MAX_BODY),
            ("max_batch_body_bytes", ENV_MAX_BATCH_BODY),
            ("cache_max_mb", ENV_CACHE_MAX_MB),
        )
    }
    snapshot_every = _positive_int(pick("snapshot_every", ENV_SNAPSHOT_EVERY), "snapshot_every", 0)
    metrics_token = pick("metrics_token", ENV_METRICS_TOKEN)
    return Settings(
        database_url=database_url or None,
        app_database_url=app_database_url or None,
        data_dir=data_dir,
        host=str(host),
        port=port,
        kafka_bootstrap_servers=kafka or None,
        max_body_bytes=limits["max_body_bytes"],
        max_batch_body_bytes=limits["max_batch_body_bytes"],
        metrics_token=str(metrics_token) if metrics_token else None,
        cache_max_mb=limits["cache_max_mb"] or 512,
        snapshot_every=1000 if snapshot_every is None else snapshot_every,
    )
