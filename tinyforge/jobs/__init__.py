"""Long-running jobs: kinds registered by name, run by in-process worker threads.

Status, progress and logs live in the metadata DB, so any process can watch a job::

    from tinyforge.jobs import register_job_kind

    def generate_features(job, params):
        for i, window in enumerate(windows):
            job.check_cancelled()
            ...
            job.progress((i + 1) / len(windows), f"window {i + 1}")
        job.log("done")
        return {"windows": len(windows)}

    register_job_kind("generate_features", generate_features)
    job_id = manager.submit(project_id, "generate_features", {"impulse": 3})
"""

from tinyforge.jobs.manager import JobContext, JobEvent, JobManager
from tinyforge.jobs.registry import JobFn, get_job_kind, job_kinds, register_job_kind

__all__ = [
    "JobContext",
    "JobEvent",
    "JobFn",
    "JobManager",
    "get_job_kind",
    "job_kinds",
    "register_job_kind",
]
