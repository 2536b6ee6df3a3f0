"""Test support: fakes, harnesses and process runners for tests and benchmarks. The product (firmware/, gateway/,
sim/) never imports this package (tests/test_layers.py checks it)."""
