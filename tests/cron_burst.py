"""A cron module for tests/test_many_processes.py: `manage.py rqcron tests.cron_burst` registers a tick every
two seconds through govsite.scheduling.run_once_per_period, as govsite.cron registers the real jobs."""

import os
import time

import redis
from rq import cron

from govsite.scheduling import run_once_per_period

INTERVAL = 2


def tick() -> int:
    """Record the period this run belongs to (the test counts runs per period)."""
    period = int(time.time() // INTERVAL)
    redis.Redis.from_url(os.environ["REDIS_URL"]).rpush("test:ticks", period)
    return period


cron.register(run_once_per_period, queue_name="default", args=("tests.cron_burst.tick", INTERVAL), interval=INTERVAL)
