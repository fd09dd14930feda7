"""A local Telegram Bot API sandbox built on aiohttp.

The sandbox speaks the subset of the Bot API that carebot uses, closely enough that
python-telegram-bot cannot tell it from the real thing, and adds a control API (Python,
in-process, and HTTP under ``/control``) to inject user updates and to inspect what the
bot did.

Conventions:

* Messages are stored in Telegram's JSON shape plus a few sandbox-only keys:
  ``text``/``caption`` hold the *raw* string the bot sent (e.g. with HTML tags),
  ``parse_mode`` the parse mode it used, ``plain_text``/``plain_caption`` the text after
  entity parsing (what the user sees) and ``reply_keyboard`` a non-inline reply markup
  (custom keyboard, remove_keyboard, force_reply).  Telegram itself never echoes those, so
  everything sent to the bot (API results, updates) is converted back to the exact
  Telegram shape: ``text`` is the parsed text and sandbox-only keys are removed.
* Stored message dicts are never mutated in place: an edit replaces the dict, so snapshots
  held by :class:`SandboxEvent` stay valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import random
import re
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import TracebackType
from typing import Any, Final, Literal, Self

import aiohttp
from aiohttp import web

JSONDict = dict[str, Any]
FaultKind = Literal["429", "500", "timeout", "403"]

DEFAULT_BOT_TOKEN: Final = "123456:SANDBOX"
# Counted in UTF-16 code units, like entity offsets: the stricter reading of "characters", so
# a bot that passes here never sends Telegram an emoji-heavy text it refuses.
MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64

#: Bot API methods whose successful calls create a new message in the target chat.
MESSAGE_METHODS: Final = frozenset({"sendMessage", "sendPhoto", "copyMessage", "forwardMessage"})
#: Methods affected by a fault when ``set_fault(methods=None)``.
SEND_LIKE_METHODS: Final = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "copyMessage",
        "forwardMessage",
        "sendChatAction",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "deleteMessage",
        "answerCallbackQuery",
        "createForumTopic",
        "editForumTopic",
        "closeForumTopic",
        "reopenForumTopic",
        "deleteForumTopic",
    }
)
#: Methods that do not change anything; they produce no :class:`SandboxEvent`.
READ_ONLY_METHODS: Final = frozenset(
    {"getMe", "getUpdates", "getWebhookInfo", "getMyCommands", "getChat"}
)

_FAULT_KINDS: Final = frozenset({"429", "500", "timeout", "403"})
_TOKEN_RE: Final = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,100}")
_COMMAND_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,32})?(?![A-Za-z0-9_@])")
_BOT_COMMAND_NAME_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LANGUAGE_CODE_RE: Final = re.compile(r"(?:[a-z]{2})?")

_INT_PARAMS: Final = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "message_thread_id",
        "user_id",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
        "icon_color",
        "until_date",
    }
)
_CHAT_ID_PARAMS: Final = frozenset({"chat_id", "from_chat_id"})
_FLOAT_PARAMS: Final = frozenset({"latitude", "longitude"})
_BOOL_PARAMS: Final = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "show_caption_above_media",
        "allow_paid_broadcast",
        "revoke",
    }
)
_JSON_PARAMS: Final = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
    }
)

_DEFAULT_EXCLUDED_UPDATES: Final = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)
_TOPIC_COLORS: Final = frozenset({7322096, 16766590, 13338331, 9367192, 16749490, 16478047})
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_INLINE_BUTTON_ACTIONS: Final = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_SCOPE_TYPES: Final = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_FORUM_SERVICE_KEYS: Final = frozenset(
    {"forum_topic_created", "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened"}
)
#: Keys the sandbox adds to stored messages; they are stripped before reaching the bot.
_SANDBOX_KEYS: Final = frozenset({"plain_text", "plain_caption", "parse_mode", "reply_keyboard"})
_COPYABLE_KEYS: Final = (
    "text",
    "plain_text",
    "entities",
    "parse_mode",
    "photo",
    "caption",
    "plain_caption",
    "caption_entities",
    "sticker",
    "location",
)
_NOT_MODIFIED: Final = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID: Final = "query is too old and response timeout expired or query ID is invalid"
_WEBHOOK_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT: Final = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class SandboxUser:
    """A simulated Telegram user."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"

    def to_dict(self) -> JSONDict:
        """The user as a Bot API ``User`` object."""
        data: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name is not None:
            data["last_name"] = self.last_name
        if self.username is not None:
            data["username"] = self.username
        if self.language_code is not None:
            data["language_code"] = self.language_code
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxUser:
        """Build a user from a JSON object (as accepted by the HTTP control API)."""
        user_id = data["id"]
        first_name = data["first_name"]
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise TypeError("user.id must be an integer")
        if not isinstance(first_name, str) or not first_name:
            raise TypeError("user.first_name must be a non-empty string")
        optional: dict[str, str | None] = {}
        for key in ("last_name", "username", "language_code"):
            if key in data:
                value = data[key]
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"user.{key} must be a string or null")
                optional[key] = value
        return cls(
            id=user_id,
            first_name=first_name,
            last_name=optional.get("last_name"),
            username=optional.get("username"),
            language_code=optional.get("language_code", "en"),
        )


@dataclass(frozen=True)
class SandboxEvent:
    """One successful, state-changing bot API call (``getMe``/``getUpdates``... excluded)."""

    seq: int
    method: str
    chat_id: int | None
    message: JSONDict | None
    params: JSONDict
    time: float

    def to_dict(self) -> JSONDict:
        return {
            "seq": self.seq,
            "method": self.method,
            "chat_id": self.chat_id,
            "message": self.message,
            "params": self.params,
            "time": self.time,
        }


SANDBOX_KEY: Final = web.AppKey["BotApiSandbox"]("carebot_sandbox")


# --------------------------------------------------------------------------- internals


class _ApiError(Exception):
    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body

    def response(self) -> web.Response:
        return web.json_response(self.payload(), status=self.code)


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


_FORBIDDEN_BLOCKED: Final = "Forbidden: bot was blocked by the user"


@dataclass(slots=True)
class _Done:
    """A handler result that also describes the event to record."""

    result: Any
    chat_id: int | None = None
    message: JSONDict | None = None


@dataclass(eq=False)
class _Topic:
    info: JSONDict
    creation: JSONDict
    closed: bool = False


@dataclass(eq=False)
class _Chat:
    info: JSONDict
    messages: dict[int, JSONDict] = field(default_factory=dict)
    next_message_id: int = 1
    topics: dict[int, _Topic] = field(default_factory=dict)
    message_events: list[SandboxEvent] = field(default_factory=list)
    reply_keyboard: JSONDict | None = None

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def is_private(self) -> bool:
        return bool(self.info["type"] == "private")

    @property
    def is_forum(self) -> bool:
        return bool(self.info.get("is_forum"))


@dataclass(eq=False)
class _Fault:
    kind: str
    methods: frozenset[str] | None
    rate: float
    remaining: int | None
    retry_after: int
    delay: float
    chat_id: int | None
    apply: bool

    def error(self) -> _ApiError:
        if self.kind == "429":
            return _ApiError(
                429,
                f"Too Many Requests: retry after {self.retry_after}",
                retry_after=self.retry_after,
            )
        if self.kind == "403":
            return _ApiError(403, _FORBIDDEN_BLOCKED)
        return _ApiError(500, "Internal Server Error")


@dataclass(eq=False)
class _Callback:
    chat_id: int
    message_id: int
    data: str | None
    answer: JSONDict | None = None


