"""Numbered schema migrations (NNNN_name.sql), applied in order by gateway/store/migrate.py."""
