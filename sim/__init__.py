"""The simulator: a register-level MLX90614, buses, hardware for the host, travellers, posts, faults."""
