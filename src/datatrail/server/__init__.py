"""The datatrail server: a FastAPI application over one store (``datatrail serve``)."""

from __future__ import annotations

from datatrail.server.app import create_app

__all__ = ["create_app"]
