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
