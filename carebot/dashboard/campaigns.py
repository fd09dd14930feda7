"""Dashboard pages: campaigns (being built)."""

from __future__ import annotations

from carebot.dashboard.app import Routes


def register(routes: Routes) -> None:
    """No pages yet."""
