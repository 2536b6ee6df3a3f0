"""The gateway: MQTT in, validation, the authoritative verdict, storage, alerts, fleet, reports."""

import firmware

# The product's version is written once, in firmware/version.py (the node reports it as `fw`; pyproject.toml
# reads it too), and read through the one firmware loader.
__version__: str = firmware.module("version").FW
