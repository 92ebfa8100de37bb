"""Samples and invitations over HTTP: the preview of the strata, the draw by the previewed seed, invitations through
the push channels (an unconfigured one refused, nothing sent), the taxpayer's way from its message centre to its own
invitation (and not to another's), one answer per invitation, the opt-out page, reminders with their preview, the
strata export, and refusals outside the survey's subtree or without the right to manage it."""

from __future__ import annotations

import io
import re

import httpx
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.org.models import Unit, User
from chunfeng.push.models import PushMessage
from chunfeng.survey.sample_models import SurveyOptOut, SurveySample, SurveySampleMember
from tests.conftest import csrf_from, finished, login
from tests.web.test_push_pages import taxpayer_store  # noqa: F401  (the fixture: the server's store)
from tests.web.test_survey_pages import import_survey


def _publish(server, tmp_path) -> tuple[httpx.Client, int]:
    officer = login(server, "bj_officer")
    made = import_survey(officer, tmp_path)
    survey_id = int(re.search(r"/survey/(\d+)", made.headers["location"])[1])
    page = officer.get(f"/survey/{survey_id}").text
    assert officer.post(f"/survey/{survey_id}/publish", data={"csrf_token": csrf_from(page)}).status_code == 303
    assert 'id="sample-link"' in officer.get(f"/survey/{survey_id}").text
    return officer, survey_id


def test_a_sample_is_previewed_drawn_invited_answered_opted_out_and_reminded(db, server, tmp_path, add_users,
                                                                               taxpayer_store, _password_hash):  # noqa: F811
    add_users({"bj_officer": ("110000", ["service_officer"]), "bj_viewer": ("110000", ["viewer"]),
               "gd_officer": ("440000", ["service_officer"])})
    officer, survey_id = _publish(server, tmp_path)
    preview = officer.get(f"/survey/{survey_id}/sample", params={"preview": 1, "dimensions": "size", "size": 20,
                                                                 "seed": 77})
    assert preview.status_code == 200 and "将抽取 20 户" in preview.text and "按随机种子 77 抽取样本" in preview.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveySample)) == 0  # a preview draws nothing
    form = preview.text.split('id="draw-form"')[1]
    keys, quotas = re.findall(r'name="key" value="([^"]*)"', form), re.findall(r'name="quota"[^>]*value="(\d+)"', form)
    drawn = finished(officer, officer.post(f"/survey/{survey_id}/samples", data={
        "csrf_token": csrf_from(preview.text), "dimensions": ["size"], "size": "20", "seed": "77",
        "allocation": "proportional", "key": keys, "quota": quotas}))
    assert drawn.status_code == 200 and "已抽取 20 户" in drawn.text, drawn.text[:500]
    with db.read() as s:
        sample_id = s.scalar(select(SurveySample.id))
    page = officer.get(f"/survey/samples/{sample_id}")
    assert page.status_code == 200 and 'id="sample-seed">77<' in page.text and 'id="invite-form"' in page.text
    # A channel without a gateway is refused and nothing is sent.
    refused = finished(officer, officer.post(f"/survey/samples/{sample_id}/invite", data={
        "csrf_token": csrf_from(page.text), "channels": ["inapp", "sms"], "roles": ["法定代表人", "财务负责人", "办税人员"]}))
    assert refused.status_code == 400 and "尚未配置发送网关" in refused.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PushMessage)) == 0
    sent = finished(officer, officer.post(f"/survey/samples/{sample_id}/invite", data={
        "csrf_token": csrf_from(page.text), "channels": ["inapp"], "roles": ["法定代表人", "财务负责人", "办税人员"],
        "max_reminders": "2", "remind_after_days": "3"}))
    assert sent.status_code == 200 and "已发出邀请" in sent.text
    with db.write() as s:
        message = s.scalar(select(PushMessage).where(PushMessage.channel == "inapp").order_by(PushMessage.id).limit(1))
        member = s.scalar(select(SurveySampleMember).where(SurveySampleMember.credit_code == message.credit_code))
        other = s.scalar(select(SurveySampleMember).where(SurveySampleMember.id != member.id,
                                                          SurveySampleMember.invitation_id.is_not(None)).limit(1))
        beijing = s.scalar(select(Unit).where(Unit.code == "110000"))
        s.add(User(username="tp_invited", display_name="tp", unit=beijing, roles="taxpayer", password_hash=_password_hash,
                   taxpayer_code=message.credit_code, taxpayer_role=message.role))
        s.add(User(username="tp_other", display_name="tp2", unit=beijing, roles="taxpayer", password_hash=_password_hash,
                   taxpayer_code="91110000000000000X", taxpayer_role="法定代表人"))
        message_id, member_id, other_token = message.id, member.id, other.token
    taxpayer = login(server, "tp_invited")
    shown = taxpayer.get(f"/push/inbox/{message_id}")
    assert shown.status_code == 200 and f'href="/survey/invited/{member_id}"' in shown.text
    opened = taxpayer.get(f"/survey/invited/{member_id}")
    assert opened.status_code == 303 and opened.headers["location"] == f"/s/{member.token}"
    assert login(server, "tp_other").get(f"/survey/invited/{member_id}").status_code == 404  # not another's
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    form = public.get(f"/s/{member.token}")
    assert public.post(f"/s/{member.token}", data={"csrf_token": csrf_from(form.text), "Q1": "否"}).status_code == 303
    again = public.post(f"/s/{member.token}", data={"csrf_token": csrf_from(form.text), "Q1": "否"})
    assert again.status_code == 409 and "只能提交一次" in again.text
    stop = public.get(f"/s/{other_token}/stop")
    assert stop.status_code == 200 and 'id="stop"' in stop.text
    assert public.post(f"/s/{other_token}/stop", data={"csrf_token": csrf_from(stop.text)}).status_code == 303
    assert 'id="stopped"' in public.get(f"/s/{other_token}/stop").text
    assert public.get("/s/no-such-token/stop").status_code == 404
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyOptOut)) == 1
    reminders = officer.get(f"/survey/samples/{sample_id}/reminders")
    assert reminders.status_code == 200 and 'id="reminder-members">18 户' in reminders.text
    code = re.search(r'name="code" value="([^"]+)"', reminders.text)[1]
    done = officer.post(f"/survey/samples/{sample_id}/reminders", data={"csrf_token": csrf_from(reminders.text),
                                                                      "code": code})
    assert done.status_code == 303 and "reminded=" in done.headers["location"]
    with db.read() as s:
        reminded = set(s.scalars(select(PushMessage.credit_code).where(PushMessage.stage == "remind1")))
    assert member.credit_code not in reminded and other.credit_code not in reminded
    with db.read() as s:
        campaign_id = s.get(SurveySample, sample_id).campaign_id
    campaign = officer.get(f"/push/campaigns/{campaign_id}")  # the delivery side, as for any push
    assert campaign.status_code == 200 and "问卷邀请" in campaign.text and "问卷提醒(第 1 次)" in campaign.text
    export = officer.get(f"/survey/samples/{sample_id}/strata.xlsx")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert [c.value for c in sheet[1]][:3] == ["层", "名称", "抽样框(户)"] and sheet.max_row > 1
    # Outside the subtree, or without the right to manage surveys: refused.
    assert login(server, "gd_officer").get(f"/survey/samples/{sample_id}").status_code == 403
    viewer = login(server, "bj_viewer")
    assert viewer.get(f"/survey/samples/{sample_id}").status_code == 200
    assert viewer.get(f"/survey/samples/{sample_id}/reminders").status_code == 403


