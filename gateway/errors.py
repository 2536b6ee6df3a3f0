"""The gateway's exceptions: one base, errors by kind. Each message names the cause and the fix."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class StoreError(GatewayError):
    """The store could not be opened, migrated, read or written."""


class UnsupportedDatabase(ConfigError):
    """The database URL names a backend this gateway does not support (yet)."""


class StorageFault(StoreError):
    """The database cannot be written for a reason outside the gateway (disk full, I/O error, read-only file,
    locked by another process): the gateway stops acknowledging, retries with backoff and resumes by itself.
    The message says what is wrong and what to do."""
