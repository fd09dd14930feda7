"""A local Telegram Bot API sandbox for end-to-end tests, benchmarks and ``carebot shell``."""

from carebot.sandbox.server import (
    DEFAULT_BOT_TOKEN,
    MESSAGE_METHODS,
    SANDBOX_KEY,
    SEND_LIKE_METHODS,
    BotApiSandbox,
    FaultKind,
    SandboxEvent,
    SandboxUser,
)

__all__ = [
    "DEFAULT_BOT_TOKEN",
    "MESSAGE_METHODS",
    "SANDBOX_KEY",
    "SEND_LIKE_METHODS",
    "BotApiSandbox",
    "FaultKind",
    "SandboxEvent",
    "SandboxUser",
]
