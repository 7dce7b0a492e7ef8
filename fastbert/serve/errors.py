"""The server's error answers: an HTTP status and text-embeddings-inference's ``{"error", "error_type"}`` body."""

from __future__ import annotations

BAD_JSON = 400
TOO_LARGE = 413
MALFORMED = 422
BACKEND_FAILED = 424  # text-embeddings-inference's status for an inference that failed or a task the model lacks
OVERLOADED = 429
UNAVAILABLE = 503


class RequestError(Exception):
    """A request the server answers with ``status`` and the JSON ``{"error": message, "error_type": ...}``."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict:
        return {"error": self.message, "error_type": self.error_type}


def malformed(message: str) -> RequestError:
    return RequestError(MALFORMED, "validation", message)


def too_large(message: str) -> RequestError:
    return RequestError(TOO_LARGE, "validation", message)
