"""The import's pipeline: the file's pieces become prepared batches, grouped into
transactions, read ahead of the thread that writes them.

Validation and sealing are the CPU cost; large files hand them to a process pool, which
also parses CSV files: this process only cuts the file into chunks of whole records. A
reader thread reads the file and collects prepared batches ahead of the writer.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from gonghui.members.roster_file import Piece, RosterFileError
from gonghui.members.roster_rows import (
    PackedBatch,
    PreparedBatch,
    RowPreparer,
    init_worker,
    prepare_in_worker,
)

_T = TypeVar("_T")

POOL_WORKERS = 2

# Prepared in this process, or by a worker and still pickled.
Batch = PreparedBatch | PackedBatch


def prepared(
    pieces: Iterator[tuple[Piece, int]],
    preparer: RowPreparer,
    workers: int,
    init_args: tuple[Any, ...],
) -> Iterator[tuple[Batch, int]]:
    """Prepared batches in file order; with ``workers`` > 0 a bounded window of pieces is
    in flight in a process pool (memory stays constant: the file is never read ahead by
    more than the window)."""
    if workers < 1:
        for piece, mark in pieces:
            yield preparer.prepare(piece), mark
        return
    # spawn: the importing process may run threads (the API server), and fork would copy
    # their locks mid-flight.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=init_worker, initargs=init_args
    ) as pool:
        window: deque[tuple[Future[PackedBatch], int]] = deque()
        for piece, mark in pieces:
            window.append((pool.submit(prepare_in_worker, piece), mark))
            if len(window) >= workers * 3:
                future, done_mark = window.popleft()
                yield future.result(), done_mark
        while window:
            future, done_mark = window.popleft()
            yield future.result(), done_mark


def pool_size(large: bool, workers: int | None) -> int:
    """Worker processes for validation and sealing; 0 means in this process."""
    if workers is not None:
        return workers
    cpus = os.cpu_count() or 1
    return min(cpus - 1, POOL_WORKERS) if large and cpus > 1 else 0


def read_ahead(items: Iterator[_T], depth: int) -> Iterator[_T]:
    """``items`` produced by a thread of its own, at most ``depth`` ahead, so that reading
    the file and collecting prepared batches overlap the database writes (the SQLite and
    PostgreSQL drivers release the GIL while the database works). Memory stays bounded by
    ``depth``; an error in the thread is raised here, and stopping early stops the thread."""
    handoff: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's clean-up (the worker pool) runs in this thread

    thread = threading.Thread(target=produce, name="roster-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, value = handoff.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        thread.join()


def transactions(
    prepared: Iterator[tuple[Batch, int]], rows_per_transaction: int
) -> Iterator[tuple[list[Batch], int]]:
    """Group prepared batches into transactions of about ``rows_per_transaction`` rows. A
    batch that met a file-level error ends the import: its rows are written, then the
    error is raised."""
    group: list[Batch] = []
    rows = 0
    mark = 0
    for batch, mark in prepared:
        group.append(batch)
        rows += batch.size
        if batch.file_error is not None:
            yield group, mark
            raise RosterFileError(*batch.file_error)
        if rows >= rows_per_transaction:
            yield group, mark
            group, rows = [], 0
    if group:
        yield group, mark