class _Pulse:
    """A broadcast signal: every ``fire()`` wakes everybody currently waiting."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float | None) -> None:
        event = self._event
        if seconds is None:
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _wire(message: JSONDict) -> JSONDict:
    """Convert a stored message into exactly what Telegram would send to the bot."""
    out = {key: value for key, value in message.items() if key not in _SANDBOX_KEYS}
    if "plain_text" in message:
        out["text"] = message["plain_text"]
    if "plain_caption" in message:
        out["caption"] = message["plain_caption"]
    reply = out.get("reply_to_message")
    if isinstance(reply, dict):
        out["reply_to_message"] = _wire(reply)
    return out


def _reply_snapshot(message: JSONDict) -> JSONDict:
    # Telegram: a replied-to message never carries its own reply_to_message.
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# --------------------------------------------------------------------------- formatting


class _ParseError(Exception):
    pass


class _TextBuilder:
    __slots__ = ("entities", "parts", "pos")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0  # in UTF-16 code units, like Telegram's entity offsets
        self.entities: list[JSONDict] = []

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.pos += _utf16_len(text)

    def entity(self, kind: str, start: int, end: int | None = None, **extra: Any) -> None:
        length = (self.pos if end is None else end) - start
        if length > 0:
            self.entities.append({"type": kind, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[JSONDict]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


_HTML_TAGS: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class _HtmlEntityParser(HTMLParser):
    """Telegram's HTML parse mode: strips supported tags into entities, rejects the rest."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._line_starts = [0]
        self._line_starts.extend(i + 1 for i, ch in enumerate(source) if ch == "\n")
        self._builder = _TextBuilder()
        self._stack: list[tuple[str, int, JSONDict | None]] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return _byte_offset(self._source, self._line_starts[line - 1] + column)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _HTML_TAGS.get(tag)
        attributes = {name: value or "" for name, value in attrs}
        if kind is None or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise _ParseError(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')
        entity: JSONDict | None = {"type": kind}
        if tag == "a":
            href = attributes.get("href", "")
            entity = {"type": kind, "url": href} if href else None
        elif tag == "tg-emoji":
            emoji_id = attributes.get("emoji-id", "")
            if not emoji_id.isdigit():
                raise _ParseError(
                    f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {self._offset()}'
                )
            entity = {"type": kind, "custom_emoji_id": emoji_id}
        elif tag == "blockquote" and "expandable" in attributes:
            entity = {"type": "expandable_blockquote"}
        elif tag == "code" and self._stack and self._stack[-1][0] == "pre":
            language = attributes.get("class", "")
            pre_entity = self._stack[-1][2]
            if language.startswith("language-") and pre_entity is not None:
                pre_entity["language"] = language.removeprefix("language-")
        self._stack.append((tag, self._builder.pos, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self._stack:
            raise _ParseError(f"Unexpected end tag at byte offset {self._offset()}")
        open_tag, start, entity = self._stack[-1]
        if open_tag != tag:
            raise _ParseError(
                f'Unmatched end tag at byte offset {self._offset()}, expected "</{open_tag}>", '
                f'found "</{tag}>"'
            )
        self._stack.pop()
        if entity is not None:
            kind = entity.pop("type")
            self._builder.entity(kind, start, **entity)

    def handle_data(self, data: str) -> None:
        self._builder.add(data)

    def parse(self) -> tuple[str, list[JSONDict]]:
        self.feed(self._source)
        self.close()
        if self._stack:
            raise _ParseError(
                f'Can\'t find end tag corresponding to start tag "{self._stack[-1][0]}"'
            )
        return self._builder.result()


_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
_ENTITY_NAMES: Final = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "code": "Code",
    "pre": "PreCode",
}
_CUSTOM_EMOJI_URL_RE: Final = re.compile(r"tg://emoji\?id=([0-9]+)")


def _find_unescaped(source: str, token: str, start: int) -> int:
    index = start
    while index < len(source):
        if source[index] == "\\":
            index += 2
        elif source.startswith(token, index):
            return index
        else:
            index += 1
    return -1


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


class _MarkdownV2Parser:
    """Telegram's MarkdownV2: strict about reserved characters, like the real server."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.out = _TextBuilder()
        self.stack: list[tuple[str, int, int]] = []  # (kind, utf16 start, source index)
        self.quote: tuple[str, int] | None = None
        self.i = 0

    def _fail_unclosed(self, kind: str, index: int) -> _ParseError:
        name = _ENTITY_NAMES.get(kind, kind)
        return _ParseError(
            f"Can't find end of {name} entity at byte offset {_byte_offset(self.src, index)}"
        )

    def _toggle(self, kind: str, width: int) -> None:
        if self.stack and self.stack[-1][0] == kind:
            _, start, _ = self.stack.pop()
            self.out.entity(kind, start)
        else:
            for open_kind, _, _ in self.stack:
                if open_kind == kind:
                    raise self._fail_unclosed(self.stack[-1][0], self.stack[-1][2])
            self.stack.append((kind, self.out.pos, self.i))
        self.i += width

    def _code(self) -> None:
        src, i = self.src, self.i
        if src.startswith("```", i):
            end = _find_unescaped(src, "```", i + 3)
            if end == -1:
                raise self._fail_unclosed("pre", i)
            body = src[i + 3 : end]
            language: str | None = None
            newline = body.find("\n")
            if newline != -1 and not any(ch.isspace() for ch in body[:newline]):
                language = body[:newline] or None
                body = body[newline + 1 :]
            start = self.out.pos
            self.out.add(_unescape(body))
            if language:
                self.out.entity("pre", start, language=language)
            else:
                self.out.entity("pre", start)
            self.i = end + 3
        else:
            end = _find_unescaped(src, "`", i + 1)
            if end == -1:
                raise self._fail_unclosed("code", i)
            start = self.out.pos
            self.out.add(_unescape(src[i + 1 : end]))
            self.out.entity("code", start)
            self.i = end + 1

    def _close_link(self) -> None:
        src, i = self.src, self.i
        if not self.stack or self.stack[-1][0] not in ("text_link", "custom_emoji"):
            raise _reserved("]")
        if not src.startswith("(", i + 1):
            raise _reserved("]")
        end = _find_unescaped(src, ")", i + 2)
        if end == -1:
            raise _ParseError(f"Can't find end of a URL at byte offset {_byte_offset(src, i + 1)}")
        url = _unescape(src[i + 2 : end])
        kind, start, _ = self.stack.pop()
        if kind == "custom_emoji":
            match = _CUSTOM_EMOJI_URL_RE.fullmatch(url)
            if match is None:
                raise _ParseError("Custom emoji entity must contain a tg://emoji URL")
            self.out.entity(kind, start, custom_emoji_id=match.group(1))
        else:
            self.out.entity(kind, start, url=url)
        self.i = end + 1

    def _line_start(self) -> bool:
        """Handle block quote markers at the start of a line; True if a marker was eaten."""
        src, i = self.src, self.i
        if src.startswith("**>", i) or src.startswith(">", i):
            if self.quote is None:
                kind = "expandable_blockquote" if src[i] == "*" else "blockquote"
                self.quote = (kind, self.out.pos)
            self.i += 3 if src[i] == "*" else 1
            return True
        if self.quote is not None:
            kind, start = self.quote
            self.out.entity(kind, start, self.out.pos - 1)  # exclude the line break
            self.quote = None
        return False

    def parse(self) -> tuple[str, list[JSONDict]]:
        src = self.src
        at_line_start = True
        while self.i < len(src):
            if at_line_start:
                at_line_start = False
                if self._line_start():
                    continue
            i = self.i
            ch = src[i]
            if ch == "\n":
                self.out.add(ch)
                at_line_start = True
                self.i += 1
            elif ch == "\\":
                if i + 1 < len(src) and 0 < ord(src[i + 1]) < 127:
                    self.out.add(src[i + 1])
                    self.i += 2
                else:
                    raise _reserved("\\")
            elif ch == "`":
                self._code()
            elif ch == "*":
                self._toggle("bold", 1)
            elif ch == "_":
                if src.startswith("__", i):
                    self._toggle("underline", 2)
                else:
                    self._toggle("italic", 1)
            elif ch == "~":
                self._toggle("strikethrough", 1)
            elif ch == "|" and src.startswith("||", i):
                at_end_of_line = i + 2 == len(src) or src[i + 2] == "\n"
                quote = self.quote
                if quote is not None and quote[0] == "expandable_blockquote" and at_end_of_line:
                    self.out.entity(quote[0], quote[1])
                    self.quote = None
                    self.i += 2
                else:
                    self._toggle("spoiler", 2)
            elif ch == "[":
                self.stack.append(("text_link", self.out.pos, i))
                self.i += 1
            elif ch == "!" and src.startswith("![", i):
                self.stack.append(("custom_emoji", self.out.pos, i))
                self.i += 2
            elif ch == "]":
                self._close_link()
            elif ch in _MDV2_RESERVED:
                raise _reserved(ch)
            else:
                self.out.add(ch)
                self.i += 1
        if self.stack:
            kind, _, index = self.stack[-1]
            raise self._fail_unclosed(kind, index)
        if self.quote is not None:
            self.out.entity(self.quote[0], self.quote[1])
        return self.out.result()


def _reserved(ch: str) -> _ParseError:
    return _ParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def _parse_markdown_legacy(source: str) -> tuple[str, list[JSONDict]]:
    """Telegram's legacy ``Markdown`` parse mode (no nesting, few special characters)."""
    out = _TextBuilder()
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source) and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
            continue
        if ch in "*_`" or ch == "[":
            unclosed = _ParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(source, i)}"
            )
            start = out.pos
            if ch == "`" and source.startswith("```", i):
                end = source.find("```", i + 3)
                if end == -1:
                    raise unclosed
                body = source[i + 3 : end]
                language: str | None = None
                newline = body.find("\n")
                if newline != -1 and not any(c.isspace() for c in body[:newline]):
                    language = body[:newline] or None
                    body = body[newline + 1 :]
                out.add(body)
                if language:
                    out.entity("pre", start, language=language)
                else:
                    out.entity("pre", start)
                i = end + 3
            elif ch == "[":
                middle = source.find("](", i + 1)
                end = source.find(")", middle + 2) if middle != -1 else -1
                if end == -1:
                    raise unclosed
                out.add(source[i + 1 : middle])
                out.entity("text_link", start, url=source[middle + 2 : end])
                i = end + 1
            else:
                end = source.find(ch, i + 1)
                if end == -1:
                    raise unclosed
                out.add(source[i + 1 : end])
                out.entity({"*": "bold", "_": "italic", "`": "code"}[ch], start)
                i = end + 1
            continue
        out.add(ch)
        i += 1
    return out.result()


