"""The error tree: what each error is, carries and says."""

from __future__ import annotations

import copy
import pickle

import pytest

import cometrunway
from cometrunway.errors import (
    AmbiguousSubmitError,
    APIError,
    AuthenticationError,
    BatchSubmitError,
    ClientStateError,
    CometRunwayError,
    DecodeError,
    EndpointError,
    InvalidRequestError,
    JournalError,
    RateLimitError,
    ServerError,
    TaskFailed,
    TaskNotFound,
    TransportError,
)
from cometrunway.models import Task, TaskStatus, TextToVideo


@pytest.mark.parametrize(
    ("kind", "bases"),
    [
        (APIError, (CometRunwayError,)),
        (InvalidRequestError, (APIError,)),
        (AuthenticationError, (APIError,)),
        (TaskNotFound, (APIError, LookupError)),
        (EndpointError, (APIError,)),
        (RateLimitError, (APIError,)),
        (ServerError, (APIError,)),
        (TransportError, (CometRunwayError, ConnectionError, OSError)),
        (DecodeError, (CometRunwayError, ValueError)),
        (AmbiguousSubmitError, (CometRunwayError,)),
        (TaskFailed, (CometRunwayError,)),
        (ClientStateError, (CometRunwayError, RuntimeError)),
        (JournalError, (CometRunwayError,)),
        (BatchSubmitError, (CometRunwayError, ExceptionGroup)),
    ],
)
def test_the_tree(kind: type[BaseException], bases: tuple[type[BaseException], ...]) -> None:
    for base in bases:
        assert issubclass(kind, base)
    assert issubclass(kind, Exception)


def test_public_names_are_exported() -> None:
    for name in (
        "CometRunwayError",
        "APIError",
        "AuthenticationError",
        "RateLimitError",
        "ServerError",
        "TransportError",
        "DecodeError",
        "AmbiguousSubmitError",
        "TaskFailed",
        "TaskNotFound",
        "BatchSubmitError",
    ):
        assert getattr(cometrunway, name) is getattr(cometrunway.errors, name)


def test_api_error_carries_status_code_message_body() -> None:
    err = InvalidRequestError("bad field", status=400, code="invalid_request", body=b"{}")
    assert (err.status, err.code, err.message, err.body) == (
        400,
        "invalid_request",
        "bad field",
        b"{}",
    )
    assert str(err) == "HTTP 400 invalid_request: bad field"
    assert repr(err) == (
        "InvalidRequestError(status=400, code='invalid_request', message='bad field')"
    )
    assert str(ServerError("down", status=503)) == "HTTP 503: down"


def test_task_not_found_defaults() -> None:
    err = TaskNotFound("task_not_exist", task_id="abc")
    assert (err.status, err.code, err.task_id) == (400, "task_not_exist", "abc")
    with pytest.raises(LookupError):
        raise err


def test_rate_limit_error_defaults() -> None:
    err = RateLimitError("slow down", retry_after=2.5)
    assert (err.status, err.retry_after) == (429, 2.5)
    assert RateLimitError("slow").retry_after is None


def test_transport_error_is_a_connection_error() -> None:
    err = TransportError("connect refused", request_sent=False)
    assert err.request_sent is False
    with pytest.raises(ConnectionError):
        raise err
    assert TransportError("read timeout", request_sent=True).request_sent is True


def test_decode_error_is_a_value_error_with_an_excerpt() -> None:
    long_body = b"<html>" + b"x   y\n" * 200 + b"</html>"
    err = DecodeError("not JSON", body=long_body)
    assert err.body == long_body
    message = str(err)
    assert message.startswith("not JSON (body: '<html>x y x y")
    assert message.endswith("…')")
    assert len(message) < 350
    assert str(DecodeError("plain")) == "plain"
    assert "body: 'é'" in str(DecodeError("latin", body="é".encode()))
    assert "\\ufffd" in ascii(str(DecodeError("broken", body=b"\xff")))
    with pytest.raises(ValueError, match="plain"):
        raise DecodeError("plain")


def test_ambiguous_submit_error_keeps_the_request() -> None:
    request = TextToVideo("a cat")
    err = AmbiguousSubmitError("may have been created", request=request, key="k1")
    assert err.request is request
    assert err.key == "k1"
    assert AmbiguousSubmitError("x", request=request).key is None


def test_task_failed_message_has_reason_and_code() -> None:
    task = Task(
        "abc",
        TaskStatus.FAILED,
        error="The prompt was flagged",
        error_code="SAFETY.INPUT.TEXT",
    )
    err = TaskFailed(task)
    assert err.task is task
    assert str(err) == "task abc failed: The prompt was flagged [SAFETY.INPUT.TEXT]"


