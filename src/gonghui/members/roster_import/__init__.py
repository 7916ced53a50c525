"""Roster import: a file of people becomes roster entries, bad rows become an error report.

One module per use case:

- :mod:`.jobs`: the import job (create, read, list) and where its upload and report live;
- :mod:`.upload`: accepting an upload from the API or the console and importing it as a task
  on the queue;
- :mod:`.run`: running an import in units of work, with progress and the error report;
- :mod:`.pipeline`: reading, validating and sealing the file ahead of the writer (a
  process pool for large files);
- :mod:`.recovery`: housekeeping for imports whose process died and uploads left behind.

The names callers use are importable from this package.
"""

from gonghui.members.roster_import.jobs import (
    create_job,
    get_job,
    list_jobs,
    report_key,
    upload_key,
)
from gonghui.members.roster_import.recovery import INTERRUPTED, tidy_imports
from gonghui.members.roster_import.run import ImportProgress, run_import
from gonghui.members.roster_import.upload import accept_upload

__all__ = [
    "INTERRUPTED",
    "ImportProgress",
    "accept_upload",
    "create_job",
    "get_job",
    "list_jobs",
    "report_key",
    "run_import",
    "tidy_imports",
    "upload_key",
]