def _parse_formatted(text: str, parse_mode: str) -> tuple[str, list[JSONDict]]:
    if parse_mode == "HTML":
        return _HtmlEntityParser(text).parse()
    if parse_mode == "MarkdownV2":
        return _MarkdownV2Parser(text).parse()
    return _parse_markdown_legacy(text)


_PARSE_MODES: Final = {"html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}


def _command_entities(text: str) -> list[JSONDict]:
    match = _COMMAND_RE.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group())}]


# --------------------------------------------------------------------------- parameters


def _coerce(key: str, value: Any) -> Any:
    """Turn a form value (Bot API style: non-strings JSON-encoded) into a Python value."""
    if isinstance(value, str):
        if key in _JSON_PARAMS:
            try:
                return json.loads(value)
            except ValueError:
                raise _bad(f"can't parse {key} JSON object") from None
        if key in _INT_PARAMS:
            try:
                return int(value.strip())
            except ValueError:
                if key in _CHAT_ID_PARAMS:
                    return value  # an @username; resolved (or not) later
                raise _bad(f"invalid {key} specified") from None
        if key in _FLOAT_PARAMS:
            try:
                return float(value)
            except ValueError:
                raise _bad(f"invalid {key} specified") from None
        if key in _BOOL_PARAMS:
            lowered = value.strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0", ""):
                return False
            raise _bad(f"invalid {key} specified")
        return value
    if key in _INT_PARAMS and isinstance(value, float) and value.is_integer():
        return int(value)
    if key in _INT_PARAMS and (isinstance(value, bool) or not isinstance(value, int | None)):
        raise _bad(f"invalid {key} specified")
    return value


async def _read_params(request: web.Request) -> JSONDict:
    raw: JSONDict = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise _bad("can't parse JSON encoded request")
            raw.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    value.file.seek(0, 2)
                    raw[key] = {"upload": value.filename, "size": value.file.tell()}
                else:
                    raw[key] = value
    return {key: _coerce(key, value) for key, value in raw.items()}


