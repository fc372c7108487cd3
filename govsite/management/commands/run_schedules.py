"""Run govsite.cron's schedules in this process: the demo's stand-in for `rqcron` + `rqworker`.

Production runs `manage.py rqcron govsite.cron` and RQ workers; the embedded demo has no Redis, so
this loop calls each scheduled job itself when it is due (and the jobs they enqueue run in-process).
"""

import logging
import time

from django.core.management.base import BaseCommand

from govsite.cron import SCHEDULES
from govsite.logs import bound_job
from govsite.worker import preload

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the cron schedules of govsite.cron in-process (for the embedded demo without Redis)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every schedule once and exit")

    def handle(self, *args, once: bool = False, **options):
        last_run: dict[int, float] = {}
        # As the RQ workers do (govsite.worker): litellm and its price map once, before the first job.
        self.stdout.write(f"litellm loaded in {preload():.1f}s; running {len(SCHEDULES)} schedules in-process")
        while True:
            now = time.monotonic()
            for index, entry in enumerate(SCHEDULES):
                if index in last_run and now - last_run[index] < entry["interval"]:
                    continue
                last_run[index] = now
                name = entry["func"].__name__
                # Every line of the run (and of the in-process jobs it starts), its failure included, carries
                # this run's job id.
                with bound_job(f"{entry['func'].__module__}.{name}"):
                    try:
                        entry["func"]()
                    except Exception:  # noqa: BLE001 - one failing job must not stop the others; it is logged
                        log.exception("scheduled job %s failed", name)
            if once:
                return
            time.sleep(1)
