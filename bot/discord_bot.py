"""Discord front-end (discord.py 2): prefix commands, slash commands and melody buttons.

Prefix messages go to the core as they are, so every command shares one grammar. Slash commands
have typed options (and key autocomplete) that are written back into that grammar, so ``/melody``
and ``!melody`` end in the same request. Work that takes a while is deferred ("thinking…") as soon
as composing starts; errors are ephemeral. Each melody carries "Again" and "Vary" buttons.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import App
from bot.core import Incoming
from bot.replies import Attachment, Delivered, FollowUps, Reply
from generator.form import REQUESTABLE_METERS
from generator.ranges import MAX_TEMPERATURE, MIN_TEMPERATURE
from generator.request import MAX_BARS

log = logging.getLogger("melodybot.discord")
PLATFORM = "discord"
MAX_TEXT = 2000
KEYS = [
    f"{tonic}{mode}"
    for tonic in ("C", "G", "D", "A", "E", "B", "F#", "F", "Bb", "Eb", "Ab", "Db")
    for mode in ("", "m")
]


def chat_scope(guild: discord.Guild | None, user: discord.abc.User) -> str:
    """Limits and bans apply per server; a direct message is a scope of its own."""
    return str(guild.id) if guild is not None else f"dm-{user.id}"


def is_moderator(member: discord.abc.User, moderator_role: str | None) -> bool:
    """Manage Server permission, or the role named in the settings; nobody in direct messages."""
    if not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.manage_guild:
        return True
    return moderator_role is not None and any(r.name == moderator_role for r in member.roles)


def files_of(attachments: Sequence[Attachment]) -> list[discord.File]:
    """The PNG first, so Discord shows the score inline above the audio and the MIDI."""
    order = {"png": 0, "audio": 1, "midi": 2}
    ordered = sorted(attachments, key=lambda a: order.get(a.kind, 3))
    return [discord.File(io.BytesIO(a.data), filename=a.filename) for a in ordered]


# Sends a reply's first message; returns it (None when nothing is to be added to it later).
Send = Callable[[str, list[discord.File]], Awaitable[discord.Message | None]]


async def send_melody(send: Send, reply: Reply, on_delivered: Delivered) -> None:
    """The text and the MIDI file (with the buttons) at once; the score picture and the audio
    are added to that same message once both are made, with a line for any that could not be.
    Raises only if the first message did not go out; ``on_delivered`` runs as soon as it did."""
    try:
        message = await send(reply.text[:MAX_TEXT], files_of(reply.attachments))
    except BaseException:
        if reply.follow_ups is not None:
            reply.follow_ups.cancel()
        raise
    await on_delivered()
    if reply.follow_ups is not None and message is not None:
        try:
            await _add_follow_ups(message, reply, reply.follow_ups)
        except Exception:  # the user has the melody; what follows it is a courtesy
            log.exception("discord: the picture or audio for message %s failed", message.id)


async def _add_follow_ups(message: discord.Message, reply: Reply, follow_ups: FollowUps) -> None:
    made = await follow_ups.gather()
    files = [part for part in made if isinstance(part, Attachment)]
    notes = "".join(f"\n{part}" for part in made if isinstance(part, str))
    if not files and not notes:
        return
    try:
        await message.edit(
            content=(reply.text + notes)[:MAX_TEXT],
            attachments=[*message.attachments, *files_of(files)],
        )
    except discord.HTTPException as refused:
        if refused.status != 413:
            raise
        # too large for this server's upload limit: the user keeps the text and the MIDI
        log.warning("discord refused the picture and audio (%s)", refused)
        note = "\n(Discord would not take the score picture and audio here: too large.)"
        await message.edit(content=(reply.text + notes + note)[:MAX_TEXT])


class MelodyButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"melody:(?P<action>again|vary):(?P<id>\d+):(?P<temp>[\d.]+)",
):
    """'Again' recomposes with a new seed; 'Vary' recomposes warmer (temperature + 0.2)."""

    def __init__(self, action: str, melody_id: int, temperature: float):
        label = "Again" if action == "again" else "Vary"
        style = discord.ButtonStyle.primary if action == "again" else discord.ButtonStyle.secondary
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                custom_id=f"melody:{action}:{melody_id}:{temperature:g}",
            )
        )
        self.action, self.melody_id, self.temperature = action, melody_id, temperature

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(match["action"], int(match["id"]), float(match["temp"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.action == "again":
            seed = interaction.id % 2**32  # a fresh seed, so "again" gives a new melody
            text = f"again {self.melody_id} seed={seed}"
        else:
            text = f"again {self.melody_id} temp={min(2.0, self.temperature + 0.2):g}"
        bot: MelodyBot = interaction.client  # type: ignore[assignment]
        await bot.answer_interaction(interaction, text)


def buttons_for(reply: Reply) -> discord.ui.View | None:
    if reply.melody_id is None or reply.temperature is None:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(MelodyButton("again", reply.melody_id, reply.temperature))
    view.add_item(MelodyButton("vary", reply.melody_id, reply.temperature))
    return view


class MelodyBot(commands.Bot):
    def __init__(self, app: App):
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands read message text (privileged intent)
        super().__init__(
            command_prefix=app.settings.prefix,
            intents=intents,
            help_command=None,
            # Replies quote what users typed ("!melody @everyone C4"): they must ping no one.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.app = app
        self._synced = False
        if app.settings.discord_api_base_url:
            discord.http.Route.BASE = app.settings.discord_api_base_url.rstrip("/")

    async def setup_hook(self) -> None:
        self.add_dynamic_items(MelodyButton)
        self.tree.add_command(melody_command)
        for name, summary in (
            ("again", "compose a stored melody again, with changed options"),
            ("show", "send a stored melody again"),
            ("history", "your last melodies"),
            ("limits", "the limits that apply here"),
            ("help", "how to use the bot"),
        ):
            self.tree.add_command(_text_command(name, summary))

    async def on_ready(self) -> None:
        if not self._synced:
            self._synced = True
            try:
                await self.tree.sync()
            except discord.HTTPException as error:
                log.warning("could not register slash commands: %s", error)
        log.info("discord: connected as %s to %d servers", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or not message.content:
            return
        settings = self.app.settings

        async def moderates() -> bool:
            return is_moderator(message.author, settings.moderator_role)

        async def typing() -> None:
            await message.channel.typing()

        incoming = Incoming(
            platform=PLATFORM,
            chat_id=chat_scope(message.guild, message.author),
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            text=message.content,
            mentions=tuple(
                (str(u.id), u.display_name)
                for u in message.mentions
                if self.user is None or u.id != self.user.id
            ),
            reply_address=str(message.channel.id),
        )
        reply = await self.app.core.handle(incoming, is_moderator=moderates, on_work_started=typing)
        if reply is None:
            return
        try:
            view = buttons_for(reply) or discord.utils.MISSING
            await send_melody(
                lambda text, files: message.channel.send(text, files=files, view=view),
                reply,
                lambda: self.app.core.delivered(reply),
            )
        except discord.HTTPException as error:
            log.error("could not answer message %s: %s", message.id, error)
            await self.app.core.undelivered(reply, f"Discord answered {error.status}")

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        """Post a reply in a channel, not as an answer to a message (a melody finished after a
        restart, whose message or interaction this process never saw)."""
        await self.wait_until_ready()
        channel = self.get_channel(int(address)) or await self.fetch_channel(int(address))
        view = buttons_for(reply) or discord.utils.MISSING
        await send_melody(
            lambda text, files: channel.send(text, files=files, view=view),  # type: ignore[union-attr]
            reply,
            on_delivered,
        )

    async def answer_interaction(self, interaction: discord.Interaction, text: str) -> None:
        """Run a command for a slash command or button: defer once work starts, reply after."""
        settings = self.app.settings

        async def moderates() -> bool:
            return is_moderator(interaction.user, settings.moderator_role)

        async def defer() -> None:
            if not interaction.response.is_done():
                await interaction.response.defer(thinking=True)

        incoming = Incoming(
            platform=PLATFORM,
            chat_id=chat_scope(interaction.guild, interaction.user),
            user_id=str(interaction.user.id),
            user_name=interaction.user.display_name,
            text=f"{settings.prefix}{text}",
            reply_address=None if interaction.channel_id is None else str(interaction.channel_id),
        )
        reply = await self.app.core.handle(incoming, is_moderator=moderates, on_work_started=defer)
        if reply is None:
            reply = Reply("…")
        view = buttons_for(reply) or discord.utils.MISSING

        async def respond(text: str, files: list[discord.File]) -> discord.Message | None:
            if interaction.response.is_done():  # deferred ("thinking…") once work started
                return await interaction.followup.send(text, files=files, view=view, wait=True)
            await interaction.response.send_message(
                text, files=files, view=view, ephemeral=reply.private
            )
            return None if reply.follow_ups is None else await interaction.original_response()

        try:
            await send_melody(respond, reply, lambda: self.app.core.delivered(reply))
        except discord.HTTPException as error:  # e.g. 404: the interaction expired
            log.error("could not answer interaction %s: %s", interaction.id, error)
            await self.app.core.undelivered(reply, f"Discord answered {error.status}")


@app_commands.command(name="melody", description="Compose a folk melody that continues your notes")
@app_commands.describe(
    notes="seed notes, e.g. C4 D4 E4:2 G4 (letter, optional # or b, octave; :length in beats)",
    temp=f"temperature, {MIN_TEMPERATURE:g}–{MAX_TEMPERATURE:g}: lower is safer, higher is wilder",
    bars=f"length of the melody in bars (1–{MAX_BARS})",
    key="key, e.g. G, Em, F#m (default: guessed from the notes)",
    bpm="tempo in beats per minute (30–300)",
    meter="time signature (default 4/4)",
    pickup="upbeat before the first bar line, in beats, e.g. 1 (default: heard from the notes)",
    seed="random seed: the same seed gives the same melody",
)
@app_commands.choices(meter=[app_commands.Choice(name=m, value=m) for m in REQUESTABLE_METERS])
async def melody_command(
    interaction: discord.Interaction,
    notes: str,
    temp: app_commands.Range[float, MIN_TEMPERATURE, MAX_TEMPERATURE] | None = None,
    bars: app_commands.Range[int, 1, MAX_BARS] | None = None,
    key: str | None = None,
    bpm: app_commands.Range[int, 30, 300] | None = None,
    meter: app_commands.Choice[str] | None = None,
    pickup: app_commands.Range[float, 0.0, 3.75] | None = None,
    seed: app_commands.Range[int, 0, 2**31 - 1] | None = None,
) -> None:
    options = {
        "temp": temp,
        "bars": bars,
        "key": key,
        "bpm": bpm,
        "meter": None if meter is None else meter.value,
        "pickup": pickup,
        "seed": seed,
    }
    typed = " ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in options.items()
        if value is not None
    )
    bot: MelodyBot = interaction.client  # type: ignore[assignment]
    await bot.answer_interaction(interaction, f"melody {notes} {typed}".strip())


@melody_command.autocomplete("key")
async def _key_choices(interaction: discord.Interaction, current: str):
    wanted = current.strip().lower()
    return [app_commands.Choice(name=k, value=k) for k in KEYS if k.lower().startswith(wanted)][:25]


def _text_command(name: str, summary: str) -> app_commands.Command:
    """A slash twin of a prefix command whose options are one line of text."""

    async def run(interaction: discord.Interaction, options: str = "") -> None:
        bot: MelodyBot = interaction.client  # type: ignore[assignment]
        await bot.answer_interaction(interaction, f"{name} {options}".strip())

    run.__doc__ = summary
    command = app_commands.Command(name=name, description=summary, callback=run)
    return command
