FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True \
    GOVSITE_VAR_DIR=/srv/govsite/var
WORKDIR /srv/govsite

COPY pyproject.toml requirements.lock README.md ./
COPY govsite ./govsite
COPY keys ./keys
COPY budgets ./budgets
COPY adoption ./adoption
COPY audit ./audit
RUN pip install --no-cache-dir -c requirements.lock .

COPY manage.py ./
COPY templates ./templates
COPY static ./static

RUN useradd --system --home /srv/govsite govsite && mkdir -p var/exports var/audit-checkpoints var/audit-key \
    && chmod 700 var/audit-key && chown -R govsite var
USER govsite
EXPOSE 8000
CMD ["gunicorn", "govsite.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
