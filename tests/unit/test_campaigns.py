"""Campaign rules without storage or Telegram: campaign files, the life cycle, when a
reminder is due, who is excluded and who the audience rules select, and each recipient's
occasion date in the campaign's season."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.campaign_service import CampaignPlanner, ShopInfo
from bot.campaign_templates import TemplateSet
from bot.campaigns import (
    AudienceRules,
    Campaign,
    CampaignError,
    CampaignSettings,
    CampaignSpec,
    CampaignStatus,
    Candidate,
    Exclusion,
    SuggestionSettings,
    exclusion,
    matches,
    next_status,
    parse_campaign,
    plan_due,
    window_opens,
)
from bot.occasions import OccasionCalendar
from bot.suggestions import SuggestionModel
from bot.surveys import QuietHours

LANGUAGES = ("en", "zh")
LONDON = ZoneInfo("Europe/London")
SHANGHAI = ZoneInfo("Asia/Shanghai")
QUIET = QuietHours()  # 21:00-09:00
MINIMAL: dict[str, Any] = {
    "name": "christmas-2026",
    "occasion": "christmas",
    "template": {"en": "Hi {{ customer.first_name }}"},
}


def parsed(**changes: Any) -> CampaignSpec:
    return parse_campaign({**MINIMAL, **changes}, languages=LANGUAGES)


def refused(**changes: Any) -> str:
    with pytest.raises(CampaignError) as caught:
        parsed(**changes)
    return str(caught.value)


# ---------------------------------------------------------------- campaign files


def test_a_minimal_campaign_gets_the_documented_defaults() -> None:
    spec = parsed()
    assert spec.days_before == 5
    assert spec.send_time == time(10, 0)
    assert spec.year is None
    assert spec.audience == AudienceRules()
    assert spec.suggestions == SuggestionSettings(count=3, more=3)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"nmae": "x"}, "unknown key nmae"),
        ({"audience": {"segment": ["loyal"]}}, "unknown key audience.segment"),
        ({"suggestions": {"cout": 2}}, "unknown key suggestions.cout"),
        ({"name": "Mothers Day"}, "name must be lowercase"),
        ({"name": ""}, "name is required"),
        ({"occasion": " "}, "occasion is required"),
        ({"send_time": "25:00"}, "send_time"),
        ({"send_time": "10am"}, "send_time"),
        ({"send_time": 10}, "send_time"),
        ({"days_before": 61}, "days_before must be a whole number from 0 to 60"),
        ({"days_before": True}, "days_before"),
        ({"year": 1999}, "year must be a year like 2027"),
        ({"year": "2027"}, "year must be a year like 2027"),
        ({"year": True}, "year must be a year like 2027"),
        ({"template": {"fr": "Bonjour"}}, "template.fr: language must be one of en, zh"),
        ({"template": {"en": "   "}}, "template.en must be non-empty text"),
        ({"template": {"en": 3}}, "template.en must be non-empty text"),
        ({"template": {}}, "[template] must be a table of languages"),
        ({"template": "Hi"}, "[template] must be a table of languages"),
        ({"audience": ["loyal"]}, "[audience] must be a table"),
        ({"audience": {"categories": "kitchen"}}, "audience.categories must be a list"),
        ({"audience": {"segments": ["loyal", 3]}}, "audience.segments must be a list"),
        ({"audience": {"segments": [""]}}, "audience.segments must be a list"),
        ({"audience": {"countries": ["gb"]}}, "audience.countries must be ISO codes"),
        ({"audience": {"countries": ["France"]}}, "audience.countries must be ISO codes"),
        ({"audience": {"countries": "GB"}}, "audience.countries must be a list"),
        ({"audience": {"key_customers": 1}}, "audience.key_customers must be true or false"),
        ({"audience": {"min_orders": 0}}, "audience.min_orders must be a whole number"),
        ({"audience": {"occasion_buyers_days": 0}}, "audience.occasion_buyers_days"),
        (
            {"audience": {"occasion_min_years": 2}},
            "audience.occasion_min_years needs audience.occasion_buyers_days",
        ),
        ({"suggestions": {"count": 11}}, "suggestions.count must be a whole number from 0 to 10"),
        ({"suggestions": {"count": -1}}, "suggestions.count must be a whole number from 0 to 10"),
        ({"suggestions": {"more": 2.5}}, "suggestions.more"),
    ],
)
def test_a_bad_campaign_file_is_refused_naming_the_key(changes: dict[str, Any], names: str) -> None:
    assert names in refused(**changes)


def test_the_unknown_key_message_lists_the_known_keys() -> None:
    message = refused(audience={"min_order": 2})
    assert "unknown key audience.min_order" in message
    assert "min_orders" in message


@pytest.mark.parametrize("count", [0, 10])
def test_suggestion_counts_at_the_ends_of_the_range_are_accepted(count: int) -> None:
    assert parsed(suggestions={"count": count}).suggestions.count == count


def test_a_full_campaign_survives_a_json_round_trip() -> None:
    spec = parsed(
        days_before=7,
        send_time="9:30",
        year=2026,
        template={"en": "Hi {{ customer.first_name }}", "zh": "您好"},
        audience={
            "occasion_buyers_days": 21,
            "occasion_min_years": 2,
            "categories": ["kitchen", "toys-and-games"],
            "segments": ["loyal"],
            "key_customers": True,
            "last_purchase_within_days": 400,
            "last_purchase_not_within_days": 30,
            "min_orders": 2,
            "countries": ["GB", "IE"],
        },
        suggestions={"count": 4, "more": 0},
    )
    assert spec.send_time == time(9, 30)
    assert CampaignSpec.from_json(spec.to_json()) == spec
    minimal = parsed()
    assert CampaignSpec.from_json(minimal.to_json()) == minimal


# ---------------------------------------------------------------- life cycle


def campaign(status: CampaignStatus) -> Campaign:
    return Campaign(1, parsed(), 2026, status, datetime(2026, 11, 1, tzinfo=UTC))


S = CampaignStatus


@pytest.mark.parametrize(
    ("action", "status", "planned", "expected"),
    [
        ("start", S.DRAFT, False, S.SCHEDULED),
        ("start", S.DRAFT, True, S.RUNNING),
        ("pause", S.SCHEDULED, False, S.PAUSED),
        ("pause", S.RUNNING, True, S.PAUSED),
        ("resume", S.PAUSED, False, S.SCHEDULED),  # paused before its window opened
        ("resume", S.PAUSED, True, S.RUNNING),  # paused while sending
        ("cancel", S.DRAFT, False, S.CANCELLED),
        ("cancel", S.SCHEDULED, False, S.CANCELLED),
        ("cancel", S.RUNNING, True, S.CANCELLED),
        ("cancel", S.PAUSED, True, S.CANCELLED),
    ],
)
def test_actions_move_a_campaign_along_its_life(
    action: str, status: CampaignStatus, planned: bool, expected: CampaignStatus
) -> None:
    assert next_status(campaign(status), action, planned=planned) == expected


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("start", S.SCHEDULED),
        ("start", S.RUNNING),
        ("start", S.PAUSED),
        ("start", S.DONE),
        ("start", S.CANCELLED),
        ("pause", S.DRAFT),
        ("pause", S.PAUSED),
        ("pause", S.DONE),
        ("pause", S.CANCELLED),
        ("resume", S.DRAFT),
        ("resume", S.SCHEDULED),
        ("resume", S.RUNNING),
        ("resume", S.DONE),
        ("resume", S.CANCELLED),
        ("cancel", S.DONE),
        ("cancel", S.CANCELLED),
    ],
)
def test_an_action_that_does_not_apply_is_refused_naming_the_status(
    action: str, status: CampaignStatus
) -> None:
    with pytest.raises(CampaignError) as caught:
        next_status(campaign(status), action, planned=False)
    assert str(caught.value) == f"campaign christmas-2026 is {status.value}: cannot {action}"


def test_an_unknown_action_is_refused_listing_the_actions() -> None:
    with pytest.raises(
        CampaignError, match=r"unknown action 'stop' \(one of start, pause, resume, cancel\)"
    ):
        next_status(campaign(S.RUNNING), "stop", planned=True)


# ---------------------------------------------------------------- when a reminder is due

CHRISTMAS_2026 = date(2026, 12, 25)


def due(now: datetime, zone: ZoneInfo, **changes: Any) -> datetime | None:
    return plan_due(CHRISTMAS_2026, parsed(**changes), zone, now, QUIET)


def test_a_reminder_is_due_days_before_at_the_send_time_in_the_customers_own_timezone() -> None:
    early = datetime(2026, 12, 1, tzinfo=UTC)
    assert due(early, LONDON) == datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
    # 10:00 in Shanghai (UTC+8) is eight hours earlier than 10:00 in London (UTC+0 in winter).
    assert due(early, SHANGHAI) == datetime(2026, 12, 20, 2, 0, tzinfo=UTC)
    later = due(early, LONDON, days_before=2, send_time="18:45")
    assert later == datetime(2026, 12, 23, 18, 45, tzinfo=UTC)


def test_a_reminder_is_due_at_the_send_time_in_summer_time_too() -> None:
    mothers_day = date(2026, 5, 10)
    spec = parsed(occasion="mothers-day", days_before=3)
    now = datetime(2026, 4, 1, tzinfo=UTC)
    # 7 May, 10:00 BST is 09:00 UTC.
    assert plan_due(mothers_day, spec, LONDON, now, QUIET) == datetime(2026, 5, 7, 9, 0, tzinfo=UTC)


def test_started_late_a_reminder_goes_out_now_when_it_is_daytime_for_the_customer() -> None:
    now = datetime(2026, 12, 22, 12, 0, tzinfo=UTC)  # noon in London, 20:00 in Shanghai
    assert due(now, LONDON) == now
    assert due(now, SHANGHAI) == now


def test_started_late_in_the_customers_quiet_hours_it_waits_for_their_morning() -> None:
    now = datetime(2026, 12, 22, 14, 0, tzinfo=UTC)  # 14:00 in London, 22:00 in Shanghai
    assert due(now, LONDON) == now
    # 09:00 on 23 Dec in Shanghai
    assert due(now, SHANGHAI) == datetime(2026, 12, 23, 1, 0, tzinfo=UTC)
    night = datetime(2026, 12, 22, 23, 30, tzinfo=UTC)
    assert due(night, LONDON) == datetime(2026, 12, 23, 9, 0, tzinfo=UTC)


def test_too_late_means_no_reminder_at_all() -> None:
    # Christmas Eve, 22:00 in London: the next morning is Christmas Day itself.
    assert due(datetime(2026, 12, 24, 22, 0, tzinfo=UTC), LONDON) is None
    assert due(datetime(2026, 12, 25, 12, 0, tzinfo=UTC), LONDON) is None
    assert due(datetime(2026, 12, 27, 12, 0, tzinfo=UTC), LONDON) is None
    # Christmas Eve 16:00 UTC: still afternoon in London, already Christmas in Shanghai.
    afternoon = datetime(2026, 12, 24, 16, 0, tzinfo=UTC)
    assert due(afternoon, LONDON) == afternoon
    assert due(afternoon, SHANGHAI) is None


def test_a_campaign_for_the_day_itself_sends_that_morning() -> None:
    # days_before = 0 asks for Christmas morning, which is still of use that day
    assert due(datetime(2026, 12, 1, tzinfo=UTC), LONDON, days_before=0) == datetime(
        2026, 12, 25, 10, 0, tzinfo=UTC
    )


def test_the_send_window_opens_when_the_first_time_zone_reaches_the_send_time() -> None:
    spec = parsed()
    opens = window_opens(CHRISTMAS_2026, spec)
    assert opens == datetime(2026, 12, 19, 20, 0, tzinfo=UTC)
    kiritimati = ZoneInfo("Pacific/Kiritimati")  # UTC+14, the first to any day
    earliest = plan_due(CHRISTMAS_2026, spec, kiritimati, datetime(2026, 12, 1, tzinfo=UTC), QUIET)
    assert earliest == opens
    honolulu = ZoneInfo("Pacific/Honolulu")
    latest = plan_due(CHRISTMAS_2026, spec, honolulu, datetime(2026, 12, 1, tzinfo=UTC), QUIET)
    assert latest is not None
    assert latest > opens


# ---------------------------------------------------------------- exclusions

NOW = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
SETTINGS = CampaignSettings()  # a 30-day frequency cap
ANN = Candidate(
    customer_id=7,
    chat_id=1007,
    first_name="Ann",
    last_name=None,
    language="en",
    timezone=None,
    country="GB",
    birthday=None,
    opted_out=False,
    blocked=False,
    banned=False,
    open_complaint=False,
    last_reminder_at=None,
    segment="loyal",
    key_customer=False,
    orders=4,
    spend=120.0,
    last_purchase=NOW - timedelta(days=100),
)


def test_exclusions_are_reported_in_a_fixed_order() -> None:
    everything = replace(
        ANN,
        chat_id=None,
        opted_out=True,
        blocked=True,
        banned=True,
        open_complaint=True,
        last_reminder_at=NOW - timedelta(days=1),
    )
    # Each reason, then what clears it to reveal the next one.
    steps: list[tuple[Exclusion, dict[str, Any]]] = [
        (Exclusion.NOT_ON_TELEGRAM, {"chat_id": 1007}),
        (Exclusion.OPTED_OUT, {"opted_out": False}),
        (Exclusion.BLOCKED, {"blocked": False}),
        (Exclusion.BANNED, {"banned": False}),
        (Exclusion.OPEN_COMPLAINT, {"open_complaint": False}),
    ]
    who = everything
    for reason, clear in steps:
        assert exclusion(who, NOW, SETTINGS, said_not_this_year=True) == reason
        who = replace(who, **clear)
    assert exclusion(who, NOW, SETTINGS, said_not_this_year=True) == Exclusion.NOT_THIS_YEAR
    assert exclusion(who, NOW, SETTINGS, said_not_this_year=False) == Exclusion.FREQUENCY_CAP
    assert exclusion(replace(who, last_reminder_at=None), NOW, SETTINGS, False) is None


def test_the_frequency_cap_ends_exactly_min_gap_after_the_last_reminder() -> None:
    def excluded(last: datetime) -> Exclusion | None:
        return exclusion(replace(ANN, last_reminder_at=last), NOW, SETTINGS, False)

    assert excluded(NOW - timedelta(days=30) + timedelta(seconds=1)) == Exclusion.FREQUENCY_CAP
    assert excluded(NOW - timedelta(days=30)) is None
    assert excluded(NOW - timedelta(days=31)) is None
    shorter = CampaignSettings(min_gap=timedelta(days=7))
    six_days_ago = replace(ANN, last_reminder_at=NOW - timedelta(days=6))
    seven_days_ago = replace(ANN, last_reminder_at=NOW - timedelta(days=7))
    assert exclusion(six_days_ago, NOW, shorter, False) == Exclusion.FREQUENCY_CAP
    assert exclusion(seven_days_ago, NOW, shorter, False) is None


# ---------------------------------------------------------------- audience rules


def selects(
    who: Candidate, *, occasion_years: int = 0, bought_categories: bool = False, **rules: Any
) -> bool:
    return matches(
        AudienceRules(**rules),
        who,
        NOW,
        country=who.country,
        occasion_years=occasion_years,
        bought_categories=bought_categories,
    )


def test_no_rules_select_everyone() -> None:
    assert selects(ANN)
    assert selects(replace(ANN, last_purchase=None, orders=0, segment=None, country=None))


def test_occasion_buyers_need_enough_earlier_years() -> None:
    assert not selects(ANN, occasion_years=0, occasion_buyers_days=21)
    assert selects(ANN, occasion_years=1, occasion_buyers_days=21)
    assert not selects(ANN, occasion_years=1, occasion_buyers_days=21, occasion_min_years=2)
    assert selects(ANN, occasion_years=2, occasion_buyers_days=21, occasion_min_years=2)
    # Without the occasion rule the years do not matter.
    assert selects(ANN, occasion_years=0, occasion_min_years=2)


def test_categories_need_a_purchase_from_one_of_them() -> None:
    assert not selects(ANN, bought_categories=False, categories=("kitchen",))
    assert selects(ANN, bought_categories=True, categories=("kitchen",))


def test_segments_key_customers_and_min_orders() -> None:
    assert selects(ANN, segments=("loyal", "champions"))
    assert not selects(ANN, segments=("champions",))
    assert not selects(replace(ANN, segment=None), segments=("loyal",))
    assert not selects(ANN, key_customers=True)
    assert selects(replace(ANN, key_customer=True), key_customers=True)
    assert selects(ANN, min_orders=4)
    assert not selects(ANN, min_orders=5)


def test_countries_are_iso_codes() -> None:
    assert selects(ANN, countries=("GB", "IE"))
    assert not selects(ANN, countries=("US",))
    assert not selects(replace(ANN, country=None), countries=("GB",))


def test_recent_buyers_bought_within_the_days() -> None:
    def bought(days_ago: float | None) -> Candidate:
        last = None if days_ago is None else NOW - timedelta(days=days_ago)
        return replace(ANN, last_purchase=last)

    assert selects(bought(30), last_purchase_within_days=30)
    assert not selects(bought(30.001), last_purchase_within_days=30)
    assert not selects(bought(None), last_purchase_within_days=30)


def test_win_back_selects_who_has_not_bought_for_the_days() -> None:
    def bought(days_ago: float | None) -> Candidate:
        last = None if days_ago is None else NOW - timedelta(days=days_ago)
        return replace(ANN, last_purchase=last)

    assert not selects(bought(10), last_purchase_not_within_days=90)
    assert not selects(bought(90), last_purchase_not_within_days=90)
    assert selects(bought(90.001), last_purchase_not_within_days=90)
    assert selects(bought(None), last_purchase_not_within_days=90)  # never bought at all
    # lapsed, but not lost for good: between 90 days and a year ago
    lapsed: dict[str, Any] = {"last_purchase_not_within_days": 90, "last_purchase_within_days": 365}
    assert selects(bought(100), **lapsed)
    assert not selects(bought(400), **lapsed)
    assert not selects(bought(30), **lapsed)


def test_every_given_rule_must_hold() -> None:
    rules: dict[str, Any] = {
        "occasion_buyers_days": 21,
        "segments": ("loyal",),
        "countries": ("GB",),
        "min_orders": 2,
    }
    assert selects(ANN, occasion_years=1, **rules)
    assert not selects(ANN, occasion_years=0, **rules)
    assert not selects(replace(ANN, segment="lost"), occasion_years=1, **rules)
    assert not selects(replace(ANN, country="FR"), occasion_years=1, **rules)
    assert not selects(replace(ANN, orders=1), occasion_years=1, **rules)


# ---------------------------------------------------------------- occasion seasons


def planner(occasion: str, year: int, *, countries: tuple[str, ...] = ()) -> CampaignPlanner:
    spec = parsed(
        name=f"{occasion}-{year}", occasion=occasion, audience={"countries": [*countries]}
    )
    return CampaignPlanner(
        spec,
        year,
        calendar=OccasionCalendar(),
        settings=CampaignSettings(),
        shop=ShopInfo("Demo Gifts", "https://shop.example", "GBP", "GB", LONDON, "en"),
        templates=TemplateSet.compile({"en": "Hi"}, default_language="en"),
        model=SuggestionModel.build([], {}),
    )


def test_orthodox_christmas_in_january_belongs_to_the_december_campaign() -> None:
    christmas = planner("christmas", 2026)
    assert christmas.occasion_day("GB") == date(2026, 12, 25)
    assert christmas.occasion_day(None) == date(2026, 12, 25)  # unknown country: the shop's
    assert christmas.occasion_day("RU") == date(2027, 1, 7)
    assert christmas.season() == (date(2026, 12, 25), date(2027, 1, 7))


def test_mothers_day_is_each_countrys_own_date_in_the_season() -> None:
    mothers_day = planner("mothers-day", 2026)
    # Argentina's (third Sunday of October) nearest the UK's Mothering Sunday is 2025's
    assert mothers_day.occasion_day("AR") == date(2025, 10, 19)
    assert mothers_day.occasion_day("GB") == date(2026, 3, 15)
    assert mothers_day.occasion_day("US") == date(2026, 5, 10)
    assert mothers_day.occasion_day("FR") == date(2026, 5, 31)


def test_the_first_audience_country_sets_the_reference_date() -> None:
    for_us = planner("mothers-day", 2026, countries=("US",))
    assert for_us.occasion_day("AR") == date(2026, 10, 18)  # nearer 10 May than 2025's
    assert for_us.occasion_day("US") == date(2026, 5, 10)
    assert for_us.occasion_day("GB") == date(2026, 3, 15)


def test_windows_of_earlier_years_end_on_each_countrys_own_date() -> None:
    windows = planner("christmas", 2026).windows(["United Kingdom", "Russia"], 2024)
    for_gb = [windows.windows[i] for i in windows.for_country("GB")]
    assert [end.date() for _, end in for_gb] == [date(2024, 12, 25), date(2025, 12, 25)]
    assert all(end - start == timedelta(days=21) for start, end in for_gb)


def test_countries_without_their_own_rule_look_back_from_the_default_date() -> None:
    mothers_day = planner("mothers-day", 2011)
    windows = mothers_day.windows(["Belgium", "United Kingdom"], 2010)
    assert mothers_day.occasion_day("BE") == date(2011, 5, 8)
    for_belgium = [windows.windows[i] for i in windows.for_country(None)]
    assert [end.date() for _, end in for_belgium] == [date(2010, 5, 9)]


def test_windows_of_earlier_years_follow_the_season_as_occasion_day_does() -> None:
    christmas = planner("christmas", 2011)
    assert christmas.occasion_day("RU") == date(2012, 1, 7)
    windows = christmas.windows(["Russia"], 2009)
    for_russia = [windows.windows[i] for i in windows.for_country("RU")]
    assert [end.date() for _, end in for_russia] == [date(2010, 1, 7), date(2011, 1, 7)]
