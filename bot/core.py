"""The use cases behind every chat command, independent of any platform.

A front-end turns a platform event into an :class:`Incoming` message and sends back the
:class:`~bot.replies.Reply` this core returns. Everything else lives here: the grammar, limits and
bans in storage, composing and rendering on the worker pool, and friendly answers to every mistake.
Nothing a user types raises out of :meth:`BotCore.handle`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bot.commands import SPECS, CommandError, parse_command
from bot.config import Settings
from bot.jobs import COMPOSE, DRAW, PLAY, Composed
from bot.replies import Attachment, FollowUp, FollowUps, Reply
from bot.workers import Admission, JobKind, QueueFull, ShuttingDown, WorkerPool
from generator.engine import Melody, MelodyEngine
from generator.keys import parse_key
from generator.render import AUDIO_MIME, AUDIO_SUFFIX, VOICE_MIME, VOICE_SUFFIX
from generator.request import EXAMPLE, OPTION_HELP, MelodyRequest, RequestError, parse_request
from storage import (
    AlreadyReceived,
    Banned,
    ChatDisabled,
    CooldownActive,
    Generation,
    QuotaExceeded,
    Refusal,
    Repository,
    StorageFull,
    User,
)

log = logging.getLogger("melodybot")

ModeratorCheck = Callable[[], Awaitable[bool]]
WorkStarted = Callable[[], Awaitable[None]]

LIMIT_ALIASES = {
    "daily": ("daily_quota", 0, 10_000),
    "cooldown": ("cooldown_s", 0, 86_400),
    "maxbars": ("max_bars", 1, 64),
    "maxnotes": ("max_seed_notes", 1, 64),
}
_DURATION = re.compile(r"^(\d{1,5})([smhdw])$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_HISTORY = 20


@dataclass(frozen=True)
class Incoming:
    """A chat message, as every front-end describes it."""

    platform: str
    chat_id: str
    user_id: str
    user_name: str
    text: str
    mentions: tuple[tuple[str, str], ...] = ()  # (user id, name) of users named in the message
    reply_to: tuple[str, str] | None = None  # (user id, name) of the message answered, if any
    # Where to send a melody if this process stops before it is done (a Discord channel id, …);
    # the front-end that reads it back is the one that wrote it.
    reply_address: str | None = None
    # The platform's id of this very message, so that seeing it twice makes one melody.
    source: str | None = None
    # The preview the platform plays best: "mp3", or "voice" for an OGG/Opus voice note.
    audio_format: str = "mp3"

    def __post_init__(self) -> None:
        # A lone surrogate (which some clients send) can't be stored, logged or sent back as
        # UTF-8; it becomes U+FFFD here, so everything after sees only text it can encode.
        for name in ("chat_id", "user_id", "user_name", "text"):
            value = getattr(self, name)
            clean = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            if clean != value:
                object.__setattr__(self, name, clean)


REFUSALS_PER_MINUTE = 3  # error and refusal replies one user gets in one chat


class RateLimit:
    """At most ``count`` events per key in any ``window_s``; kept in memory, as it only spares
    the chat from repeated complaints (quotas and cooldowns live in the database)."""

    def __init__(self, count: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.count, self.window_s, self.clock = count, window_s, clock
        self._times: dict[tuple[str, ...], list[float]] = {}

    def allow(self, key: tuple[str, ...]) -> bool:
        now = self.clock()
        if len(self._times) > 10_000:  # forget users who have been quiet for a window
            self._times = {k: v for k, v in self._times.items() if now - v[-1] < self.window_s}
        recent = [t for t in self._times.get(key, ()) if now - t < self.window_s]
        if len(recent) >= self.count:
            return False
        self._times[key] = [*recent, now]
        return True


DISK_FULL = Reply(
    "I can't save melodies right now (the server has run out of disk space). "
    "Please try again later.",
    private=True,
    refusal=True,
)
RESTARTING = Reply(
    "I'm restarting for a moment and can't take this now. Please ask again in a minute.",
    private=True,
)


async def _nobody_moderates() -> bool:
    return False


class BotCore:
    def __init__(
        self,
        engine: MelodyEngine,
        repository: Repository,
        settings: Settings,
        pool: WorkerPool,
        *,
        audio_enabled: bool = True,
        voice_enabled: bool = True,
        owner: str | None = None,
    ):
        self.engine = engine
        self.owner = owner  # this process, as its pending melodies name it
        self.repo = repository
        self.settings = settings
        self.pool = pool
        self.stopping = False  # set on shutdown: new commands are told to come back shortly
        self._refusals = RateLimit(REFUSALS_PER_MINUTE, 60.0)
        self.audio_enabled = audio_enabled and settings.audio
        self.voice_enabled = voice_enabled and self.audio_enabled  # else MP3 for everyone
        self.prefixes = tuple(dict.fromkeys((settings.prefix, "/")))

    # entry point ---------------------------------------------------------------------------

    async def handle(
        self,
        message: Incoming,
        *,
        is_moderator: ModeratorCheck = _nobody_moderates,
        on_work_started: WorkStarted | None = None,
        bot_username: str | None = None,
    ) -> Reply | None:
        """The reply to one message, or None when the message is not for the bot, or when it is
        one refusal too many: a user who keeps sending mistakes (or asking too fast) hears about
        it a few times a minute, so one user cannot spend a group's message allowance."""
        reply = await self._answer(message, is_moderator, on_work_started, bot_username)
        key = (message.platform, message.chat_id, message.user_id)
        if reply is not None and reply.refusal and not self._refusals.allow(key):
            return None
        return reply

    async def _answer(
        self,
        message: Incoming,
        is_moderator: ModeratorCheck,
        on_work_started: WorkStarted | None,
        bot_username: str | None,
    ) -> Reply | None:
        try:
            command = parse_command(message.text, self.prefixes, bot_username)
            if command is None:
                return None
            if self.stopping:
                return RESTARTING
            if command.spec.moderator and not await self._moderates(message, is_moderator):
                return Reply(
                    f"Sorry, {self.settings.prefix}{command.name} is for moderators of this chat.",
                    private=True,
                    refusal=True,
                )
            handler = getattr(self, f"_cmd_{command.name}")
            return await handler(message, command.argument, on_work_started)
        except RequestError as error:
            example = f"{self.settings.prefix}melody {error.example}"
            return Reply(f"{error.problem} Try: {example}", private=True, refusal=True)
        except CommandError as error:
            return Reply(str(error), private=True, refusal=True)
        except StorageFull as full:
            log.error("cannot save: %s", full)
            return DISK_FULL
        except Exception:
            incident = uuid.uuid4().hex[:8]
            log.exception(
                "request %s failed: %r from %s", incident, message.text[:200], message.platform
            )
            return Reply(
                f"Sorry, something went wrong on my side (incident {incident}). "
                "Please try again in a moment.",
                private=True,
            )

    async def delivered(self, reply: Reply) -> None:
        """The platform took a reply: a melody composed for it is the user's now, and nothing is
        left for another process to send should this one die."""
        if not reply.composed or reply.melody_id is None:
            return
        try:
            await self.repo.mark_delivered(reply.melody_id)
        except Exception as error:  # the user has the melody; at stake is a re-send after a crash
            log.warning("melody #%d: could not note its delivery: %s", reply.melody_id, error)

    async def undelivered(self, reply: Reply, why: str) -> None:
        """The platform would not take a reply: a melody composed for it gives its slot back."""
        if not reply.composed or reply.melody_id is None:
            return
        if await self.repo.release_undelivered(reply.melody_id, f"not delivered: {why}"):
            log.warning("melody #%d not delivered (%s); its slot is free", reply.melody_id, why)

    async def _moderates(self, message: Incoming, is_moderator: ModeratorCheck) -> bool:
        return message.user_id in self.settings.moderator_ids or await is_moderator()

    # composing -----------------------------------------------------------------------------

    async def _cmd_melody(self, message: Incoming, argument: str, on_work_started) -> Reply | None:
        if not argument:
            raise CommandError(
                "Give me a few notes to start from.", f"{self.settings.prefix}melody {EXAMPLE}"
            )
        request = parse_request(argument, default_temperature=self.settings.default_temperature)
        return await self._compose(message, argument, request, on_work_started)

    async def _cmd_again(self, message: Incoming, argument: str, on_work_started) -> Reply | None:
        number, _, options = argument.partition(" ")
        original = await self._generation_here(message, number, "again")
        request = parse_request(original.request["canonical"]).with_option_text(options)
        return await self._compose(message, f"again {argument}", request, on_work_started)

    async def _compose(
        self,
        message: Incoming,
        typed: str,
        request: MelodyRequest,
        on_work_started: WorkStarted | None,
    ) -> Reply | None:
        limits = await self.repo.effective_limits(message.platform, message.chat_id)
        if request.length_in_bars > limits.max_bars:
            raise CommandError(
                f"Melodies here are at most {limits.max_bars} bars long.",
                f"{self.settings.prefix}melody C4 D4 E4 bars={limits.max_bars}",
            )
        if len(request.seed_notes) > limits.max_seed_notes:
            raise CommandError(
                f"Seeds here have at most {limits.max_seed_notes} notes.",
                f"{self.settings.prefix}melody {EXAMPLE}",
            )
        prepared = self.engine.prepare(request)  # range and key errors before anything is stored
        request = request.with_options(rng_seed=prepared.rng_seed)
        place = self._place()
        if isinstance(place, Reply):
            return place
        try:
            generation_id = await self._reserve(message, typed, request)
        except BaseException:
            place.release()
            raise
        if not isinstance(generation_id, int):  # a refusal, or a message seen before
            place.release()
            return generation_id
        await _work_started(on_work_started)
        try:
            composed: Composed = await self.pool.run(COMPOSE, request)
            await self._store(generation_id, composed)
        except BaseException as error:
            place.release()
            why = (
                "the bot stopped before composing it"
                if isinstance(error, ShuttingDown | asyncio.CancelledError)
                else f"{type(error).__name__}: {error}"
            )
            await self.repo.fail_generation(generation_id, why)
            if isinstance(error, ShuttingDown):
                return RESTARTING
            raise
        reply = self._melody_reply(generation_id, composed, place, message.audio_format)
        return replace(reply, composed=True)

    def _place(self, *, admitted: bool = False) -> Admission | Reply:
        """A place in the worker pool for one melody, or the reply that says why there is none."""
        try:
            return self.pool.admit(admitted=admitted)
        except QueueFull as busy:
            return self._busy_reply(busy.wait_estimate_s)
        except ShuttingDown:
            return RESTARTING

    async def _reserve(
        self, message: Incoming, typed: str, request: MelodyRequest
    ) -> int | Reply | None:
        """The new melody's number once every limit allows it, the refusal's reply if one does
        not, or None for a message seen before (replayed after a crash: its melody is on its
        way already)."""
        user = await self._user(message)
        try:
            return await self.repo.reserve_generation(
                user,
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
            )
        except AlreadyReceived:
            return None
        except Refusal as refusal:
            return self._refusal_reply(refusal)

    async def finish_interrupted(
        self, generation: Generation, audio_format: str = "mp3"
    ) -> Reply | None:
        """A melody a stopped process began and never sent, made ready to send: composed again
        from its request and seed (the very melody that process would have sent) and stored, or,
        if it was finished, drawn again from its stored steps. If it cannot be made, its slot goes
        back and the reply says so; None if this process is stopping too (the melody stays for
        the next one)."""
        user = await self.repo.get_user(generation.user_id)
        name = user.display_name if user is not None else "you"
        sorry = f"{name}: I was restarted while composing melody #{generation.id} for you and"
        request = parse_request(generation.request["canonical"])
        finished = _stored_melody(generation) if generation.status == "done" else None
        place = self._place(admitted=True)
        if isinstance(place, Reply):  # this process is stopping too
            return None
        try:
            if finished is not None:
                composed = Composed(finished, generation.midi or finished.to_midi())
            else:
                composed = await self.pool.run(COMPOSE, request)
                await self._store(generation.id, composed)
        except ShuttingDown:
            place.release()
            return None
        except Exception as error:
            place.release()
            log.exception("melody #%d could not be finished", generation.id)
            await self.give_back(generation, f"{type(error).__name__}: {error}")
            return Reply(
                f"{sorry} could not finish it. It does not count against your quota; "
                "please ask again."
            )
        except BaseException:
            place.release()
            raise
        reply = self._melody_reply(generation.id, composed, place, audio_format)
        note = f"{name}: I was restarted while composing this one for you; here it is.\n"
        return replace(reply, text=note + reply.text, composed=True)

    async def give_back(self, generation: Generation, why: str) -> None:
        """A melody that will never reach its user: failed, its slot free, pending or not."""
        if generation.status == "done":
            await self.repo.release_undelivered(generation.id, why)
        else:
            await self.repo.fail_generation(generation.id, why)

    async def _store(self, generation_id: int, composed: Composed) -> None:
        melody = composed.melody
        await self.repo.complete_generation(
            generation_id,
            composed.midi,
            melody.key_label,
            melody.steps,
            tokens=" ".join(melody.tokens),
            pickup=melody.pickup,
        )

    def _melody_reply(
        self, generation_id: int, composed: Composed, place: Admission, audio_format: str
    ) -> Reply:
        """The text and the MIDI, ready now; the picture and the audio follow as they are made
        (their work starts here, before the reply is sent), and the melody's place in the pool
        goes back once they are done."""
        melody = composed.melody
        request = melody.request
        p = self.settings.prefix
        text = (
            f"#{generation_id} · key {melody.key_label} · {_bars_text(melody)} · "
            f"temp {request.temperature:g} · seed {melody.rng_seed}\n"
            f"Redo: {p}again {generation_id} · vary: {p}again {generation_id} "
            f"temp={min(2.0, request.temperature + 0.2):g} · share: {p}show {generation_id}"
        )
        stem = f"melody-{generation_id}"
        title = f"#{generation_id} · {_short(request)}"
        picture = Attachment(f"{stem}.png", b"", "png", "image/png")
        parts = [
            self._follow_up(DRAW, (melody, title), picture, "The score picture could not be drawn")
        ]
        if self.audio_enabled:
            voice = audio_format == "voice" and self.voice_enabled
            audio_format = "voice" if voice else "mp3"
            audio = Attachment(
                f"{stem}{VOICE_SUFFIX if voice else AUDIO_SUFFIX}",
                b"",
                "voice" if voice else "audio",
                VOICE_MIME if voice else AUDIO_MIME,
            )
            failure = "The audio preview could not be made"
            parts.append(self._follow_up(PLAY, (melody, audio_format), audio, failure))
        return Reply(
            text,
            (Attachment(f"{stem}.mid", composed.midi, "midi", "audio/midi"),),
            follow_ups=FollowUps(parts, place.release),
            melody_id=generation_id,
            temperature=request.temperature,
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

    def _stored_midi_reply(self, generation: Generation) -> Reply:
        request = parse_request(generation.request["canonical"])
        p = self.settings.prefix
        text = (
            f"#{generation.id} · key {generation.melody_key or '?'} · temp {request.temperature:g}"
            f" · seed {generation.rng_seed}\nRedo: {p}again {generation.id}\n"
            "(Only the MIDI file was kept for this older melody.)"
        )
        midi = Attachment(
            f"melody-{generation.id}.mid", generation.midi or b"", "midi", "audio/midi"
        )
        return Reply(text, (midi,), melody_id=generation.id, temperature=request.temperature)

    def _busy_reply(self, wait_s: float) -> Reply:
        return Reply(
            f"I'm busy composing for others right now. Please try again in about "
            f"{max(5, round(wait_s / 5) * 5)} seconds.",
            private=True,
        )

    def _refusal_reply(self, refusal: Refusal) -> Reply:
        if isinstance(refusal, Banned):
            until = refusal.ban.expires_at
            when = "" if until is None else f" until {_utc(until)}"
            reason = f" ({refusal.ban.reason})" if refusal.ban.reason else ""
            return Reply(f"You can't use the bot here{when}{reason}.", private=True, refusal=True)
        if isinstance(refusal, ChatDisabled):
            return Reply("The bot is switched off in this chat.", private=True, refusal=True)
        if isinstance(refusal, CooldownActive):
            text = f"Slow down a little: try again in {refusal.seconds_left:.0f} s."
            return Reply(text, private=True, refusal=True)
        assert isinstance(refusal, QuotaExceeded)
        return Reply(
            f"You've had your {_melodies(refusal.quota)} for today; more from "
            f"{_utc(refusal.resets_at)}.",
            private=True,
            refusal=True,
        )

    # stored melodies -----------------------------------------------------------------------

    async def _generation_here(self, message: Incoming, number: str, command: str) -> Generation:
        example = f"{self.settings.prefix}{command} 12"
        digits = number.lstrip("#")
        if not digits.isdecimal():
            raise CommandError("Give the melody's number.", example)
        wanted = int(digits)
        # No melody has a number past SQLite's largest integer; asking for one is simply unknown.
        generation = await self.repo.get_generation(wanted) if wanted < 2**63 else None
        if (
            generation is None
            or generation.status != "done"
            or (generation.platform, generation.chat_id) != (message.platform, message.chat_id)
        ):
            raise CommandError(
                f"I can't find melody #{digits[:20]} in this chat.",
                f"{self.settings.prefix}history",
            )
        return generation

    async def _cmd_show(self, message: Incoming, argument: str, on_work_started) -> Reply:
        """Send a stored melody again: drawn and played from what was stored, never recomposed,
        and only for users the chat lets use the bot, no faster than its cooldown."""
        generation = await self._generation_here(message, argument.strip(), "show")
        try:
            await self.repo.admit_resend(
                await self._user(message), message.platform, message.chat_id
            )
        except Refusal as refusal:
            return self._refusal_reply(refusal)
        melody = _stored_melody(generation)
        if melody is None:  # stored before melodies kept their steps: the MIDI is what there is
            return self._stored_midi_reply(generation)
        place = self._place()
        if isinstance(place, Reply):
            return place
        await _work_started(on_work_started)
        composed = Composed(melody, generation.midi or melody.to_midi())  # the very file sent
        return self._melody_reply(generation.id, composed, place, message.audio_format)

    async def _cmd_history(self, message: Incoming, argument: str, on_work_started) -> Reply:
        count = _count(
            argument, default=5, high=MAX_HISTORY, example=f"{self.settings.prefix}history 5"
        )
        user = await self._user(message)
        items = await self.repo.history(user.id, limit=count)
        if not items:
            return Reply(
                f"You have no melodies yet. Try {self.settings.prefix}melody {EXAMPLE}",
                private=True,
            )
        total = await self.repo.count_history(user.id)
        lines = [
            "Your only melody:" if total == 1 else f"Your last {len(items)} of {total} melodies:"
        ]
        for g in items:
            lines.append(
                f"#{g.id} · {_utc(g.created_at)} · {g.request['canonical']} · key {g.melody_key}"
            )
        return Reply("\n".join(lines), private=True)

    async def _cmd_forgetme(self, message: Incoming, argument: str, on_work_started) -> Reply:
        user = await self._user(message)
        if argument.strip().lower() != "confirm":
            total = await self.repo.count_history(user.id)
            what = "your only melody" if total == 1 else f"all {total} of your melodies"
            return Reply(
                f"This deletes {what} for good. Send "
                f"{self.settings.prefix}forgetme confirm to go ahead.",
                private=True,
            )
        deleted = await self.repo.forget_user(user.id)
        return Reply(f"Done: I deleted {_melodies(deleted)} of yours.", private=True)

    async def _cmd_limits(self, message: Incoming, argument: str, on_work_started) -> Reply:
        limits = await self.repo.effective_limits(message.platform, message.chat_id)
        state = "on" if limits.enabled else "off"
        return Reply(
            f"In this chat: {_melodies(limits.daily_quota)} per person per day, "
            f"{limits.cooldown_s} s between melodies, at most {_plural(limits.max_bars, 'bar')} "
            f"and {_plural(limits.max_seed_notes, 'starting note')}. The bot is {state} here.",
            private=True,
        )

    async def _cmd_help(self, message: Incoming, argument: str, on_work_started) -> Reply:
        p = self.settings.prefix
        topic = argument.strip().lstrip(p + "/").lower()
        spec = next((s for s in SPECS if s.name == topic), None)
        if topic and spec is None:
            raise CommandError(f"There is no command {p}{topic}.", f"{p}help")
        if spec is not None:
            text = (
                f"{p}{spec.usage}\n{spec.summary[0].upper()}{spec.summary[1:]}.\n"
                f"Example: {p}{spec.example}"
            )
            if spec.name in ("melody", "again"):
                text += (
                    "\nNotes: C4 F#4 Bb3 60 r, with a length in quarter notes: D4:2 E4:0.5"
                    "\nOptions: " + "; ".join(f"{k}= {v}" for k, v in OPTION_HELP.items())
                )
            return Reply(text, private=True)
        lines = [f"I compose folk melodies that continue your notes. Try: {p}melody {EXAMPLE}"]
        lines += [f"{p}{s.usage} — {s.summary}" for s in SPECS if not s.moderator]
        lines.append("Moderators: " + ", ".join(f"{p}{s.name}" for s in SPECS if s.moderator))
        lines.append(f"More: {p}help melody")
        return Reply("\n".join(lines), private=True)

    # moderation ----------------------------------------------------------------------------

    async def _cmd_setlimit(self, message: Incoming, argument: str, on_work_started) -> Reply:
        example = f"{self.settings.prefix}setlimit daily 20"
        parts = argument.split()
        if len(parts) != 2 or parts[0].lower() not in LIMIT_ALIASES:
            raise CommandError(
                "Say which limit and its new value: daily, cooldown, maxbars or maxnotes.", example
            )
        name, low, high = LIMIT_ALIASES[parts[0].lower()]
        if not parts[1].isdecimal() or not low <= int(parts[1]) <= high:
            raise CommandError(f"{parts[0]} must be a whole number from {low} to {high}.", example)
        old = await self.repo.set_limit(
            message.platform, message.chat_id, name, int(parts[1]), _actor(message)
        )
        before = "the default" if old is None else str(old)
        return Reply(f"{parts[0].lower()} is now {int(parts[1])} in this chat (was {before}).")

    async def _cmd_enable(self, message: Incoming, argument: str, on_work_started) -> Reply:
        await self.repo.set_enabled(message.platform, message.chat_id, True, _actor(message))
        return Reply("The bot is on in this chat.")

    async def _cmd_disable(self, message: Incoming, argument: str, on_work_started) -> Reply:
        await self.repo.set_enabled(message.platform, message.chat_id, False, _actor(message))
        return Reply(f"The bot is off in this chat. {self.settings.prefix}enable turns it on.")

    async def _cmd_ban(self, message: Incoming, argument: str, on_work_started) -> Reply:
        target, rest = await self._target_user(message, argument, "ban")
        duration_s = None
        words = rest.split(maxsplit=1)
        if words and (match := _DURATION.match(words[0].lower())):
            duration_s = int(match[1]) * _DURATION_SECONDS[match[2]]
            rest = words[1] if len(words) > 1 else ""
        if target.platform_user_id == message.user_id:
            raise CommandError("You can't ban yourself.", f"{self.settings.prefix}ban @someone")
        ban = await self.repo.ban(
            message.platform, message.chat_id, target, _actor(message), rest.strip(), duration_s
        )
        until = "for good" if ban.expires_at is None else f"until {_utc(ban.expires_at)}"
        return Reply(f"{target.display_name} can't use the bot here {until}.")

    async def _cmd_unban(self, message: Incoming, argument: str, on_work_started) -> Reply:
        target, _ = await self._target_user(message, argument, "unban")
        if await self.repo.unban(message.platform, message.chat_id, target, _actor(message)):
            return Reply(f"{target.display_name} may use the bot here again.")
        return Reply(f"{target.display_name} wasn't banned here.", private=True)

    async def _target_user(
        self, message: Incoming, argument: str, command: str
    ) -> tuple[User, str]:
        example = f"{self.settings.prefix}{command} @someone"
        first, _, rest = argument.strip().partition(" ")
        if message.mentions:
            user_id, name = message.mentions[0]
            return await self.repo.upsert_user(message.platform, user_id, name), rest
        if not first and message.reply_to:
            user_id, name = message.reply_to
            return await self.repo.upsert_user(message.platform, user_id, name), rest
        if not first:
            raise CommandError(
                "Say who: mention them, answer one of their messages, or give their name or id.",
                example,
            )
        found = await self.repo.find_user(message.platform, first)
        if found is None:
            raise CommandError(
                f"I don't know anyone called {first[:40]} here; they need to "
                "have used the bot once, or mention them.",
                example,
            )
        return found, rest

    async def _cmd_stats(self, message: Incoming, argument: str, on_work_started) -> Reply:
        days = _count(argument, default=7, high=365, example=f"{self.settings.prefix}stats 7")
        stats = await self.repo.stats(message.platform, message.chat_id, days)
        if not stats["per_day"]:
            return Reply(f"No melodies in this chat in the last {days} days.", private=True)
        lines = [f"Melodies in the last {days} days:"]
        lines += [f"{day}: {n}" for day, n in stats["per_day"]]
        lines.append(
            "Most active: " + ", ".join(f"{name} ({n})" for name, n in stats["per_user"][:10])
        )
        return Reply("\n".join(lines), private=True)

    async def _cmd_audit(self, message: Incoming, argument: str, on_work_started) -> Reply:
        count = _count(argument, default=10, high=50, example=f"{self.settings.prefix}audit 10")
        entries = await self.repo.audit_log(message.platform, message.chat_id, count)
        if not entries:
            return Reply("No moderator actions in this chat yet.", private=True)
        lines = [f"Last {len(entries)} moderator actions:"]
        for e in entries:
            change = f"{e.old_value or '—'} → {e.new_value or '—'}"
            target = f" {e.target}" if e.target else ""
            lines.append(f"{_utc(e.created_at)} · {e.actor}: {e.action}{target} ({change})")
        return Reply("\n".join(lines), private=True)

    # helpers -------------------------------------------------------------------------------

    async def _user(self, message: Incoming) -> User:
        return await self.repo.upsert_user(message.platform, message.user_id, message.user_name)


def _short(request: MelodyRequest) -> str:
    notes = " ".join(n.text or str(n.pitch) for n in request.seed_notes[:6])
    more = " …" if len(request.seed_notes) > 6 else ""
    return f"{notes}{more} · temp {request.temperature:g}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    """ "1 bar", "8 bars": a count with its noun as a person would write it."""
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _melodies(count: int) -> str:
    return _plural(count, "melody", "melodies")


def _count(argument: str, *, default: int, high: int, example: str) -> int:
    text = argument.strip()
    if not text:
        return default
    if not text.isdecimal() or not 1 <= int(text) <= high:
        raise CommandError(f"Give a number from 1 to {high}.", example)
    return int(text)


async def _work_started(callback: WorkStarted | None) -> None:
    """Tell the platform work has begun (typing, a deferred interaction): a courtesy, so its
    failure (a 403 on Discord's typing) is logged and the melody made all the same."""
    if callback is None:
        return
    try:
        await callback()
    except Exception as error:
        log.warning("could not show that work began: %s", error)


def _stored_melody(generation: Generation) -> Melody | None:
    """The melody a stored row describes, rebuilt without the model (None for rows stored
    before melodies kept their steps)."""
    if not generation.tokens or not generation.melody_key:
        return None
    return Melody(
        request=parse_request(generation.request["canonical"]),
        tokens=tuple(generation.tokens.split()),
        key=parse_key(generation.melody_key),
        rng_seed=generation.rng_seed,
        pickup=generation.pickup or 0,
        ending="",
    )


def _actor(message: Incoming) -> str:
    return f"{message.user_name} ({message.user_id})"


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def _bars_text(melody: Melody) -> str:
    """How a musician says the length ("8 bars of 3/4 with an upbeat"); 4/4 goes unsaid."""
    bars = f"{melody.bars:g} bar{'' if melody.bars == 1 else 's'}"
    meter = "" if melody.request.meter == "4/4" else f" of {melody.request.meter}"
    upbeat = " with an upbeat" if melody.pickup else ""
    return bars + meter + upbeat
