"""Schedules for `python manage.py rqcron govsite.cron` (rq's cron scheduler, through django-rq).

Each entry is a thin job; later issues add theirs here.
"""

from rq import cron  # noqa: F401  (cron.register(...) calls are added by the apps' schedules)

SCHEDULES: list[dict] = []
for entry in SCHEDULES:
    cron.register(**entry)
