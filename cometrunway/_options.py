"""The client's options, checked once: every bad value is refused with an error that names
the option and says what to give instead."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .journal import Journal
from .policies import FleetPolicy, PollPolicy, RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "MIN_CALLBACK_TOKEN_LENGTH", "check_options", "with_token"]

DEFAULT_BASE_URL = "https://api.cometapi.com"
# A callback token shorter than this is guessable; the generated one is 32 characters.
MIN_CALLBACK_TOKEN_LENGTH = 16


def check_options(
    *,
    api_key: object,
    base_url: object,
    callback_url: object,
    callback_token: object,
    retry: object,
    poll: object,
    transport: object,
    session: object,
    journal: object = None,
    fleet: object = None,
) -> None:
    """Raise ``ValueError``/``TypeError`` naming the first bad option."""
    # Checked here, not when the journal opens: a wrong kind of object is a bug to hear of
    # at once, not on entering ``async with``.
    if journal is not None and not isinstance(journal, str | os.PathLike | Journal):
        raise TypeError(
            "journal must be a file path (str or os.PathLike), a postgresql:// URL or a "
            f"Journal, got {type(journal).__name__} {journal!r:.60}"
        )
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError(
            "api_key must be your CometAPI key (a non-empty string); "
            "Client.from_env() reads it from COMETAPI_KEY"
        )
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ValueError(f"base_url must start with https:// or http://, got {base_url!r}")
    if callback_url is not None and (
        not isinstance(callback_url, str) or not callback_url.startswith(("https://", "http://"))
    ):
        raise ValueError(f"callback_url must start with https:// or http://, got {callback_url!r}")
    # A secret in the callback URL lets the receiver tell CometAPI's posts from forgeries
    # (callbacks are unsigned, wire reference §4).
    if callback_token is not None and (
        not isinstance(callback_token, str) or len(callback_token) < MIN_CALLBACK_TOKEN_LENGTH
    ):
        raise ValueError(
            f"callback_token must be a secret string of at least "
            f"{MIN_CALLBACK_TOKEN_LENGTH} characters"
        )
    if not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {retry!r}")
    if not isinstance(poll, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy, got {poll!r}")
    if fleet is not None and not isinstance(fleet, FleetPolicy):
        raise TypeError(f"fleet must be a FleetPolicy, got {fleet!r}")
    if transport is not None:
        if not (
            callable(getattr(transport, "send", None))
            and callable(getattr(transport, "aclose", None))
        ):
            raise TypeError(
                "transport must have async send(HTTPRequest) -> HTTPResponse and async "
                f"aclose(), got {type(transport).__name__}"
            )
        if session is not None:
            raise ValueError("pass session= or transport=, not both (give the session to it)")


def with_token(url: str, token: str) -> str:
    """``url`` with ``?token=`` set to ``token`` (any earlier token replaced)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "token"] + [("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))
