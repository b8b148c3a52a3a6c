"""One outbox for every after-commit effect.

Services record effects in the caller's transaction — ``emit(session, topic, payload)`` for an
event, ``jobs.queue.enqueue`` for a job — and never commit. Whoever owns the transaction (the
request's session dependency, a job's unit of work) commits; the ``OutboxRelay`` installed on
the process's session factory then delivers the events that commit wrote and wakes the worker
if it queued a job. A crash between the commit and the delivery leaves the rows in the table:
the worker's periodic ``deliver_due`` sends them (at least once; every subscriber is idempotent).
A rolled-back transaction takes its events and jobs with it.
"""

from control_plane.outbox.relay import OutboxRelay, emit, note_job_enqueued

__all__ = ["OutboxRelay", "emit", "note_job_enqueued"]
