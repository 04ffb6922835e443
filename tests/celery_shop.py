"""The host's Celery app, as each `celery worker -A celery_shop` process imports it: the paymux
tasks registered on the host's broker, its ledger and its handler (see `shop_host`)."""

import json
import os

import celery

import paymux.sweeper
import shop_host
from paymux.celery_tasks import register

CONFIG = json.loads(os.environ["SHOP_CONFIG"])
paymux.sweeper.CLAIM = 2.0  # a dead worker's claim expires soon
app = celery.Celery("shop", broker=CONFIG["broker"], backend=CONFIG["broker"])
app.conf.update(task_default_queue=CONFIG["queue"], worker_prefetch_multiplier=1)
register(
    app,
    connect=lambda instance: shop_host.connect(CONFIG, instance),
    handle=lambda instance: shop_host.Host(CONFIG).on_notification,
)
