"""``carebot shell``: chat with the bot in a terminal, through the local Bot API sandbox.

The real Application runs against the sandbox; each line typed is injected as a message from
a sandbox user, and what the bot sends is printed. Buttons (inline and the menu keyboard) are
numbered; typing the number presses it. Piped stdin works, so sessions can be scripted.

Without a configured staff chat, the shell adds a sandbox staff forum group: what the bot
posts there is shown as "[staff]", and a line starting with "!" is written by a staff
member into the newest ticket's topic ("!Sorry, a new one is on its way", "!/resolve").
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from bot.config import Config
from carebot.runtime import build_application
from carebot.sandbox.server import BotApiSandbox, SandboxUser

DEFAULT_USER_ID = 1001
SHELL_STAFF_CHAT = -1009000000001
SHELL_STAFF = SandboxUser(id=9001, first_name="Sam", language_code="en")
STAFF_PREFIX = "!"
QUIT = {"/quit", "/exit"}
# How long the bot must stay silent before the shell takes the next line.
QUIET_SECONDS = 0.3
REPLY_TIMEOUT_SECONDS = 15.0


@dataclass
class Button:
    label: str
    message_id: int | None = None  # inline buttons: the message they are on
    callback_data: str | None = None


@dataclass
class ShellSession:
    sandbox: BotApiSandbox
    user: SandboxUser
    out: TextIO
    color: bool
    inline: list[Button] = field(default_factory=list)
    menu: list[Button] = field(default_factory=list)
    staff_chat: int | None = None

    @property
    def buttons(self) -> list[Button]:
        return self.inline + self.menu

    async def say(self, line: str) -> None:
        """Send what the user typed (or press the numbered button) and print the replies."""
        after = self.sandbox.seq
        if line.startswith(STAFF_PREFIX) and self.staff_chat is not None:
            if not self._staff_writes(line[len(STAFF_PREFIX) :].strip()):
                return
        elif line.isdigit() and 1 <= int(line) <= len(self.buttons):
            button = self.buttons[int(line) - 1]
            if button.callback_data is not None and button.message_id is not None:
                self.sandbox.press_button(self.user, button.message_id, button.callback_data)
            else:
                self.sandbox.send_text(self.user, button.label)
        else:
            self.sandbox.send_text(self.user, line)
        await self.sandbox.wait_idle(quiet=QUIET_SECONDS, timeout=REPLY_TIMEOUT_SECONDS)
        self.show_events_after(after)

    def _staff_writes(self, text: str) -> bool:
        """A staff member writes into the newest ticket's topic of the sandbox staff chat."""
        assert self.staff_chat is not None
        topics = self.sandbox.topics(self.staff_chat)
        if not topics or not text:
            self._print(
                "(no ticket topic yet: open a complaint or ask for a person first)", dim=True
            )
            return False
        thread = max(int(t["message_thread_id"]) for t in topics)
        self.sandbox.send_text(SHELL_STAFF, text, chat_id=self.staff_chat, thread_id=thread)
        return True

    def show_events_after(self, after: int) -> None:
        for event in self.sandbox.events:
            if event.seq <= after:
                continue
            if self.staff_chat is not None and event.chat_id == self.staff_chat:
                self._show_staff(event.method, event.message)
            elif event.chat_id in (None, self.user.id):
                self._show(event.method, event.message, event.params)
        self._show_buttons()

    def _show_staff(self, method: str, message: dict[str, Any] | None) -> None:
        if message is None or method not in {"sendMessage", "copyMessage", "sendPhoto"}:
            return
        text = message.get("text") or message.get("caption") or "(photo)"
        self._print(f"[staff] {self._format(text)}", dim=True)

    def _show(self, method: str, message: dict[str, Any] | None, params: dict[str, Any]) -> None:
        if method == "answerCallbackQuery":
            if params.get("text"):
                self._print(f"bot (popup): {params['text']}")
            return
        if message is None:
            return
        markup = message.get("reply_markup") or {}
        if method == "editMessageReplyMarkup":
            if not markup.get("inline_keyboard") and any(
                b.message_id == message["message_id"] for b in self.inline
            ):
                self.inline = []
            return
        if method not in {"sendMessage", "editMessageText", "copyMessage", "sendPhoto"}:
            return
        text = message.get("text") or message.get("caption") or ""
        prefix = "bot (edited)" if method == "editMessageText" else "bot"
        self._print(f"{prefix}: {self._format(text)}")
        keyboard = message.get("reply_keyboard") or {}
        if markup.get("inline_keyboard"):
            self.inline = [
                Button(b["text"], message["message_id"], b.get("callback_data"))
                for row in markup["inline_keyboard"]
                for b in row
            ]
        elif method != "editMessageText":
            self.inline = []
        if keyboard.get("keyboard"):
            self.menu = [
                Button(b["text"] if isinstance(b, dict) else str(b))
                for row in keyboard["keyboard"]
                for b in row
            ]
        elif keyboard.get("remove_keyboard"):
            self.menu = []

    def _show_buttons(self) -> None:
        numbered = [f"[{n}] {b.label}" for n, b in enumerate(self.buttons, start=1)]
        if self.inline:
            self._print("   " + "   ".join(numbered[: len(self.inline)]))
        if self.menu:
            self._print("   menu: " + "  ".join(numbered[len(self.inline) :]), dim=True)

    def _format(self, text: str) -> str:
        bold_on, bold_off = ("\033[1m", "\033[0m") if self.color else ("", "")
        text = re.sub(r"</?b>", lambda m: bold_off if m.group().startswith("</") else bold_on, text)
        text = re.sub(r"<[^>]+>", "", text)
        return html.unescape(text).replace("\n", "\n     ")

    def _print(self, line: str, *, dim: bool = False) -> None:
        if dim and self.color:
            line = f"\033[2m{line}\033[0m"
        print(line, file=self.out, flush=True)


async def run_shell(
    config: Config,
    *,
    user_id: int | None,
    known_users: dict[int, str],
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> None:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty()
    async with BotApiSandbox() as sandbox:
        staff_chat = config.staff.chat_id or None
        if staff_chat is None:
            staff_chat = SHELL_STAFF_CHAT
            sandbox.add_group(staff_chat, "Staff (sandbox)", forum=True)
            config = replace(config, staff=replace(config.staff, chat_id=staff_chat))
        care = build_application(config, bot_api_url=sandbox.base_url, token=sandbox.bot_token)
        # The database outlives the sandbox: go on numbering where the last session stopped.
        sandbox.continue_ids_after(care.repos.messages.highest_telegram_id())
        uid = user_id or (min(known_users) if known_users else DEFAULT_USER_ID)
        known = care.repos.customers.by_telegram_user(uid)
        user = SandboxUser(
            id=uid,
            first_name=known.first_name if known else known_users.get(uid, "Guest"),
            language_code=(known.language if known and known.language else "en"),
        )
        async with care.running():
            session = ShellSession(sandbox, user, out, color=out.isatty(), staff_chat=staff_chat)
            session._print(
                f"carebot shell: you are {user.first_name} (Telegram user {user.id}) chatting "
                f"with {config.shop.name}. Type a message, or a number to press a button; "
                f'"{STAFF_PREFIX}text" answers the newest ticket as staff; /quit to leave.',
                dim=True,
            )
            await session.say("/start")
            while True:
                if interactive:
                    print("> ", end="", file=out, flush=True)
                line = await asyncio.to_thread(stdin.readline)
                if not line:
                    break
                line = line.strip()
                if not interactive and line:
                    print(f"> {line}", file=out, flush=True)
                if line in QUIT:
                    break
                if line:
                    await session.say(line)
