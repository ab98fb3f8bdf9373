"""Melody work on many machines: the jobs go through PostgreSQL, with procrastinate.

The front-ends (Discord shards, Telegram webhook processes) put each job (compose, draw, play)
in a queue, and ``melodybot worker`` processes on any machine run them. The local process pool
(:mod:`bot.workers`) stays the default, and is also what each worker runs its jobs on: a
front-end sees one interface either way (``admit``, ``run``, ``drain``).

Why procrastinate on the bot's own PostgreSQL, rather than Celery or taskiq on Redis:

* **One server fewer.** Scaling out already needs PostgreSQL for the data; the queue is a few
  tables beside it, backed up, monitored and made highly available with it.
* **Delivery.** A job is a row, taken with ``SELECT … FOR UPDATE SKIP LOCKED`` and kept until it
  is done: at least once. Workers write a heartbeat every 2 s; a worker that stops writing it
  (killed, its machine gone) has its jobs handed to another worker after
  :data:`~bot.queue.shared.STALLED_AFTER_S` (:func:`bot.queue.worker.retry_stalled_jobs`).
* **asyncio.** Its worker and its client are asyncio, over psycopg 3 (the repository's driver).
* **The reply.** Each job carries an idempotency key. The worker stores its result under that
  key once (a job run twice stores the first result and the second finds it and stops) and
  sends a ``NOTIFY``; the front-end that asked waits on ``LISTEN`` and takes the result. So the
  user gets exactly one reply, from the front-end holding their conversation.
* **Operating it.** ``procrastinate_jobs`` and ``procrastinate_workers`` are plain tables:
  ``melodybot queue`` prints what waits, runs and failed, per kind, and which workers are alive.

Jobs and results are pickled, as they are between the bot and its local worker processes: the
database is as trusted as the bot's own memory, and no one else should be able to write to it.
"""
