"""Dynamic batching across concurrent requests: one worker thread, one queue, one model call per batch.

Requests arrive already validated (a request that could fail never reaches the queue). The worker takes the
oldest request, then gathers more of the same kind until their tokens reach ``max_batch_tokens`` or
``max_wait`` seconds pass, and runs them all in ONE call of the kind's runner (for embeddings, one
:meth:`decemb.engine.Engine.embed` call: one job per request, length-sorted batches across all of them), then
hands each request its own slice. Should a batch fail anyway, each of its requests is run again on its own,
so one request's failure never becomes another's. Closing drains: everything queued is still run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

Runner = Callable[[Sequence[Any]], Sequence[Any]]  # payloads -> one result per payload, in order


class BatcherClosedError(RuntimeError):
    """Work submitted after :meth:`DynamicBatcher.close`."""


@dataclass
class _Work:
    kind: str
    payload: Any
    tokens: int
    future: Future[Any] = field(default_factory=Future)


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    largest: int = 0  # most requests in one batch
    retried: int = 0  # batches that failed and were run again request by request


class DynamicBatcher:
    """Runs submitted work on one thread, in batches of one kind (see the module docstring)."""

    def __init__(
        self,
        runners: dict[str, Runner],
        *,
        max_batch_tokens: int,
        max_wait: float,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        if max_batch_tokens < 1 or max_wait < 0:
            raise ValueError(f"need max_batch_tokens >= 1 and max_wait >= 0, got {max_batch_tokens}, {max_wait}")
        self.runners = dict(runners)
        self.max_batch_tokens, self.max_wait = max_batch_tokens, max_wait
        self.stats = BatchStats()
        self._queue: queue.Queue[_Work | None] = queue.Queue()
        self._carry: _Work | None = None  # taken from the queue but belongs to the next batch
        self._closed = False
        self._lock = threading.Lock()
        self._on_start = on_start
        self._thread = threading.Thread(target=self._loop, name="decemb-serve-batcher", daemon=True)
        self._thread.start()

    # -- the caller's side ----------------------------------------------------------------------
    def submit(self, kind: str, payload: Any, tokens: int) -> Future[Any]:
        """Queue one request; its future gets the runner's result for it (or the runner's exception)."""
        if kind not in self.runners:
            raise KeyError(f"no runner for {kind!r}")
        work = _Work(kind, payload, max(int(tokens), 1))
        with self._lock:
            if self._closed:
                raise BatcherClosedError("the server is shutting down")
            self._queue.put(work)
        return work.future

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish everything queued, stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (self._carry is not None)

    # -- the worker -----------------------------------------------------------------------------
    def _loop(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while True:
            batch, stop = self._gather()
            if batch:
                self._run(batch)
            if stop and self._carry is None:
                return

    def _next(self, timeout: float | None) -> _Work | bool | None:
        """The next work item; ``None`` for the close marker, ``False`` when ``timeout`` passed."""
        if self._carry is not None:
            work, self._carry = self._carry, None
            return work
        try:
            return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return False

    def _gather(self) -> tuple[list[_Work], bool]:
        """(one batch of one kind, whether the close marker was reached)."""
        first = self._next(None)
        if first is None or first is False:
            return [], True
        batch, tokens = [first], first.tokens
        deadline = time.monotonic() + self.max_wait
        while tokens < self.max_batch_tokens:
            item = self._next(max(deadline - time.monotonic(), 0.0))
            if item is False:
                break
            if item is None:
                return batch, True
            if item.kind != first.kind or tokens + item.tokens > self.max_batch_tokens:
                self._carry = item
                break
            batch.append(item)
            tokens += item.tokens
        return batch, False

    def _run(self, batch: list[_Work]) -> None:
        live = [work for work in batch if work.future.set_running_or_notify_cancel()]  # a client gone: skip
        if not live:
            return
        self.stats.batches += 1
        self.stats.requests += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        runner = self.runners[live[0].kind]
        try:
            results = runner([work.payload for work in live])
        except Exception as error:
            if len(live) == 1:
                logger.exception("a %s request failed", live[0].kind)
                live[0].future.set_exception(error)
                return
            self.stats.retried += 1
            logger.warning("a batch of %d %s requests failed (%s); running each alone", len(live), live[0].kind, error)
            for work in live:
                self._run_alone(runner, work)
            return
        for work, result in zip(live, results):
            work.future.set_result(result)

    def _run_alone(self, runner: Runner, work: _Work) -> None:
        try:
            work.future.set_result(runner([work.payload])[0])
        except Exception as error:
            logger.exception("a %s request failed", work.kind)
            work.future.set_exception(error)
