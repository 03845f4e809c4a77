"""The server's dynamic batcher: concurrent requests share one runner call up to the token budget, kinds never
mix, a failing batch never takes the other requests down with it, and closing drains the queue."""

from __future__ import annotations

import threading
import time

import pytest

from decemb.serve.batcher import BatcherClosedError, DynamicBatcher


class Recorder:
    """A runner that records each call's payloads; ``gate`` holds the first call until it is set."""

    def __init__(self, fail_on: object = None) -> None:
        self.calls: list[list[object]] = []
        self.fail_on = fail_on
        self.gate, self.entered = threading.Event(), threading.Event()
        self.gate.set()

    def __call__(self, payloads):
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(list(payloads))
        if self.fail_on in payloads:
            raise RuntimeError("boom")
        return [f"done {payload}" for payload in payloads]


def blocked(recorder: Recorder, batcher: DynamicBatcher) -> None:
    """Hold the worker inside a first call, so that what is submitted next queues up behind it."""
    recorder.gate.clear()
    batcher.submit("a", "opener", 1)
    assert recorder.entered.wait(10)


def test_queued_requests_share_one_call_up_to_the_token_budget() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher({"a": recorder}, max_batch_tokens=25, max_wait=0.0)
    blocked(recorder, batcher)
    futures = [batcher.submit("a", index, 10) for index in range(5)]
    recorder.gate.set()
    assert [future.result(10) for future in futures] == [f"done {index}" for index in range(5)]
    batcher.close()
    assert recorder.calls == [["opener"], [0, 1], [2, 3], [4]]  # 10 + 10 <= 25 < 10 + 10 + 10, in order


def test_a_request_larger_than_the_budget_runs_alone() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher({"a": recorder}, max_batch_tokens=8, max_wait=0.0)
    blocked(recorder, batcher)
    futures = [batcher.submit("a", "big", 100), batcher.submit("a", "small", 1)]
    recorder.gate.set()
    assert [future.result(10) for future in futures] == ["done big", "done small"]
    batcher.close()
    assert recorder.calls[1:] == [["big"], ["small"]]


def test_the_wait_gathers_requests_that_arrive_soon_after() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher({"a": recorder}, max_batch_tokens=1000, max_wait=0.5)
    first = batcher.submit("a", 1, 1)
    time.sleep(0.05)
    second = batcher.submit("a", 2, 1)
    assert (first.result(10), second.result(10)) == ("done 1", "done 2")
    batcher.close()
    assert recorder.calls == [[1, 2]]


def test_kinds_are_never_mixed_in_one_call() -> None:
    embed, rerank = Recorder(), Recorder()
    batcher = DynamicBatcher({"a": embed, "b": rerank}, max_batch_tokens=1000, max_wait=0.0)
    blocked(embed, batcher)
    futures = [batcher.submit(kind, index, 1) for index, kind in enumerate("aabba")]
    embed.gate.set()
    assert [future.result(10) for future in futures] == [f"done {index}" for index in range(5)]
    batcher.close()
    assert embed.calls == [["opener"], [0, 1], [4]] and rerank.calls == [[2, 3]]


def test_a_failing_batch_is_run_again_request_by_request() -> None:
    recorder = Recorder(fail_on="bad")
    batcher = DynamicBatcher({"a": recorder}, max_batch_tokens=1000, max_wait=0.0)
    blocked(recorder, batcher)
    futures = [batcher.submit("a", payload, 1) for payload in ("x", "bad", "y")]
    recorder.gate.set()
    assert futures[0].result(10) == "done x" and futures[2].result(10) == "done y"
    with pytest.raises(RuntimeError, match="boom"):
        futures[1].result(10)
    batcher.close()
    assert recorder.calls[1:] == [["x", "bad", "y"], ["x"], ["bad"], ["y"]]
    assert batcher.stats.retried == 1


def test_close_drains_the_queue_then_refuses_new_work() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher({"a": recorder}, max_batch_tokens=2, max_wait=0.0)
    blocked(recorder, batcher)
    futures = [batcher.submit("a", index, 1) for index in range(7)]
    closing = threading.Thread(target=batcher.close)
    closing.start()
    time.sleep(0.05)
    recorder.gate.set()
    closing.join(10)
    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [f"done {index}" for index in range(7)]
    with pytest.raises(BatcherClosedError):
        batcher.submit("a", "late", 1)


def test_a_cancelled_request_is_skipped() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher({"a": recorder}, max_batch_tokens=1000, max_wait=0.0)
    blocked(recorder, batcher)
    gone, kept = batcher.submit("a", "gone", 1), batcher.submit("a", "kept", 1)
    assert gone.cancel()  # its client disconnected before the worker reached it
    recorder.gate.set()
    assert kept.result(10) == "done kept"
    batcher.close()
    assert recorder.calls[1:] == [["kept"]]
