"""Target recipes and board files (start-up code, linker script, harness) as package data."""
