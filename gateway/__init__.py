"""The gateway: MQTT in, validation, the authoritative verdict, storage, alerts, fleet, reports."""
