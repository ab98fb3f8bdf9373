"""Wiring: settings → model, database, worker pool and core, opened and closed in one place."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.composer import Composer
from bot.config import Settings
from bot.core import BotCore
from bot.housekeeping import Housekeeping
from bot.jobs import COMPOSE, WorkerSetup
from bot.queue.client import QueuedJobs
from bot.scratch import Scratch
from bot.workers import JobRunner, WorkerPool
from generator.engine import MelodyEngine
from generator.render import RenderSettings, audio_available, available_png_renderers
from storage import Repository

log = logging.getLogger("melodybot")
DRAIN_TIMEOUT_S = 20.0  # within docker-compose's 45 s grace and README's promise of 30 s


@dataclass
class App:
    settings: Settings
    engine: MelodyEngine
    repo: Repository
    pool: JobRunner  # the local worker pool, or the queue to `melodybot worker` processes
    core: BotCore
    scratch: Scratch

    async def stop_work(self) -> None:
        """Take no new commands, cancel melodies still waiting for a worker (each user is told
        and gets the slot back), and let the ones being composed finish, within a bound."""
        self.core.stopping = True
        finished = await self.pool.drain(DRAIN_TIMEOUT_S, cancel=[COMPOSE])
        if not finished:
            log.warning("stopped with melodies still in flight after %.0f s", DRAIN_TIMEOUT_S)

    async def close(self) -> None:
        """Stop the work (if not already stopped), then close the database cleanly."""
        if not self.core.stopping:
            await self.stop_work()
        await self.repo.close()
        self.scratch.close()


def worker_setup(settings: Settings, scratch: Scratch) -> tuple[WorkerSetup, bool]:
    """What every worker process loads, and whether voice notes can be made; what is missing
    (audio, a renderer) is logged once, here, and the bot carries on without it."""
    render = RenderSettings(
        renderer=settings.renderer,
        timeout_s=settings.render_timeout_s,
        gm_program=settings.audio_program,
        scratch_dir=scratch.path,
    )
    audio_ready, reason = audio_available(render)
    if settings.audio and not audio_ready:
        log.warning("audio previews are off: %s", reason)
    voice_ready, why_not = audio_available(render, "voice")
    if settings.audio and audio_ready and not voice_ready:
        log.warning("voice notes are off, MP3 previews go everywhere: %s", why_not)
    if not available_png_renderers():
        log.warning("score pictures are off: neither MuseScore nor verovio is available")
    audio = settings.audio and audio_ready
    return WorkerSetup(settings.model_dir, render, audio), audio and voice_ready


async def open_app(settings: Settings) -> App:
    engine = await asyncio.to_thread(MelodyEngine.load, settings.model_dir)
    repo = await Repository.open(settings.database_target, defaults=settings.limits)
    await Housekeeping(repo, settings).run_once()  # what a crash or a long stop left behind
    scratch = Scratch(settings.data_dir / "tmp")
    await repo.hold_owner(scratch.name)
    setup, voice_ready = worker_setup(settings, scratch)
    log.info(
        "model %s (%s); score renderers: %s; database %s",
        engine.name,
        engine.version,
        ", ".join(available_png_renderers()) or "none",
        repo.location,
    )
    audio = setup.audio
    pool: JobRunner
    if settings.job_queue == "postgresql":
        pool = QueuedJobs(str(settings.database_target), scratch.name, settings.queue_size)
    else:
        pool = WorkerPool(settings.workers, settings.queue_size, setup=("bot.jobs:setup", setup))
    composer = Composer(
        engine,
        repo,
        settings,
        pool,
        audio_enabled=audio,
        voice_enabled=voice_ready,
        owner=scratch.name,
    )
    core = BotCore(settings, repo, composer)
    await pool.start()  # the workers load the model now, not in the first user's melody
    return App(settings, engine, repo, pool, core, scratch)
