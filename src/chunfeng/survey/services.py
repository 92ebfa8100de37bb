"""Questionnaires: import from a spreadsheet (all or nothing), versions, publishing and one-time invitations. The
public answering is `survey.answering`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.errors import ValidationFailed
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.survey import policy
from chunfeng.survey.errors import SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import (
    KINDS,
    SCALES,
    Survey,
    SurveyInvitation,
    SurveyQuestion,
    matrix_choices,
    row_code,
)
from chunfeng.tabular import TableLimits, listed_problems, read_table

COLUMNS = {
    "code": ("题号", "code"),
    "kind": ("题型", "kind", "type"),
    "text": ("题目", "question", "text"),
    "options": ("选项", "options"),
    "rows": ("子项", "矩阵子项", "rows"),
    "required": ("必答", "required"),
    "show_if": ("显示条件题号", "show_if"),
    "show_values": ("显示条件选项", "show_values"),
}
KIND_WORDS = {"单选": "single", "单选题": "single", "多选": "multi", "多选题": "multi", "量表": "scale", "满意度": "scale",
              "nps": "nps", "推荐度": "nps", "净推荐值": "nps", "矩阵": "matrix", "矩阵题": "matrix", "矩阵量表": "matrix",
              "填空": "text", "文本": "text", "填空题": "text", **{k: k for k in KINDS}}
YES, NO = {"是", "y", "yes", "1", "必答", "true"}, {"", "否", "n", "no", "0", "false"}
MAX_OPTIONS, MAX_OPTION_CHARS, MAX_TEXT_ANSWER, MAX_QUESTIONS = 50, 200, 2000, 200
MAX_ROWS = 20  # a matrix's rows: a row's answer key (row_code) must still fit a question code's 16 characters
MAX_MATRIX_CODE = 16 - len(row_code("", MAX_ROWS))
MAX_INVITATIONS = 1000  # per request: a bigger list goes through the outbox, which is not built yet


def split_values(cell: str) -> list[str]:
    """Options in one cell: separated by |, ;, ; or line breaks (never by commas, which an option may hold)."""
    for sep in ("|", "|", ";", ";", "\r\n", "\r"):
        cell = cell.replace(sep, "\n")
    return [part.strip() for part in cell.split("\n") if part.strip()]


@dataclass
class QuestionSpec:
    code: str
    kind: str
    text: str
    options: list[str] = field(default_factory=list)
    required: bool = False
    show_if: str = ""
    show_values: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)

    @property
    def choices(self) -> list[str]:
        return matrix_choices(self.options) if self.kind == "matrix" else SCALES.get(self.kind, self.options)

    def as_values(self) -> dict[str, str]:
        """The question as the cells (or form fields) it would be typed in, so a stored question is checked by the
        same rules as a typed one."""
        return {"code": self.code, "kind": self.kind, "text": self.text, "options": "|".join(self.options),
                "rows": "|".join(self.rows), "required": "是" if self.required else "否", "show_if": self.show_if,
                "show_values": "|".join(self.show_values)}


def spec_of(q: SurveyQuestion) -> QuestionSpec:
    return QuestionSpec(q.code, q.kind, q.text, list(q.options), q.required, q.show_if, list(q.show_values),
                        list(q.rows))


def _check_list(name: str, items: list[str], *, most: int) -> str | None:
    if len(set(items)) < 2:
        return f"至少要有两个不同的{name},用“|”分隔"
    if len(set(items)) != len(items):
        return f"有重复的{name}"
    if len(items) > most or any(len(o) > MAX_OPTION_CHARS for o in items):
        return f"最多 {most} 个{name},每个不超过 {MAX_OPTION_CHARS} 字"
    return None


def check_questions(typed: list[dict[str, str]]) -> tuple[list[QuestionSpec], list[tuple[int, str, str]]]:
    """The questions typed (a spreadsheet's rows, or the builder's questions with the one being edited), in order,
    as specs, and every problem as (index, field, message). The one set of rules of a questionnaire: the import
    and the page that builds one both check here."""
    problems: list[tuple[int, str, str]] = []
    specs: list[QuestionSpec] = []
    seen: dict[str, QuestionSpec] = {}
    for i, v in enumerate(typed):
        def problem(name: str, message: str, i=i) -> None:
            problems.append((i, name, message))
        code = v.get("code", "").strip()
        kind = KIND_WORDS.get(v.get("kind", "").strip().lower())
        text = v.get("text", "").strip()
        options = split_values(v.get("options", ""))
        rows = split_values(v.get("rows", ""))
        required_word = v.get("required", "").strip().lower()
        show_if = v.get("show_if", "").strip()
        show_values = split_values(v.get("show_values", ""))
        if not code:
            problem("code", "不能为空")
        elif len(code) > 16:
            problem("code", f"“{code[:20]}”超过 16 个字符")
        elif '"' in code or "\\" in code:  # the analysis names it in a JSON path (analysis.Answers), which cannot quote them
            problem("code", f"“{code}”不能含双引号或反斜杠")
        elif code in seen:
            problem("code", f"“{code}”与前面的题重复")
        elif kind == "matrix" and len(code) > MAX_MATRIX_CODE:
            problem("code", f"矩阵题的题号不超过 {MAX_MATRIX_CODE} 个字符(各子项的答案记在“题号.序号”下)")
        if kind is None:
            problem("kind", f"“{v.get('kind', '')}”不是可用的题型(单选、多选、量表、NPS、矩阵、填空)")
        if not text:
            problem("text", "不能为空")
        if kind in ("single", "multi"):
            if wrong := _check_list("选项", options, most=MAX_OPTIONS):
                problem("options", f"{KINDS[kind]}题{wrong}" if wrong.startswith("至少") else wrong)
        elif kind == "matrix":
            if options and (wrong := _check_list("选项", options, most=MAX_OPTIONS)):
                problem("options", f"矩阵题的共用选项:{wrong}(留空则按 1–5 分评价)")
            if wrong := _check_list("子项", rows, most=MAX_ROWS):
                problem("rows", f"矩阵题{wrong}" if wrong.startswith("至少") else wrong)
        elif kind is not None and options:
            fixed = "固定为 " + "–".join(SCALES[kind][::len(SCALES[kind]) - 1]) if kind in SCALES else "没有选项"
            problem("options", f"{KINDS[kind]}题{fixed},此列应留空")
        if kind not in ("matrix", None) and rows:
            problem("rows", "只有矩阵题有子项,此列应留空")
        if required_word not in YES | NO:
            problem("required", f"“{v.get('required', '')}”应为“是”或“否”")
        if show_if:
            parent = seen.get(show_if)
            if parent is None:
                problem("show_if", f"“{show_if}”不是前面的题(条件只能引用排在前面的题)")
            elif parent.kind in ("text", "matrix"):
                problem("show_if", f"“{show_if}”是{KINDS[parent.kind]}题,不能作为显示条件")
            elif not show_values:
                problem("show_values", "填写了条件题号,还要写明哪些选项时显示本题")
            elif unknown := [x for x in show_values if x not in parent.choices]:
                problem("show_values", f"“{'、'.join(unknown)}”不是题 {show_if} 的选项")
        elif show_values:
            problem("show_values", "没有填写显示条件题号")
        spec = QuestionSpec(code, kind or "", text, options if kind in ("single", "multi", "matrix") else [],
                            required_word in YES, show_if, show_values if show_if else [],
                            rows if kind == "matrix" else [])
        if code and code not in seen:
            seen[code] = spec
        specs.append(spec)
    # A matrix row's answer is kept under "code.n": no question may have that code.
    keys = {row_code(q.code, n): q.code for q in specs if q.kind == "matrix" for n in range(1, len(q.rows) + 1)}
    for i, q in enumerate(specs):
        if q.code in keys:
            problems.append((i, "code", f"“{q.code}”与矩阵题 {keys[q.code]} 的子项答案编号相同,请换一个题号"))
    if len(typed) > MAX_QUESTIONS:
        problems.append((len(typed) - 1, "form", f"共 {len(typed)} 道题,超过上限 {MAX_QUESTIONS} 道"))
    return specs, sorted(problems, key=lambda p: p[0])


def parse_questionnaire(path: Path, *, limits: TableLimits) -> list[QuestionSpec]:
    """The questions of a spreadsheet, one row each, every problem found named by row and column; nothing is
    returned unless every row is right. A matrix question lists its rows in the column 子项 (“办税服务厅|12366|
    电子税务局”) and its shared options in 选项, or leaves 选项 empty to be rated 1–5."""
    path = Path(path)
    rows = read_table(path, COLUMNS, required={"code", "kind", "text"}, limits=limits)
    specs, found = check_questions([row.values for row in rows])
    problems = [f"第 {rows[i].number} 行 {COLUMNS[name][0]}:{message}" if name in COLUMNS else message
                for i, name, message in found]
    if not rows:
        problems.append("没有任何题目(第 1 行为表头,题目从第 2 行起)")
    if problems:
        raise ValidationFailed(f"{path.name}:问卷有 {len(problems)} 处问题,未导入任何题目",
                               listed_problems(problems, limits))
    return specs


def import_questionnaire(*, session: Session, actor: Actor, title: str, questions: list[QuestionSpec],
                         unit_code: str = "", intro: str = "", edit_of: int | None = None,
                         action: str = "survey.questionnaire.imported") -> Survey:
    """A new questionnaire, or a new content for `edit_of`: a draft is changed in place; a published or closed
    version stays frozen and the content becomes the series' next version (a draft). `action`: what the audit
    log calls it (the builder makes an empty draft and the next version through here too)."""
    title = check_title(title)
    if edit_of is not None:
        base = get_survey(session=session, actor=actor, survey_id=edit_of)
        if refused := policy.manage_refusal(actor, base):
            raise refused
        if base.state == "draft":
            survey = base
            before = {"title": survey.title, "questions": len(survey.questions)}
            session.query(SurveyQuestion).filter(SurveyQuestion.survey_id == survey.id).delete()
            survey.title, survey.intro = title, intro
        else:
            latest = session.scalar(select(func.max(Survey.version)).where(Survey.series == base.series)) or 0
            draft = session.scalar(select(Survey).where(Survey.series == base.series, Survey.state == "draft"))
            if draft is not None:
                raise SurveyInvalid(f"这份问卷已有草稿(第 {draft.version} 版),请在草稿上修改")
            survey = Survey(series=base.series, version=latest + 1, title=title, intro=intro, unit_id=base.unit_id,
                            created_by=actor.username)
            session.add(survey)
            before = {"version": base.version}
    else:
        unit = find_unit(session=session, code=unit_code) if unit_code else (
            find_unit(session=session, code=actor.unit_code) if isinstance(actor, SystemActor) else actor.unit)
        authorize(actor, "survey.manage", unit)
        survey = Survey(series=uuid.uuid4().hex, version=1, title=title, intro=intro, unit_id=unit.id,
                        created_by=actor.username)
        session.add(survey)
        before = None
    session.flush()
    for position, q in enumerate(questions, start=1):
        session.add(SurveyQuestion(survey_id=survey.id, position=position, code=q.code, kind=q.kind, text=q.text,
                                   options=q.options, required=q.required, show_if=q.show_if, show_values=q.show_values,
                                   rows=q.rows))
    session.flush()
    session.expire(survey, ["questions"])
    audit.record(session, actor=actor, action=action, object_type="survey",
                 object_id=survey.id, before=before,
                 after={"title": title, "version": survey.version, "questions": len(questions)})
    return survey


def check_title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > 200:
        raise SurveyInvalid("问卷标题:不能为空,且不超过 200 字", field="title")
    return title


def get_survey(*, session: Session, actor: Actor, survey_id: int) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise SurveyNotFound(f"没有编号为 {survey_id} 的问卷")
    if refused := policy.view_refusal(actor, survey):
        raise refused
    return survey


def list_surveys(*, session: Session, actor: Actor, q: str = "", page: int = 1, per_page: int = 30) -> Page[Survey]:
    """The questionnaires of the actor's subtree, every version, newest first."""
    authorize(actor, "survey.view")
    where = [subtree_filter(actor)]
    if q.strip():
        where.append(Survey.title.like(f"%{q.strip()}%"))
    return paginate(session, select(Survey).join(Unit, Survey.unit_id == Unit.id).where(*where)
                    .order_by(Survey.created_at.desc(), Survey.id.desc()), page, per_page)


