"""The firmware's version: the one place it is written (status, health and every scan carry it)."""

FW = "0.1.0"
