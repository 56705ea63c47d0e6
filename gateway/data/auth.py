"""Staff accounts: password hashing (argon2 through pwdlib, off the event loop), sign-in with
throttling, server-side console sessions, roles, CSRF tokens, API tokens and the audit log."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pwdlib import PasswordHash
from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select

from gateway.data import models

ROLES = ("admin", "editor", "reporter")
ROLE_LABELS = {"admin": "Administrator", "editor": "Editor", "reporter": "Price reporter"}
MIN_PASSWORD = 10

# Sign-in throttling: sliding windows over the login_attempt table, so that every process of an
# install counts the same attempts. Failures only are counted; nothing is ever locked for longer
# than the window after the last failure.
WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_ADDRESS = 30  # any accounts, from one client address
MAX_FAILURES_PER_ACCOUNT = 10  # one account, from browsers it has not signed in from before
MAX_FAILURES_PER_DEVICE = 10  # one account, from one browser it signed in from before
ATTEMPTS_KEPT = dt.timedelta(days=1)
# A browser that signed in to an account gets a signed "trusted browser" cookie for it (OWASP's
# device cookies): failures from other browsers, however many, never lock it out. Anyone can
# make an account refuse *unknown* browsers for a while; nobody can lock its owner out.
DEVICE_COOKIE = "sugu_device"
DEVICE_MAX_AGE_S = 180 * 86400
THROTTLED = "Too many sign-in attempts. Wait a few minutes and try again."
WRONG = "wrong e-mail or password"

SESSION_TOUCH = dt.timedelta(minutes=1)  # last_seen_at is written at most this often

_hasher = PasswordHash.recommended()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the e-mail is unknown, so that timing does not tell which accounts exist.
    Made on first use, not at import: argon2 costs ~0.4 s, which every CLI command and worker
    start would otherwise pay."""
    return _hasher.hash("not a real password, only for timing")

# argon2 costs tens of milliseconds of CPU and memory by design: it runs in a small pool of its
# own, never on the event loop (where 8 anonymous sign-ins delayed every USSD hop by seconds),
# and a bounded number of requests may wait for it; beyond, sign-in answers "busy" at once.
HASH_THREADS = 1
MAX_HASH_WAITING = 16
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")
_waiting = 0
_waiting_lock = threading.Lock()

T = TypeVar("T")


class AuthError(ValueError):
    """`text` is English with {placeholders}; the console shows it in the reader's language
    (messages/staff.py), the CLI as str(exc)."""

    status = 401

    def __init__(self, text: str, /, **params) -> None:
        self.text, self.params = text, params
        super().__init__(text.format(**params) if params else text)


class Busy(AuthError):
    status = 503


class Throttled(AuthError):
    status = 429


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member, as routes see it."""

    id: int
    email: str
    name: str
    role: str
    must_change_password: bool = False
    session_id: int | None = None  # the console session (None for API tokens)
    language: str = ""  # the console's language chosen by this person; empty: the default

    def can(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def _staff(user: models.StaffUser, session_id: int | None = None) -> Staff:
    return Staff(user.id, user.email, user.name, user.role, user.must_change_password, session_id, user.language)


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a password hash or check in the hashing pool; Busy when too many already wait."""
    global _waiting
    with _waiting_lock:
        if _waiting >= MAX_HASH_WAITING:
            raise Busy("The server is busy; try again in a moment.")
        _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
    finally:
        with _waiting_lock:
            _waiting -= 1


def check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AuthError("the password needs at least {n} characters", n=MIN_PASSWORD)
    if len(password) > 1024:
        raise AuthError("the password is too long")


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


async def hash_password_async(password: str) -> str:
    check_new_password(password)
    return await off_loop(_hasher.hash, password)


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 120 or " " in email:
        raise AuthError("not an e-mail address")
    return email


def create_staff(
    session: Session, *, email: str, password: str, role: str, name: str = "", password_hash: str | None = None,
    must_change_password: bool = False,
) -> models.StaffUser:
    """A new account. `password_hash`: already hashed off the event loop (console routes)."""
    if role not in ROLES:
        raise AuthError("role must be one of {roles}", roles=", ".join(ROLES))
    email = normalize_email(email)
    if session.exec(select(models.StaffUser).where(models.StaffUser.email == email)).first():
        raise AuthError("{email} already has an account", email=email)
    user = models.StaffUser(
        email=email, name=name.strip()[:80], password_hash=password_hash or hash_password(password), role=role,
        must_change_password=must_change_password,
    )
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


