"""The objects a long-lived process builds as it starts, kept out of garbage collection, and
how often what it creates afterwards is collected.

A server process, the hot writer and a ``gonghui worker`` each build some 200,000 objects
as they start (modules, ORM mappers and metadata, the app and its routes) that live as long
as the process. CPython's cyclic collector rescans every one of them on each full
collection, which comes every few seconds under load: about 155 ms on the 2-core machine
of the benchmarks (``gc.collect()`` after loading the writer's modules), during which the
process does nothing else. In the hot writer that is a stall of every member's draw, vote
and claim on the server. Frozen, they are left out of every collection.

What the process creates afterwards is collected as before, but less often than CPython's
default (a young collection every 700 net container allocations). A server process holds
the objects of every request in flight (some 300 for a draw, 32 draws at a time on each of
the benchmark's processes) and CPython counts their frees only down to zero after each
collection, so at 700 it collected about every ninth draw and moved the requests in
flight to the older generations, whose collections followed: 50-55 µs of a draw's 380-410
µs in an API process went to the collector (``gc.callbacks`` timing, ``make bench
W=draw_burst``'s server). At :data:`YOUNG_THRESHOLD` the requests in flight fit within one
young generation, and collections fall to a few a second, each of about 4 ms.
"""

from __future__ import annotations

import gc

# A young collection once this many more container objects were made than freed (CPython's
# default: 700). The older generations keep CPython's thresholds.
YOUNG_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Leave everything that exists now out of future collections, and collect what the
    process creates afterwards at :data:`YOUNG_THRESHOLD`: call once, when the process has
    loaded what it runs and before it takes work."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
