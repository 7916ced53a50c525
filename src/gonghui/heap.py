"""The objects a long-lived process builds as it starts, kept out of garbage collection.

A server process, the hot writer and a ``gonghui worker`` each build some 200,000 objects
as they start (modules, ORM mappers and metadata, the app and its routes) that live as long
as the process. CPython's cyclic collector rescans every one of them on each full
collection, which comes every few seconds under load: about 155 ms on the 2-core machine
of the benchmarks (``gc.collect()`` after loading the writer's modules), during which the
process does nothing else. In the hot writer that is a stall of every member's draw, vote
and claim on the server. Frozen, they are left out of every collection; what the process
creates afterwards is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Leave everything that exists now out of future collections: call once, when the
    process has loaded what it runs and before it takes work."""
    gc.freeze()
