"""Ask, hand off, answer, rate (the knowledge base itself is kept in `knowledge`).

The index is built from the published entries and the plan's measures and kept per process; every
knowledge-base change bumps a generation counter in the database, and the next question in any
process sees the new generation and the process rebuilds (`chunfeng.preload`: once, under a lock).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from chunfeng.bounds import TEXT, length_problem
from chunfeng.consult import policy
from chunfeng.consult.embeddings import load_encoder
from chunfeng.consult.errors import ConsultConflict, ConsultInvalid, ConsultNotFound
from chunfeng.consult.index import NATIONAL, RERANK_DEPTH, Doc, Hit, Index
from chunfeng.consult.models import ConsultQuery, Handoff, KbEntry, KbGeneration
from chunfeng.consult.places import region_named
from chunfeng.consult.tokenize import shared_tokenizer
from chunfeng.credit import incentives as credit_incentives
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure, PlanNotice
from chunfeng.plan.services import latest_notice_id
from chunfeng.preload import Preloaded

# Below this confidence the machine says it is unsure and a person takes over. First chosen (0.30) on the development
# half of the project's own evaluation set; on real taxpayer wording a wrong first answer scored as high as a right
# one, so more conditions now decide with it (see `clear`). They are chosen together on the real-phrasing development
# set (bench/data/real_phrasings_dev.jsonl, 181 questions); bench/consult_real.py reports them on the held-out part.
# Fifth round (`bench/consult_real.py --fit` prints the grid's choice and its five-fold check): the grid over
# confidence × coverage × margin × the margin an entry asking something else needs, taking the rule that answers the
# most questions rightly at 94 % development precision or more — four points above the target, because chosen at
# 90 % the five-fold check (chosen on four fifths, scored on the fifth left out) falls to 89 %, and the held-out set
# has more questions no entry answers (26 % against 19 %). Chosen: 0.20 / 0.75 / 0.08 / 0.40 — development 95.0 % at
# 66.9 % coverage, five-fold 93.3 % at 65.7 % (the third round's 0.26 / 0.75 / 0.20 with the aspect required: 95.6 %
# at 49.7 % before this round's ranking, 97.1 % at 57.5 % after it). Measured once on the held-out part after the
# choice: 82.8 % at 36.2 % (the previous rule and ranking 92.0 % at 31.2 %) — below the target; see the README.
# Then, with the fifth round's knowledge entries merged, the held-out labels extended (blind to the answers given) to
# the new entries that answer their questions rightly, and the coverage threshold chosen on the held-out part as the
# issue asks ("measure precision against the threshold on the held-out real set and choose the threshold for at least
# 90 %"): 0.75 → 0.80, the one change of the grid with held-out precision ≥ 90 % and the most coverage — held-out
# 92.6 % at 33.8 %, development 97.5 % at 67.4 %. Held-out figures are now partly fitted: a new real set is needed.
# Sixth round: that held-out part retired into development (261 questions) and a fresh real set made the held-out part
# (bench/data/real_phrasings_fresh.jsonl, labelled blind); refitted on development alone by `--fit` (floor 94 %):
# 0.30 / 0.50 / 0.15 / 0.40 — development 94.3 % at 67.0 %, five-fold 91.8 % at 69.7 %. Adopted as the procedure
# says, before the fresh part was measured with it.
# Seventh round (issue 15, on wording the rule was not fitted on): the fresh part, too, retired into development, and
# `--fit` now also chooses each rule on two of the three development files and scores it on the third (leave one set
# out: other pages, other hands — what five-fold, mixing the files, hid). The rule above scored 71.7 % there on the
# fresh file. Two signals were added from the development misses, and the fit may switch each off: a first entry not
# about a subject the question names (OTHER_SUBJECT_HANDS_OFF) and a national entry asked for a place's amount that
# each province sets (LOCAL_AMOUNT_HANDS_OFF). The floor was chosen the same way: of 90–98 %, 96 % gives the best
# leave-one-set-out precision with a rule chosen for every file (93.8 % at 50.4 %; 94 %: 85.6 %; at 97 % and 98 % two
# files alone reach no rule). Chosen on all 387 at 96 %: 0.20 / 0.70 / 0.15 / 0.30, both signals on — development
# 96.4 % at 50.1 %, five-fold 94.3 % at 49.9 %, leave-one-set-out 99.1 / 94.4 / 79.1 % (the fresh file: 34 of 43).
# Refitted once the seventh round's 44 entries landed (still before the third held-out set was run), the floor now
# chosen by the issue's own criterion — the most coverage whose rules, chosen on two development files, keep at least
# 90 % on each third — rather than the best precision: 97 % (leave one set out 96.9 / 91.9 / 90.9 %, 94.5 % at 56.6 %
# over the three; 96 %: 89.5 % on the first retired file; 98 %: 97.1 % at 53.5 %). Chosen on all 387 at 97 %: 0.20 /
# 0.70 / 0.15 / 0.40, the subject signal on, the local-amount one off (it cost right answers at that floor) —
# development 97.2 % at 56.3 %, five-fold 95.0 % at 56.6 %.
HANDOFF_BELOW = 0.20
# The first answer must stand clear of the second: the gap between their rerank scores (index.Hit.rank).
MARGIN_BELOW = 0.15
# ... and speak of the question's own words: the rarity-weighted share of them it contains (index.Hit.covered).
COVERED_BELOW = 0.70
# An entry that asks something else than the question (an amount asked, a time answered: index.ASPECTS) answers only
# with a wider lead: "北京市居民医保缴费标准是多少钱一年" is not answered by when to pay, while "企业跨省迁移,税务变更需要
# 哪些审批?" is by the only entry on moving a business (index.Hit.aspect).
OTHER_ASPECT_MARGIN_BELOW = 0.40
# A first entry not about a subject the question names (index.Hit.subject: "自产农产品免征个税吗" answered by the VAT of
# farmers' produce), or a national entry asked for a place's amount that each province sets (index.Hit.local: "杭州社保
# 缴费基数是多少"), is not the answer, however confident and far ahead.
OTHER_SUBJECT_HANDS_OFF = True
LOCAL_AMOUNT_HANDS_OFF = False
MIN_QUESTION_CHARS = 4  # "税" or "办理" matches something fully and says nothing: ask a person
CHANNELS = {"web": "网页", "api": "接口", "cli": "命令行", "batch": "批量", "app": "移动端"}
# Words that make a question one about the action itself (what the bureau promised, how far it got): only those are
# answered by the plan's measures.
_ABOUT_THE_ACTION = re.compile(r"春风|行动|措施|举措|承诺|便民办税")

def about_the_action(query: str) -> bool:
    return bool(_ABOUT_THE_ACTION.search(query))


def clear(hits: list[Hit], *, confidence: float = HANDOFF_BELOW, covered: float = COVERED_BELOW,
          margin: float = MARGIN_BELOW, other_aspect_margin: float = OTHER_ASPECT_MARGIN_BELOW,
          other_subject: bool = OTHER_SUBJECT_HANDS_OFF, local_amount: bool = LOCAL_AMOUNT_HANDS_OFF) -> bool:
    """Is the first answer clearly the right one: about what the question names, confident enough, speaking of the
    question's words, and ahead of the second by a margin — a wider one when it asks something else than the question
    (an amount, a time, a way …: index.ASPECTS)? The thresholds are parameters only so that bench/consult_real.py
    --fit can search them."""
    if not hits or hits[0].confidence < confidence or hits[0].covered < covered:
        return False
    if (other_subject and not hits[0].subject) or (local_amount and hits[0].local):
        return False
    return len(hits) < 2 or hits[0].rank - hits[1].rank >= (margin if hits[0].aspect else other_aspect_margin)


def too_short(query: str) -> bool:
    return len(re.findall(r"[\w\u4e00-\u9fff]", query)) < MIN_QUESTION_CHARS


def generation(session: Session) -> int:
    return session.scalar(select(KbGeneration.value).where(KbGeneration.id == 1)) or 0


def bump_generation(session: Session) -> None:
    if session.execute(update(KbGeneration).where(KbGeneration.id == 1).values(value=KbGeneration.value + 1)).rowcount == 0:
        session.add(KbGeneration(id=1, value=1))
    session.flush()


def documents(session: Session) -> list[Doc]:
    docs = [Doc(e.key, "kb", e.question, e.answer, basis=" ".join(filter(None, [e.basis, e.article])), region=e.region,
                effective_from=e.effective_from, effective_until=e.effective_until, tags=e.tag_list,
                phrasings=e.phrasing_list)
            for e in session.scalars(select(KbEntry).where(KbEntry.status == "published").order_by(KbEntry.id))]
    notice = session.scalar(select(PlanNotice).where(PlanNotice.id == latest_notice_id()))
    if notice is not None:
        rows = session.execute(select(PlanMeasure, PlanItem.name, PlanCategory.name)
                               .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                               .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                               .where(PlanMeasure.notice_id == notice.id).order_by(PlanMeasure.no))
        asked = measure_phrasings(notice.doc_number)
        for measure, item, category in rows:
            # A measure's own words are what people ask about, and so are the everyday words for its service.
            # It answers as what it is: a commitment of that year's action ("压缩至6个工作日以内"), not a rule,
            # and ranks below a current knowledge entry on the same subject (index.MEASURE_PENALTY).
            docs.append(Doc(f"measure:{measure.no}", "measure", f"春风行动2.0版第{measure.no}条措施:{item}",
                            f"{notice.issued.year}年春风行动措施:{measure.text}",
                            basis=f"{notice.doc_number} 附件第{measure.no}条", measure_no=measure.no,
                            year=notice.issued.year, tags=[category, item],
                            phrasings=[measure.text] + ([measure.new_title] if measure.new_title else [])
                            + asked.get(str(measure.no), [])))
    # What each credit level earns (measures 119, 121), from the credit domain's data: the answer names its basis
    # and says which items await review.
    docs += [Doc(d["ref"], "credit", d["title"], d["answer"], basis=d["basis"], tags=["纳税信用"], phrasings=d["phrasings"])
             for d in credit_incentives.consult_documents()]
    return docs


@cache
def measure_phrasings(doc_number: str) -> dict[str, list[str]]:
    """How people ask about each measure of the shipped notice (sample content written for this project);
    another notice has none until its own are written."""
    shipped = json.loads(resources.files("chunfeng.consult").joinpath("data", "measure_phrasings.json").read_text("utf-8"))
    return shipped["phrasings"] if shipped["notice"] == doc_number else {}


def _index_stamp(session: Session) -> tuple:
    # The counter alone can come back to a number a process has cached when the tables are emptied and refilled
    # (a restore of an older backup; the test fixture): the newest change's time tells those apart.
    return (generation(session), *session.execute(select(func.max(KbEntry.updated_at), latest_notice_id())).one())


def _build_index(session: Session, key: tuple[str, str]) -> Index | None:
    docs, model = documents(session), key[1]
    return Index(docs, shared_tokenizer(), encoder=load_encoder(model) if model else None) if docs else None


# One per process: built at a web process's start (web/readiness.py), then rebuilt when the knowledge base changes.
INDEXES: Preloaded[Index] = Preloaded("consult", _index_stamp, _build_index)


def index_for(session: Session, *, embedding_model: str = "", stale_seconds: float = 0.0) -> Index | None:
    """This process's index of the database behind `session`, rebuilt when the knowledge base changed (a public
    page passes `stale_seconds`, setting index_stale_seconds: it is answered from the previous index meanwhile).
    With an embedding model (setting consult_embedding_model, passed by the page or command), the dense stage
    joins the rerank."""
    return INDEXES.get(session, (str(session.get_bind().url), embedding_model), stale_seconds=stale_seconds)


@dataclass
class Answer:
    query_id: int | None
    query: str
    hits: list[Hit]
    handoff: bool
    handoff_id: int | None = None
    region: str = NATIONAL  # the asker's, or the one the question names
    token: str = ""  # given to the asker alone: it rates this answer or asks a person (see `_asked`)

    def as_dict(self) -> dict:
        return {"query": self.query, "query_id": self.query_id, "token": self.token, "handoff": self.handoff,
                "region": self.region,
                "answers": [{"id": h.doc.ref, "source": h.doc.source, "measure_no": h.doc.measure_no, "title": h.doc.title,
                             "answer": h.doc.answer, "basis": h.doc.basis, "score": round(h.score, 4),
                             "confidence": round(h.confidence, 4),
                             "effective_from": h.doc.effective_from.isoformat() if h.doc.effective_from else None,
                             "effective_until": h.doc.effective_until.isoformat() if h.doc.effective_until else None,
                             "current": h.current, "year": h.doc.year}
                            for h in self.hits]}


def ask(*, session: Session, query: str, region: str = NATIONAL, channel: str = "web", k: int = 3,
        today: date | None = None, log: bool = True, index: Index | None = None, embedding_model: str = "") -> Answer:
    """Answer a question best first; `handoff` says a person should answer it (the asker then asks for one with
    `request_handoff`). Logged unless `log` is off; a logged answer carries the asker's token."""
    query = " ".join(query.split())
    if not query:
        raise ConsultInvalid("请输入问题")
    if len(query) > 500:
        raise ConsultInvalid("问题太长了,请控制在 500 字以内")
    if channel not in CHANNELS:
        raise ConsultInvalid(f"未知渠道“{channel}”")
    if region != NATIONAL:
        region = _known_region(session, region)
    index = index or index_for(session, embedding_model=embedding_model)
    # Logged and handed off under the region the question names, when the asker chose none.
    region = region_named(query) or NATIONAL if region == NATIONAL else region
    hits = index.search(query, region=region, today=today, k=max(k, RERANK_DEPTH)) if index else []
    if not about_the_action(query):
        # A taxpayer's operational question is answered from the knowledge base or by a person, never by what the
        # 2022 action promised ("年度退税多久到账" is not answered by measure 54's export-refund target).
        hits = [h for h in hits if h.doc.source != "measure"]
    hits = hits[:k]
    handoff = too_short(query) or not clear(hits)
    answer = Answer(None, query, hits, handoff, region=region)
    if log:
        answer.token = secrets.token_urlsafe(16)
        record = ConsultQuery(text=query, region=region, channel=channel, top_ref=hits[0].doc.ref if hits else "",
                              top_tags=",".join(hits[0].doc.tags) if hits else "",
                              confidence=hits[0].confidence if hits else 0.0, handoff=handoff,
                              token_digest=_digest(answer.token))
        session.add(record)
        session.flush()
        answer.query_id = record.id
    return answer


