"""Stratified samples drawn from a list the official supplies (a service hall's visitors, a district's enterprises)
rather than from the taxpayer registry: the frame is the list, its strata the columns the file declares.

A list is an xlsx/CSV with one row per taxpayer or unit: its identifier (纳税人识别号, or a unit's code), the unit
in charge of it (主管单位代码: every row must lie in the official's subtree), optionally its name, a contact person,
a mobile number and an e-mail address, and any other column is a stratum column (规模, 行业, 办税服务厅 …). It is read
with the one tabular reader and is all of it or none of it: every fault named by its row and column, nothing
written. The allocation and the writing are the registry sample's (`sampling.allocate`, `sampling.record`); the draw
ranks each stratum's rows by md5(seed:identifier), so the same file and seed draw the same members, whatever the
order of its rows. Only the drawn members' contacts are kept (SM4), for their invitations.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.errors import ValidationFailed
from chunfeng.org.access import Actor, refusal
from chunfeng.org.models import Unit
from chunfeng.survey import sampling
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.sample_models import LIST_ROLE, SurveyListContact, SurveySample, SurveySampleMember
from chunfeng.tabular import TableLimits, listed_problems, read_table

COLUMNS = {
    "code": ("纳税人识别号", "统一社会信用代码", "识别号", "credit_code"),
    "unit": ("主管单位代码", "主管税务机关代码", "单位代码", "unit_code"),
    "name": ("名称", "纳税人名称", "单位名称", "name"),
    "person": ("联系人", "联系人姓名", "person"),
    "sms": ("手机号码", "手机号", "手机", "mobile"),
    "email": ("电子邮箱", "邮箱", "email"),
}
MAX_STRATUM_COLUMNS = 4  # the stratum key (values joined by |) must fit survey_stratum.key
MAX_VALUE = 28
# As many strata as the registry's four dimensions can make (36 × 4 × 20 × 2 = 5,760): a column of one value per row
# (a name, a date) would make a stratum of each row, a preview page of 200,000 rows and nothing to weight with.
MAX_STRATA = 6000
_CODE = re.compile(r"[0-9A-Za-z]{1,18}")  # a taxpayer identification number (15, 18 or 20 … kept to 18) or unit code
_MOBILE = re.compile(r"1\d{10}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class ListRow:
    number: int
    code: str
    unit: str
    strata: dict[str, str]
    name: str
    person: str
    contacts: dict[str, str]  # channel: address (inapp always: the message centre, by its code, keeps the name)

    def key(self, dimensions: list[str]) -> str:
        return "|".join(self.strata[d] for d in dimensions)


@dataclass
class SampleList:
    name: str
    digest: str  # SHA-256 of the file: recorded with the sample
    columns: list[str]  # the stratum columns the file declares, in its order
    rows: list[ListRow]

    def dimensions(self, chosen: list[str]) -> list[str]:
        """The stratum columns a sample uses: those chosen (every declared one when none is), in the file's order."""
        chosen = [d.strip() for d in chosen if d.strip()]
        if unknown := [d for d in chosen if d not in self.columns]:
            raise SurveyInvalid(f"名单中没有分层列“{'、'.join(unknown)[:60]}”(名单的分层列:"
                                f"{'、'.join(self.columns) or '无'})")
        return [c for c in self.columns if c in chosen] if chosen else list(self.columns)


