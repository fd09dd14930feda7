"""What the simulated customers say: FAQ questions (and a few misses) over many private chats."""

from __future__ import annotations

from dataclasses import dataclass

from carebot.sandbox import SandboxUser

# Demo customers bound to Telegram in carebot/demo/shop.toml.
DEMO_USERS = (
    SandboxUser(id=1001, first_name="Ann", last_name="Peeters", language_code="en"),
    SandboxUser(id=1002, first_name="Wei", language_code="zh-hans"),
)
#: New customers (unknown to the shop) get ids from here up.
NEW_USER_BASE_ID = 7_000_000
NEW_USER_LANGUAGES = ("en", "en-GB", "zh-hans", "en-US")

#: Questions carebot answers from the demo FAQ, and questions it cannot match (it then
#: offers a person).  Either way exactly one sendMessage answers each message.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "en": (
        "how much is shipping",
        "where is my order",
        "How do I return an item?",
        "when will I get my refund",
        "can I pay with paypal",
        "do you sell quantum flux capacitors",
        "how long does delivery take",
        "can I cancel my order",
        "what is the meaning of life",
    ),
    "zh": (
        "怎么退货",
        "运费是多少",
        "我的订单到哪里了",
        "你们卖宇宙飞船吗",
        "什么时候退款",
        "支持哪些付款方式",
    ),
}


def language_of(user: SandboxUser) -> str:
    return "zh" if (user.language_code or "").startswith("zh") else "en"


@dataclass(frozen=True)
class Workload:
    users: tuple[SandboxUser, ...]
    messages: tuple[tuple[SandboxUser, str], ...]

    @property
    def chat_ids(self) -> frozenset[int]:
        return frozenset(user.id for user in self.users)


def make_users(chats: int) -> tuple[SandboxUser, ...]:
    """The two demo customers first, then new customers in a mix of languages."""
    users = list(DEMO_USERS[:chats])
    for index in range(chats - len(users)):
        users.append(
            SandboxUser(
                id=NEW_USER_BASE_ID + index + 1,
                first_name=f"Bench{index + 1}",
                language_code=NEW_USER_LANGUAGES[index % len(NEW_USER_LANGUAGES)],
            )
        )
    return tuple(users)


def make_workload(messages: int, chats: int) -> Workload:
    """``messages`` texts dealt round-robin to ``chats`` users; deterministic."""
    if messages < 1 or chats < 1:
        raise ValueError("messages and chats must be at least 1")
    users = make_users(chats)
    sent: list[tuple[SandboxUser, str]] = []
    for i in range(messages):
        slot = i % chats
        user = users[slot]
        pool = QUESTIONS[language_of(user)]
        sent.append((user, pool[(i // chats + slot) % len(pool)]))
    return Workload(users, tuple(sent))
