"""Dashboard users: sign-up, sign-in, passwords (argon2), members and invites.

A user belongs to workspaces through memberships with a role: ``owner``
(everything) or ``member`` (sees the workspace, cannot manage keys or
billing). Sign-up creates the user's own workspace, on basic.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounts import create_workspace
from core.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from core.persistence.models import Invite, Membership, User, Workspace, as_utc, utcnow

logger = logging.getLogger(__name__)

ROLES = ("owner", "member")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
INVITE_TTL = timedelta(days=7)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("tonehub-no-such-user")


class EmailTaken(Conflict):
    """Sign-up with an email that already has an account."""

    code = "email_taken"


def _email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email) or not email.isprintable():
        raise InvalidRequest("Enter a valid email address.", field="email")
    return email


def _password(value: str) -> str:
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"Use a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
            field="password",
        )
    return value


def sign_up(session: Session, email: str, password: str) -> tuple[User, Workspace]:
    """Create a user and their own workspace (they own it).

    Raises:
        InvalidRequest: A malformed email or a too short password.
        EmailTaken: The email has an account already.
    """
    email = _email(email)
    user = User(email=email, password_hash=_hasher.hash(_password(password)))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise EmailTaken(
            "An account with this email exists; sign in instead."
        ) from None
    workspace = create_workspace(session, f"{email.split('@')[0]}'s workspace")
    session.add(Membership(user_id=user.id, workspace_id=workspace.id, role="owner"))
    session.commit()
    logger.info("User %s signed up with workspace %s", user.id, workspace.id)
    return user, workspace


def sign_in(session: Session, email: str, password: str) -> User:
    """The user for these credentials, or one ``Unauthorized`` for every failure."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    try:
        if user is None:
            # The same argon2 work as for a real account: the time taken must
            # not tell whether an email has one.
            _hasher.verify(_DUMMY_HASH, password)
            raise VerificationError("no such user")
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("The email or the password is wrong.") from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Change a password after checking the current one."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("The current password is wrong.") from None
    user.password_hash = _hasher.hash(_password(new))
    session.commit()


def memberships(session: Session, user_id: str) -> list[Membership]:
    """The user's memberships, oldest first."""
    return list(
        session.scalars(
            select(Membership)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at)
        )
    )


def role_in(session: Session, user_id: str, workspace_id: str) -> str | None:
    """The user's role in a workspace, ``None`` if not a member."""
    row = session.get(Membership, (user_id, workspace_id))
    return row.role if row is not None else None


def members(session: Session, workspace_id: str) -> list[tuple[User, str]]:
    """The workspace's members and their roles."""
    rows = session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Membership.created_at)
    )
    return [(user, role) for user, role in rows]


def invite(session: Session, workspace_id: str, email: str, *, now: datetime) -> str:
    """A single-use invite token for ``email`` (valid 7 days)."""
    token = secrets.token_urlsafe(24)
    session.add(
        Invite(
            token=token,
            workspace_id=workspace_id,
            email=_email(email),
            expires_at=now + INVITE_TTL,
        )
    )
    session.commit()
    return token


def find_invite(session: Session, token: str, user: User, *, now: datetime) -> Invite:
    """A live invite addressed to ``user``'s email.

    Raises:
        NotFound: Unknown, used, expired, or for another email.
    """
    row = session.get(Invite, token)
    expires = as_utc(row.expires_at) if row is not None else None
    if row is None or row.used_at is not None or expires is None or expires < now:
        raise NotFound("This invite link is not valid any more.")
    if row.email != user.email:
        raise NotFound(
            "This invite is for another email address; sign in with that account."
        )
    return row


def accept_invite(session: Session, token: str, user: User, *, now: datetime) -> str:
    """Make ``user`` a member; returns the workspace id.

    Raises:
        NotFound: Unknown, used, expired, or for another email.
    """
    row = find_invite(session, token, user, now=now)
    row.used_at = now
    if session.get(Membership, (user.id, row.workspace_id)) is None:
        session.add(
            Membership(user_id=user.id, workspace_id=row.workspace_id, role="member")
        )
    session.commit()
    return row.workspace_id


def remove_member(session: Session, workspace_id: str, user_id: str) -> None:
    """Remove a member (never the last owner)."""
    row = session.get(Membership, (user_id, workspace_id))
    if row is None:
        raise NotFound("No such member.")
    if row.role == "owner":
        owners = session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        )
        if (owners or 0) <= 1:
            raise Conflict("A workspace keeps at least one owner.")
    session.delete(row)
    session.commit()


__all__ = ["ROLES", "EmailTaken", "utcnow"]