def versions(session: Session, survey: Survey) -> list[Survey]:
    return list(session.scalars(select(Survey).where(Survey.series == survey.series).order_by(Survey.version)))


def publish(*, session: Session, actor: Actor, survey_id: int) -> Survey:
    """Freeze a draft and open it to answers; an earlier published version of the same questionnaire closes (its
    link and invitations stop taking answers), so one version at a time is answered."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.publish_refusal(actor, survey):
        raise refused
    if not survey.questions:
        raise SurveyInvalid("问卷没有题目,不能发布")
    closed = session.execute(update(Survey).where(Survey.series == survey.series, Survey.state == "published")
                             .values(state="closed")).rowcount
    survey.state, survey.published_at, survey.link = "published", utcnow(), secrets.token_urlsafe(24)
    audit.record(session, actor=actor, action="survey.questionnaire.published", object_type="survey",
                 object_id=survey.id, after={"version": survey.version, "closed_earlier": closed})
    return survey


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invitations(*, session: Session, actor: Actor, survey_id: int, labels: list[str]) -> list[tuple[str, str]]:
    """One one-time token per label (whom it is for; may be empty): [(label, token)]. The tokens are shown this once
    and kept only as digests."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.invite_refusal(actor, survey):
        raise refused
    if not labels or len(labels) > MAX_INVITATIONS:
        raise SurveyInvalid(f"一次可生成 1 到 {MAX_INVITATIONS} 个邀请")
    made = []
    for label in labels:
        token = secrets.token_urlsafe(24)
        session.add(SurveyInvitation(survey_id=survey.id, token_digest=_digest(token), label=label.strip()[:200],
                                     created_by=actor.username))
        made.append((label.strip()[:200], token))
    audit.record(session, actor=actor, action="survey.invitations.created", object_type="survey", object_id=survey.id,
                 after={"count": len(made)})
    return made
