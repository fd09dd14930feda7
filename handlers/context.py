"""Typed PTB context: what every handler can reach, without raw ``bot_data["..."]`` strings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.clock import Clock
from bot.config import Config
from bot.models import Customer
from bot.services import Services
from bot.texts import Texts
from storage.campaigns import CampaignStores
from storage.dashboard import DashboardStores
from storage.repositories import MessageLog
from storage.suggestions import CachedModel
from storage.tickets import DeskStores

Awaiting = Literal["timezone"] | None


@dataclass
class StaffChat:
    """What we learned about the staff chat at start (getChat): forum topics or replies."""

    chat_id: int
    is_forum: bool = False


@dataclass(frozen=True)
class Deps:
    config: Config
    services: Services
    texts: Texts
    log: MessageLog
    clock: Clock
    desk: DeskStores
    staff_chat: StaffChat
    campaigns: CampaignStores
    dashboard: DashboardStores


class BotData:
    """PTB instantiates this without arguments; ``build_application`` fills in ``deps``.

    Also what the process keeps between updates: each campaign's sender task and the
    co-purchase model planning, "Show me" and the previews use (see
    ``handlers.campaigns.suggestion_model``).
    """

    def __init__(self) -> None:
        self._deps: Deps | None = None
        self.campaign_senders: dict[int, asyncio.Task[None]] = {}
        self.suggestion_model: CachedModel | None = None
        # Held while the model is checked and rebuilt: callers at the same moment share
        # one build (tens of megabytes each at a million customers) instead of each making one.
        self.suggestion_model_lock = asyncio.Lock()
        # The background rebuild of an out-of-date model, while one runs.
        self.suggestion_refresh: asyncio.Task[None] | None = None

    @property
    def deps(self) -> Deps:
        if self._deps is None:
            raise RuntimeError("BotData.deps used before build_application set it")
        return self._deps

    @deps.setter
    def deps(self, value: Deps) -> None:
        self._deps = value


class ChatState:
    """Per-user state for the update being handled (PTB keeps one per Telegram user)."""

    def __init__(self) -> None:
        self.customer: Customer | None = None
        self.awaiting: Awaiting = None


CareContext = CallbackContext[ExtBot[None], ChatState, dict[object, object], BotData]
CONTEXT_TYPES = ContextTypes(
    context=CallbackContext, bot_data=BotData, user_data=ChatState, chat_data=dict
)
