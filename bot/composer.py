"""A melody from request to reply, in one straight path: a cheap check, one reservation with
every limit in it, composing on the worker pool, the record stored, the reply built.

The reply carries the text and the MIDI at once; the score picture and the audio preview follow
as the pool makes them (:class:`~bot.replies.FollowUps`). The melody holds a place in the pool
from before it is reserved until its last part is made, so the pool's queue bounds all the work
in hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from bot.config import Settings
from bot.context import ComposeContext
from bot.jobs import COMPOSE, DRAW, PLAY, WRITE_MUSICXML, Composed
from bot.refusals import RESTARTING, busy_reply, refusal_reply
from bot.replies import Action, Attachment, FollowUp, FollowUps, Reply
from bot.wording import heading, opening
from bot.workers import Admission, JobKind, QueueFull, ShuttingDown, WorkerPool
from generator.engine import Melody, MelodyEngine
from generator.keys import parse_key
from generator.ranges import MAX_TEMPERATURE
from generator.render import AUDIO_MIME, AUDIO_SUFFIX, VOICE_MIME, VOICE_SUFFIX
from generator.request import NEW_SEED, MelodyRequest, RequestError, parse_request
from storage import AlreadyReceived, MelodyRecord, Refusal, Repository

log = logging.getLogger("melodybot")
MUSICXML_MIME = "application/vnd.recordare.musicxml+xml"
VARY_STEP = 0.2  # "Vary" composes the same opening this much warmer


class Composer:
    def __init__(
        self,
        engine: MelodyEngine,
        repo: Repository,
        settings: Settings,
        pool: WorkerPool,
        *,
        audio_enabled: bool = True,
        voice_enabled: bool = True,
        owner: str | None = None,
    ):
        self.engine = engine
        self.repo = repo
        self.settings = settings
        self.pool = pool
        self.owner = owner  # this process, as its pending melodies name it
        self.audio_enabled = audio_enabled and settings.audio
        self.voice_enabled = voice_enabled and self.audio_enabled  # else MP3 for everyone

    async def compose(
        self, ctx: ComposeContext, typed: str, request: MelodyRequest
    ) -> Reply | None:
        """A new melody for ``request`` (as the user ``typed`` it), or the reply that says why
        not; None for a message seen before (its melody is on its way already)."""
        self.engine.check(request)  # a seed no key of this model fits, before anything is stored
        request = request.with_seed()  # stored with it, so the melody can be made again exactly
        place = self._place()
        if isinstance(place, Reply):
            return place
        with place:
            melody_id = await self._reserve(ctx, typed, request)
            if not isinstance(melody_id, int):  # a refusal, or a message seen before
                return melody_id
            await ctx.work_started()
            try:
                composed: Composed = await self.pool.run(COMPOSE, request)
                await self._store(melody_id, composed)
            except BaseException as error:
                await self.repo.fail_melody(melody_id, _why_failed(error))
                if isinstance(error, ShuttingDown):
                    return RESTARTING
                raise  # a RequestError (a key the seed does not fit) is the user's to read
            page_id = await self._page_id(melody_id)  # before the place is handed on
            reply = self._melody_reply(
                melody_id,
                composed,
                place.hand_over(),
                ctx.message.audio_format,
                musicxml=request.musicxml,
                page_id=page_id,
                prefix=ctx.prefix,
            )
        return replace(reply, composed=True)

    async def resend(
        self, ctx: ComposeContext, record: MelodyRecord, *, musicxml: bool = False
    ) -> Reply:
        """A stored melody sent again: the very MIDI file, drawn and played again from its
        stored steps (and written as MusicXML if asked), never composed again."""
        melody = stored_melody(record)
        if melody is None:  # stored before melodies kept their steps: the MIDI is what there is
            return self._stored_midi_reply(record)
        place = self._place()
        if isinstance(place, Reply):
            return place
        with place:
            await ctx.work_started()
            composed = Composed(melody, record.midi or melody.to_midi())
            return self._melody_reply(
                record.id,
                composed,
                place.hand_over(),
                ctx.message.audio_format,
                musicxml=musicxml,
                page_id=record.page_id,
                prefix=ctx.prefix,
            )

    async def finish_interrupted(
        self, record: MelodyRecord, audio_format: str = "mp3"
    ) -> Reply | None:
        """A melody a stopped process began and never sent, made ready to send: composed again
        from its request and seed (the very melody that process would have sent) and stored, or,
        if it was finished, drawn again from its stored steps. If it cannot be made, its slot goes
        back and the reply says so; None if this process is stopping too (the melody stays for
        the next one)."""
        user = await self.repo.get_user(record.user_id)
        name = user.display_name if user is not None else "you"
        request = parse_request(record.request["canonical"])
        finished = stored_melody(record) if record.status == "done" else None
        place = self._place(admitted=True)
        if isinstance(place, Reply):  # this process is stopping too
            return None
        with place:
            try:
                if finished is not None:
                    composed = Composed(finished, record.midi or finished.to_midi())
                else:
                    composed = await self.pool.run(COMPOSE, request)
                    await self._store(record.id, composed)
            except ShuttingDown:
                return None
            except Exception as error:
                log.exception("melody #%d could not be finished", record.id)
                await self.give_back(record, f"{type(error).__name__}: {error}")
                return Reply(
                    f"{name}: I was restarted while composing melody #{record.id} for you and "
                    "could not finish it. It does not count against your quota; please ask again."
                )
            reply = self._melody_reply(
                record.id, composed, place.hand_over(), audio_format, page_id=record.page_id
            )
        note = f"{name}: I was restarted while composing this one for you; here it is.\n"
        return replace(reply, text=note + reply.text, composed=True)

    async def give_back(self, record: MelodyRecord, why: str) -> None:
        """A melody that will never reach its user: failed, its slot free, pending or not."""
        if record.status == "done":
            await self.repo.release_undelivered(record.id, why)
        else:
            await self.repo.fail_melody(record.id, why)

    # the steps ---------------------------------------------------------------------------------

    def _place(self, *, admitted: bool = False) -> Admission | Reply:
        """A place in the worker pool for one melody, or the reply that says why there is none."""
        try:
            return self.pool.admit(admitted=admitted)
        except QueueFull as busy:
            return busy_reply(busy.wait_estimate_s)
        except ShuttingDown:
            return RESTARTING

    async def _reserve(
        self, ctx: ComposeContext, typed: str, request: MelodyRequest
    ) -> int | Reply | None:
        """The new melody's number once every limit allows it (one transaction), the refusal's
        reply if one does not, or None for a message seen before (replayed after a crash)."""
        message = ctx.message
        try:
            return await self.repo.reserve_melody(
                await ctx.user(),
                message.platform,
                message.chat_id,
                typed,
                request.to_dict() | {"canonical": request.describe()},
                self.engine.name,
                self.engine.version,
                request.rng_seed,
                owner=self.owner,
                reply_address=message.reply_address,
                source=message.source,
                bars=request.length_in_bars,
                seed_notes=len(request.seed_notes),
            )
        except AlreadyReceived:
            return None
        except Refusal as refusal:
            return refusal_reply(refusal, ctx.prefix)

    async def _page_id(self, melody_id: int) -> str | None:
        """The melody's page address, when replies carry links to pages."""
        if not self.settings.public_url:
            return None
        record = await self.repo.get_melody(melody_id)
        return None if record is None else record.page_id

    async def _store(self, melody_id: int, composed: Composed) -> None:
        melody = composed.melody
        await self.repo.complete_melody(
            melody_id,
            composed.midi,
            melody.key_label,
            melody.steps,
            tokens=" ".join(melody.tokens),
            pickup=melody.pickup,
        )

    # the reply ---------------------------------------------------------------------------------

    def _melody_reply(
        self,
        melody_id: int,
        composed: Composed,
        release: Callable[[], None],
        audio_format: str,
        *,
        musicxml: bool = False,
        page_id: str | None = None,
        prefix: str | None = None,
    ) -> Reply:
        """The text and the MIDI, ready now; the picture and the audio follow as they are made
        (their work starts here, before the reply is sent), with a MusicXML file if ``musicxml``,
        and ``release`` gives the melody's place in the pool back once they are done."""
        melody = composed.melody
        request = melody.request
        p = prefix or self.settings.prefix
        vary = _vary_command(melody_id, request.temperature)
        text = (
            f"{heading(melody_id, melody)}\n"
            f"Redo: {p}again {melody_id} · vary: {p}{vary} · share: {p}show {melody_id}"
        )
        if page_id is not None and self.settings.public_url:
            text += f"\nPage: {self.settings.public_url.rstrip('/')}/m/{page_id}"
        stem = f"melody-{melody_id}"
        title = f"#{melody_id} · {opening(request)}"
        picture = Attachment(f"{stem}.png", b"", "png", "image/png")
        parts = [
            self._follow_up(DRAW, (melody, title), picture, "The score picture could not be drawn")
        ]
        if musicxml:
            score = Attachment(f"{stem}.musicxml", b"", "musicxml", MUSICXML_MIME)
            failure = "The MusicXML file could not be written"
            parts.append(self._follow_up(WRITE_MUSICXML, (melody, title), score, failure))
        if self.audio_enabled:
            voice = audio_format == "voice" and self.voice_enabled
            audio = Attachment(
                f"{stem}{VOICE_SUFFIX if voice else AUDIO_SUFFIX}",
                b"",
                "voice" if voice else "audio",
                VOICE_MIME if voice else AUDIO_MIME,
            )
            failure = "The audio preview could not be made"
            payload = (melody, "voice" if voice else "mp3")
            parts.append(self._follow_up(PLAY, payload, audio, failure))
        return Reply(
            text,
            (Attachment(f"{stem}.mid", composed.midi, "midi", "audio/midi"),),
            follow_ups=FollowUps(parts, release),
            melody_id=melody_id,
            actions=melody_actions(melody_id, request.temperature),
        )

    def _follow_up(
        self, kind: JobKind, payload: object, blank: Attachment, failure: str
    ) -> FollowUp:
        """A part made on the pool: ``blank`` filled with the bytes made, or a line telling the
        user why there are none."""

        async def make() -> Attachment | str:
            try:
                made = await self.pool.run(kind, payload)
            except ShuttingDown:
                return f"({failure}: I am restarting.)"
            except Exception as error:  # a crashed or hung worker: the melody is out already
                log.warning("%s for %s failed: %s", kind.name, blank.filename, error)
                return f"({failure}.)"
            if isinstance(made, Exception):
                log.warning("%s for %s failed: %s", kind.name, blank.filename, made)
                detail = f" ({made})" if kind is DRAW else ""
                return f"({failure}{detail}.)"
            return replace(blank, data=made)

        return FollowUp(blank.kind, asyncio.ensure_future(make()))

    def _stored_midi_reply(self, record: MelodyRecord) -> Reply:
        request = parse_request(record.request["canonical"])
        p = self.settings.prefix
        text = (
            f"#{record.id} · key {record.melody_key or '?'} · temp {request.temperature:g}"
            f" · seed {record.rng_seed}\nRedo: {p}again {record.id}\n"
            "(Only the MIDI file was kept for this older melody.)"
        )
        midi = Attachment(f"melody-{record.id}.mid", record.midi or b"", "midi", "audio/midi")
        return Reply(
            text,
            (midi,),
            melody_id=record.id,
            actions=melody_actions(record.id, request.temperature),
        )


def melody_actions(melody_id: int, temperature: float) -> tuple[Action, ...]:
    """Again: the same opening and options with a new seed. Vary: the same, a little warmer."""
    return (
        Action("Again", f"again {melody_id} seed={NEW_SEED}"),
        Action("Vary", _vary_command(melody_id, temperature)),
    )


def _vary_command(melody_id: int, temperature: float) -> str:
    return f"again {melody_id} temp={min(MAX_TEMPERATURE, temperature + VARY_STEP):g}"


def _why_failed(error: BaseException) -> str:
    if isinstance(error, ShuttingDown | asyncio.CancelledError):
        return "the bot stopped before composing it"
    if isinstance(error, RequestError):
        return f"refused: {error.problem}"
    return f"{type(error).__name__}: {error}"


def stored_melody(record: MelodyRecord) -> Melody | None:
    """The melody a stored record describes, rebuilt without the model (None for records
    stored before melodies kept their steps)."""
    if not record.tokens or not record.melody_key:
        return None
    return Melody(
        request=parse_request(record.request["canonical"]),
        tokens=tuple(record.tokens.split()),
        key=parse_key(record.melody_key),
        rng_seed=record.rng_seed,
        pickup=record.pickup or 0,
        ending="",
    )
