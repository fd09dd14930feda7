"""Survey courtesy rules and quiet hours, without storage or Telegram."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.surveys import (
    Decision,
    Recipient,
    Survey,
    SurveyKind,
    SurveyService,
    SurveySettings,
    SurveyStatus,
    parse_quiet_hours,
    reads_like_complaint,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # Thursday 10:00 in London
SURVEY = Survey(1, 7, SurveyKind.PURCHASE, SurveyStatus.SCHEDULED, NOW, NOW, order_id=3)
ANN = Recipient(7, None, False, False, False, True, False, None)


class NoStore:
    def create(self, **values: object) -> Survey:
        return replace(SURVEY, due_at=values["due_at"])  # type: ignore[arg-type]


def service(**settings: object) -> SurveyService:
    return SurveyService(NoStore(), SurveySettings(**settings), "Europe/London")  # type: ignore[arg-type]


def test_quiet_hours_wrap_past_midnight() -> None:
    quiet = parse_quiet_hours("21:00-09:00")
    london = ZoneInfo("Europe/London")
    evening = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)
    assert quiet.next_allowed(evening, london) == datetime(2026, 11, 27, 9, 0, tzinfo=london)
    early = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert quiet.next_allowed(early, london) == datetime(2026, 11, 27, 9, 0, tzinfo=london)
    assert quiet.next_allowed(NOW, london) == NOW
    with pytest.raises(ValueError, match="21:00-09:00"):
        parse_quiet_hours("9pm-9am")


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (replace(ANN, opted_out=True), "opted_out"),
        (replace(ANN, banned=True), "unreachable"),
        (replace(ANN, blocked=True), "unreachable"),
        (replace(ANN, has_chat=False), "unreachable"),
        (replace(ANN, has_open_ticket=True), "open_ticket"),
        (replace(ANN, last_survey_sent=NOW - timedelta(days=13)), "frequency_cap"),
    ],
)
def test_courtesy_rules_skip_with_a_reason(who: Recipient, reason: str) -> None:
    verdict = service().verdict(SURVEY, who, NOW)
    assert (verdict.decision, verdict.reason) == (Decision.SKIP, reason)


def test_allowed_now_or_in_the_customers_morning() -> None:
    assert service().verdict(SURVEY, ANN, NOW).decision == Decision.SEND
    after_cap = replace(ANN, last_survey_sent=NOW - timedelta(days=15))
    assert service().verdict(SURVEY, after_cap, NOW).decision == Decision.SEND
    in_sydney = replace(ANN, timezone="Australia/Sydney")  # 21:00 there
    verdict = service().verdict(SURVEY, in_sydney, NOW)
    assert verdict.decision == Decision.WAIT
    assert verdict.at == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 09:00 in Sydney


def test_only_the_configured_status_plans_a_survey() -> None:
    planned = service().plan_purchase(7, 3, "delivered", NOW, NOW)
    assert planned is not None
    assert planned.due_at == NOW + timedelta(days=3)
    assert service().plan_purchase(7, 3, "shipped", NOW, NOW) is None
    assert service(send_after="placed").plan_purchase(7, 3, "placed", NOW, NOW) is not None
    assert service(enabled=False).plan_purchase(7, 3, "delivered", NOW, NOW) is None


def test_complaint_like_comments() -> None:
    assert reads_like_complaint("Two mugs arrived broken")
    assert reads_like_complaint("包裹没收到")
    assert not reads_like_complaint("Lovely colours, a bit smaller than I thought")
