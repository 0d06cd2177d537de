"""Thin adapters to the operating system, each with a Null fallback."""