def parse_list(path: Path, *, limits: TableLimits, name: str | None = None) -> SampleList:
    """The list in an xlsx/CSV file, every row checked; refused naming each bad row and column."""
    path = Path(path)
    name = name or path.name
    rows = read_table(path, COLUMNS, required={"code", "unit"}, limits=limits, others=True)
    columns = [c for c in (rows[0].values if rows else {}) if c not in COLUMNS]
    problems = []
    if len(columns) > MAX_STRATUM_COLUMNS:
        problems.append(f"分层列至多 {MAX_STRATUM_COLUMNS} 个,名单有 {len(columns)} 个({'、'.join(columns)[:80]})")
    if not rows:
        problems.append("名单没有任何行(第 1 行为表头,从第 2 行起每行一户)")
    found, first_row = [], {}
    for row in rows:
        v, bad = row.values, []
        code, unit = v["code"].strip(), v["unit"].strip()
        fault = bad.append  # (column, what is wrong)
        if not code:
            fault((COLUMNS["code"][0], "不能为空"))
        elif not _CODE.fullmatch(code):
            fault((COLUMNS["code"][0], f"“{code[:40]}”不是纳税人识别号或单位代码(至多 18 位字母和数字)"))
        elif code in first_row:
            fault((COLUMNS["code"][0], f"“{code}”与第 {first_row[code]} 行重复"))
        else:
            first_row[code] = row.number
        if not unit:
            fault((COLUMNS["unit"][0], "不能为空"))
        for column in columns:
            value = v[column].strip()
            if not value:
                fault((column, "分层列不能为空"))
            elif len(value) > MAX_VALUE or "|" in value:
                fault((column, f"“{value[:40]}”应为 {MAX_VALUE} 字以内且不含“|”"))
        contacts = {"inapp": ""}
        for channel, pattern, what in (("sms", _MOBILE, "手机号码"), ("email", _EMAIL, "电子邮箱")):
            address = v.get(channel, "").strip()
            if address and (not pattern.fullmatch(address) or len(address) > 200):
                fault((COLUMNS[channel][0], f"“{address[:40]}”不是{what}"))
            elif address:
                contacts[channel] = address
        problems += [f"第 {row.number} 行 {column}:{text}" for column, text in bad]
        if not bad:
            found.append(ListRow(row.number, code, unit, {c: v[c].strip() for c in columns},
                                 v.get("name", "").strip()[:200], v.get("person", "").strip()[:60], contacts))
    if problems:
        raise ValidationFailed(f"{name}:名单有 {len(problems)} 处问题,未抽取样本", listed_problems(problems, limits))
    return SampleList(name[:200], hashlib.sha256(path.read_bytes()).hexdigest(), columns, found)


def check_units(session: Session, actor: Actor, listing: SampleList) -> None:
    """Every row's unit exists and lies in the official's subtree, else refused naming the first row that is not
    (a unit outside the subtree: 403, named by its row and code, never by its name)."""
    first = {}
    for row in listing.rows:
        first.setdefault(row.unit, row.number)
    codes, units = list(first), {}
    for i in range(0, len(codes), 1000):
        units.update((u.code, u) for u in session.scalars(select(Unit).where(Unit.code.in_(codes[i:i + 1000]))))
    if missing := [c for c in codes if c not in units]:
        raise SurveyInvalid("没有这些代码的单位:" + "、".join(f"第 {first[c]} 行 {COLUMNS['unit'][0]}“{c[:32]}”"
                                                             for c in missing[:20]) + ";未抽取样本")
    for code in codes:
        if refused := refusal(actor, "survey.manage", units[code]):
            refused.args = (f"第 {first[code]} 行 {COLUMNS['unit'][0]}“{code}”:{refused};未抽取样本",)
            raise refused


def plan(listing: SampleList, *, dimensions: list[str], allocation: str, size: int = 0,
         quotas: dict[str, int] | None = None, seed: int | None = None) -> sampling.SamplePlan:
    """The strata of the list (by its stratum columns) and the quotas a draw would take."""
    dimensions = listing.dimensions(dimensions)
    sampling.check_design(allocation, seed)
    counts = sorted(Counter(row.key(dimensions) for row in listing.rows).items())
    if len(counts) > MAX_STRATA:
        raise SurveyInvalid(f"分层列 {'、'.join(dimensions)} 把名单分成 {len(counts):,} 层,超过上限 {MAX_STRATA:,} 层:"
                            "请少选分层列,或把取值合并成较少的类别")
    return sampling.allocate(counts, dimensions=dimensions, allocation=allocation, size=size, quotas=quotas,
                             seed=seed, label=lambda key: key.replace("|", " · ") if dimensions else "全部")


