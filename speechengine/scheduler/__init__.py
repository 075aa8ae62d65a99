"""Per-model batching scheduler (pure Python, no model imports)."""

from speechengine.scheduler.batch_scheduler import BatchScheduler, SchedulerStats

__all__ = ["BatchScheduler", "SchedulerStats"]
