"""Tables of samples and their invitations: a stratified sample of a survey (its strata with the frame sizes kept
for weighting), the sampled taxpayers and their invitations, and the taxpayers who asked for no more
survey messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.crypto import Encrypted
from chunfeng.db import Base, utcnow

# The dimensions a registry sample may be stratified by, and what each reads from the registry (push.schema).
DIMENSIONS = {"province": "省份", "size": "企业规模", "industry": "行业门类", "type": "增值税纳税人类型"}
ALLOCATIONS = {"proportional": "按比例分配", "given": "指定配额"}
# What an invitation of a sample may carry and keep about whom it reaches, as declared when it is sent: nothing
# (anonymous), the taxpayer's name (shown in the message and beside the answers), the contact's name (a greeting).
PERSONAL_DATA = {"taxpayer": "纳税人名称(答卷记名)", "person": "联系人姓名(用于称呼)"}
SAMPLE_STATES = {"drawn": "已抽样", "invited": "已发邀请"}
# Where a sample's frame came from: the taxpayer registry of the survey unit's region, or a list the official uploaded.
SOURCES = {"registry": "纳税人登记信息", "list": "上传的名单"}
LIST_ROLE = "名单联系人"  # the role of a list's contact in push messages (a list names no 法定代表人 etc.)


class SurveySample(Base):
    """A sample of the taxpayer registry drawn for a survey version: stratified, a quota per stratum. The seed is
    recorded, so the same frame and seed draw the same members."""

    __tablename__ = "survey_sample"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    dimensions: Mapped[list] = mapped_column(JSON, default=list)
    allocation: Mapped[str] = mapped_column(String(16), default="proportional")
    requested: Mapped[int] = mapped_column(Integer, default=0, doc="the sample size asked for (proportional)")
    seed: Mapped[int] = mapped_column(Integer)
    frame_total: Mapped[int] = mapped_column(Integer, default=0)
    drawn: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="drawn")
    source: Mapped[str] = mapped_column(String(16), default="registry", server_default="registry", doc="SOURCES")
    list_name: Mapped[str] = mapped_column(String(200), default="", server_default="",
                                           doc="a list sample: the file's name")
    list_digest: Mapped[str] = mapped_column(String(64), default="", server_default="",
                                             doc="a list sample: the file's SHA-256 (same file and seed: same members)")
    personal_data: Mapped[list] = mapped_column(JSON, default=list, doc="what the invitations carry (PERSONAL_DATA)")
    roles: Mapped[list] = mapped_column(JSON, default=list, doc="the contacts invited (push.schema.CONTACT_ROLES)")
    channels: Mapped[list] = mapped_column(JSON, default=list)
    public_url: Mapped[str] = mapped_column(String(300), default="", doc="the site address the links were sent with")
    max_reminders: Mapped[int] = mapped_column(Integer, default=2, doc="reminders one member gets at most")
    remind_after_days: Mapped[int] = mapped_column(Integer, default=3,
                                                   doc="the scheduled reminder goes this long after the last message; 0: manual only")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("push_campaign.id"), doc="the push campaign (kind survey) "
                                                    "its messages belong to")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    invited_at: Mapped[datetime | None] = mapped_column(DateTime)
    strata: Mapped[list[SurveyStratum]] = relationship(order_by="SurveyStratum.id", viewonly=True)


class SurveyStratum(Base):
    """One stratum of a sample: its frame size (how many the population holds: the weight of an answer from it is
    frame_size / answers from it), its quota and how many were drawn."""

    __tablename__ = "survey_stratum"
    __table_args__ = (UniqueConstraint("sample_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("survey_sample.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(120), doc="the dimensions' values joined by |, e.g. 11|小型")
    label: Mapped[str] = mapped_column(String(300), default="")
    frame_size: Mapped[int] = mapped_column(Integer)
    quota: Mapped[int] = mapped_column(Integer)
    drawn: Mapped[int] = mapped_column(Integer, default=0)


class SurveySampleMember(Base):
    """A sampled taxpayer and its invitation. The invitation's token is kept SM4-encrypted
    besides the invitation's digest because each reminder must carry the same link (the messages hold it too)."""

    __tablename__ = "survey_sample_member"
    __table_args__ = (UniqueConstraint("sample_id", "credit_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("survey_sample.id", ondelete="CASCADE"), index=True)
    stratum_id: Mapped[int] = mapped_column(ForeignKey("survey_stratum.id", ondelete="CASCADE"), index=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("survey_invitation.id", ondelete="SET NULL"),
                                                      unique=True)
    token: Mapped[str] = mapped_column(Encrypted, default="")
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, doc="left out of the invitation: it had opted out")
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class SurveyOptOut(Base):
    """A taxpayer who asked, through the link in an invitation, for no more survey messages: reminders and every
    later survey's invitations leave it out."""

    __tablename__ = "survey_opt_out"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("survey.id", ondelete="SET NULL"),
                                                  doc="the survey whose invitation carried the link")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SurveyListContact(Base):
    """The contact a list gave for a drawn member (a registry sample reads its contacts from the taxpayer store):
    kept for the members drawn only, each on the channel the list's column names, SM4-encrypted."""

    __tablename__ = "survey_list_contact"
    __table_args__ = (UniqueConstraint("member_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("survey_sample_member.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(Encrypted, default="")
    name: Mapped[str] = mapped_column(Encrypted, default="", doc="the taxpayer's or unit's name as listed")
    person: Mapped[str] = mapped_column(Encrypted, default="")
