"""Background jobs: one worker thread, jobs kept in memory (``queued -> running -> done|failed``)."""
from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    kind: str
    owner: str
    status: str = "queued"
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "progress": round(self.progress, 3),
                "message": self.message, "result": self.result, "error": self.error}


class JobRunner:
    """Runs submitted functions one at a time on a daemon thread. ``describe_error`` turns an exception into
    the job's ``error`` (the same words the synchronous endpoints give)."""

    def __init__(self, describe_error: Callable[[BaseException], dict[str, Any]]) -> None:
        self._jobs: dict[str, Job] = {}
        self._q: queue.Queue[tuple[Job, Callable[..., Any]] | None] = queue.Queue()
        self._describe = describe_error
        self._thread = threading.Thread(target=self._work, name="engine-api-jobs", daemon=True)
        self._thread.start()

    def submit(self, kind: str, owner: str, fn: Callable[[Callable[[float, str], None]], Any]) -> Job:
        job = Job(uuid.uuid4().hex, kind, owner)
        self._jobs[job.id] = job
        self._q.put((job, fn))
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            job, fn = item
            job.status = "running"

            def progress(p: float, message: str = "") -> None:
                job.progress, job.message = max(job.progress, min(float(p), 1.0)), message

            try:
                job.result = fn(progress)
                job.status, job.progress, job.message = "done", 1.0, "done"
            except Exception as exc:  # noqa: BLE001 - a failed job reports why; the worker goes on
                log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
                job.error = self._describe(exc)
                job.status, job.message = "failed", str(exc)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout_s)
