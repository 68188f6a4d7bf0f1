"""Persistence: the metadata database (SQLAlchemy) and the object store (local dir | MinIO)."""
