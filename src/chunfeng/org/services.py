"""Operations on units and users. Keyword-only, over a session; the caller owns the transaction.

Lower-level units come in from files: `org/unit_import.py`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.db import utcnow
from chunfeng.org import audit, lockout, second_factor
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.builtin import DEPARTMENTS, NATIONAL, PROVINCES, bureau_name, department_code
from chunfeng.org.errors import AuthenticationFailed, Forbidden, NotFound, ValidationFailed
from chunfeng.org.models import PasswordHistory, Unit, User, UserSession
from chunfeng.org.passwords import DEFAULT_MIN_LENGTH, hash_password, password_problem, verify_password
from chunfeng.org.roles import ROLES, SEPARATED
from chunfeng.org.sessions import end_other_sessions
from chunfeng.paging import Page, paginate
from chunfeng.push.schema import CONTACT_ROLES, credit_code_problem  # a plain module: no cycle


def ensure_builtin_units(*, session: Session) -> int:
    """Create the national bureau, its departments and the 36 provincial bureaus if missing."""
    existing = set(session.scalars(select(Unit.code).where(Unit.builtin.is_(True))))
    added = 0

    def add(code: str, name: str, level: str, parent: Unit | None, sort: int) -> Unit:
        nonlocal added
        if code in existing:
            return session.scalar(select(Unit).where(Unit.code == code))
        unit = Unit(code=code, name=name, level=level, parent=parent, sort=sort, builtin=True,
                    path=(parent.path if parent else "") + code + "/")
        session.add(unit)
        added += 1
        return unit

    root = add(NATIONAL[0], NATIONAL[1], "national", None, 0)
    for i, name in enumerate(DEPARTMENTS, start=1):
        add(department_code(i), name, "department", root, i)
    for i, (code, region) in enumerate(PROVINCES, start=1):
        add(code, bureau_name(region), "province", root, 100 + i)
    session.flush()
    return added


def find_unit(*, session: Session, code: str, field: str | None = None) -> Unit:
    """The unit of a code; NotFound names the form `field` the code was typed in, where it was typed."""
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound(f"没有代码为“{code}”的单位", field=field)
    return unit


def unit_for_region(*, session: Session, region: str) -> Unit:
    """The bureau of a region code: the unit with that code, else the nearest known one above it (its city's,
    then its province's); the national administration for no region or one it does not know."""
    region = (region or "").strip()
    if re.fullmatch(r"\d{6}", region):
        # One query for the three candidates (a public filing's round trips: issue 16), the most specific first.
        codes = list(dict.fromkeys((region, region[:4] + "00", region[:2] + "0000")))
        found = {unit.code: unit for unit in session.scalars(select(Unit).where(Unit.code.in_(codes)))}
        for code in codes:
            if code in found:
                return found[code]
    return session.scalar(select(Unit).where(Unit.level == "national"))


def get_unit(*, session: Session, actor: Actor, code: str) -> Unit:
    unit = find_unit(session=session, code=code)
    authorize(actor, "org.unit.view", unit)
    return unit


def list_child_units(*, session: Session, actor: Actor, unit: Unit, query: str = "",
                     page: int = 1, per_page: int = 50) -> Page[Unit]:
    """Direct children of `unit` (or, with a query, matching units anywhere below it)."""
    authorize(actor, "org.unit.view", unit)
    if query:
        where = [Unit.path.startswith(unit.path, autoescape=True), Unit.id != unit.id,
                 or_(Unit.name.contains(query, autoescape=True), Unit.code.startswith(query, autoescape=True))]
    else:
        where = [Unit.parent_id == unit.id]
    where.append(subtree_filter(actor))
    return paginate(session, select(Unit).where(*where).order_by(Unit.sort, Unit.code), page, per_page)


def unit_chain(unit: Unit) -> list[Unit]:
    """The unit and its ancestors, root first: the breadcrumb."""
    chain = [unit]
    while chain[0].parent is not None:
        chain.insert(0, chain[0].parent)
    return chain


def add_user(*, session: Session, actor: Actor, username: str, display_name: str, unit_code: str,
             roles: list[str], password: str, taxpayer_code: str | None = None,
             taxpayer_role: str | None = None, min_length: int = DEFAULT_MIN_LENGTH) -> User:
    """A user of a unit. A taxpayer's account (role taxpayer) names the credit code and capacity it acts in,
    and sits at the unit that administers the taxpayer."""
    unit = find_unit(session=session, code=unit_code)
    authorize(actor, "org.user.manage", unit)
    problems = []
    if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        problems.append(f"用户名“{username}”不合规:只能由字母、数字、_ . - 组成,且不超过 64 位")
    if session.scalar(select(User.id).where(User.username == username)):
        problems.append(f"用户名“{username}”已存在")
    if crypto.PREFIX in display_name or len(display_name) > 100:  # a ciphertext would show in every page header
        problems.append("姓名须为不超过 100 字的明文")
    if roles and not isinstance(actor, SystemActor):
        # The system administrator creates accounts; the security administrator gives them roles. So no one
        # builds an account with business rights for themselves alone.
        raise Forbidden("新建的账号不带角色:角色由安全管理员在“账号安全管理”页授予")
    if problem := separation_problem(roles):
        raise Forbidden(problem)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        problems.append(f"未知角色:{'、'.join(unknown)};可用角色:{'、'.join(ROLES)}")
    if why := password_problem(password, username=username, min_length=min_length):
        problems.append(why)
    if "taxpayer" in roles:
        if len(roles) > 1:
            problems.append("纳税人账号不能兼任其他角色")
        if not taxpayer_code or (why := credit_code_problem(taxpayer_code)):
            problems.append(f"纳税人账号须填写有效的统一社会信用代码:{why if taxpayer_code else '未填写'}")
        if taxpayer_role not in CONTACT_ROLES:
            problems.append(f"纳税人账号的身份应为 {'、'.join(CONTACT_ROLES)} 之一")
    elif taxpayer_code or taxpayer_role:
        problems.append("只有纳税人账号才填写信用代码和身份")
    if problems:
        raise ValidationFailed("无法创建用户:", problems)
    user = User(username=username, display_name=display_name or username, unit=unit,
                roles=",".join(dict.fromkeys(roles)), password_hash=hash_password(password),
                taxpayer_code=taxpayer_code, taxpayer_role=taxpayer_role,
                must_change_password=True, password_changed_at=utcnow())  # an initial password: changed at first login
    session.add(user)
    session.flush()
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    audit.record(session, actor=actor, action="org.user.created", object_type="user", object_id=username,
                 after={"unit": unit.code, "roles": user.roles, "display_name": user.display_name})
    return user


def separation_problem(roles: list[str]) -> str | None:
    """三员分立: an administrator role (system, security, audit) is held alone — not with another administrator
    role, not with any business role."""
    wanted = set(roles)
    held = [r for r in ROLES if r in wanted & SEPARATED]
    if len(held) > 1:
        return f"{'、'.join(ROLES[r] for r in held)}须由不同的人担任,一个账号不能兼任"
    if held and wanted - SEPARATED:
        others = [ROLES.get(r, r) for r in roles if r not in SEPARATED]
        return f"{ROLES[held[0]]}是管理员角色,不能兼任业务角色({'、'.join(others)})"
    return None


def role_change_refusal(actor: Actor, user: User, roles: list[str] | None = None) -> str | None:
    """Why `actor` may not give `user` these roles (any roles, when None), or None: the one rule the security page
    (to offer the form) and `set_roles` (to refuse) share.

    Nobody changes their own roles; administrator roles are set when the operator creates the account and are
    never granted, withdrawn or swapped afterwards (to replace an administrator, the operator disables the account
    and creates another); an administrator role is never held with anything else.
    """
    if isinstance(actor, User) and actor.id == user.id:
        return "不能修改自己的角色"
    if user.role_set & SEPARATED:
        return (f"{user.username} 是{ROLES[min(user.role_set & SEPARATED)]}:管理员角色只在创建账号时设定,"
                "不能授予、收回或改换")
    if roles is None:
        return None
    if problem := separation_problem(roles):
        return problem
    if set(roles) & SEPARATED:
        return "管理员角色只在服务器运维人员创建账号时设定,不能授予已有账号"
    return None


def administrator_account_refusal(actor: Actor, user: User) -> str | None:
    """The system administrator may not, alone, switch off or take over the security or audit administrator (nor
    another system administrator): disabling, enabling or resetting an administrator account is for the server's
    operator at the command line (`chunfeng user disable`, without --as)."""
    if isinstance(actor, SystemActor) or not user.role_set & SEPARATED:
        return None
    return (f"{user.username} 是{ROLES[min(user.role_set & SEPARATED)]}:管理员账号的停用、启用和密码重置须由服务器运维人员"
            "在命令行执行,系统管理员不能单独操作")


def set_roles(*, session: Session, actor: Actor, username: str, roles: list[str]) -> User:
    """The security administrator grants or withdraws business roles; the change is in the audit log. A refusal
    under 三员分立 is a Forbidden, which the web and the command line record as denied."""
    user = _account_for_security(session, actor, username)
    if why := role_change_refusal(actor, user, roles):
        raise Forbidden(why)
    problems = [f"未知角色:{r}" for r in roles if r not in ROLES]
    if not roles:
        problems.append("至少保留一个角色")
    if "taxpayer" in roles and user.taxpayer_code is None:
        problems.append("纳税人角色只能授予纳税人账号")
    if problems:
        raise ValidationFailed("无法修改角色:", problems)
    before = user.roles
    user.roles = ",".join(dict.fromkeys(roles))
    audit.record(session, actor=actor, action="org.user.roles_changed", object_type="user", object_id=username,
                 before={"roles": before}, after={"roles": user.roles})
    return user


def authenticate(*, session: Session, username: str, password: str) -> User:
    """The user whose password this is; one Argon2 verification whether or not the user exists."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        raise AuthenticationFailed("用户名或密码错误")
    return user


def password_expired(user: User, *, max_age_days: int, now: datetime | None = None) -> bool:
    if not max_age_days or user.password_changed_at is None:
        return False
    return (now or utcnow()) - user.password_changed_at > timedelta(days=max_age_days)


def change_password(*, session: Session, user: User, current: str, new: str, history: int = 5,
                    keep_token: str = "", min_length: int = DEFAULT_MIN_LENGTH) -> None:
    """The user's own change: the current password (see `current_password_refusal` for counting wrong ones), the
    policy, and none of the last `history` passwords. The user's other sessions end; the one with `keep_token`
    (where the change was made) stays."""
    if not verify_password(user.password_hash, current):
        raise ValidationFailed("当前密码不正确")
    if why := password_problem(new, username=user.username, min_length=min_length):
        raise ValidationFailed(why)
    earlier = list(session.scalars(select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user.id)
                                   .order_by(PasswordHistory.id.desc()).limit(history)))
    if any(verify_password(h, new) for h in earlier) or verify_password(user.password_hash, new):
        raise ValidationFailed(f"新密码不能与最近 {history} 次用过的密码相同")
    user.password_hash = hash_password(new)
    user.must_change_password, user.password_changed_at = False, utcnow()
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    ended = end_other_sessions(session, user=user, keep_token=keep_token)
    audit.record(session, actor=user, action="org.password.changed", object_type="user", object_id=user.username,
                 after={"other_sessions_ended": ended})


def reset_password(*, session: Session, actor: Actor, username: str, new: str,
                   min_length: int = DEFAULT_MIN_LENGTH) -> User:
    """An administrator sets a temporary password; the user must change it at the next login."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"没有用户“{username}”")
    authorize(actor, "org.user.manage", user.unit)
    if why := administrator_account_refusal(actor, user):
        raise Forbidden(why)
    if why := password_problem(new, username=username, min_length=min_length):
        raise ValidationFailed(why)
    user.password_hash, user.must_change_password, user.password_changed_at = hash_password(new), True, utcnow()
    lockout.clear(session, username=username)
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    ended = end_other_sessions(session, user=user)  # whoever knew the old password is signed out
    audit.record(session, actor=actor, action="org.password.reset", object_type="user", object_id=username,
                 after={"sessions_ended": ended})
    return user


LOGIN_FAILED = "用户名、密码或动态口令错误"


@dataclass
class LoginAttempt:
    user: User | None
    error: str = ""


def attempt_login(*, session: Session, username: str, password: str, source: str = "", max_failures: int = 5,
                  lockout_minutes: int = 15, now: datetime | None = None, code: str = "") -> LoginAttempt:
    """Check a login and record it — success, failure, lockout, refusal while locked — in the audit log with the
    source address. Unlike `authenticate` it does not raise, so the caller commits what it recorded.

    Failures lock the user name from this address only (`org.lockout`). Every path runs one Argon2 verification
    and the same lockout bookkeeping, and an unknown name fails and locks like a known one, so neither the answer
    nor the time taken tells whether the user exists or is locked.
    """
    now = now or utcnow()
    policy = lockout.Policy(max_failures, lockout_minutes)
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    who = SystemActor(username=(username or "?")[:64], unit_code=user.unit.code if user else "")

    def log(action: str, outcome: str = "failure", **after) -> None:
        audit.record(session, actor=who, action=action, object_type="user", object_id=username[:64],
                     after=after or None, outcome=outcome, source=source)

    if until := lockout.locked_until(session, username=username, source=source, now=now):
        log("org.login.refused_locked")
        return LoginAttempt(None, _locked_message(until))
    second_factor_failed = (ok and user is not None and user.totp_secret
                            and not second_factor.accept_code(session, user, code))
    if not ok or user is None or not user.active or second_factor_failed:
        if until := lockout.record_failure(session, username=username, source=source, policy=policy, now=now):
            log("org.login.locked", minutes=lockout_minutes)
            return LoginAttempt(None, f"连续 {max_failures} 次密码错误,该账号已锁定 {lockout_minutes} 分钟"
                                      "(仅限本地址,其他地址不受影响)")
        log("org.login.failed", known=user is not None, second_factor=bool(second_factor_failed))
        # One message whichever factor was wrong: naming it would tell a guesser the password was right.
        return LoginAttempt(None, LOGIN_FAILED)
    lockout.clear(session, username=username, source=source)
    log("org.login.succeeded", "success")
    return LoginAttempt(user)


def _locked_message(until: datetime) -> str:
    return f"账号因连续输错密码已锁定,请于 {until:%H:%M}(UTC)后再试"


def current_password_refusal(*, session: Session, user: User, password: str, source: str = "", max_failures: int = 5,
                             lockout_minutes: int = 15, now: datetime | None = None) -> str | None:
    """Why the user's own current password, typed to change it, is not accepted, or None. A wrong one counts
    toward the same lockout as a wrong login from that address (a stolen session must not guess the password
    freely) and is in the audit log; the caller commits what this recorded."""
    now = now or utcnow()
    ok = verify_password(user.password_hash, password)
    if until := lockout.locked_until(session, username=user.username, source=source, now=now):
        audit.record(session, actor=user, action="org.password.refused_locked", object_type="user",
                     object_id=user.username, outcome="denied", source=source)
        return _locked_message(until)
    if ok:
        return None
    until = lockout.record_failure(session, username=user.username, source=source,
                                   policy=lockout.Policy(max_failures, lockout_minutes), now=now)
    audit.record(session, actor=user, action="org.password.wrong_current", object_type="user",
                 object_id=user.username, outcome="failure", source=source, after={"locked": bool(until)})
    return _locked_message(until) if until else "当前密码不正确"


def list_users(*, session: Session, actor: Actor, unit: Unit, page: int = 1, per_page: int = 50, query: str = "",
               permission: str = "org.user.view") -> Page[User]:
    """Users of `unit` and every unit below it, for the system administrator (org.user.view) or the security
    administrator (org.user.roles); `query` matches the user name or display name."""
    if permission not in ("org.user.view", "org.user.roles"):
        raise ValueError(permission)
    authorize(actor, permission, unit)
    where = [User.unit_id == Unit.id, Unit.path.startswith(unit.path, autoescape=True)]
    if query.strip():
        like = f"%{query.strip()}%"
        where.append(User.username.like(like) | User.display_name.like(like))
    return paginate(session, select(User).join(User.unit).where(*where).order_by(Unit.path, User.username), page,
                    per_page)


def set_active(*, session: Session, actor: Actor, username: str, active: bool) -> User:
    """The system administrator disables an account no longer needed (it keeps its history) or enables it again;
    a disabled account's sessions end at once."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"没有用户“{username}”")
    authorize(actor, "org.user.manage", user.unit)
    if user.username == actor.username:
        raise ValidationFailed("不能停用自己的账号")
    if why := administrator_account_refusal(actor, user):
        raise Forbidden(why)
    if user.active != active:
        user.active = active
        if not active:
            session.execute(delete(UserSession).where(UserSession.user_id == user.id))
        audit.record(session, actor=actor, action="org.user.enabled" if active else "org.user.disabled",
                     object_type="user", object_id=username)
    return user


def _account_for_security(session: Session, actor: Actor, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"没有用户“{username}”")
    authorize(actor, "org.user.roles", user.unit)
    return user


def unlock(*, session: Session, actor: Actor, username: str) -> User:
    """The security administrator lifts a lockout before it runs out (after checking who was trying)."""
    user = _account_for_security(session, actor, username)
    state = lockout.states(session, usernames=[username], now=utcnow()).get(username, lockout.State())
    lockout.clear(session, username=username)
    audit.record(session, actor=actor, action="org.user.unlocked", object_type="user", object_id=username,
                 before={"locked_until": state.locked_until, "locked_addresses": state.addresses,
                         "failed_logins": state.failures})
    return user


def reset_second_factor(*, session: Session, actor: Actor, username: str) -> User:
    """A lost phone: the secret is dropped and the user enrols a new one at the next login (administrators must)."""
    user = _account_for_security(session, actor, username)
    if not user.totp_secret:
        raise ValidationFailed(f"{username} 尚未设置动态口令")
    user.totp_secret = user.totp_pending_secret = None
    ended = end_other_sessions(session, user=user)  # a session opened with the lost phone ends with it
    audit.record(session, actor=actor, action="org.totp.reset", object_type="user", object_id=username,
                 after={"sessions_ended": ended})
    return user