def _known_region(session: Session, region: str) -> str:
    """A region is a bureau's code (what regional entries and the analytics' scoping are keyed by): a district
    code becomes its nearest known bureau's; anything else is refused."""
    region = (region or "").strip()
    if not re.fullmatch(r"\d{6}", region):
        raise ConsultInvalid(f"地区“{region[:20]}”无效:应为 national(全国)或 6 位地区代码")
    unit = policy.handoff_unit(session, region)
    return NATIONAL if unit.level == "national" else unit.code


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _asked(session: Session, query_id: int, token: str) -> ConsultQuery:
    """The logged question, for the one who asked it: query ids are sequential, so the id alone proves nothing;
    the token went to the asker with the answer and only its digest is kept."""
    record = session.get(ConsultQuery, query_id)
    if record is None:
        raise ConsultNotFound(f"没有编号为 {query_id} 的咨询记录")
    if not record.token_digest or not hmac.compare_digest(record.token_digest, _digest(token or "")):
        raise Forbidden("只有提问人可以评价或转人工:凭证无效,请重新提问")
    return record


def give_feedback(*, session: Session, query_id: int, token: str, helpful: bool) -> None:
    record = _asked(session, query_id, token)
    if record.feedback:
        raise ConsultConflict("这个回答已经评价过了")
    record.feedback = "helpful" if helpful else "not_helpful"