def test_a_sample_drawn_from_an_uploaded_list_previewed_drawn_and_invited(db, server, server_files, tmp_path, add_users,
                                                                          county, _password_hash):
    from chunfeng import files
    from chunfeng.org.models import AuditEntry
    from chunfeng.survey.sample_models import LIST_ROLE
    from tests.survey.test_list_sampling import listed, write_list

    add_users({"bj_officer": ("110000", ["service_officer"]), "bj_viewer": ("110000", ["viewer"]),
               "gd_officer": ("440000", ["service_officer"])})
    officer, survey_id = _publish(server, tmp_path)
    page = officer.get(f"/survey/{survey_id}/sample")
    assert page.status_code == 200 and 'id="list-form"' in page.text
    good = write_list(tmp_path, listed(60)).read_bytes()

    def upload(client, data, csrf=True, **fields):
        token = {"csrf_token": csrf_from(client.get("/survey").text)} if csrf else {}
        return client.post(f"/survey/{survey_id}/sample/list", data={**token, "size": "12", "seed": "99", **fields},
                           files={"file": ("来访名单.xlsx", data)})

    def count(model=SurveySample):
        with db.read() as s:
            return s.scalar(select(func.count()).select_from(model))

    assert upload(officer, good, csrf=False).status_code == 403  # no CSRF token
    preview = upload(officer, good, columns="规模")
    assert preview.status_code == 200, preview.text[:500]
    assert 'id="list-preview">预览:名单“来访名单.xlsx”共 60 户,分层列 规模,共 3 层,将抽取 12 户' in preview.text
    assert "按随机种子 99 从名单抽取样本" in preview.text and count() == 0  # a preview draws nothing
    form = preview.text.split('id="list-draw-form"')[1]
    fields = dict(re.findall(r'name="(digest|list_name)" value="([^"]*)"', form))
    keys, quotas = re.findall(r'name="key" value="([^"]*)"', form), re.findall(r'name="quota"[^>]*value="(\d+)"', form)
    staged = files.staged_upload(server_files, fields["digest"])
    assert staged.read_bytes() == good  # kept for the draw, by its digest
    draw_form = {"csrf_token": csrf_from(preview.text), **fields, "dimensions": ["规模"], "size": "12", "seed": "99",
                 "allocation": "proportional", "key": keys, "quota": quotas}
    viewer = login(server, "bj_viewer")
    assert viewer.post(f"/survey/{survey_id}/samples/list", data={
        **draw_form, "csrf_token": csrf_from(viewer.get("/survey").text)}).status_code == 403
    forged = officer.post(f"/survey/{survey_id}/samples/list", data={**draw_form, "digest": "../../taxpayers.duckdb"})
    assert forged.status_code == 400 and "请先上传名单并预览" in forged.text  # only a previewed list, by its digest
    drawn = finished(officer, officer.post(f"/survey/{survey_id}/samples/list", data=draw_form))
    assert drawn.status_code == 200 and "已从名单抽取 12 户(随机种子 99)" in drawn.text, drawn.text[:500]
    with db.read() as s:
        sample = s.scalar(select(SurveySample))
        assert (sample.source, sample.list_name, sample.drawn, sample.frame_total) == ("list", "来访名单.xlsx", 12, 60)
    assert not staged.exists()  # the list's other rows are not kept
    again = officer.post(f"/survey/{survey_id}/samples/list", data=draw_form)
    assert again.status_code == 400 and "请重新上传并预览" in again.text and count() == 1
    shown = officer.get(f"/survey/samples/{sample.id}")
    assert 'id="sample-list">名单“来访名单.xlsx”' in shown.text and 'id="list-contacts"' in shown.text
    sent = finished(officer, officer.post(f"/survey/samples/{sample.id}/invite", data={
        "csrf_token": csrf_from(shown.text), "channels": ["inapp"], "roles": ["办税人员"], "max_reminders": "2",
        "remind_after_days": "3"}))
    assert sent.status_code == 200 and "已发出邀请" in sent.text, sent.text[:500]
    with db.write() as s:
        assert set(s.scalars(select(PushMessage.role))) == {"办税人员"} and LIST_ROLE not in s.get(SurveySample, sample.id).roles
        assert s.scalar(select(func.count()).select_from(PushMessage)) == 12
        message = s.scalar(select(PushMessage).order_by(PushMessage.id).limit(1))
        member = s.scalar(select(SurveySampleMember).where(SurveySampleMember.credit_code == message.credit_code))
        s.add(User(username="tp_listed", display_name="tp", unit=s.scalar(select(Unit).where(Unit.code == "110000")),
                   roles="taxpayer", password_hash=_password_hash, taxpayer_code=message.credit_code,
                   taxpayer_role="办税人员"))
        message_id, member_id, token = message.id, member.id, member.token
    taxpayer = login(server, "tp_listed")  # the drawn taxpayer finds its invitation in its message centre
    assert f'href="/survey/invited/{member_id}"' in taxpayer.get(f"/push/inbox/{message_id}").text
    assert taxpayer.get(f"/survey/invited/{member_id}").headers["location"] == f"/s/{token}"
    # A bad file: each fault named by row and column, nothing written.
    rows = listed(10)
    rows[1][4], rows[3][6] = "12345", ""
    bad = upload(officer, write_list(tmp_path, rows).read_bytes())
    assert bad.status_code == 400 and 'id="list-error"' in bad.text and 'id="list-form"' in bad.text  # the page again
    assert "第 3 行 手机号码" in bad.text and "第 5 行 办税服务厅:分层列不能为空" in bad.text
    # A row of another province's unit: refused naming the row, audited as denied, nothing written.
    rows = listed(10)
    rows[6][1] = "440000"
    outside = upload(officer, write_list(tmp_path, rows).read_bytes())
    assert outside.status_code == 403 and 'id="list-error"' in outside.text
    assert "第 8 行 主管单位代码“440000”" in outside.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor == "bj_officer", AuditEntry.outcome == "denied")) == 1
    assert count() == 1
    # Another province's official, or one without the right to manage surveys: refused.
    assert upload(login(server, "gd_officer"), good).status_code == 403
    assert upload(login(server, "bj_viewer"), good).status_code == 403
