"""Questionnaires: import from a spreadsheet (all or nothing), versions, publishing, one-time invitations, and the
public answering with its skip logic enforced here, on the server, whatever the page did or did not run."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.errors import ChunfengError, ValidationFailed
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.survey import policy
from chunfeng.survey.errors import SurveyConflict, SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import (
    KINDS,
    SCALES,
    Survey,
    SurveyInvitation,
    SurveyQuestion,
    SurveyResponse,
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


# --- answering (public) ---------------------------------------------------------------------------------


ANSWERED_ONCE = "这个邀请链接已经提交过答卷,每个邀请只能提交一次。感谢您的参与"


def resolve(session: Session, token: str) -> tuple[Survey, SurveyInvitation | None]:
    """The questionnaire a public token opens: an invitation's one-time token, or the open link. A draft is not
    public; a closed version and a used invitation are refused with a reason."""
    # The open link first: it is what fifty respondents at once come by, each of them one query instead of two.
    survey, invitation = session.scalar(select(Survey).where(Survey.link == token)), None
    if survey is None:
        invitation = session.scalar(select(SurveyInvitation).where(SurveyInvitation.token_digest == _digest(token)))
        survey = session.get(Survey, invitation.survey_id) if invitation is not None else None
    if survey is None or survey.state == "draft":
        raise SurveyNotFound("问卷链接无效:请核对链接是否完整")
    if survey.state == "closed":
        raise SurveyConflict("这份问卷已结束,不再接收答卷。感谢您的关注")
    if invitation is not None and invitation.answered_at is not None:
        raise SurveyConflict(ANSWERED_ONCE)
    return survey, invitation


@dataclass(frozen=True, eq=False)
class FrozenQuestion:
    """A published version's question as the public page and the answer check read it: plain values, shared by
    the process's requests (a published version's questions never change; builder.editable refuses)."""

    code: str
    kind: str
    text: str
    options: tuple
    required: bool
    show_if: str
    show_values: tuple
    rows: tuple
    choices: tuple


_PUBLISHED: dict[tuple[int, str], tuple[FrozenQuestion, ...]] = {}
PUBLISHED_KEPT = 256  # versions open at once are few: one per questionnaire


def public_questions(survey: Survey) -> tuple[FrozenQuestion, ...]:
    """The questions of a published (or closed) version, read from the database once per process: each public
    page and answer loaded and built them again (a query and its objects per request, at 50 respondents a
    second). Keyed by the version's id and its open link, drawn at random when it was published, so a database
    emptied or restored under a running process (ids reused) never meets another version's questions."""
    key = (survey.id, survey.link or "")
    found = _PUBLISHED.get(key)
    if found is None:
        if survey.state == "draft":  # a draft still changes: never kept
            return tuple(_frozen(q) for q in survey.questions)
        if len(_PUBLISHED) >= PUBLISHED_KEPT:
            _PUBLISHED.clear()
        found = _PUBLISHED[key] = tuple(_frozen(q) for q in survey.questions)
    return found


def _frozen(q: SurveyQuestion) -> FrozenQuestion:
    return FrozenQuestion(q.code, q.kind, q.text, tuple(q.options), q.required, q.show_if, tuple(q.show_values),
                          tuple(q.rows), tuple(q.choices))


class AnswerInvalid(SurveyInvalid):
    """Some answers are missing or not allowed: `problems` maps each question's code to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__(f"有 {len(problems)} 道题需要修改,请看题目下方的提示")


def shown(questions: list[SurveyQuestion], answers: dict) -> list[SurveyQuestion]:
    """The questions a respondent with these answers is shown: a question with a condition only when its earlier
    question was itself shown and answered with one of the listed options."""
    visible: list[SurveyQuestion] = []
    codes: set[str] = set()
    for q in questions:
        if q.show_if:
            given = answers.get(q.show_if)
            given = {str(x) for x in given} if isinstance(given, list) else {str(given)} if given is not None else set()
            if q.show_if not in codes or not given & set(q.show_values):
                continue
        visible.append(q)
        codes.add(q.code)
    return visible


def clean_answers(questions: list[SurveyQuestion], raw: dict[str, list[str]]) -> dict:
    """The answers to keep, from the form's fields (question code → the values sent): answers to questions the
    respondent is not shown are dropped, every answer must be one of its question's choices, required ones must
    be there. Raises AnswerInvalid naming each question that is wrong."""
    answers: dict = {}
    problems: dict[str, str] = {}
    visible: set[str] = set()
    for q in questions:
        if q not in shown(questions, answers):  # decided on the answers kept so far: conditions look backwards only
            continue
        visible.add(q.code)
        values = [v.strip() for v in raw.get(q.code, []) if v and v.strip()]
        if q.kind == "multi":
            picked = list(dict.fromkeys(values))
            if unknown := [v for v in picked if v not in q.choices]:
                problems[q.code] = f"“{unknown[0][:40]}”不是本题的选项"
            elif picked:
                answers[q.code] = picked
        elif q.kind == "matrix":
            if problem := _clean_matrix(q, raw, answers):
                problems[q.code] = problem
            continue
        elif q.kind == "text":
            if values and len(values[0]) > MAX_TEXT_ANSWER:
                problems[q.code] = f"回答不能超过 {MAX_TEXT_ANSWER} 字(现有 {len(values[0])} 字)"
            elif values:
                answers[q.code] = values[0]
        elif values:
            if len(set(values)) > 1 or values[0] not in q.choices:
                problems[q.code] = "请从给出的选项中选择一项"
            else:
                answers[q.code] = int(values[0]) if q.kind in SCALES else values[0]
        if q.required and q.code not in answers and q.code not in problems:
            problems[q.code] = "此题为必答题"
    if problems:
        raise AnswerInvalid(problems)
    return answers


def _clean_matrix(q: SurveyQuestion, raw: dict[str, list[str]], answers: dict) -> str | None:
    """A matrix's rows into `answers`, each under its own key (row_code); what is wrong, naming the rows."""
    missing, wrong = [], []
    for n, label in enumerate(q.rows, start=1):
        values = [v.strip() for v in raw.get(row_code(q.code, n), []) if v and v.strip()]
        if not values:
            missing.append(label)
        elif len(set(values)) > 1 or values[0] not in q.choices:
            wrong.append(label)
        else:
            answers[row_code(q.code, n)] = values[0] if q.options else int(values[0])
    if wrong:
        return f"“{'”“'.join(wrong)}”:请从给出的选项中选择一项"
    if q.required and missing:
        return f"此题为必答题,每一项都要选择;还没有回答:{'、'.join(missing)}"
    return None


