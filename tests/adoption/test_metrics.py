"""Each adoption metric against the hand-built org of `adoption_world` (conftest), whose answers are known."""

from __future__ import annotations

from datetime import date

import pytest

from adoption.models import PersonWeek
from adoption.selectors import Week, adoption_report, report_weeks, week_of
from adoption.tables import HIDDEN
from tests.adoption.conftest import AS_OF

pytestmark = pytest.mark.django_db


def _report(world, *, whole_org=True):
    return adoption_report(teams=[world.five, world.four], as_of=AS_OF, whole_org=whole_org)


def _week(group, label):
    return next(figures for figures in group.weeks if figures.week.label == label)


def test_report_covers_the_twelve_complete_iso_weeks_before_as_of():
    weeks = report_weeks(AS_OF)
    assert [weeks[0].label, weeks[-1].label] == ["2026-W36", "2026-W47"]
    assert (weeks[0].start, weeks[-1].end) == (date(2026, 8, 31), date(2026, 11, 22))
    assert week_of(date(2026, 11, 1)) == Week(date(2026, 10, 26))  # Sunday closes W44
    assert week_of(date(2026, 11, 2)) == Week(date(2026, 11, 2))  # Monday opens W45


def test_weekly_active_rate_counts_a_sunday_in_its_own_iso_week(adoption_world):
    five = _report(adoption_world).teams[0]
    assert _week(five, "2026-W43").rate == pytest.approx(5 / 6)
    # p1's only W44 request is on Sunday 23:30 UTC: active in W44 (with p2 and p3), not in W45.
    assert (_week(five, "2026-W44").active, _week(five, "2026-W44").people) == (3, 6)
    assert _week(five, "2026-W44").rate == pytest.approx(0.5)
    # W45: p1 (Monday 00:05 UTC) and p4; p5 used only the other team's key; p3 was deactivated that Wednesday
    # and is still one of the six.
    assert (_week(five, "2026-W45").active, _week(five, "2026-W45").people) == (2, 6)
    # From W46 p3 is out of the denominator: four of five.
    assert (_week(five, "2026-W46").active, _week(five, "2026-W46").people) == (4, 5)
    assert _week(five, "2026-W46").rate == pytest.approx(0.8)


def test_service_keys_do_not_make_their_owner_active(adoption_world):
    # p2's service key made requests every day from Nov 2 to Nov 22; p2 used a personal key on two of them:
    # Tuesday Nov 10 and Wednesday Nov 18.
    weeks = PersonWeek.objects.filter(
        user=adoption_world.people["p2"], team=adoption_world.five, week__gte=date(2026, 11, 2)
    ).order_by("week")
    assert [(week.week, week.days, week.active_days) for week in weeks] == [
        (date(2026, 11, 9), 0b0000010, 1),
        (date(2026, 11, 16), 0b0000100, 1),
    ]
    assert _week(_report(adoption_world).teams[0], "2026-W45").active == 2


def test_retention_is_shown_only_over_enough_people(adoption_world):
    five = _report(adoption_world).teams[0]
    # Of the five active in W43, three were active in W44.
    w44 = _week(five, "2026-W44")
    assert (w44.retention_base, w44.retained, w44.retention) == (5, 3, pytest.approx(0.6))
    # W45's base is the three of W44: too few to show.
    assert _week(five, "2026-W45").retention is HIDDEN


def test_cohorts_by_week_of_first_use(adoption_world):
    five = _report(adoption_world).teams[0]
    cohorts = {row.week.label: row for row in five.cohorts}
    w43 = cohorts["2026-W43"]
    assert (w43.size, w43.shown) == (5, True)
    assert w43.shares[1] == pytest.approx(3 / 5)  # W44: p1, p2, p3
    assert w43.shares[2] == pytest.approx(2 / 5)  # W45: p1, p4 (p3 still in the team that week)
    assert w43.shares[4] is HIDDEN  # W47: p3 has left, four of the cohort remain
    assert w43.shares[8] is None  # W51 is not over yet
    assert (cohorts["2026-W36"].size, cohorts["2026-W36"].shown) == (1, False)  # p6 alone


def test_repeat_use_in_the_last_fourteen_days(adoption_world):
    five = _report(adoption_world).teams[0]
    # Nov 9–22: p1 (5 days) and p4 (4 days) of p1, p2, p4, p5, p6 (p3 has left).
    assert (five.repeat_users, five.repeat_people) == (2, 5)
    assert five.repeat_share == pytest.approx(0.4)


def test_tools_per_person_and_the_mix(adoption_world):
    five = _report(adoption_world).teams[0]
    assert five.tools_active == 5
    assert five.tools_per_person == pytest.approx(7 / 5)
    assert five.tool_mix == {
        "Claude Code": pytest.approx(0.4),
        "Codex": pytest.approx(0.4),
        "Kimi": pytest.approx(0.2),
        "OpenAI SDK": pytest.approx(0.2),
        "Other": pytest.approx(0.2),
    }


def test_activation_zombie_and_unused_keys(adoption_world):
    keys = _report(adoption_world).teams[0].keys
    # Issued in the report: six personal keys on Oct 1 (five first used Oct 21, one never), p6's old key
    # on Sep 1 (used the next day) and p2's service key on Oct 1 (first used Nov 2).
    assert keys["issued"] == 8
    assert keys["buckets"] == {"same day": 0, "1–7 days": 1, "8–30 days": 5, "over 30 days": 1}
    assert keys["never"] == 1
    assert keys["median_days"] == 20
    # Live at the report's end: all but p3's revoked key; p6's unused key is a zombie, the old one unused.
    assert (keys["live"], keys["zombie"], keys["unused"]) == (7, 1, 1)


def test_a_team_of_four_is_hidden_and_a_team_of_five_shown(adoption_world):
    report = _report(adoption_world)
    five, four = report.teams
    assert five.people_now == 5 and five.shown
    assert _week(five, "2026-W47").rate == pytest.approx(0.8)
    assert four.people_now == 4 and not four.shown
    # q1 and p5 were active in W45, but nothing about the four people is shown.
    assert all(figures.rate is HIDDEN and figures.retention is HIDDEN for figures in four.weeks)
    assert four.repeat_share is HIDDEN and four.tools_per_person is HIDDEN
    assert set(four.tool_mix.values()) == {HIDDEN}
    assert all(value is HIDDEN for value in (four.keys["zombie"], four.keys["median_days"], four.keys["issued"]))


def test_a_person_in_two_teams_counts_in_each_and_once_for_the_org(adoption_world):
    report = _report(adoption_world)
    org = report.org
    # p1..p6 and q1..q3: p5 is in both teams but one person.
    assert _week(org, "2026-W43").people == 9
    # W45: p1, p4 in Five; p5 and q1 in Four.
    assert (_week(org, "2026-W45").active, _week(org, "2026-W45").people) == (4, 9)
    assert _week(org, "2026-W44").retention == pytest.approx(0.6)
    # p5's tools across both teams: Other (Five) and Claude Code (Four).
    assert org.tools_active == 6
    assert org.tools_per_person == pytest.approx(9 / 6)
    assert (org.repeat_users, org.repeat_people) == (2, 8)
    assert org.keys["issued"] == 10


def test_approvers_get_no_org_figures(adoption_world):
    assert _report(adoption_world, whole_org=False).org is None


def test_min_group_follows_the_setting(adoption_world, settings):
    settings.ADOPTION_MIN_GROUP = 4
    four = _report(adoption_world).teams[1]
    assert four.shown
    assert _week(four, "2026-W45").rate == pytest.approx(2 / 4)  # q1 and p5
