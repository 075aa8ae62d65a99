"""Per-model batching scheduler (pure Python, no model imports)."""

from speechengine.scheduler.batch_scheduler import BatchScheduler, RequestTrace, SchedulerStats

__all__ = ["BatchScheduler", "RequestTrace", "SchedulerStats"]
