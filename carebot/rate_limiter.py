"""Telegram rate limiting for carebot: a fast lane for conversations, a paced lane for campaigns.

:class:`CareRateLimiter` plugs into python-telegram-bot as ``ExtBot``'s rate limiter. Rules:

* **Which requests are limited.** Only requests that put a new message into a chat: every
  ``send*`` method except ``sendChatAction`` and ``sendMessageDraft``, plus ``copyMessage(s)``
  and ``forwardMessage(s)``. Everything else (``getMe``, ``answerCallbackQuery``, edits,
  deletions, ``setMyCommands``...) goes straight through (but is retried like the rest, see
  below); edits change an existing message and carebot only makes them in answer to a
  person. ``getUpdates`` never reaches a limiter.
  A request that puts several messages in a chat (``sendMediaGroup``, ``copyMessages``)
  counts as one.
* **Two lanes.** A request is *bulk* when it carries ``rate_limit_args={"bulk": True}``
  (campaign reminders); anything else is *interactive* (replies to a customer, relayed staff
  answers, survey invitations) and is never held back by the bulk rules below.
* **Bulk, overall.** Bulk sends start at most ``bulk_per_second`` per second: they are spaced
  evenly (an ``aiolimiter.AsyncLimiter`` of capacity one, so no initial burst) and, as a hard
  guarantee, a sliding window admits at most ``floor(bulk_per_second)`` sends per second
  (one send per ``1 / bulk_per_second`` seconds below 1/s). A send occupies its window slot
  from the moment it starts until one second after its answer arrived, so however the network
  delays a request, Telegram never sees more than the limit in any one-second window.
  Interactive sends take window slots too, without waiting for one, so bulk traffic leaves
  room for them.
* **Bulk, per chat.** A bulk send to a chat starts at least ``per_chat_interval`` seconds after
  the answer to the previous send of either lane to that chat (bulk sends to one chat go one
  at a time, in order). Per-chat times are forgotten once they no longer matter.
* **Groups.** Every lane obeys the group limit: at most ``group_per_minute`` messages per minute
  to one group, supergroup or channel (a negative chat id or an ``@username``), as a leaky
  bucket like PTB's ``AIORateLimiter``: a burst of ``group_per_minute``, then one message every
  ``60 / group_per_minute`` seconds. ``group_per_minute=None`` switches it off.
* **One send at a time per chat, in order.** A request that puts a message into a chat holds
  that chat's turn from the moment it is let through until its final answer, retries and
  their waits included. Interactive requests to a chat take their turn first come, first
  served, behind whatever is being sent there (of either lane); a bulk request is admitted
  only while nobody holds the chat's turn. So a later message to a chat never overtakes one
  that is still being retried, whichever task (a handler, a job, a relay) sent it.
* **429 Too Many Requests.** The request waits ``retry_after`` (plus 0.1 s) and is sent again.
  Telegram's flood control is per bot, so any 429 also holds the whole bulk lane for that
  long; interactive requests are not held (each waits out its own 429).
* **Transient failures** (a 5xx answer, a network error, a timeout) are retried after a
  capped exponential backoff with jitter (``backoff_base`` doubling per retry, at most
  ``backoff_cap`` seconds, then 50-100 % of that), holding the bulk lane for as long. A 429
  and a transient failure draw on the same ``max_retries`` retries per request; the last
  error is re-raised once they are used up. PTB raises a 5xx answer as a bare
  ``NetworkError`` (no HTTP status attached): one whose message names a 4xx status is final.
* **Timeouts are ambiguous.** When the request may have reached Telegram (a read timeout, a
  connection dropped after sending) the message may have arrived. Such a request is sent
  again anyway (a reply or a relayed staff answer seen twice beats one never seen) unless it
  carries ``rate_limit_args={"once": True}``: a send from a delivery ledger that promises
  "exactly once" (campaign reminders, survey invitations). Then the failure is raised at
  once, always as ``TimedOut`` (a dropped connection too), and the ledger records the send
  as uncertain instead of risking a second copy.
  Failures where Telegram cannot have got the request (connect errors, connect and pool
  timeouts) and 5xx answers (Telegram says it failed) are retried whatever the arguments;
  when a ``once`` request's retries run out on a connect or pool timeout, it is raised as a
  plain ``NetworkError`` (never sent), not as ``TimedOut`` (uncertain).
* **Other errors** (403 Forbidden, 400 Bad Request, 401, 404, 409...) are re-raised at once
  and never retried, so the caller can mark the customer unreachable.

The counters in :attr:`CareRateLimiter.stats` feed tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

import httpx
from aiolimiter import AsyncLimiter
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import BaseRateLimiter

from handlers.retry_after import retry_after_seconds

logger = logging.getLogger(__name__)

ApiResult = bool | dict[str, Any] | list[dict[str, Any]]

#: Extra wait after a 429's ``retry_after``, which Telegram rounds to whole seconds.
RETRY_AFTER_MARGIN: Final = 0.1
#: Added to the sliding window and the per-chat interval: our monotonic clock and Telegram's
#: clock need not tick at exactly the same rate.
CLOCK_MARGIN: Final = 0.01

_GROUP_PERIOD: Final = 60.0
_EXEMPT_SENDS: Final = frozenset({"sendchataction", "sendmessagedraft"})
_COPY_AND_FORWARD: Final = frozenset(
    {"copymessage", "copymessages", "forwardmessage", "forwardmessages"}
)
# Forget idle per-chat and per-group state once this many entries pile up (then twice the
# number that survived), so bookkeeping stays bounded and costs O(1) per request on average.
_MIN_SWEEP_SIZE: Final = 1024
# PTB words an HTTP error it has no class for as "<description>" or "<phrase> (<code>)".
_CLIENT_ERROR_STATUS: Final = re.compile(r"\(4\d\d\)")
# httpx failures that happen before the request left this machine.
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

ChatKey = int | str


class CareRateLimitArgs(TypedDict, total=False):
    """``rate_limit_args`` understood by :class:`CareRateLimiter` (see the module docstring).

    ``bulk``: paced in the bulk lane (campaign reminders). ``once``: recorded in a ledger that
    promises "exactly once", so a failure that may have delivered it is raised, not retried.
    """

    bulk: bool
    once: bool


class Transient(enum.Enum):
    """A failure worth another attempt, and whether the message may have arrived anyway."""

    NOT_SENT = "not sent"
    UNSURE = "may have arrived"


@dataclass
class RateLimiterStats:
    """What the limiter did, since it was created."""

    #: 429 answers that were waited out and retried.
    retry_after_honoured: int = 0
    #: 429 answers re-raised because ``max_retries`` was used up.
    retry_after_given_up: int = 0
    #: 5xx answers, network errors and timeouts that were backed off from and retried.
    transient_retried: int = 0
    #: Transient failures re-raised because ``max_retries`` was used up.
    transient_given_up: int = 0
    #: ``once`` requests that failed in a way that may have delivered them: raised, not retried.
    unsure_not_retried: int = 0
    #: Seconds requests were held back (throttling, a chat's turn, 429 waits, backoff), summed
    #: over requests.
    waited_seconds: float = 0.0
    #: The part of :attr:`waited_seconds` spent waiting out 429 answers.
    retry_after_seconds: float = 0.0
    #: The part of :attr:`waited_seconds` spent backing off after transient failures.
    backoff_seconds: float = 0.0
    #: Attempts to put a message into a chat, per lane (retries included).
    bulk_sends: int = 0
    interactive_sends: int = 0


@dataclass(eq=False)
class _ChatState:
    """Per-chat bookkeeping; kept while a request uses it or its last send still matters."""

    bulk_turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    interactive_turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The request whose send to this chat is under way (retries included), if any.
    holder: object | None = None
    users: int = 0
    in_flight: int = 0
    last_answer_at: float = -math.inf


def puts_message_in_chat(endpoint: str) -> bool:
    """Whether a Bot API method creates a message in a chat (and so is rate limited)."""
    name = endpoint.lower()
    return (name.startswith("send") and name not in _EXEMPT_SENDS) or name in _COPY_AND_FORWARD


def is_bulk(rate_limit_args: object) -> bool:
    return _flag(rate_limit_args, "bulk")


def sent_at_most_once(rate_limit_args: object) -> bool:
    return _flag(rate_limit_args, "once")


def _flag(rate_limit_args: object, name: str) -> bool:
    return isinstance(rate_limit_args, Mapping) and bool(rate_limit_args.get(name))


def chat_key(chat_id: object) -> ChatKey | None:
    """One key per chat, whether its id came as ``123`` or ``"123"``; ``@names`` as is."""
    if isinstance(chat_id, bool) or chat_id is None:
        return None
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str):
        with contextlib.suppress(ValueError):
            return int(chat_id)
        return chat_id.lower()
    return None


def is_group(chat: ChatKey) -> bool:
    """Groups, supergroups and channels: negative ids, or ``@username`` (only those have one)."""
    return isinstance(chat, str) or chat < 0


def transient(error: TelegramError) -> Transient | None:
    """Whether a failed request is worth retrying, and if so whether it may have arrived.

    PTB raises every network failure and every HTTP answer it has no class for (5xx among
    them) as ``NetworkError``; ``TimedOut`` is one, and so, oddly, is ``BadRequest`` (a 400).
    A network failure keeps the httpx error as its cause; an HTTP answer has none.
    """
    if not isinstance(error, NetworkError) or isinstance(error, BadRequest):
        return None
    cause = error.__cause__
    if cause is None:  # Telegram answered with an error status
        return None if _CLIENT_ERROR_STATUS.search(error.message) else Transient.NOT_SENT
    return Transient.NOT_SENT if isinstance(cause, _NEVER_SENT) else Transient.UNSURE


class CareRateLimiter(BaseRateLimiter[CareRateLimitArgs]):
    """Interactive requests go out at once; bulk ones are paced per bot and per chat.

    See the module docstring for the exact rules.
    """

    def __init__(
        self,
        *,
        bulk_per_second: float = 25.0,
        per_chat_interval: float = 1.0,
        group_per_minute: int | None = 20,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
    ) -> None:
        _check_seconds("bulk_per_second", bulk_per_second, positive=True)
        _check_seconds("per_chat_interval", per_chat_interval)
        _check_seconds("backoff_base", backoff_base)
        _check_seconds("backoff_cap", backoff_cap)
        if group_per_minute is not None and (
            isinstance(group_per_minute, bool)
            or not isinstance(group_per_minute, int)
            or group_per_minute < 1
        ):
            raise ValueError(
                f"group_per_minute must be a positive integer or None, not {group_per_minute!r}"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, not {max_retries!r}")
        self.bulk_per_second = float(bulk_per_second)
        self.per_chat_interval = float(per_chat_interval)
        self.group_per_minute = group_per_minute
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        if self.bulk_per_second >= 1:
            self._window_size = math.floor(self.bulk_per_second)
            self._window_seconds = 1.0
        else:
            self._window_size = 1
            self._window_seconds = 1 / self.bulk_per_second
        self._jitter = random.Random()
        self.stats = RateLimiterStats()
        self._reset()

    def __repr__(self) -> str:
        return (
            f"CareRateLimiter(bulk_per_second={self.bulk_per_second}, "
            f"per_chat_interval={self.per_chat_interval}, "
            f"group_per_minute={self.group_per_minute}, max_retries={self.max_retries}, "
            f"backoff_base={self.backoff_base}, backoff_cap={self.backoff_cap})"
        )

    def _reset(self) -> None:
        """Fresh event-loop-bound state (an Application may be run again on a new loop)."""
        # Capacity one: no initial burst, one bulk send every 1/bulk_per_second seconds.
        self._pacer = AsyncLimiter(max_rate=1, time_period=1 / self.bulk_per_second)
        self._bulk_gate = asyncio.Lock()  # bulk requests are admitted one at a time, in order
        self._changed = asyncio.Event()  # replaced after each answer or freed chat turn
        self._in_flight = 0
        self._recent_answers: deque[float] = deque()  # answer times, oldest first
        self._bulk_paused_until = -math.inf
        self._chats: dict[ChatKey, _ChatState] = {}
        self._chats_sweep_at = _MIN_SWEEP_SIZE
        self._groups: dict[ChatKey, AsyncLimiter] = {}
        self._groups_sweep_at = _MIN_SWEEP_SIZE

    async def initialize(self) -> None:
        """Start from a clean slate on the running event loop (statistics are kept)."""
        self._reset()

    async def shutdown(self) -> None:
        """Nothing to release: the limiter owns no tasks or connections."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: CareRateLimitArgs | None,
    ) -> ApiResult:
        """Send the request when the rules allow; retry what is worth it (see module doc)."""
        chat = chat_key(data.get("chat_id")) if puts_message_in_chat(endpoint) else None
        bulk, once = is_bulk(rate_limit_args), sent_at_most_once(rate_limit_args)
        shown = f"{endpoint} to chat {data.get('chat_id', '-')}"
        if chat is None:
            return await self._with_retries(shown, once, lambda: callback(*args, **kwargs))
        loop = asyncio.get_running_loop()
        queued_at = loop.time()
        state = self._chat_state(chat, queued_at)
        request = object()  # this request's claim on the chat's turn
        state.users += 1
        try:
            if not bulk:
                await self._take_turn(state, request)
                self.stats.waited_seconds += loop.time() - queued_at
            return await self._with_retries(
                shown,
                once,
                lambda: self._send_to_chat(chat, state, request, bulk, callback, args, kwargs),
            )
        finally:
            state.users -= 1
            if state.holder is request:
                state.holder = None
                self._wake_everyone()

    # ------------------------------------------------------------------ retries

    async def _with_retries(
        self, shown: str, once: bool, attempt: Callable[[], Awaitable[ApiResult]]
    ) -> ApiResult:
        retries = 0
        while True:
            try:
                return await attempt()
            except RetryAfter as error:
                wait = retry_after_seconds(error) + RETRY_AFTER_MARGIN
                self._pause_bulk(wait)
                if retries >= self.max_retries:
                    self.stats.retry_after_given_up += 1
                    logger.warning("Telegram flood control (429) on %s: giving up", shown)
                    raise
                self.stats.retry_after_honoured += 1
                self.stats.retry_after_seconds += wait
                why = "flood control (429)"
            except NetworkError as error:
                kind = transient(error)
                if kind is None:
                    raise
                if kind is Transient.UNSURE and once:
                    self.stats.unsure_not_retried += 1
                    logger.warning("%s failed, may have arrived, not resent: %s", shown, error)
                    if isinstance(error, TimedOut):
                        raise
                    # One type for "no answer came", which ledgers record as uncertain.
                    raise TimedOut(f"No answer, may have arrived: {error.message}") from error
                wait = self._backoff(retries)
                self._pause_bulk(wait)
                if retries >= self.max_retries:
                    self.stats.transient_given_up += 1
                    logger.warning("%s failed, giving up: %s", shown, error)
                    if once and isinstance(error, TimedOut):
                        # A connect or pool timeout: never sent, so not "uncertain" to a ledger.
                        raise NetworkError(f"Not sent: {error.message}") from error
                    raise
                self.stats.transient_retried += 1
                self.stats.backoff_seconds += wait
                why = f"{error.message} ({kind.value})"
            retries += 1
            logger.warning(
                "Telegram %s on %s: retry %d of %d in %.1f s",
                why,
                shown,
                retries,
                self.max_retries,
                wait,
            )
            await asyncio.sleep(wait)
            self.stats.waited_seconds += wait

    def _backoff(self, retries: int) -> float:
        """Capped exponential backoff with jitter: 50-100 % of min(cap, base * 2^retries)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0**retries)
        return ceiling * self._jitter.uniform(0.5, 1.0)

    # ------------------------------------------------------------------ one attempt

    async def _send_to_chat(
        self,
        chat: ChatKey,
        state: _ChatState,
        request: object,
        bulk: bool,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
    ) -> ApiResult:
        loop = asyncio.get_running_loop()
        held_since = loop.time()
        if self.group_per_minute is not None and is_group(chat):
            await self._group_limiter(chat, self.group_per_minute).acquire()
        if bulk:
            await self._admit_bulk(state, request)
            self.stats.bulk_sends += 1
        else:
            self._start_send(state)
            self.stats.interactive_sends += 1
        self.stats.waited_seconds += loop.time() - held_since
        try:
            return await callback(*args, **kwargs)
        finally:
            self._finish_send(state, loop.time())

    async def _take_turn(self, state: _ChatState, request: object) -> None:
        """Interactive: first come, first served, behind the send under way to the chat."""
        async with state.interactive_turn:
            while state.holder is not None:
                await self._next_change(None)
            state.holder = request

    async def _admit_bulk(self, state: _ChatState, request: object) -> None:
        """Wait until the bulk rules allow a send to this chat, and mark it started."""
        # A retry already holds the chat's turn: queueing for ``bulk_turn`` behind a later bulk
        # send, which waits for that very turn, would leave both (and the chat) stuck.
        turn: contextlib.AbstractAsyncContextManager[None] = (
            contextlib.nullcontext() if state.holder is request else state.bulk_turn
        )
        async with turn:
            while True:
                await self._wait_until_chat_is_free(state, request)
                async with self._bulk_gate:
                    await self._wait_out_bulk_pause()
                    await self._pacer.acquire()
                    await self._wait_for_window_slot()
                    # An interactive send to the chat or a 429 may have come in meanwhile.
                    if self._chat_is_free(state, request) and not self._bulk_paused():
                        state.holder = request  # no await since the check: nothing slips in
                        self._start_send(state)
                        return

    def _start_send(self, state: _ChatState) -> None:
        state.in_flight += 1
        self._in_flight += 1

    def _finish_send(self, state: _ChatState, now: float) -> None:
        state.in_flight -= 1
        state.last_answer_at = now
        self._in_flight -= 1
        self._recent_answers.append(now)
        # Trimmed here too, not only when a bulk send looks for a slot: with replies alone
        # the window would otherwise grow by one entry per message, for ever.
        self._forget_old_answers(now)
        self._wake_everyone()

    def _forget_old_answers(self, now: float) -> None:
        span = self._window_seconds + CLOCK_MARGIN
        while self._recent_answers and self._recent_answers[0] + span <= now:
            self._recent_answers.popleft()

    def _wake_everyone(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ------------------------------------------------------------------ waiting

    async def _next_change(self, at_most: float | None) -> None:
        """Return when a send is answered or a chat's turn is freed, or after ``at_most`` s."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await changed.wait()

    def _chat_is_free(self, state: _ChatState, request: object) -> bool:
        if state.in_flight or state.holder not in (None, request):
            return False
        free_at = state.last_answer_at + self.per_chat_interval + CLOCK_MARGIN
        return asyncio.get_running_loop().time() >= free_at

    async def _wait_until_chat_is_free(self, state: _ChatState, request: object) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if state.in_flight or state.holder not in (None, request):
                await self._next_change(None)
                continue
            wait = state.last_answer_at + self.per_chat_interval + CLOCK_MARGIN - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _wait_for_window_slot(self) -> None:
        loop = asyncio.get_running_loop()
        span = self._window_seconds + CLOCK_MARGIN
        while True:
            now = loop.time()
            self._forget_old_answers(now)
            if self._in_flight + len(self._recent_answers) < self._window_size:
                return
            if self._recent_answers:
                await self._next_change(self._recent_answers[0] + span - now)
            else:
                await self._next_change(None)

    def _pause_bulk(self, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        self._bulk_paused_until = max(self._bulk_paused_until, until)

    def _bulk_paused(self) -> bool:
        return asyncio.get_running_loop().time() < self._bulk_paused_until

    async def _wait_out_bulk_pause(self) -> None:
        loop = asyncio.get_running_loop()
        while True:  # another 429 may extend the pause while we sleep
            wait = self._bulk_paused_until - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    # ------------------------------------------------------------------ bounded bookkeeping

    def _chat_state(self, chat: ChatKey, now: float) -> _ChatState:
        state = self._chats.get(chat)
        if state is not None:
            return state
        if len(self._chats) >= self._chats_sweep_at:
            forget_before = now - self.per_chat_interval - CLOCK_MARGIN
            self._chats = {
                key: kept
                for key, kept in self._chats.items()
                if kept.users or kept.last_answer_at > forget_before
            }
            self._chats_sweep_at = max(_MIN_SWEEP_SIZE, 2 * len(self._chats))
        state = self._chats[chat] = _ChatState()
        return state

    def _group_limiter(self, chat: ChatKey, per_minute: int) -> AsyncLimiter:
        limiter = self._groups.get(chat)
        if limiter is not None:
            return limiter
        if len(self._groups) >= self._groups_sweep_at:
            # A limiter with all its capacity back behaves exactly like a new one.
            self._groups = {
                key: kept
                for key, kept in self._groups.items()
                if not kept.has_capacity(kept.max_rate)
            }
            self._groups_sweep_at = max(_MIN_SWEEP_SIZE, 2 * len(self._groups))
        limiter = self._groups[chat] = AsyncLimiter(per_minute, _GROUP_PERIOD)
        return limiter


def _check_seconds(name: str, value: object, *, positive: bool = False) -> None:
    """A finite number (of seconds, or per second): > 0 if ``positive``, else >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, not {value!r}")
