"""The fake's answer bodies: every documented create and poll envelope, built from a task.

Pure functions of a ``TaskRecord``, its phase, the fake's clock and its base URL (wire
reference §1.A, §1.5, §1.10, §8.2, §8.5). ``FakeCometAPI`` picks the envelope; these build it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._values import TaskRecord, _Phase

_RUNWAY_DONE = {"succeed": "SUCCEEDED", "fail": "FAILED", "cancel": "CANCELLED"}
CANCELLED_REASON = "Task was cancelled."

# Credits the fake estimates per kind of task (wire reference §8.2). Illustrative numbers,
# not Runway's price list: tests need a stable, non-zero figure per route.
CREDITS_BY_ACTION: Mapping[str, int] = {
    "TEXT_TO_VIDEO": 25,
    "IMAGE_TO_VIDEO": 25,
    "VIDEO_TO_VIDEO": 50,
    "ACT_ONE": 25,
    "VIDEO_UPSCALE": 10,
    "CHARACTER_PERFORMANCE": 25,
    "TEXT_TO_IMAGE": 5,
    "TEXT_TO_SPEECH": 2,
    "SOUND_EFFECT": 2,
}
_DEFAULT_CREDITS = 10
# Progress stays strictly inside (0, 1) while running: 0 and 1 read as "not started"/"done".
_PROGRESS_FLOOR = 0.01
_PROGRESS_CEILING = 0.99
_PROGRESS_UNKNOWN = 0.5


def output_url(base: str, task_id: str, name: str) -> str:
    """The URL the fake serves an output file at."""
    return f"{base}/cdn/{task_id}/{name}"


def estimated_credits(task: TaskRecord) -> int:
    """What the fake says a task will cost (see §8.2 in :doc:`/quirks`)."""
    return CREDITS_BY_ACTION.get(task.action, _DEFAULT_CREDITS)


def final_credits(task: TaskRecord) -> int:
    """What a finished task cost: the estimate if it succeeded; refunded (0) otherwise, as
    Runway reports fully refunded tasks (see §8.2 in :doc:`/quirks`)."""
    return estimated_credits(task) if task.outcome == "succeed" else 0


def progress_of(task: TaskRecord, now: float) -> float:
    """How far a running task is, 0–1, by whichever of its limits is further behind."""
    life = task.lifecycle
    fractions = []
    if life.running_polls:
        seen = max(task.visible_polls, 1)
        fractions.append((seen - life.queued_polls) / (life.running_polls + 1))
    if life.running_for > 0:
        fractions.append((now - task.created_at - life.queued_for) / life.running_for)
    progress = min(fractions) if fractions else _PROGRESS_UNKNOWN
    return min(_PROGRESS_CEILING, max(_PROGRESS_FLOOR, progress))


def create_answer(task: TaskRecord, envelope: str) -> dict[str, Any]:
    """A ``/runway/pro/*`` create answer in envelope A1, A2 or A3 (see :doc:`/quirks`)."""
    data: dict[str, Any] = {"task_id": task.task_id}
    if envelope == "A2":
        # Compatibility pages, newer snapshot: no exec_time, message and msg (§1.A A2).
        return {"code": 200, "message": "", "msg": "success", "data": data}
    if envelope == "A3":
        # The upstream reseller answer (§1.A A3).
        return {"code": 200, "msg": "成功", "data": data, "exec_time": 0.67573}
    if task.path == "/runway/pro/video2video":
        # Reverse-format video2video documents a richer data object (§1.A).
        prompt = task.body.get("prompt") or ""
        empty = dict.fromkeys(("video_url", "last_frame", "msg", "poster"), "")
        stamp = str(int(task.created_wall))
        data.update(state="", status="0", prompt=prompt, prompt_en=prompt, **empty)
        data.update(create_time=stamp, update_time=stamp)
    # Reverse pages, validated live: code 200, msg 成功 (§1.A A1).
    return {"code": 200, "msg": "成功", "data": data, "exec_time": 0.1}


def official_create_answer(task: TaskRecord, with_cost: bool) -> dict[str, Any]:
    """An official-format create answer: ``{"id"}`` (§1.6), with Runway's estimate (§8.2)."""
    answer: dict[str, Any] = {"id": task.task_id}
    if with_cost:
        answer["estimatedCost"] = {"credits": estimated_credits(task)}
    return answer


def poll_answer(
    task: TaskRecord, phase: _Phase, now: float, envelope: str, base: str, with_cost: bool
) -> dict[str, Any]:
    """A poll answer in envelope T1, T2, F1, F2, F3 or "lowercase"."""
    if envelope == "T1":
        return runway_task(task, phase, now, base, with_cost)
    if envelope == "lowercase":
        return lowercase_task(task, phase, now, base)
    if envelope == "F3":
        # Upstream reseller answer (wire reference §1.5 F3).
        record = upstream_record(task, phase, base)
        return {"code": 200, "msg": "成功", "data": record, "exec_time": 0.028943}
    if envelope == "F2":
        return wrapper_record(task, phase, now, base, with_cost, flat=True)  # §1.5 F2
    # F1 and T2: the CometAPI wrapper (§1.5 F1, §1.10 T2).
    record = wrapper_record(task, phase, now, base, with_cost)
    return {"code": "success", "message": "", "data": record}


def runway_task(
    task: TaskRecord, phase: _Phase, now: float, base: str, with_cost: bool
) -> dict[str, Any]:
    """The bare Runway task object (see :doc:`/quirks`), with Runway's cost fields
    on official tasks when ``with_cost`` (§8.2): ``estimatedCost`` until it ends, then
    ``cost``."""
    created = datetime.fromtimestamp(task.created_wall, UTC)
    answer: dict[str, Any] = {
        "id": task.task_id,
        "status": "PENDING",
        "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if phase is _Phase.RUNNING:
        answer["status"] = "RUNNING"
        answer["progress"] = round(progress_of(task, now), 3)
    elif phase is _Phase.DONE:
        outcome = task.outcome or "succeed"
        answer["status"] = _RUNWAY_DONE[outcome]
        if outcome == "succeed":
            answer["output"] = [output_url(base, task.task_id, task.files[0])]
        elif outcome == "fail":
            answer["failure"] = task.fail_reason or ""
            answer["failureCode"] = task.failure_code or ""
    if with_cost and task.family == "official":
        if phase is _Phase.DONE:
            answer["cost"] = {"credits": final_credits(task)}
        else:
            answer["estimatedCost"] = {"credits": estimated_credits(task)}
    return answer


def lowercase_task(task: TaskRecord, phase: _Phase, now: float, base: str) -> dict[str, Any]:
    """A task object as CometAPI's tutorial reads it (see §8.5 in :doc:`/quirks`): lowercase status
    words, and a failure's text under ``error``."""
    answer = runway_task(task, phase, now, base, with_cost=False)
    answer["status"] = answer["status"].lower()
    failure = answer.pop("failure", None)
    answer.pop("failureCode", None)
    if failure is not None:
        answer["error"] = failure
    return answer


def wrapper_record(
    task: TaskRecord, phase: _Phase, now: float, base: str, with_cost: bool, *, flat: bool = False
) -> dict[str, Any]:
    """The wrapper's task record (F1/T2 ``data``; F2 when ``flat``, with ``result_url``)."""
    # Wrapper words, percent-string progress, "100%" at the end (wire reference §2).
    nested = runway_task(task, phase, now, base, with_cost)
    succeeded = phase is _Phase.DONE and task.outcome == "succeed"
    if phase is _Phase.QUEUED:
        status, progress = task.lifecycle.queued_word, "0%"
    elif phase is _Phase.RUNNING:
        status, progress = "IN_PROGRESS", f"{int(progress_of(task, now) * 100)}%"
    else:
        # The wrapper has no cancel word: FAILURE, nested CANCELLED (§2, §6 C15).
        status, progress = ("SUCCESS" if succeeded else "FAILURE"), "100%"
    if succeeded and len(task.files) > 2:
        nested["poster"] = output_url(base, task.task_id, task.files[1])
        nested["last_frame"] = output_url(base, task.task_id, task.files[2])
    record: dict[str, Any] = {
        "task_id": task.task_id,
        "action": task.action,
        "status": status,
        "fail_reason": (task.fail_reason or "") if phase is _Phase.DONE else "",
    }
    if flat:
        main_url = output_url(base, task.task_id, task.files[0]) if succeeded else ""
        record["result_url"] = main_url
    started = task.started_at if phase is not _Phase.QUEUED else None
    finished = task.finished_at if phase is _Phase.DONE else None
    record.update(
        submit_time=int(task.created_wall),
        start_time=int(task.wall(started)) if started is not None else 0,
        finish_time=int(task.wall(finished)) if finished is not None else 0,
        progress=progress,
        data=nested,
    )
    return record


def upstream_record(task: TaskRecord, phase: _Phase, base: str) -> dict[str, Any]:
    """The upstream record (see :doc:`/quirks`): digits, 3 = success, 2 = failure
    (§6 C4); times are unix seconds as strings; URLs null until done."""
    succeeded = phase is _Phase.DONE and task.outcome == "succeed"
    failed = phase is _Phase.DONE and not succeeded
    digit = {_Phase.QUEUED: "0", _Phase.RUNNING: "1"}.get(phase, "3" if succeeded else "2")
    urls = [output_url(base, task.task_id, name) for name in task.files] if succeeded else []
    prompt = task.body.get("prompt", task.body.get("promptText")) or ""
    latest = task.finished_at if phase is _Phase.DONE else None
    if latest is None and phase is _Phase.RUNNING:
        latest = task.started_at
    return {
        "task_id": task.task_id,
        "status": digit,
        "prompt": prompt,
        "prompt_en": prompt,
        "video_url": urls[0] if urls else None,
        "poster": urls[1] if len(urls) > 1 else None,
        "last_frame": urls[2] if len(urls) > 2 else None,
        "msg": task.fail_reason if failed else None,
        "point": "200",
        "refund": "1" if failed else "0",
        "create_time": str(int(task.created_wall)),
        "update_time": str(int(task.wall(latest if latest is not None else task.created_at))),
    }
