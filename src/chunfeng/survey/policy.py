"""Whether this official may act on this questionnaire: the one rule its page (to offer a button) and the services
(to refuse) share.

A questionnaire belongs to the unit that runs it; the officials of that unit and of every unit above it see it and
its results (survey.view), and those who manage surveys (survey.manage) edit it, publish it and invite to it. A
respondent is not an official: their only key is the link or the invitation token (see answering.resolve).
"""

from __future__ import annotations

from chunfeng.org.access import Actor, refusal
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import STATES, Survey


def view_refusal(actor: Actor, survey: Survey) -> Exception | None:
    return refusal(actor, "survey.view", survey.unit)


def manage_refusal(actor: Actor, survey: Survey) -> Exception | None:
    return refusal(actor, "survey.manage", survey.unit)


def publish_refusal(actor: Actor, survey: Survey) -> Exception | None:
    if refused := manage_refusal(actor, survey):
        return refused
    if survey.state != "draft":
        return SurveyInvalid(f"问卷第 {survey.version} 版当前为“{STATES[survey.state]}”,只有草稿可以发布")
    return None


def invite_refusal(actor: Actor, survey: Survey) -> Exception | None:
    if refused := manage_refusal(actor, survey):
        return refused
    if survey.state != "published":
        return SurveyInvalid(f"问卷第 {survey.version} 版当前为“{STATES[survey.state]}”,发布后才能生成邀请")
    return None


def may_view(actor: Actor, survey: Survey) -> bool:
    return view_refusal(actor, survey) is None


def may_manage(actor: Actor, survey: Survey) -> bool:
    return manage_refusal(actor, survey) is None


def may_publish(actor: Actor, survey: Survey) -> bool:
    return publish_refusal(actor, survey) is None


def may_invite(actor: Actor, survey: Survey) -> bool:
    return invite_refusal(actor, survey) is None
