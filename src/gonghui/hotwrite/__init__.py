"""Members' hot writes (draws, quiz attempts, claims) through one batching writer.

- :mod:`.writer`: the batching writer thread (group commit, a savepoint per job, batch
  forms declared with :func:`batched`);
- :mod:`.transport`: the writer process ``gonghui serve`` starts, and its socket protocol;
- :mod:`.client`: how a server process hands it jobs (:func:`run`, :func:`run_async`);
- :mod:`.registry`: the modules whose operations the writer process runs, by name;
- :mod:`.load`: how busy this host's writer is (:func:`busy`), for work that gives way.
"""

from gonghui.hotwrite.client import WriterUnavailable, run, run_async
from gonghui.hotwrite.load import busy
from gonghui.hotwrite.transport import WriterProcess, start_writer_process
from gonghui.hotwrite.writer import (
    RunAgain,
    batch_form,
    batched,
    first_try,
    one,
    request_id_of,
    rounds,
)

__all__ = [
    "RunAgain",
    "WriterProcess",
    "WriterUnavailable",
    "batch_form",
    "batched",
    "busy",
    "first_try",
    "one",
    "request_id_of",
    "rounds",
    "run",
    "run_async",
    "start_writer_process",
]