def mask_address(address: str) -> str:
    """The client's network, not its host (IPv4 /24, IPv6 /48): enough to recognise a session."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


# -- sign-in ---------------------------------------------------------------------------------------


def device_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="sugu-trusted-browser")


def device_nonce(secret: str, cookie: str | None, account: str) -> str:
    """The nonce of a valid trusted-browser cookie for this account, else ''."""
    if not cookie or not account:
        return ""
    try:
        data = device_serializer(secret).loads(cookie, max_age=DEVICE_MAX_AGE_S)
    except BadSignature:
        return ""
    if not isinstance(data, list) or len(data) != 2 or data[0] != account:
        return ""
    return str(data[1])[:32]


def new_device_cookie(secret: str, account: str) -> str:
    return device_serializer(secret).dumps([account, secrets.token_hex(8)])


def _failures(session: Session, since: dt.datetime, *conditions) -> tuple[int, dt.datetime | None]:
    a = models.LoginAttempt
    n, first = session.exec(
        select(func.count(), func.min(a.at)).where(a.at > since, a.ok == False, *conditions)  # noqa: E712
    ).one()
    return n, _aware(first)


def throttle(session: Session, *, address: str, account: str, device: str, now: dt.datetime) -> None:
    """Throttled when a window is full. Counted alike for accounts that exist and those that do
    not, so that neither the answer nor its timing tells which exist."""
    a = models.LoginAttempt
    since = now - WINDOW
    checks = [(MAX_FAILURES_PER_ADDRESS, [a.address == address])] if address else []
    if account and device:
        checks.append((MAX_FAILURES_PER_DEVICE, [a.account == account, a.device == device]))
    elif account:
        checks.append((MAX_FAILURES_PER_ACCOUNT, [a.account == account, a.device == ""]))
    for limit, conditions in checks:
        n, _first = _failures(session, since, *conditions)
        if n >= limit:
            raise Throttled(THROTTLED)


SESSIONS_KEPT = dt.timedelta(days=30)  # long after they expired: the account page lists live ones


def record_attempt(session: Session, *, address: str, account: str, device: str, ok: bool, now: dt.datetime) -> None:
    a = models.LoginAttempt
    session.exec(delete(a).where(a.at < now - ATTEMPTS_KEPT))  # the table stays a day long
    if ok:
        session.exec(delete(models.StaffSession).where(models.StaffSession.created_at < now - SESSIONS_KEPT))
    session.add(a(at=now, address=address[:48], account=account[:120], device=device, ok=ok))


@dataclass(frozen=True)
class SignIn:
    staff: Staff
    session_token: str  # for the cookie; only its digest is stored
    device_cookie: str | None  # a new trusted-browser cookie, when this browser had none


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    db, *, email: str, password: str, address: str, user_agent: str, device_cookie: str | None, secret: str,
    now: dt.datetime,
) -> SignIn:
    """Check the password (off the event loop) within the throttling windows and open a console
    session. AuthError (Throttled, Busy) with a message fit to show, the same for every account."""
    now = now.astimezone(dt.timezone.utc)
    try:
        account = normalize_email(email)
    except AuthError:
        account = ""
    device = device_nonce(secret, device_cookie, account)
    with db.unit_of_work() as session:
        throttle(session, address=address, account=account, device=device, now=now)
        user = session.exec(select(models.StaffUser).where(models.StaffUser.email == account)).first() if account else None
        known = user is not None and user.active
        stored = user.password_hash if known else None
    if stored is None:
        stored = await off_loop(_dummy_hash)  # the first time only; the same pool as any hash
    valid, new_hash = await off_loop(_hasher.verify_and_update, (password or "")[:1024], stored)
    valid = valid and known
    with db.unit_of_work() as session:
        record_attempt(session, address=address, account=account, device=device, ok=valid, now=now)
        if not valid:
            raise_later = AuthError(WRONG)
        else:
            user = session.get(models.StaffUser, user.id)
            if user is None or not user.active:  # deactivated while the hash was checked
                raise_later = AuthError(WRONG)
            else:
                raise_later = None
                if new_hash:
                    user.password_hash = new_hash  # parameters got stronger since it was hashed
                user.last_login_at = now
                session.add(user)
                token = secrets.token_urlsafe(32)
                row = models.StaffSession(
                    token_hash=_digest(token), staff_id=user.id, created_at=now, last_seen_at=now,
                    user_agent=(user_agent or "")[:120], address=mask_address(address),
                )
                session.add(row)
                session.flush()
                result = SignIn(_staff(user, row.id), token, None if device else new_device_cookie(secret, account))
    # Raised after the block: the failed attempt is committed, which is what the windows count.
    if raise_later is not None:
        raise raise_later
    return result


def authenticate(session: Session, *, email: str, password: str, now: dt.datetime) -> Staff:
    """Check a password on this thread (command-line use): no session, no throttling."""
    try:
        email = normalize_email(email)
    except AuthError:
        raise AuthError(WRONG) from None
    user = session.exec(select(models.StaffUser).where(models.StaffUser.email == email)).first()
    if user is None or not user.active:
        _hasher.verify(password or "", _dummy_hash())
        raise AuthError(WRONG)
    if not _hasher.verify(password or "", user.password_hash):
        raise AuthError(WRONG)
    return _staff(user)


# -- console sessions ------------------------------------------------------------------------------


def staff_by_session(session: Session, token: str | None, *, now: dt.datetime, max_age: dt.timedelta) -> Staff | None:
    """The staff member of a live console session: not revoked, not older than max_age, the
    account active. Touches last_seen_at (at most once a minute)."""
    if not token:
        return None
    now = now.astimezone(dt.timezone.utc)
    row = session.exec(select(models.StaffSession).where(models.StaffSession.token_hash == _digest(token))).first()
    if row is None or row.revoked_at is not None or now - _aware(row.created_at) > max_age:
        return None
    user = session.get(models.StaffUser, row.staff_id)
    if user is None or not user.active:
        return None
    if now - _aware(row.last_seen_at) > SESSION_TOUCH:
        row.last_seen_at = now
        session.add(row)
    return _staff(user, row.id)


def live_sessions(session: Session, staff_id: int, *, now: dt.datetime, max_age: dt.timedelta) -> list[models.StaffSession]:
    s = models.StaffSession
    since = now.astimezone(dt.timezone.utc) - max_age
    return list(session.exec(
        select(s).where(s.staff_id == staff_id, col(s.revoked_at).is_(None), s.created_at > since)
        .order_by(col(s.last_seen_at).desc())
    ))


def revoke_sessions(session: Session, staff_id: int, *, now: dt.datetime, only: int | None = None, keep: int | None = None) -> int:
    """End console sessions of a staff member: one (`only`), or all but `keep`, or all."""
    s = models.StaffSession
    query = update(s).where(s.staff_id == staff_id, col(s.revoked_at).is_(None))
    if only is not None:
        query = query.where(s.id == only)
    if keep is not None:
        query = query.where(s.id != keep)
    return session.exec(query.values(revoked_at=now.astimezone(dt.timezone.utc))).rowcount


async def change_password(db, staff: Staff, *, current: str, new: str, repeat: str, now: dt.datetime) -> None:
    """The staff member's own change: the current password is required; every other session of
    theirs ends."""
    if new != repeat:
        raise AuthError("the two new passwords differ")
    check_new_password(new)
    with db.unit_of_work() as session:
        stored = session.get(models.StaffUser, staff.id).password_hash
    if not await off_loop(_hasher.verify, (current or "")[:1024], stored):
        raise AuthError("the current password is wrong")
    if new == current:
        raise AuthError("choose a password different from the current one")
    new_hash = await hash_password_async(new)
    with db.unit_of_work() as session:
        user = session.get(models.StaffUser, staff.id)
        user.password_hash, user.must_change_password = new_hash, False
        session.add(user)
        revoke_sessions(session, staff.id, now=now, keep=staff.session_id)
        audit(session, staff, action="change_password", entity="staff", entity_id=user.email, now=now)


def reset_password(session: Session, user: models.StaffUser, password_hash: str, *, now: dt.datetime) -> None:
    """An administrator's reset: a one-time password (hashed by the caller) that must be changed
    at the next sign-in; the account's console sessions end (its API token is not a password and
    stays)."""
    user.password_hash = password_hash
    user.must_change_password = True
    session.add(user)
    revoke_sessions(session, user.id, now=now)


def staff_by_id(session: Session, staff_id: int | None) -> Staff | None:
    if staff_id is None:
        return None
    user = session.get(models.StaffUser, staff_id)
    if user is None or not user.active:
        return None
    return _staff(user)


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
    return _staff(user)


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
