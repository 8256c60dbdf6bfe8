"""Story text objects: a `story_text_object_translation` goes through the pools as one
translation request, and comes back as one `story_text_object_translation_completed` once
every target language has its result.

The gateway sends no task id for these: the shim makes one that carries the story's post and
index (`story:<uuid>:<index>:<postId>`), so that the results alone say where they belong and a
shim that restarts meanwhile finishes the story from the results JetStream delivers again. A
story's results are acked only once its event is queued for the gateway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from translator.contracts.errors import InvalidRequest
from translator.contracts.messages import (
    TranslationRequest,
    TranslationResult,
    is_identifier,
    validate_request,
)
from zmq_compat.envelopes import STORY, STORY_TASK_PREFIX, story_completed
from zmq_compat.errors import BadFrame, too_long

H = TypeVar("H")  # what is held for each result until the story is answered: its NATS message


@dataclass(frozen=True)
class StoryRequest:
    """A story text object to translate; `request` None when there is nothing to translate
    (answered at once with no translations, `reason` says why)."""

    post_id: str
    index: int
    request: TranslationRequest | None
    reason: str = ""


def story_task_id(post_id: str, index: int) -> str:
    return f"{STORY_TASK_PREFIX}{uuid.uuid4()}:{index}:{post_id}"


def story_of(task_id: str) -> tuple[str, int] | None:
    """(postId, textObjectIndex) of a story's task id; None for any other task."""
    if not task_id.startswith(STORY_TASK_PREFIX):
        return None
    parts = task_id.split(":", 3)
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3]:
        return None
    return parts[3], int(parts[2])


def parse_story(payload: dict[str, Any], max_text_length: int) -> StoryRequest:
    """The request for a story text object. BadFrame when it cannot be answered at all (no
    postId or textObjectIndex to address the event to)."""
    post_id, index = payload.get("postId"), payload.get("textObjectIndex")
    if not is_identifier(post_id) or len(post_id) > 180:
        raise BadFrame(f"invalid {STORY}: postId is missing or unfit")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise BadFrame(f"invalid {STORY}: textObjectIndex is missing or not a whole number")
    text = payload.get("text")
    if isinstance(text, str) and len(text) > max_text_length:
        return StoryRequest(post_id, index, None, too_long(len(text), max_text_length))
    source = payload.get("sourceLanguage") or "fr"
    targets = payload.get("targetLanguages")
    if isinstance(targets, list) and isinstance(source, str):  # none to the source, as Meeshy's
        targets = [t for t in targets if not isinstance(t, str) or t.lower() != source.lower()]
        if not targets:
            return StoryRequest(post_id, index, None, "no target language besides the source")
    fields = {
        "taskId": story_task_id(post_id, index),
        "messageId": f"story:{post_id}",
        "text": text,
        "sourceLanguage": source,
        "targetLanguages": targets,
        "modelType": payload.get("modelType") or "basic",
        "timestamp": payload.get("timestamp"),
    }
    try:
        return StoryRequest(post_id, index, validate_request(fields))
    except InvalidRequest as exc:
        return StoryRequest(post_id, index, None, f"invalid request: {exc}")


@dataclass
class _Story(Generic[H]):
    post_id: str
    index: int
    expected: int
    results: dict[str, tuple[TranslationResult, H]] = field(default_factory=dict)


class Stories(Generic[H]):
    """The stories whose results are still coming, by task id."""

    def __init__(self) -> None:
        self._open: dict[str, _Story[H]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, result: TranslationResult, held: H) -> tuple[bytes, dict[str, H]] | None:
        """Take one of a story's results (a redelivered one replaces the first). None while
        some are still due; with the last, the story's event and what is held for each target
        language."""
        where = story_of(result.task_id)
        if where is None:
            raise ValueError(f"{result.task_id!r} is not a story's task id")
        story = self._open.setdefault(result.task_id, _Story(*where, result.expected_results))
        story.results[result.target_language] = (result, held)
        if len(story.results) < story.expected:
            return None
        del self._open[result.task_id]
        translations = {
            language: done.translated_text
            for language, (done, _) in story.results.items()
            if done.status == "ok" and done.translated_text.strip()
        }
        frame = story_completed(story.post_id, story.index, translations)
        return frame, {language: h for language, (_, h) in story.results.items()}