def _parse_reply_markup(raw: Any) -> tuple[JSONDict | None, JSONDict | None]:
    """Validate a reply_markup; returns (inline markup, other keyboard markup)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        rows = raw["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad("can't parse inline keyboard markup JSON object")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad("can't parse inline keyboard button: Text must be non-empty")
                if not button["text"]:
                    raise _bad("can't parse inline keyboard button: Text must be non-empty")
                actions = _INLINE_BUTTON_ACTIONS.intersection(button)
                if not actions:
                    raise _bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not (
                        0 < len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                    ):
                        raise _bad("BUTTON_DATA_INVALID")
                if "url" in button and "://" not in str(button["url"]):
                    raise _bad("BUTTON_URL_INVALID")
        return {"inline_keyboard": rows}, None
    if "keyboard" in raw:
        rows = raw["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad("can't parse keyboard markup JSON object")
        return None, raw
    if raw.get("remove_keyboard") is True or raw.get("force_reply") is True:
        return None, raw
    raise _bad("can't parse reply keyboard markup JSON object")


# --------------------------------------------------------------------------- the sandbox


_Handler = Callable[[JSONDict], Any]


class BotApiSandbox:
    """A fake Telegram Bot API server plus a control API for tests, benchmarks and the shell.

    Everything runs on the caller's event loop; the Python control API is synchronous
    except for the ``wait_*`` helpers.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        seed: int = 0,
        bot_username: str = "carebot_sandbox_bot",
        bot_first_name: str = "Carebot Sandbox",
    ) -> None:
        if not _TOKEN_RE.fullmatch(bot_token):
            raise ValueError(f"malformed bot token: {bot_token!r}")
        self.host = host
        self.port = port
        self.bot_token = bot_token
        self.bot_id = int(bot_token.split(":", 1)[0])
        self.bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self._me: JSONDict = {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
            "allows_users_to_create_topics": False,
        }
        #: How often a failed webhook delivery is retried, and the first backoff (doubles).
        self.webhook_retries = 3
        self.webhook_backoff = 0.05
        #: Set by whoever runs the bot in the same process: True while it still works on an
        #: update it fetched. wait_idle waits for it too, since a bot busy with its database
        #: makes no API call and would otherwise look idle on a loaded machine.
        self.bot_busy: Callable[[], bool] | None = None
        self._rng = random.Random(seed)
        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._m_get_me,
                "getUpdates": self._m_get_updates,
                "sendMessage": self._m_send_message,
                "editMessageText": self._m_edit_message_text,
                "editMessageCaption": self._m_edit_message_caption,
                "editMessageReplyMarkup": self._m_edit_message_reply_markup,
                "deleteMessage": self._m_delete_message,
                "answerCallbackQuery": self._m_answer_callback_query,
                "copyMessage": self._m_copy_message,
                "forwardMessage": self._m_forward_message,
                "sendChatAction": self._m_send_chat_action,
                "sendPhoto": self._m_send_photo,
                "setMyCommands": self._m_set_my_commands,
                "getMyCommands": self._m_get_my_commands,
                "deleteMyCommands": self._m_delete_my_commands,
                "createForumTopic": self._m_create_forum_topic,
                "editForumTopic": self._m_edit_forum_topic,
                "closeForumTopic": self._m_close_forum_topic,
                "reopenForumTopic": self._m_reopen_forum_topic,
                "deleteForumTopic": self._m_delete_forum_topic,
                "setWebhook": self._m_set_webhook,
                "deleteWebhook": self._m_delete_webhook,
                "getWebhookInfo": self._m_get_webhook_info,
                "getChat": self._m_get_chat,
                "close": self._m_true,
                "logOut": self._m_true,
            }.items()
        }

        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._url: str | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._update_pulse = _Pulse()
        self._event_pulse = _Pulse()
        self._chat_pulses: dict[int, _Pulse] = {}  # new bot messages, per chat

        # Counters that stay monotonic across reset() so a running bot never gets confused.
        self._seq = 0
        self._next_update_id = 1
        self._next_query_id = 1
        self._next_file_id = 1

        # Bot configuration (kept across reset()).
        self._allowed_updates: frozenset[str] | None = None
        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._webhook_max_connections = 40
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._poll_generation = 0

        # Activity tracking for wait_idle().
        self._inflight = 0
        self._last_activity = time.monotonic()

        self.events: list[SandboxEvent] = []
        self._init_state()

    def _init_state(self) -> None:
        self._first_id = 1  # of every chat's messages, and of updates
        self._chats: dict[int, _Chat] = {}
        self._users: dict[int, SandboxUser] = {}
        self._updates: deque[JSONDict] = deque()
        self._last_handed_out = 0
        self._callbacks: dict[str, _Callback] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.events.clear()
        self._events_base = self._seq
        self._calls: list[JSONDict] = []
        self._faults: list[_Fault] = []
        self._blocked: set[int] = set()
        self._photos: dict[str, list[JSONDict]] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._url is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._url

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give python-telegram-bot (``http://HOST:PORT/bot``)."""
        return f"{self.url}/bot"

    @property
    def app(self) -> web.Application:
        if self._app is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._app

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[SANDBOX_KEY] = self
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        routes: list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]] = [
            ("POST", "/control/message", self._ctl_message),
            ("POST", "/control/callback", self._ctl_callback),
            ("POST", "/control/update", self._ctl_update),
            ("GET", "/control/events", self._ctl_events),
            ("POST", "/control/faults", self._ctl_set_fault),
            ("DELETE", "/control/faults", self._ctl_clear_faults),
            ("POST", "/control/reset", self._ctl_reset),
            ("POST", "/control/group", self._ctl_group),
            ("POST", "/control/block", self._ctl_block),
            ("DELETE", "/control/block", self._ctl_unblock),
            ("GET", "/control/sent", self._ctl_sent),
            ("GET", "/control/messages", self._ctl_messages),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._control_handler(handler))
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        self._closing = False
        self._closed.clear()
        app = self._build_app()
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._app = app
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        self._url = f"http://{host}:{self.port}"

    async def stop(self) -> None:
        runner = self._runner
        if runner is None:
            return
        self._closing = True
        self._closed.set()
        self._update_pulse.fire()
        self._event_pulse.fire()
        for pulse in self._chat_pulses.values():
            pulse.fire()
        await self._stop_webhook_task()
        try:
            await runner.cleanup()
        finally:
            self._runner = None
            self._app = None
            self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _sleep(self, delay: float) -> None:
        """Sleep that ends early when the sandbox stops."""
        if delay > 0 and not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closed.wait()

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    # ------------------------------------------------------------------ Bot API dispatch

    async def _handle_bot_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not _TOKEN_RE.fullmatch(token) or token != self.bot_token:
            return _ApiError(401, "Unauthorized").response()
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return _ApiError(404, "Not Found").response()
        name, handler = entry
        if name == "getUpdates":
            try:
                params = await _read_params(request)
            except _ApiError as exc:
                return exc.response()
            return await self._invoke(name, handler, params)
        self._inflight += 1
        self._touch()
        try:
            try:
                params = await _read_params(request)
            except _ApiError as exc:
                self._log_call(name, {}, exc)
                return exc.response()
            return await self._invoke(name, handler, params)
        finally:
            self._inflight -= 1
            self._touch()

    async def _invoke(self, name: str, handler: _Handler, params: JSONDict) -> web.Response:
        fault = self._pick_fault(name, params)
        if fault is not None and fault.kind != "timeout":
            error = fault.error()
            self._log_call(name, params, error, fault=fault.kind)
            return error.response()
        if fault is not None and not fault.apply:
            self._log_call(name, params, _ApiError(502, "Bad Gateway"), fault="timeout")
            await self._sleep(fault.delay)
            return _ApiError(502, "Bad Gateway").response()
        try:
            outcome = handler(params)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except _ApiError as exc:
            self._log_call(name, params, exc)
            if fault is not None:
                await self._sleep(fault.delay)
            return exc.response()
        if isinstance(outcome, _Done):
            result = outcome.result
            self._emit(name, outcome.chat_id, outcome.message, params)
        else:
            result = outcome
            if name not in READ_ONLY_METHODS:
                chat_id = params.get("chat_id")
                self._emit(name, chat_id if isinstance(chat_id, int) else None, None, params)
        if name != "getUpdates":
            self._log_call(name, params, None, fault=None if fault is None else "timeout")
        if fault is not None:
            await self._sleep(fault.delay)
        return web.json_response({"ok": True, "result": result})

    def _pick_fault(self, name: str, params: JSONDict) -> _Fault | None:
        for fault in self._faults:
            if fault.methods is None:
                if name not in SEND_LIKE_METHODS:
                    continue
            elif name.lower() not in fault.methods:
                continue
            if fault.chat_id is not None and params.get("chat_id") != fault.chat_id:
                continue
            if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault
        return None

    def _log_call(
        self,
        name: str,
        params: JSONDict,
        error: _ApiError | None,
        *,
        fault: str | None = None,
    ) -> None:
        entry: JSONDict = {
            "seq": self._seq,
            "method": name,
            "params": params,
            "ok": error is None,
            "time": time.time(),
        }
        if error is not None:
            entry["error_code"] = error.code
            entry["description"] = error.description
        if fault is not None:
            entry["fault"] = fault
        self._calls.append(entry)

    def _emit(
        self, name: str, chat_id: int | None, message: JSONDict | None, params: JSONDict
    ) -> None:
        self._seq += 1
        event = SandboxEvent(self._seq, name, chat_id, message, params, time.time())
        self.events.append(event)
        if message is not None and chat_id is not None and name in MESSAGE_METHODS:
            chat = self._chats.get(chat_id)
            if chat is not None:
                chat.message_events.append(event)
            pulse = self._chat_pulses.get(chat_id)
            if pulse is not None:
                pulse.fire()
        self._event_pulse.fire()

    # ------------------------------------------------------------------ helpers for handlers

    def _chat(self, params: JSONDict, key: str = "chat_id") -> _Chat:
        raw = params.get(key)
        if raw is None or raw == "":
            raise _bad(f"{key} is empty")
        chat = self._chats.get(raw) if isinstance(raw, int) else None
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _writable_chat(self, params: JSONDict, key: str = "chat_id") -> _Chat:
        chat = self._chat(params, key)
        if chat.is_private and chat.id in self._blocked:
            raise _ApiError(403, _FORBIDDEN_BLOCKED)
        return chat

    def _format(
        self, raw: str, parse_mode: Any, entities: Any
    ) -> tuple[str, list[JSONDict] | None, str | None]:
        """Return (plain text, entities, normalised parse mode)."""
        if parse_mode is not None and parse_mode != "":
            mode = _PARSE_MODES.get(str(parse_mode).lower())
            if mode is None:
                raise _bad(f"unsupported parse_mode {parse_mode!r}")
            try:
                plain, parsed = _parse_formatted(raw, mode)
            except _ParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
            return plain, parsed or None, mode
        if entities is not None and not isinstance(entities, list):
            raise _bad("can't parse entities JSON object")
        return raw, entities or None, None

    def _placement(self, chat: _Chat, params: JSONDict) -> tuple[int | None, JSONDict | None]:
        """Resolve message_thread_id and reply_parameters for a bot message."""
        reply_to: JSONDict | None = None
        allow_missing = bool(params.get("allow_sending_without_reply"))
        reply_id: Any = params.get("reply_to_message_id")
        reply_chat = chat
        parameters = params.get("reply_parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise _bad("can't parse reply parameters JSON object")
            reply_id = parameters.get("message_id")
            allow_missing = bool(parameters.get("allow_sending_without_reply", allow_missing))
            other = parameters.get("chat_id")
            if other is not None and other != chat.id:
                found = self._chats.get(other) if isinstance(other, int) else None
                if found is None:
                    raise _bad("chat not found")
                reply_chat = found
        if reply_id is not None:
            reply_to = reply_chat.messages.get(reply_id) if isinstance(reply_id, int) else None
            if reply_to is None and not allow_missing:
                raise _bad("message to be replied not found")
        thread_id = params.get("message_thread_id")
        if not chat.is_forum:
            return None, reply_to
        if (
            thread_id is None
            and reply_to is not None
            and reply_chat is chat
            and reply_to.get("is_topic_message")
        ):
            thread_id = reply_to["message_thread_id"]
        if thread_id is not None and thread_id not in chat.topics:
            raise _bad("message thread not found")
        return thread_id, reply_to

    def _store(
        self,
        chat: _Chat,
        sender: JSONDict,
        content: JSONDict,
        *,
        thread_id: int | None = None,
        reply_to: JSONDict | None = None,
    ) -> JSONDict:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: JSONDict = {
            "message_id": message_id,
            "from": sender,
            "chat": chat.info,
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
            topic = chat.topics.get(thread_id)
            if reply_to is None and topic is not None:
                # Like Telegram: topic messages reply to the topic's creation message.
                reply_to = topic.creation
        if reply_to is not None:
            message["reply_to_message"] = _reply_snapshot(reply_to)
        message.update(content)
        chat.messages[message_id] = message
        return message

    def _bot_message(self, chat: _Chat, params: JSONDict, key: str = "message_id") -> JSONDict:
        message_id = params.get(key)
        if params.get("inline_message_id"):
            raise _bad("inline messages are not supported by the sandbox")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise _bad("message to edit not found")
        if message["from"].get("id") != self.bot_id:
            raise _bad("message can't be edited")
        return message

    def _new_file_id(self, prefix: str) -> tuple[str, str]:
        number = self._next_file_id
        self._next_file_id += 1
        return f"{prefix}{number:08d}sandbox", f"AQAD{number:08d}"

    def _photo_sizes(self, file_id: str | None = None) -> list[JSONDict]:
        if file_id is not None and file_id in self._photos:
            return self._photos[file_id]
        sizes: list[JSONDict] = []
        for width, height, size in ((90, 67, 1200), (320, 240, 15000), (800, 600, 65000)):
            new_id, unique_id = self._new_file_id("AgAC")
            sizes.append(
                {
                    "file_id": new_id,
                    "file_unique_id": unique_id,
                    "width": width,
                    "height": height,
                    "file_size": size,
                }
            )
        if file_id is not None:
            sizes[-1] = {**sizes[-1], "file_id": file_id}
        for size_info in sizes:
            self._photos[size_info["file_id"]] = sizes
        return sizes

    def _apply_markup(self, chat: _Chat, content: JSONDict, params: JSONDict) -> None:
        inline, keyboard = _parse_reply_markup(params.get("reply_markup"))
        if inline is not None:
            content["reply_markup"] = inline
        if keyboard is not None:
            content["reply_keyboard"] = keyboard
            if "keyboard" in keyboard:
                chat.reply_keyboard = keyboard
            elif keyboard.get("remove_keyboard"):
                chat.reply_keyboard = None

    def _chat_instance(self, chat_id: int) -> str:
        return str((chat_id * 0x9E3779B97F4A7C15 + self.bot_id) % (1 << 63))

    # ------------------------------------------------------------------ Bot API methods

    def _m_true(self, params: JSONDict) -> bool:
        return True

    def _m_get_me(self, params: JSONDict) -> JSONDict:
        return dict(self._me)

    async def _m_get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self._webhook_url:
            raise _ApiError(409, _WEBHOOK_CONFLICT)
        offset = params.get("offset")
        limit = params.get("limit")
        limit = 100 if not isinstance(limit, int) or limit <= 0 else min(limit, 100)
        timeout = params.get("timeout")
        timeout = max(0, timeout) if isinstance(timeout, int) else 0
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(kind) for kind in allowed) or None
        if isinstance(offset, int) and offset != 0:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._update_pulse.fire()  # an older long poll is terminated by this one
        deadline = time.monotonic() + timeout
        while True:
            if self._closing:
                return []
            if self._webhook_url:
                raise _ApiError(409, _WEBHOOK_CONFLICT)
            if generation != self._poll_generation:
                raise _ApiError(409, _POLL_CONFLICT)
            if self._updates:
                batch = list(itertools.islice(self._updates, limit))
                self._last_handed_out = max(self._last_handed_out, batch[-1]["update_id"])
                self._touch()
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await self._update_pulse.wait(remaining)

    def _confirm(self, offset: int) -> None:
        updates = self._updates
        if offset < 0:
            while len(updates) > -offset:
                updates.popleft()
        else:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()

    def _m_send_message(self, params: JSONDict) -> _Done:
        chat = self._writable_chat(params)
        content = self._text(params)
        self._apply_markup(chat, content, params)
        if isinstance(params.get("link_preview_options"), dict):
            content["link_preview_options"] = params["link_preview_options"]
        if params.get("protect_content"):
            content["has_protected_content"] = True
        thread_id, reply_to = self._placement(chat, params)
        message = self._store(chat, self.bot_user, content, thread_id=thread_id, reply_to=reply_to)
        return _Done(_wire(message), chat.id, message)

    def _m_send_photo(self, params: JSONDict) -> _Done:
        chat = self._writable_chat(params)
        photo = params.get("photo")
        if isinstance(photo, dict) and "upload" in photo:
            sizes = self._photo_sizes()
        elif isinstance(photo, str) and photo.strip():
            sizes = self._photo_sizes(photo.strip())
        else:
            raise _bad("there is no photo in the request")
        content: JSONDict = {"photo": sizes, **self._caption(params)}
        if params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        self._apply_markup(chat, content, params)
        thread_id, reply_to = self._placement(chat, params)
        message = self._store(chat, self.bot_user, content, thread_id=thread_id, reply_to=reply_to)
        return _Done(_wire(message), chat.id, message)

    def _text(self, params: JSONDict) -> JSONDict:
        """The text fields of a message, validated as Telegram does."""
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        plain, entities, mode = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if _utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        fields: JSONDict = {"text": text, "plain_text": plain}
        if mode is not None:
            fields["parse_mode"] = mode
        if entities:
            fields["entities"] = entities
        return fields

    def _caption(self, params: JSONDict) -> JSONDict:
        """The caption fields of a media message (none when the request has no caption)."""
        caption = params.get("caption")
        if not isinstance(caption, str) or not caption:
            return {}
        plain, entities, mode = self._format(
            caption, params.get("parse_mode"), params.get("caption_entities")
        )
        if _utf16_len(plain) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        fields: JSONDict = {"caption": caption, "plain_caption": plain}
        if mode is not None:
            fields["parse_mode"] = mode
        if entities:
            fields["caption_entities"] = entities
        return fields

    def _m_edit_message_text(self, params: JSONDict) -> _Done:
        chat = self._writable_chat(params)
        message = self._bot_message(chat, params)
        if "plain_text" not in message:
            raise _bad("there is no text in the message to edit")
        text_fields = self._text(params)
        inline, keyboard = _parse_reply_markup(params.get("reply_markup"))
        if keyboard is not None:
            raise _bad("inline keyboard expected")
        updated = {
            key: value
            for key, value in message.items()
            if key not in ("entities", "parse_mode", "reply_markup")
        }
        updated.update(text_fields)
        if inline is not None:  # like Telegram, omitting reply_markup removes the keyboard
            updated["reply_markup"] = inline
        return self._commit_edit(chat, message, updated, ("plain_text", "entities"))

    def _m_edit_message_caption(self, params: JSONDict) -> _Done:
        chat = self._writable_chat(params)
        message = self._bot_message(chat, params)
        if "photo" not in message:
            raise _bad("there is no caption in the message to edit")
        updated = {
            key: value
            for key, value in message.items()
            if key
            not in ("caption", "plain_caption", "caption_entities", "parse_mode", "reply_markup")
        }
        updated.update(self._caption(params))
        inline, keyboard = _parse_reply_markup(params.get("reply_markup"))
        if keyboard is not None:
            raise _bad("inline keyboard expected")
        if inline is not None:
            updated["reply_markup"] = inline
        return self._commit_edit(chat, message, updated, ("plain_caption", "caption_entities"))

    def _m_edit_message_reply_markup(self, params: JSONDict) -> _Done:
        chat = self._writable_chat(params)
        message = self._bot_message(chat, params)
        inline, keyboard = _parse_reply_markup(params.get("reply_markup"))
        if keyboard is not None:
            raise _bad("inline keyboard expected")
        updated = {key: value for key, value in message.items() if key != "reply_markup"}
        if inline is not None:
            updated["reply_markup"] = inline
        return self._commit_edit(chat, message, updated, ())

    def _commit_edit(
        self, chat: _Chat, old: JSONDict, new: JSONDict, compared: Iterable[str]
    ) -> _Done:
        keys = (*compared, "reply_markup")
        if all(old.get(key) == new.get(key) for key in keys):
            raise _bad(_NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        chat.messages[new["message_id"]] = new
        return _Done(_wire(new), chat.id, new)

    def _m_delete_message(self, params: JSONDict) -> _Done:
        chat = self._chat(params)
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = chat.messages.pop(message_id, None) if isinstance(message_id, int) else None
        if message is None:
            raise _bad("message to delete not found")
        return _Done(True, chat.id, message)

    def _m_answer_callback_query(self, params: JSONDict) -> _Done:
        query_id = params.get("callback_query_id")
        if query_id is None or query_id == "":
            raise _bad("query_id is empty")
        query = self._callbacks.get(str(query_id))
        if query is None or query.answer is not None:
            raise _bad(_QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query.answer = {
            "text": text,
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": params.get("cache_time", 0),
        }
        return _Done(True, query.chat_id, None)

    def _source_message(self, params: JSONDict, what: str) -> JSONDict:
        source_chat = self._chat(params, "from_chat_id")
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        source = source_chat.messages.get(message_id) if isinstance(message_id, int) else None
        if source is None:
            raise _bad(f"message to {what} not found")
        if _FORUM_SERVICE_KEYS.intersection(source):
            raise _bad(f"message can't be {what}ed")
        return source

    def _m_copy_message(self, params: JSONDict) -> _Done:
        source = self._source_message(params, "copy")
        chat = self._writable_chat(params)
        content: JSONDict = {key: source[key] for key in _COPYABLE_KEYS if key in source}
        caption = params.get("caption")
        if "photo" in source and isinstance(caption, str):
            for key in ("caption", "plain_caption", "caption_entities", "parse_mode"):
                content.pop(key, None)
            if caption:
                plain, entities, mode = self._format(
                    caption, params.get("parse_mode"), params.get("caption_entities")
                )
                if _utf16_len(plain) > MAX_CAPTION_LENGTH:
                    raise _bad("message caption is too long")
                content["caption"] = caption
                content["plain_caption"] = plain
                if mode is not None:
                    content["parse_mode"] = mode
                if entities:
                    content["caption_entities"] = entities
        self._apply_markup(chat, content, params)
        if params.get("protect_content"):
            content["has_protected_content"] = True
        thread_id, reply_to = self._placement(chat, params)
        message = self._store(chat, self.bot_user, content, thread_id=thread_id, reply_to=reply_to)
        return _Done({"message_id": message["message_id"]}, chat.id, message)

    def _m_forward_message(self, params: JSONDict) -> _Done:
        source = self._source_message(params, "forward")
        chat = self._writable_chat(params)
        content: JSONDict = {key: source[key] for key in _COPYABLE_KEYS if key in source}
        origin = source.get("forward_origin")
        if origin is None:
            origin = {"type": "user", "sender_user": source["from"], "date": source["date"]}
        content["forward_origin"] = origin
        if params.get("protect_content"):
            content["has_protected_content"] = True
        thread_id, _ = self._placement(chat, {"message_thread_id": params.get("message_thread_id")})
        message = self._store(chat, self.bot_user, content, thread_id=thread_id)
        return _Done(_wire(message), chat.id, message)

    def _m_send_chat_action(self, params: JSONDict) -> _Done:
        chat = self._writable_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return _Done(True, chat.id, None)

    def _commands_key(self, params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope")
        language = params.get("language_code") or ""
        if not isinstance(language, str) or not _LANGUAGE_CODE_RE.fullmatch(language):
            raise _bad("invalid language code specified")
        return self._scope_key(scope), language

    def _scope_key(self, scope: Any) -> str:
        if scope is None:
            scope = {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise _bad("can't parse BotCommandScope JSON object")
        scope = dict(scope)
        if scope["type"] in ("chat", "chat_administrators", "chat_member"):
            chat_id = scope.get("chat_id")
            if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
                chat_id = int(chat_id)
            if not isinstance(chat_id, int) or chat_id not in self._chats:
                raise _bad("chat not found")
            scope["chat_id"] = chat_id
        return json.dumps(scope, sort_keys=True)

    def _m_set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands specified")
        stored: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _BOT_COMMAND_NAME_RE.fullmatch(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad(
                    "command description is empty"
                    if not description
                    else "BOT_COMMAND_DESCRIPTION_INVALID"
                )
            stored.append({"command": name, "description": description})
        key = self._commands_key(params)
        if stored:
            self._commands[key] = stored
        else:
            self._commands.pop(key, None)
        return True

    def _m_get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return [dict(command) for command in self._commands.get(self._commands_key(params), [])]

    def _m_delete_my_commands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _forum(self, params: JSONDict) -> _Chat:
        chat = self._writable_chat(params)
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        return chat

    def _topic(self, chat: _Chat, params: JSONDict) -> _Topic:
        thread_id = params.get("message_thread_id")
        topic = chat.topics.get(thread_id) if isinstance(thread_id, int) else None
        if topic is None:
            raise _bad("TOPIC_ID_INVALID")
        return topic

    def _topic_service_message(self, chat: _Chat, topic: _Topic, content: JSONDict) -> JSONDict:
        thread_id = int(topic.info["message_thread_id"])
        return self._store(chat, self.bot_user, content, thread_id=thread_id)

    def _m_create_forum_topic(self, params: JSONDict) -> _Done:
        chat = self._forum(params)
        name = params.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise _bad("TOPIC_TITLE_TOO_LONG")
        color = params.get("icon_color", 7322096)
        if color not in _TOPIC_COLORS:
            raise _bad("TOPIC_ICON_COLOR_INVALID")
        thread_id = chat.next_message_id
        info: JSONDict = {"message_thread_id": thread_id, "name": name, "icon_color": color}
        created: JSONDict = {"name": name, "icon_color": color}
        emoji = params.get("icon_custom_emoji_id")
        if isinstance(emoji, str) and emoji:
            info["icon_custom_emoji_id"] = emoji
            created["icon_custom_emoji_id"] = emoji
        message = self._store(
            chat, self.bot_user, {"forum_topic_created": created}, thread_id=thread_id
        )
        chat.topics[thread_id] = _Topic(info=info, creation=message)
        return _Done(dict(info), chat.id, message)

    def _m_edit_forum_topic(self, params: JSONDict) -> _Done:
        chat = self._forum(params)
        topic = self._topic(chat, params)
        info = dict(topic.info)
        edited: JSONDict = {}
        name = params.get("name")
        if isinstance(name, str) and name:
            if len(name) > 128:
                raise _bad("TOPIC_TITLE_TOO_LONG")
            if name != info["name"]:
                info["name"] = edited["name"] = name
        emoji = params.get("icon_custom_emoji_id")
        if isinstance(emoji, str) and emoji != info.get("icon_custom_emoji_id", ""):
            edited["icon_custom_emoji_id"] = emoji
            if emoji:
                info["icon_custom_emoji_id"] = emoji
            else:
                info.pop("icon_custom_emoji_id", None)
        if not edited:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.info = info
        message = self._topic_service_message(chat, topic, {"forum_topic_edited": edited})
        return _Done(True, chat.id, message)

    def _m_close_forum_topic(self, params: JSONDict) -> _Done:
        chat = self._forum(params)
        topic = self._topic(chat, params)
        if topic.closed:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.closed = True
        message = self._topic_service_message(chat, topic, {"forum_topic_closed": {}})
        return _Done(True, chat.id, message)

    def _m_reopen_forum_topic(self, params: JSONDict) -> _Done:
        chat = self._forum(params)
        topic = self._topic(chat, params)
        if not topic.closed:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.closed = False
        message = self._topic_service_message(chat, topic, {"forum_topic_reopened": {}})
        return _Done(True, chat.id, message)

    def _m_delete_forum_topic(self, params: JSONDict) -> _Done:
        chat = self._forum(params)
        topic = self._topic(chat, params)
        thread_id = topic.info["message_thread_id"]
        del chat.topics[thread_id]
        for message_id in [
            mid for mid, msg in chat.messages.items() if msg.get("message_thread_id") == thread_id
        ]:
            del chat.messages[message_id]
        return _Done(True, chat.id, None)

    def _m_get_chat(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        return {
            **chat.info,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    async def _m_set_webhook(self, params: JSONDict) -> bool:
        url = params.get("url") or ""
        if not isinstance(url, str):
            raise _bad("invalid webhook URL specified")
        if not url:
            return await self._m_delete_webhook(params)
        if not url.startswith(("https://", "http://")):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and secret != "":
            if not isinstance(secret, str) or not _SECRET_TOKEN_RE.fullmatch(secret):
                raise _bad("secret token contains unallowed characters")
        else:
            secret = None
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(kind) for kind in allowed) or None
        max_connections = params.get("max_connections")
        if isinstance(max_connections, int):
            if not 1 <= max_connections <= 100:
                raise _bad("invalid max_connections specified")
            self._webhook_max_connections = max_connections
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook_url = url
        self._webhook_secret = secret
        self._webhook_error = None
        self._update_pulse.fire()  # pending getUpdates calls now fail with 409
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(
                self._webhook_loop(), name="carebot-sandbox-webhook"
            )
        return True

    async def _m_delete_webhook(self, params: JSONDict) -> bool:
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_error = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        await self._stop_webhook_task()
        return True

    def _m_get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url:
            info["max_connections"] = self._webhook_max_connections
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ------------------------------------------------------------------ webhook delivery

    async def _stop_webhook_task(self) -> None:
        task = self._webhook_task
        self._webhook_task = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])

    async def _webhook_loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._closing and self._webhook_url:
                if not self._updates:
                    await self._update_pulse.wait(None)
                    continue
                update = self._updates[0]
                await self._deliver(session, update)
                if self._updates and self._updates[0] is update:
                    self._updates.popleft()

    async def _deliver(self, session: aiohttp.ClientSession, update: JSONDict) -> bool:
        """POST one update to the webhook, retrying a few times; False if it was dropped."""
        for attempt in range(self.webhook_retries + 1):
            url = self._webhook_url
            if not url or self._closing:
                return False
            headers = {}
            if self._webhook_secret is not None:
                headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook_secret
            self._inflight += 1
            self._touch()
            try:
                async with session.post(url, json=update, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self._last_handed_out = max(self._last_handed_out, update["update_id"])
                        return True
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            finally:
                self._inflight -= 1
                self._touch()
            self._webhook_error = (int(time.time()), error)
            if attempt < self.webhook_retries:
                await self._sleep(self.webhook_backoff * 2**attempt)
        return False

    # ------------------------------------------------------------------ update queue

    def _enqueue(self, update: JSONDict) -> int:
        update_id = update.get("update_id")
        if isinstance(update_id, int) and not isinstance(update_id, bool):
            self._next_update_id = max(self._next_update_id, update_id + 1)
        else:
            update_id = self._next_update_id
            self._next_update_id += 1
            update = {"update_id": update_id, **update}
        kinds = [key for key in update if key != "update_id"]
        kind = kinds[0] if kinds else ""
        allowed = self._allowed_updates
        if (allowed is None and kind in _DEFAULT_EXCLUDED_UPDATES) or (
            allowed is not None and kind not in allowed
        ):
            return update_id  # Telegram does not even create such updates
        self._updates.append(update)
        self._update_pulse.fire()
        return update_id

    # ------------------------------------------------------------------ control API (Python)

    @property
    def seq(self) -> int:
        """Sequence number of the latest event (0 if none)."""
        return self._seq

    def add_group(self, chat_id: int, title: str, *, forum: bool = False) -> None:
        """Register a supergroup (``forum=True``: a forum supergroup with topics)."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative (e.g. -1001234567890)")
        info: JSONDict = {"id": chat_id, "type": "supergroup", "title": title}
        if forum:
            info["is_forum"] = True
        existing = self._chats.get(chat_id)
        if existing is None:
            self._chats[chat_id] = _Chat(info=info, next_message_id=self._first_id)
        else:
            existing.info = info

    def continue_ids_after(self, last_id: int) -> None:
        """Number updates, messages and topics after ``last_id`` from now on, in every chat:
        Telegram never reuses them, and a bot over a database kept from an earlier session
        takes a reused update id for a re-delivery (and ignores it)."""
        self._first_id = max(self._first_id, last_id + 1)
        self._next_update_id = max(self._next_update_id, self._first_id)
        for chat in self._chats.values():
            chat.next_message_id = max(chat.next_message_id, self._first_id)

    def add_user(self, user: SandboxUser) -> None:
        """Register a user who already has a private chat with the bot (started it earlier),
        so the bot can write first (campaign reminders) without the user saying anything."""
        self._user_chat(user, None)

    def _user_chat(self, user: SandboxUser, chat_id: int | None) -> _Chat:
        self._users[user.id] = user
        if chat_id is None or chat_id == user.id:
            chat = self._chats.get(user.id)
            if chat is None:
                info: JSONDict = {"id": user.id, "type": "private", "first_name": user.first_name}
                if user.last_name is not None:
                    info["last_name"] = user.last_name
                if user.username is not None:
                    info["username"] = user.username
                chat = self._chats[user.id] = _Chat(info=info, next_message_id=self._first_id)
            return chat
        chat = self._chats.get(chat_id)
        if chat is None or chat.is_private:
            raise ValueError(f"unknown group chat {chat_id}; register it with add_group()")
        return chat

    def _user_message(
        self,
        user: SandboxUser,
        chat_id: int | None,
        content: JSONDict,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> JSONDict:
        chat = self._user_chat(user, chat_id)
        reply_message: JSONDict | None = None
        if reply_to is not None:
            reply_message = chat.messages.get(reply_to)
            if reply_message is None:
                raise ValueError(f"no message {reply_to} in chat {chat.id}")
        if chat.is_forum:
            if (
                thread_id is None
                and reply_message is not None
                and reply_message.get("is_topic_message")
            ):
                thread_id = reply_message["message_thread_id"]
            if thread_id is not None:
                topic = chat.topics.get(thread_id)
                if topic is None:
                    raise ValueError(f"no forum topic {thread_id} in chat {chat.id}")
                if topic.closed:
                    raise ValueError(f"forum topic {thread_id} is closed")
        elif thread_id is not None:
            raise ValueError(f"chat {chat.id} is not a forum")
        message = self._store(
            chat, user.to_dict(), content, thread_id=thread_id, reply_to=reply_message
        )
        self._enqueue({"message": _wire(message)})
        return copy.deepcopy(message)

    def send_text(
        self,
        user: SandboxUser,
        text: str,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> JSONDict:
        """The user sends a text message; returns it (stored form).

        The chat defaults to the user's private chat, created on first use.  A leading
        ``/command`` (optionally ``/command@botname``) gets a ``bot_command`` entity.
        """
        if not text.strip():
            raise ValueError("a message text must not be empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ValueError("a message text is limited to 4096 characters")
        content: JSONDict = {"text": text, "plain_text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(user, chat_id, content, thread_id=thread_id, reply_to=reply_to)

    def send_sticker(
        self, user: SandboxUser, *, emoji: str = "👍", chat_id: int | None = None
    ) -> JSONDict:
        file_id, unique_id = self._new_file_id("CAAC")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": 20000,
        }
        return self._user_message(user, chat_id, {"sticker": sticker})

    def send_photo(
        self,
        user: SandboxUser,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> JSONDict:
        content: JSONDict = {"photo": self._photo_sizes()}
        if caption:
            content["caption"] = caption
            content["plain_caption"] = caption
        return self._user_message(user, chat_id, content, thread_id=thread_id)

    def send_location(
        self,
        user: SandboxUser,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
    ) -> JSONDict:
        location = {"latitude": float(latitude), "longitude": float(longitude)}
        return self._user_message(user, chat_id, {"location": location})

    def edit_text(
        self, user: SandboxUser, message_id: int, new_text: str, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user edits one of their text messages (an ``edited_message`` update)."""
        chat = self._user_chat(user, chat_id)
        message = chat.messages.get(message_id)
        if message is None or message["from"].get("id") != user.id:
            raise ValueError(f"user {user.id} has no message {message_id} in chat {chat.id}")
        if "text" not in message:
            raise ValueError(f"message {message_id} has no text")
        if not new_text.strip():
            raise ValueError("a message text must not be empty")
        updated = {key: value for key, value in message.items() if key != "entities"}
        updated["text"] = updated["plain_text"] = new_text
        entities = _command_entities(new_text)
        if entities:
            updated["entities"] = entities
        updated["edit_date"] = int(time.time())
        chat.messages[message_id] = updated
        self._enqueue({"edited_message": _wire(updated)})
        return copy.deepcopy(updated)

    def press_button(
        self,
        user: SandboxUser,
        message_id: int,
        callback_data: str,
        *,
        chat_id: int | None = None,
        force: bool = False,
    ) -> str:
        """The user presses an inline button; returns the callback query id.

        Raises ValueError if the bot message has no button with that callback_data,
        unless ``force=True`` (to simulate forged callback data).
        """
        chat = self._user_chat(user, chat_id)
        message = chat.messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat.id}")
        if not force:
            if message["from"].get("id") != self.bot_id:
                raise ValueError(f"message {message_id} in chat {chat.id} is not the bot's")
            buttons = [
                button.get("callback_data")
                for row in message.get("reply_markup", {}).get("inline_keyboard", [])
                for button in row
                if "callback_data" in button
            ]
            if callback_data not in buttons:
                raise ValueError(
                    f"message {message_id} in chat {chat.id} has no button with "
                    f"callback_data={callback_data!r}; available: {buttons!r}"
                )
        query_id = str(4_000_000_000_000_000 + self._next_query_id)
        self._next_query_id += 1
        self._callbacks[query_id] = _Callback(chat.id, message_id, callback_data)
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "message": _wire(message),
            "chat_instance": self._chat_instance(chat.id),
            "data": callback_data,
        }
        self._enqueue({"callback_query": query})
        return query_id

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (``update_id`` assigned if missing); returns its update_id."""
        return self._enqueue(dict(update))

    def block_user(self, user_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot: every send to their private chat now fails with 403.

        With ``notify`` (and a known private chat), a ``my_chat_member`` update is queued
        like Telegram does.
        """
        self._blocked.add(user_id)
        if notify:
            self._member_update(user_id, "member", "kicked")

    def unblock_user(self, user_id: int, *, notify: bool = True) -> None:
        if user_id in self._blocked:
            self._blocked.discard(user_id)
            if notify:
                self._member_update(user_id, "kicked", "member")

    def _member_update(self, user_id: int, old: str, new: str) -> None:
        chat = self._chats.get(user_id)
        user = self._users.get(user_id)
        if chat is None or user is None:
            return

        def member(status: str) -> JSONDict:
            data: JSONDict = {"status": status, "user": self.bot_user}
            if status == "kicked":
                data["until_date"] = 0
            return data

        self._enqueue(
            {
                "my_chat_member": {
                    "chat": chat.info,
                    "from": user.to_dict(),
                    "date": int(time.time()),
                    "old_chat_member": member(old),
                    "new_chat_member": member(new),
                }
            }
        )

    def set_fault(
        self,
        kind: FaultKind,
        *,
        methods: Iterable[str] | str | None = None,
        rate: float = 1.0,
        count: int | None = None,
        retry_after: int = 1,
        delay: float = 10.0,
        chat_id: int | None = None,
        apply: bool = False,
    ) -> None:
        """Inject failures into bot API calls.

        ``methods=None`` targets :data:`SEND_LIKE_METHODS`; otherwise a method name or an
        iterable of names (case-insensitive; ``getUpdates`` etc. allowed).  Each matching
        call fails with probability ``rate`` (seeded RNG), at most ``count`` times.
        ``timeout`` answers only after ``delay`` seconds: by default the request is dropped
        (then answered with 502 if the client is still there); with ``apply=True`` it takes
        effect immediately and only the answer is late ("response lost").
        Several faults may be active; the first match wins.
        """
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_KINDS)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if count is not None and count <= 0:
            raise ValueError("count must be positive (or None for unlimited)")
        names: frozenset[str] | None
        if methods is None:
            names = None
        elif isinstance(methods, str):
            names = frozenset({methods.lower()})
        else:
            names = frozenset(name.lower() for name in methods)
        self._faults.append(
            _Fault(
                kind=kind,
                methods=names,
                rate=rate,
                remaining=count,
                retry_after=retry_after,
                delay=delay,
                chat_id=chat_id,
                apply=apply,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def sent(self, chat_id: int) -> list[JSONDict]:
        """Messages the bot sent to the chat, in their current state (edits applied).

        Deleted messages and forum service messages are not included.
        """
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [
            copy.deepcopy(message)
            for message in chat.messages.values()
            if message["from"].get("id") == self.bot_id
            and not _FORUM_SERVICE_KEYS.intersection(message)
        ]

    def messages(self, chat_id: int) -> list[JSONDict]:
        """Every message currently in the chat, from both sides, in order."""
        chat = self._chats.get(chat_id)
        return [] if chat is None else [copy.deepcopy(m) for m in chat.messages.values()]

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        chat = self._chats.get(chat_id)
        found = None if chat is None else chat.messages.get(message_id)
        return None if found is None else copy.deepcopy(found)

    def reply_keyboard(self, chat_id: int) -> JSONDict | None:
        """The custom reply keyboard currently shown in the chat (None if removed/none)."""
        chat = self._chats.get(chat_id)
        return None if chat is None or chat.reply_keyboard is None else dict(chat.reply_keyboard)

    def topics(self, chat_id: int) -> list[JSONDict]:
        """Forum topics of the chat (ForumTopic objects plus ``is_closed``)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [{**topic.info, "is_closed": topic.closed} for topic in chat.topics.values()]

    def callback_answer(self, query_id: str) -> JSONDict | None:
        """How the bot answered a callback query (None if unanswered/unknown)."""
        query = self._callbacks.get(query_id)
        return None if query is None or query.answer is None else dict(query.answer)

    def commands(
        self, language_code: str = "", scope: dict[str, Any] | None = None
    ) -> list[JSONDict]:
        """Commands set for exactly this scope and language (like getMyCommands)."""
        try:
            key = (self._scope_key(scope), language_code)
        except _ApiError as exc:
            raise ValueError(exc.description) from None
        return [dict(command) for command in self._commands.get(key, [])]

    def calls(self, method: str | None = None) -> list[JSONDict]:
        """Log of bot API calls (not getUpdates), failures included.

        Each entry: seq, method, params, ok, time and, on failure, error_code, description
        and (for injected faults) fault.
        """
        wanted = None if method is None else method.lower()
        return [
            dict(call) for call in self._calls if wanted is None or call["method"].lower() == wanted
        ]

    def events_after(self, after: int, *, chat_id: int | None = None) -> list[SandboxEvent]:
        start = max(0, after - self._events_base)
        selected = self.events[start:]
        if chat_id is not None:
            selected = [event for event in selected if event.chat_id == chat_id]
        return selected

    async def wait_events(
        self,
        after: int | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        chat_id: int | None = None,
    ) -> list[SandboxEvent]:
        """Long-poll: events after ``after`` (default: now), or [] after ``timeout``."""
        if after is None:
            after = self._seq
        deadline = time.monotonic() + timeout
        while True:
            found = self.events_after(after, chat_id=chat_id)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0 or self._closing:
                return found
            await self._event_pulse.wait(remaining)

    def _new_bot_messages(self, chat_id: int, after: int) -> list[JSONDict]:
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        events = chat.message_events
        start = bisect_right(events, after, key=lambda event: event.seq)
        found: list[JSONDict] = []
        for event in events[start:]:
            assert event.message is not None
            current = chat.messages.get(event.message["message_id"])
            found.append(copy.deepcopy(current if current is not None else event.message))
        return found

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int = 1,
        *,
        after: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[JSONDict]:
        """Wait for at least ``count`` new bot messages in the chat.

        "New" means created by sendMessage/sendPhoto/copyMessage/forwardMessage after event
        ``after`` (default: the current :attr:`seq`).  Returns all of them, in their current
        state.  Typical use::

            seq = sandbox.seq
            sandbox.send_text(user, "hi")
            replies = await sandbox.wait_for_messages(user.id, after=seq)
        """
        if after is None:
            after = self._seq
        deadline = time.monotonic() + timeout
        while True:
            found = self._new_bot_messages(chat_id, after)
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                raise TimeoutError(self._describe_wait(chat_id, count, after, timeout, found))
            pulse = self._chat_pulses.get(chat_id)
            if pulse is None:
                pulse = self._chat_pulses[chat_id] = _Pulse()
            await pulse.wait(remaining)

    def _describe_wait(
        self, chat_id: int, count: int, after: int, timeout: float, found: list[JSONDict]
    ) -> str:
        def preview(message: JSONDict) -> str:
            text = message.get("plain_text", message.get("plain_caption"))
            return (
                repr(text)
                if text is not None
                else "<"
                + ",".join(key for key in ("photo", "sticker", "location") if key in message)
                + ">"
            )

        lines = [
            f"expected {count} new bot message(s) in chat {chat_id} after seq {after} "
            f"within {timeout}s, got {len(found)}"
        ]
        sent = self.sent(chat_id)
        lines.append(
            f"all bot messages in chat {chat_id}: "
            + (", ".join(preview(message) for message in sent[-10:]) or "none")
        )
        failures = [call for call in self._calls if not call["ok"]][-5:]
        if failures:
            lines.append(
                "recent failed bot API calls: "
                + "; ".join(
                    f"{call['method']}(chat_id={call['params'].get('chat_id')}): "
                    f"{call['error_code']} {call['description']}"
                    for call in failures
                )
            )
        recent = [
            f"{call['method']}(chat_id={call['params'].get('chat_id')})"
            for call in self._calls[-5:]
        ]
        lines.append("last bot API calls: " + (", ".join(recent) or "none"))
        if self._updates and self._updates[-1]["update_id"] > self._last_handed_out:
            lines.append("there are updates the bot has not fetched yet (is it polling?)")
        return "\n".join(lines)

    async def wait_idle(self, quiet: float = 0.3, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once the bot has made no API call (long polls aside) for ``quiet`` seconds
        and every queued update has been handed to it."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            pending = bool(self._updates) and (
                bool(self._webhook_url) or self._updates[-1]["update_id"] > self._last_handed_out
            )
            handling = self.bot_busy is not None and self.bot_busy()
            busy = self._inflight > 0 or pending or handling
            idle_for = now - self._last_activity
            if not busy and idle_for >= quiet:
                return
            if now >= deadline or self._closing:
                reason = (
                    f"{self._inflight} request(s) in flight"
                    if self._inflight
                    else "updates not yet fetched by the bot"
                    if pending
                    else "the bot is still handling an update"
                    if handling
                    else f"last activity {idle_for:.3f}s ago"
                )
                raise TimeoutError(f"sandbox not idle after {timeout}s: {reason}")
            step = 0.01 if busy else quiet - idle_for
            await asyncio.sleep(max(0.002, min(step, deadline - now)))

    def reset(self) -> None:
        """Forget chats, messages, queued updates, events, calls, faults, blocks and commands.

        The bot's configuration (webhook, allowed_updates) and all counters (seq,
        update_id) survive, so a running bot keeps working.
        """
        self._init_state()

    # ------------------------------------------------------------------ control API (HTTP)

    def _control_handler(
        self, func: Callable[[web.Request], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await func(request)
            except (ValueError, KeyError, TypeError) as exc:
                return _json_error(400, f"{type(exc).__name__}: {exc}")
            return web.json_response(result)

        return handler

    @staticmethod
    async def _body(request: web.Request) -> JSONDict:
        body = await request.json() if request.body_exists else {}
        if not isinstance(body, dict):
            raise TypeError("the request body must be a JSON object")
        return body

    @staticmethod
    def _opt_int(value: Any) -> int | None:
        return None if value is None or value == "" else int(value)

    async def _ctl_message(self, request: web.Request) -> JSONDict:
        body = await self._body(request)
        return self.send_text(
            SandboxUser.from_dict(body["user"]),
            str(body["text"]),
            chat_id=self._opt_int(body.get("chat_id")),
            thread_id=self._opt_int(body.get("thread_id")),
            reply_to=self._opt_int(body.get("reply_to")),
        )

    async def _ctl_callback(self, request: web.Request) -> JSONDict:
        body = await self._body(request)
        query_id = self.press_button(
            SandboxUser.from_dict(body["user"]),
            int(body["message_id"]),
            str(body["data"]),
            chat_id=self._opt_int(body.get("chat_id")),
            force=bool(body.get("force", False)),
        )
        return {"query_id": query_id}

    async def _ctl_update(self, request: web.Request) -> JSONDict:
        return {"update_id": self.push_update(await self._body(request))}

    async def _ctl_events(self, request: web.Request) -> list[JSONDict]:
        query = request.query
        after = self._opt_int(query.get("after"))
        timeout = min(float(query.get("timeout", "0")), 60.0)
        chat_id = self._opt_int(query.get("chat_id"))
        events = await self.wait_events(
            0 if after is None else after, timeout=timeout, chat_id=chat_id
        )
        return [event.to_dict() for event in events]

    async def _ctl_set_fault(self, request: web.Request) -> JSONDict:
        body = await self._body(request)
        kind = str(body["kind"])
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        methods = body.get("methods")
        self.set_fault(
            kind,  # type: ignore[arg-type]  # validated above
            methods=None if methods is None else [str(m) for m in methods],
            rate=float(body.get("rate", 1.0)),
            count=self._opt_int(body.get("count")),
            retry_after=int(body.get("retry_after", 1)),
            delay=float(body.get("delay", 10.0)),
            chat_id=self._opt_int(body.get("chat_id")),
            apply=bool(body.get("apply", False)),
        )
        return {"ok": True}

    async def _ctl_clear_faults(self, request: web.Request) -> JSONDict:
        self.clear_faults()
        return {"ok": True}

    async def _ctl_reset(self, request: web.Request) -> JSONDict:
        self.reset()
        return {"ok": True}

    async def _ctl_group(self, request: web.Request) -> JSONDict:
        body = await self._body(request)
        self.add_group(int(body["chat_id"]), str(body["title"]), forum=bool(body.get("forum")))
        return {"ok": True}

    async def _ctl_block(self, request: web.Request) -> JSONDict:
        body = await self._body(request)
        self.block_user(int(body["user_id"]), notify=bool(body.get("notify", True)))
        return {"ok": True}

    async def _ctl_unblock(self, request: web.Request) -> JSONDict:
        body = await self._body(request)
        self.unblock_user(int(body["user_id"]), notify=bool(body.get("notify", True)))
        return {"ok": True}

    async def _ctl_sent(self, request: web.Request) -> list[JSONDict]:
        return self.sent(int(request.query["chat_id"]))

    async def _ctl_messages(self, request: web.Request) -> list[JSONDict]:
        return self.messages(int(request.query["chat_id"]))