def test_task_failed_without_reason_or_code() -> None:
    cancelled = TaskFailed(Task("abc", TaskStatus.CANCELLED))
    assert str(cancelled) == "task abc cancelled: no reason given"
    only_reason = TaskFailed(Task("x", TaskStatus.FAILED, error="boom"))
    assert str(only_reason) == "task x failed: boom"
    foreign = TaskFailed(None)
    assert str(foreign) == "task ? failed: no reason given"


def test_client_state_error_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="closed"):
        raise ClientStateError("client is closed")


def _batch() -> BatchSubmitError:
    first = InvalidRequestError("bad", status=400)
    first.index = 1  # type: ignore[attr-defined]
    second = TransportError("refused", request_sent=False)
    second.index = 3  # type: ignore[attr-defined]
    return BatchSubmitError("2 of 4 submits failed", [first, second], ["h0", None, "h2", None])


def test_batch_submit_error_is_an_exception_group_with_handles() -> None:
    err = _batch()
    assert isinstance(err, ExceptionGroup)
    assert isinstance(err, CometRunwayError)
    assert err.handles == ("h0", None, "h2", None)
    assert err.message == "2 of 4 submits failed"
    assert [type(e) for e in err.exceptions] == [InvalidRequestError, TransportError]
    assert BatchSubmitError("m", [ValueError()]).handles == ()


def test_batch_submit_error_keeps_handles_through_split_and_subgroup() -> None:
    err = _batch()
    match, rest = err.split(APIError)
    assert isinstance(match, BatchSubmitError)
    assert isinstance(rest, BatchSubmitError)
    assert match.handles == rest.handles == err.handles
    assert [type(e) for e in match.exceptions] == [InvalidRequestError]
    assert [type(e) for e in rest.exceptions] == [TransportError]
    sub = err.subgroup(TransportError)
    assert isinstance(sub, BatchSubmitError)
    assert sub.handles == err.handles
    derived = err.derive([ValueError("x")])
    assert isinstance(derived, BatchSubmitError)
    assert derived.handles == err.handles
    assert derived.message == err.message


def test_batch_submit_error_caught_with_except_star() -> None:
    caught: dict[str, BaseException] = {}
    try:
        raise _batch()
    except* TransportError as group:
        caught["transport"] = group
    except* InvalidRequestError as group:
        caught["invalid"] = group
    assert set(caught) == {"transport", "invalid"}
    for group in caught.values():
        assert isinstance(group, BatchSubmitError)
        assert group.handles == ("h0", None, "h2", None)


def test_batch_submit_error_is_caught_as_a_library_error() -> None:
    with pytest.raises(CometRunwayError) as info:
        raise _batch()
    assert isinstance(info.value, BatchSubmitError)
    copied = copy.copy(info.value)
    assert copied.handles == info.value.handles


PICKLED: list[CometRunwayError] = [
    APIError("teapot", status=418, code="c", body=b"b"),
    InvalidRequestError("bad", status=400, code="invalid_request"),
    AuthenticationError("key", status=401),
    TaskNotFound("task_not_exist", task_id="abc"),
    EndpointError("html", status=404, body=b"<html>"),
    RateLimitError("slow", retry_after=2.0),
    ServerError("down", status=503),
    TransportError("refused", request_sent=False),
    DecodeError("junk", body=b"xyz"),
    AmbiguousSubmitError("maybe", request=TextToVideo("a cat"), key="k"),
    TaskFailed(Task("t", TaskStatus.FAILED, error="boom", error_code="X.Y")),
    ClientStateError("closed"),
    JournalError("corrupt"),
]


@pytest.mark.parametrize("err", PICKLED, ids=[type(e).__name__ for e in PICKLED])
def test_every_error_survives_pickling(err: CometRunwayError) -> None:
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert clone.args == err.args
    assert str(clone) == str(err)
    assert vars(clone) == vars(err)


def test_batch_submit_error_survives_pickling() -> None:
    clone = pickle.loads(pickle.dumps(_batch()))
    assert isinstance(clone, BatchSubmitError)
    assert clone.handles == ("h0", None, "h2", None)
    assert clone.message == "2 of 4 submits failed"
    assert [type(e) for e in clone.exceptions] == [InvalidRequestError, TransportError]
    assert [e.index for e in clone.exceptions] == [1, 3]  # type: ignore[attr-defined]