def members(listing: SampleList, p: sampling.SamplePlan) -> list[tuple[ListRow, str]]:
    """(row, stratum key) of the rows the plan draws: in each stratum the first `quota` by md5(seed:identifier) —
    the registry draw's order, so the file's row order does not matter."""
    quota = {s.key: s.quota for s in p.strata}
    by_key: dict[str, list[ListRow]] = {}
    for row in listing.rows:
        by_key.setdefault(row.key(p.dimensions), []).append(row)
    drawn = []
    for key in sorted(by_key):
        ranked = sorted(by_key[key], key=lambda r: (hashlib.md5(f"{p.seed}:{r.code}".encode()).hexdigest(), r.code))
        drawn += [(row, key) for row in ranked[:quota.get(key, 0)]]
    return drawn


def preview(*, session: Session, actor: Actor, survey_id: int, listing: SampleList, dimensions: list[str],
            allocation: str, size: int = 0, quotas: dict[str, int] | None = None,
            seed: int | None = None) -> sampling.SamplePlan:
    """The counts per stratum a draw from the list would take (nothing is written)."""
    sampling.sampleable(session, actor, survey_id)
    check_units(session, actor, listing)
    return plan(listing, dimensions=dimensions, allocation=allocation, size=size, quotas=quotas, seed=seed)


def draw(*, session: Session, actor: Actor, survey_id: int, listing: SampleList, dimensions: list[str],
         allocation: str, size: int = 0, quotas: dict[str, int] | None = None,
         seed: int | None = None) -> SurveySample:
    """Draw from the list and record the sample as a registry draw is recorded (strata with the list's counts as
    their frame sizes, so the answers weight back to the list), with the drawn members' contacts."""
    survey = sampling.sampleable(session, actor, survey_id)
    check_units(session, actor, listing)
    p = plan(listing, dimensions=dimensions, allocation=allocation, size=size, quotas=quotas, seed=seed)
    drawn = members(listing, p)
    sample = sampling.record(session, actor, survey, p, [(row.code, key) for row, key in drawn], source="list",
                             list_name=listing.name, list_digest=listing.digest)
    id_of = dict(session.execute(select(SurveySampleMember.credit_code, SurveySampleMember.id)
                                 .where(SurveySampleMember.sample_id == sample.id)).all())
    contacts = [{"member_id": id_of[row.code], "channel": channel, "address": address, "name": row.name,
                 "person": row.person} for row, _ in drawn for channel, address in row.contacts.items()]
    for i in range(0, len(contacts), 5000):
        session.execute(insert(SurveyListContact), contacts[i:i + 5000])
    return sample


def contacts(session: Session, sample_id: int, codes: list[str], channels: list[str], *,
             roles: list[str]) -> list[tuple]:
    """(code, name, role, person, channel, address) of the invited members' contacts on the chosen channels, the
    shape `invitations` reads a registry sample's in (person and address SM4-encrypted): the message centre of
    each chosen role's account (a taxpayer signs in by role; the listed person is not greeted there: it may be
    someone else), and the list's own mobile number and e-mail address for its contact (role LIST_ROLE)."""
    wanted, rows = set(codes), []
    for code, name, person, channel, address in session.execute(
            select(SurveySampleMember.credit_code, SurveyListContact.name, SurveyListContact.person,
                   SurveyListContact.channel, SurveyListContact.address)
            .join(SurveyListContact, SurveyListContact.member_id == SurveySampleMember.id)
            .where(SurveySampleMember.sample_id == sample_id, SurveyListContact.channel.in_(channels))
            .order_by(SurveySampleMember.credit_code, SurveyListContact.channel)):
        if code not in wanted:
            continue
        if channel == "inapp":
            rows += [(code, name, role, "", channel, "") for role in roles]
        else:
            rows.append((code, name, LIST_ROLE, person, channel, address))
    key = crypto.encryption_key()
    persons = crypto.encrypt_with(key, [r[3] for r in rows])
    addresses = crypto.encrypt_with(key, [r[5] for r in rows])
    return [(c, n, role, p, ch, a) for (c, n, role, _, ch, _), p, a in zip(rows, persons, addresses, strict=True)]