def submit(*, session: Session, token: str, raw: dict[str, list[str]]) -> SurveyResponse:
    """Record one response. An invitation is claimed by a conditional update in this transaction: of two submits
    racing with the same token, the second finds it claimed (PostgreSQL re-reads the row after the first commits)
    and is refused; the unique invitation id of a response is the last guard."""
    survey, invitation = resolve(session, token)
    answers = clean_answers(list(public_questions(survey)), raw)
    if invitation is not None:
        _claim(session, invitation)
    response = SurveyResponse(survey_id=survey.id, invitation_id=invitation.id if invitation else None, answers=answers,
                              stratum=invitation.stratum if invitation else None)
    session.add(response)
    try:
        session.flush()
    except IntegrityError:
        raise SurveyConflict(ANSWERED_ONCE) from None
    return response


def _claim(session: Session, invitation: SurveyInvitation) -> None:
    claimed = session.execute(update(SurveyInvitation).where(SurveyInvitation.id == invitation.id,
                                                             SurveyInvitation.answered_at.is_(None))
                              .values(answered_at=utcnow())).rowcount
    if claimed != 1:
        raise SurveyConflict(ANSWERED_ONCE)


def submit_many(*, session: Session, answers: list[tuple[str, dict[str, list[str]]]]) -> list[int | Exception]:
    """Several responses in the session's transaction (the answers that waited for the writer together): for each,
    its response id, or its refusal (AnswerInvalid, a closed survey, an invitation already answered), which
    changes nothing for the others. Checked one by one as `submit` checks, the open link looked up once, and
    written by one bulk INSERT (multi-row on PostgreSQL; on SQLite one compiled statement run row by row, to read
    back each answer's id in order) rather than an ORM flush each; if that INSERT fails, the group is undone and
    each answer written alone (`submit`, in a savepoint of its own), so no answer's error is another's."""
    try:
        with session.begin_nested():
            return _submit_together(session, answers)
    except Exception:  # retried one by one below, where each error stays with its answer
        pass
    outcomes: list[int | Exception] = []
    for token, raw in answers:
        try:
            with session.begin_nested():
                outcomes.append(submit(session=session, token=token, raw=raw).id)
        except Exception as exc:  # one respondent's error is theirs; a broken transaction fails the commit
            outcomes.append(exc)
    return outcomes


def _submit_together(session: Session, answers: list[tuple[str, dict[str, list[str]]]]) -> list[int | Exception]:
    outcomes: list[int | Exception | None] = [None] * len(answers)
    rows: list[dict] = []
    written: list[int] = []  # the answers' places whose row is in `rows`
    links: dict[str, Survey] = {}  # an open link's survey: the same for every answer of the group
    for place, (token, raw) in enumerate(answers):
        try:
            survey, invitation = (links[token], None) if token in links else resolve(session, token)
            if invitation is None:
                links[token] = survey
            cleaned = clean_answers(list(public_questions(survey)), raw)
            if invitation is not None:
                _claim(session, invitation)
        except ChunfengError as exc:
            outcomes[place] = exc
            continue
        rows.append({"survey_id": survey.id, "invitation_id": invitation.id if invitation else None,
                     "answers": cleaned, "stratum": invitation.stratum if invitation else None,
                     "submitted_at": utcnow()})
        written.append(place)
    if rows:
        ids = session.scalars(insert(SurveyResponse).returning(SurveyResponse.id, sort_by_parameter_order=True), rows)
        for place, response_id in zip(written, ids, strict=True):
            outcomes[place] = response_id
    return outcomes  # type: ignore[return-value]  # every place filled above
