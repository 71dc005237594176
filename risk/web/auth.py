"""Who may read what. With API_TOKEN set: the bearer header for programs, a login session for browsers
(valid for the current token and session generation, kept beside the history database by risk/access.py),
wrong tokens slowed per client address; /health and /login open to all. Without API_TOKEN all is open."""

import logging
import os
import secrets

from flask import Flask, abort, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import TooManyRequests

from risk import access
from risk.config import Config, PipelineError

logger = logging.getLogger(__name__)

OPEN = {"api.health", "pages.login", "static"}  # served without a token
PAGES = {"pages.dashboard", "clients.toprisk_csv", "pages.trend_svg"}  # for browsers: without a session, to /login


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie (HttpOnly, SameSite=Lax), marked Secure when the request came over HTTPS:
    directly, or through the reverse proxy on this machine (gunicorn trusts X-Forwarded-Proto from
    forwarded_allow_ips only, see gunicorn.conf.py)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


class Access:
    """Who may read what. With API_TOKEN set: the bearer header (programs) or a login session (browsers),
    a session valid only in the current generation (a logout starts a new one) and for the current token;
    wrong tokens slowed per client address. Without API_TOKEN everything is open."""

    def __init__(self, token: str | None, config: Config):
        self.token = token
        self.folder = config.history_path.parent  # the session key and generation lie beside the history
        self.throttle = access.Throttle()
        if not token:
            self.secret = secrets.token_hex(32)  # no session carries a right: nothing to share between workers
        else:
            self.secret = os.environ.get("SECRET_KEY") or access.session_secret(self.folder)
            try:
                access.session_generation(self.folder)
            except OSError as error:
                raise PipelineError(f"cannot keep the session generation in {self.folder}: {error.strerror}") from None

    def address(self) -> str:
        return access.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))

    def session_valid(self) -> bool:
        """The request's session is a login with the current token, in the current generation."""
        mark = session.get("auth")
        if not self.token or not isinstance(mark, str):
            return False
        try:
            generation = access.session_generation(self.folder)
        except OSError as error:  # fail closed: without the generation no session is known to be current
            logger.warning("cannot read the session generation in %s: %s", self.folder, error.strerror)
            return False
        return access.token_matches(mark, access.session_mark(self.token, generation))

    def bearer(self) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""  # the scheme's case does not matter (RFC 9110)

    def try_token(self, supplied: str) -> tuple[bool, int]:
        """(right, wait): whether `supplied` is the token (a wrong one counts against the client's address),
        and the whole seconds that address must wait first when it has guessed too often (then nothing is compared)."""
        address = self.address()
        wait = self.throttle.wait_seconds(address)
        if wait:
            return False, wait
        if access.token_matches(supplied, self.token):
            self.throttle.succeeded(address)
            return True, 0
        self.throttle.failed(address)
        logger.warning("wrong token from %s", address)
        return False, 0

    def authorized(self) -> bool:
        """No token is set, or the request has a valid session or the right bearer token (a wrong one counts
        as a guess; while its address must wait, none is compared)."""
        if not self.token or self.session_valid():
            return True
        supplied = self.bearer()
        return supplied is not None and self.try_token(supplied)[0]

    def log_in(self) -> None:
        session.clear()
        session["auth"] = access.session_mark(self.token, access.session_generation(self.folder))

    def end_sessions(self) -> None:
        """Log out every session, in every worker; raises OSError when the generation cannot be written."""
        if self.token:
            access.end_sessions(self.folder)
        session.clear()


def too_many_guesses(wait: int) -> TooManyRequests:
    """A 429 saying how long to wait, with Retry-After."""
    return TooManyRequests(f"too many wrong tokens from this address: try again in {wait} s", retry_after=wait)


def register_access(app: Flask, access_state: Access) -> None:
    """With API_TOKEN set: every request but those to OPEN endpoints needs the bearer header or a session."""
    app.secret_key = access_state.secret
    app.session_interface = SessionCookies()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @app.before_request
    def require_token():
        if not access_state.token or request.endpoint in OPEN:
            return None
        if access_state.session_valid():
            return None
        supplied = access_state.bearer()
        if supplied is not None:
            right, wait = access_state.try_token(supplied)
            if right:
                return None
            if wait:
                raise too_many_guesses(wait)
        if (
            request.endpoint == "pages.logout"
        ):  # no session to end (ended already, or a cross-site form without the cookie)
            return redirect(url_for("pages.login"))
        if request.endpoint in PAGES:
            return redirect(url_for("pages.login", next=request.full_path))
        abort(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