def request_handoff(*, session: Session, query_id: int, token: str) -> Handoff:
    """转人工: the asker hands the question to the 12366 agents of its region's bureau (consult.policy), once."""
    record = _asked(session, query_id, token)
    if session.scalar(select(Handoff.id).where(Handoff.query_id == record.id)):
        raise ConsultConflict("这个问题已经转给人工坐席了,请耐心等待答复")
    item = Handoff(query_id=record.id, text=record.text, region=record.region,
                   unit_id=policy.handoff_unit(session, record.region).id)
    session.add(item)
    session.flush()
    return item


def handoff_for_asker(*, session: Session, query_id: int, token: str) -> Handoff:
    """The asker's own handed-off question and, once a person answered, the answer (the follow-up link)."""
    record = _asked(session, query_id, token)
    item = session.scalar(select(Handoff).where(Handoff.query_id == record.id))
    if item is None:
        raise ConsultNotFound("这个问题没有转人工")
    return item


# --- the agents' side ---------------------------------------------------------------------------


def handoff_queue(*, session: Session, actor: Actor, state: str = "waiting", page: int = 1,
                  per_page: int = 30) -> Page[Handoff]:
    authorize(actor, "consult.agent")
    where = [Handoff.state == state, policy.handoffs_within(actor)]
    return paginate(session, select(Handoff).join(Unit, Handoff.unit_id == Unit.id).where(*where)
                    .order_by(Handoff.created_at, Handoff.id), page, per_page)


def answer_handoff(*, session: Session, actor: Actor, handoff_id: int, answer: str) -> Handoff:
    if problem := length_problem(answer, "答复", TEXT):
        raise ConsultInvalid(problem, field="answer")
    item = policy.access_handoff_by_id(session, actor, handoff_id)
    if item.state != "waiting":
        # An answer is what the asker was told: a second agent must not replace it unnoticed.
        raise ConsultConflict(f"这个问题已由 {item.agent} 答复,不能再次答复")
    if not answer.strip():
        raise ConsultInvalid("答复内容不能为空", field="answer")
    before = {"state": item.state, "answer": item.answer}
    item.state, item.answer, item.agent, item.answered_at = "answered", answer.strip(), actor.username, utcnow()
    session.flush()
    audit.record(session, actor=actor, action="consult.handoff.answered", object_type="handoff", object_id=item.id,
                 before=before, after={"state": item.state, "answer": item.answer})
    return item
