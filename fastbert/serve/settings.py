"""The server's limits, shared by the command, the Ray Serve application and the request handling."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .batcher import BatchObserver, TokenBatcher

CUDA_BATCH_TOKENS = 16384
# the CPU computes attention over a packed batch as one block-diagonal product, whose cost grows with the square of
# the batch's tokens: smaller batches there
CPU_BATCH_TOKENS = 2048


@dataclass(frozen=True)
class ServeSettings:
    max_batch_tokens: int | None = None  # tokens in one forward pass, a longer input runs alone; None: by device
    max_batch_wait_ms: float = 2.0       # how long the oldest queued request may wait for others to join its batch
    max_client_batch_size: int = 32      # inputs in one request; more is answered 413
    max_concurrent_requests: int = 512   # requests in flight per model replica; more are answered 429

    def __post_init__(self):
        for name in ("max_batch_tokens", "max_client_batch_size", "max_concurrent_requests"):
            value = getattr(self, name)
            if not (value is None and name == "max_batch_tokens") and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.max_batch_wait_ms, (int, float)) or self.max_batch_wait_ms < 0:
            raise ValueError(f"max_batch_wait_ms must be a number of milliseconds >= 0, got {self.max_batch_wait_ms!r}")

    def on(self, device: str) -> ServeSettings:
        """These settings with the batch budget of ``device`` where none was given."""
        if self.max_batch_tokens is not None:
            return self
        return replace(self, max_batch_tokens=CUDA_BATCH_TOKENS if device.startswith("cuda") else CPU_BATCH_TOKENS)

    def batcher(self, run_batch, observer: BatchObserver | None = None, collect=list) -> TokenBatcher:
        """A batcher of ``run_batch`` with these limits (the batch budget resolved by ``on``); ``collect``: a request's
        answer from its results (``TokenBatcher``)."""
        if self.max_batch_tokens is None:
            raise ValueError("resolve the batch budget for a device first: settings.on(device)")
        return TokenBatcher(run_batch, max_batch_tokens=self.max_batch_tokens, max_wait_s=self.max_batch_wait_ms / 1000,
                            max_concurrent_requests=self.max_concurrent_requests, observer=observer,
                            collect=collect)
