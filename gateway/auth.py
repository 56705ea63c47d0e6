"""Staff accounts: password hashing (argon2 through pwdlib), login with throttling, roles,
session cookies, CSRF tokens, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from pwdlib import PasswordHash
from sqlmodel import Session, func, select

from gateway import models

ROLES = ("admin", "editor", "reporter")
ROLE_LABELS = {"admin": "Administrator", "editor": "Editor", "reporter": "Price reporter"}
MAX_FAILURES = 5  # then each further failure locks the account for longer
LOCK_BASE = dt.timedelta(seconds=30)
LOCK_MAX = dt.timedelta(hours=1)
MIN_PASSWORD = 10

_hasher = PasswordHash.recommended()
# Verified when the e-mail is unknown, so that timing does not tell which accounts exist.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class AuthError(ValueError):
    pass


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member, as routes see it."""

    id: int
    email: str
    name: str
    role: str

    def can(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 120 or " " in email:
        raise AuthError("not an e-mail address")
    return email


def create_staff(session: Session, *, email: str, password: str, role: str, name: str = "") -> models.StaffUser:
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    email = normalize_email(email)
    if session.exec(select(models.StaffUser).where(models.StaffUser.email == email)).first():
        raise AuthError(f"{email} already has an account")
    user = models.StaffUser(email=email, name=name.strip()[:80], password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def staff_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(models.StaffUser)).one()


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)  # SQLite keeps no zone; we store UTC
    return value


def authenticate(session: Session, *, email: str, password: str, now: dt.datetime) -> Staff:
    """The staff member, or AuthError with a message fit to show. Failures lock the account for
    a growing time after MAX_FAILURES, which slows guessing without locking anyone out for good."""
    now = now.astimezone(dt.timezone.utc)
    try:
        email = normalize_email(email)
    except AuthError:
        raise AuthError("wrong e-mail or password") from None
    user = session.exec(select(models.StaffUser).where(models.StaffUser.email == email)).first()
    if user is None or not user.active:
        _hasher.verify(password or "", _DUMMY_HASH)
        raise AuthError("wrong e-mail or password")
    locked = _aware(user.locked_until)
    if locked and locked > now:
        wait = int((locked - now).total_seconds()) + 1
        raise AuthError(f"too many failed attempts: try again in {wait} s")
    valid, new_hash = _hasher.verify_and_update(password or "", user.password_hash)
    if not valid:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            extra = user.failed_logins - MAX_FAILURES
            user.locked_until = now + min(LOCK_BASE * (2**extra), LOCK_MAX)
        session.add(user)
        raise AuthError("wrong e-mail or password")
    if new_hash:
        user.password_hash = new_hash  # parameters got stronger since it was hashed
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.add(user)
    return Staff(user.id, user.email, user.name, user.role)


def staff_by_id(session: Session, staff_id: int | None) -> Staff | None:
    if staff_id is None:
        return None
    user = session.get(models.StaffUser, staff_id)
    if user is None or not user.active:
        return None
    return Staff(user.id, user.email, user.name, user.role)


# -- API tokens ----------------------------------------------------------------------------------


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(session: Session, user: models.StaffUser) -> str:
    """A new token for the staff member (the previous one stops working). Shown once."""
    token = "sugu_" + secrets.token_urlsafe(32)
    user.api_token_hash = _token_digest(token)
    session.add(user)
    return token


def staff_by_token(session: Session, token: str) -> Staff | None:
    if not token:
        return None
    user = session.exec(
        select(models.StaffUser).where(models.StaffUser.api_token_hash == _token_digest(token))
    ).first()
    if user is None or not user.active:
        return None
    return Staff(user.id, user.email, user.name, user.role)


# -- CSRF ----------------------------------------------------------------------------------------


def csrf_token(session_data: dict) -> str:
    token = session_data.get("csrf")
    if not token:
        token = session_data["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session_data: dict, submitted: str | None) -> bool:
    expected = session_data.get("csrf")
    return bool(expected and submitted and hmac.compare_digest(expected, submitted))


# -- audit ---------------------------------------------------------------------------------------


def audit(
    session: Session,
    staff: Staff | None,
    *,
    action: str,
    entity: str,
    entity_id: Any = "",
    before: dict | None = None,
    after: dict | None = None,
    now: dt.datetime,
) -> None:
    session.add(
        models.AuditLog(
            at=now.astimezone(dt.timezone.utc),
            staff_id=staff.id if staff else None,
            staff_email=staff.email if staff else "system",
            action=action,
            entity=entity,
            entity_id=str(entity_id)[:64],
            before=_jsonable(before),
            after=_jsonable(after),
        )
    )


def _jsonable(data: dict | None) -> dict | None:
    if data is None:
        return None
    return {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in data.items()}


def snapshot(row: Any, fields: tuple[str, ...]) -> dict:
    return {name: getattr(row, name) for name in fields}
