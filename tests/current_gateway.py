"""The current Meeshy gateway's ZeroMQ client (isopen-io/meeshy, main, 2026-12:
services/gateway/src/services/zmq-translation/), ported line for line where it builds frames:

- `ZmqRequestSender.sendTranslationRequest`: targets lower-cased and de-duplicated, then
  `{type, taskId, messageId, text, sourceLanguage, targetLanguages, conversationId, modelType,
  timestamp}` as `JSON.stringify` writes it (no spaces, UTF-8 as is, undefined keys left out);
- `ZmqConnectionManager.sendMultipart`: frame 0 the JSON, frames 1+ the binary parts that
  `binaryFrames` numbers from 1 (`sendAudioProcessRequest`, `sendTranscriptionOnlyRequest`);
- `sendVoiceAPIRequest`, `sendVoiceProfileRequest`, `sendStoryTextObjectRequest`, `sendPing`;
- `ZmqTranslationClient._registerRequestTimeout`: on a timeout, the same request pushed again
  with the same taskId and only the target languages still waited for (`retry`)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.gateway import Gateway


def stringify(payload: dict[str, Any]) -> bytes:
    """`JSON.stringify(payload)` as a UTF-8 buffer: keys whose value is undefined are left out."""
    present = {key: value for key, value in payload.items() if value is not None}
    return json.dumps(present, separators=(",", ":"), ensure_ascii=False).encode()


def now_ms() -> int:
    return int(time.time() * 1000)


class CurrentGateway(Gateway):
    async def send_ping(self) -> None:
        await self.send_raw(stringify({"type": "ping", "timestamp": now_ms()}))

    async def translate(
        self,
        text: str,
        targets: list[str],
        source: str = "en",
        conversation_id: str = "conv-1",
        model_type: str | None = None,
        task_id: str | None = None,
        message_id: str | None = None,
        attachments: tuple[bytes, ...] = (),
    ) -> dict[str, Any]:
        """`sendTranslationRequest`; returns the request as sent. `attachments`: frames after
        the JSON, which the gateway sends with other requests (a text's must not mind them)."""
        unique = list(dict.fromkeys(language.lower() for language in targets))
        message = {
            "type": "translation",
            "taskId": task_id or str(uuid.uuid4()),
            "messageId": message_id or f"msg-{uuid.uuid4().hex[:12]}",
            "text": text,
            "sourceLanguage": source,
            "targetLanguages": unique,
            "conversationId": conversation_id,
            "modelType": model_type or "basic",
            "timestamp": now_ms(),
        }
        await self.send_raw(stringify(message), *attachments)
        return message

    async def retry(self, sent: dict[str, Any], pending: list[str]) -> dict[str, Any]:
        """What the timeout callback pushes: the same request, the same taskId, the languages
        not yet received."""
        return await self.translate(
            sent["text"],
            pending,
            sent["sourceLanguage"],
            sent["conversationId"],
            sent["modelType"],
            task_id=sent["taskId"],
            message_id=sent["messageId"],
        )

    async def audio_process(self, audio: bytes, embedding: bytes | None = None) -> dict[str, Any]:
        """`sendAudioProcessRequest`: multipart, the audio in frame 1, a voice profile in 2."""
        frames_info: dict[str, Any] = {
            "audio": 1,
            "audioMimeType": "audio/webm",
            "audioSize": len(audio),
        }
        parts = [audio]
        if embedding is not None:
            parts.append(embedding)
            frames_info |= {"voiceProfile": 2, "voiceProfileSize": len(embedding)}
        message = {
            "type": "audio_process",
            "messageId": f"msg-{uuid.uuid4().hex[:12]}",
            "attachmentId": f"att-{uuid.uuid4().hex[:12]}",
            "conversationId": "conv-1",
            "senderId": "user-1",
            "audioUrl": "",
            "audioMimeType": "audio/webm",
            "binaryFrames": frames_info,
            "audioDurationMs": 1200,
            "targetLanguages": ["fr"],
            "userLanguage": "en",
            "generateVoiceClone": False,
            "modelType": "medium",
        }
        await self.send_raw(stringify(message), *parts)
        return message

    async def transcription_only(self, audio: bytes) -> dict[str, Any]:
        """`sendTranscriptionOnlyRequest`: multipart, the audio in frame 1."""
        message = {
            "type": "transcription_only",
            "taskId": str(uuid.uuid4()),
            "messageId": f"msg-{uuid.uuid4().hex[:12]}",
            "attachmentId": f"att-{uuid.uuid4().hex[:12]}",
            "audioFormat": "wav",
            "binaryFrames": {"audio": 1, "audioMimeType": "audio/wav", "audioSize": len(audio)},
        }
        await self.send_raw(stringify(message), audio)
        return message

    async def voice_api(self, kind: str) -> dict[str, Any]:
        """`sendVoiceAPIRequest`: the request as the caller built it, one frame."""
        message = {"type": kind, "taskId": str(uuid.uuid4()), "userId": "user-1"}
        await self.send_raw(stringify(message))
        return message

    async def voice_profile(self, kind: str) -> dict[str, Any]:
        """`sendVoiceProfileRequest`: keyed by request_id, one frame."""
        message = {
            "type": kind,
            "request_id": str(uuid.uuid4()),
            "user_id": "user-1",
            "audio_data": "UklGRg==",
            "audio_format": "wav",
        }
        await self.send_raw(stringify(message))
        return message

    async def story_text_object(
        self, post_id: str, index: int, text: str, source: str, targets: list[str]
    ) -> dict[str, Any]:
        """`sendStoryTextObjectRequest`: no taskId, no messageId; the answer is one event."""
        message = {
            "type": "story_text_object_translation",
            "postId": post_id,
            "textObjectIndex": index,
            "text": text,
            "sourceLanguage": source,
            "targetLanguages": targets,
            "timestamp": now_ms(),
        }
        await self.send_raw(stringify(message))
        return message


class CircuitBreaker:
    """`ZmqTranslationClient`'s breaker: every `translation_error` it reads counts
    (`_cbRecordError`), every `translation_completed` resets the count (`_cbRecordSuccess`),
    and it opens at `cbFailureThreshold` consecutive errors (8 in `zmqToleranceConfig.ts`), after
    which the gateway rejects every request for `cbCooldownMs` (30 s)."""

    THRESHOLD = 8

    def __init__(self) -> None:
        self.consecutive = 0
        self.worst = 0  # the longest run of errors seen
        self.opened = False

    def read(self, events: list[dict[str, Any]]) -> CircuitBreaker:
        """Feed the events in the order the gateway read them."""
        for event in events:
            if event.get("type") == "translation_completed":
                self.consecutive = 0
            elif event.get("type") == "translation_error":
                self.consecutive += 1
                self.worst = max(self.worst, self.consecutive)
                self.opened = self.opened or self.consecutive >= self.THRESHOLD
        return self
