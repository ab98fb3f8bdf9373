"""Discord front-end (discord.py 2): prefix commands, slash commands and reply buttons.

Prefix messages go to the core as they are, so every command shares one grammar. Every command
in :mod:`bot.registry` is also a slash command with typed options (ranges, choices, suggestions
of keys and of the user's own melodies) that are written back into that grammar, so ``/melody``
and ``!melody`` end in the same request. Work that takes a while is deferred ("thinking…") as soon
as composing starts; errors are ephemeral. A reply's actions ("Again", "Vary") are buttons.

The users' commands (and the Remix menu) can also be installed by a user to their own account,
so they work in direct messages and in servers the bot is not in; moderators' commands are
offered only in servers that installed the bot. Where only a user's install brought the command,
the bot has no member and may not post: it answers through the interaction alone.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import registry
from bot.app import App
from bot.composer import melody_actions
from bot.incoming import Incoming
from bot.platforms import FrontEndFailure
from bot.registry import CommandOption, CommandSpec
from bot.replies import Attachment, Delivered, FollowUps, Reply, melody_in
from generator.keys import COMMON_KEYS
from storage import MelodyRecord

log = logging.getLogger("melodybot.discord")
PLATFORM = "discord"
MAX_TEXT = 2000
MAX_CUSTOM_ID = 100
QUIET_REPLY_SECONDS = 120.0  # how long a prefix command's private answer stays in the channel
MAX_DESCRIPTION = 100
MAX_CHOICES = 25
MAX_HISTORY_SUGGESTED = 100

# Where a command is offered: the users' commands wherever the bot is installed, to a server or
# to a user's own account, and in every kind of chat; the moderators' only in servers that
# installed the bot.
EVERY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)
EVERY_CHAT = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
SERVER_INSTALL = app_commands.AppInstallationType(guild=True, user=False)
SERVERS_ONLY = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
GUILD_INSTALL_KEY = 0  # the key of a server's install in an interaction's authorizing owners


def chat_scope(guild: discord.Guild | None, user: discord.abc.User) -> str:
    """What limits and bans apply to: a server the bot is installed in (its moderators set
    them), or else the user's own scope, ``dm-<user id>``.

    The user's own scope is the one their direct messages with the bot have always had, and it
    also covers every place only their own install of the bot reaches (see
    :func:`interaction_scope`): a server without the bot, a direct or group message between
    users. Those places have no moderators the bot knows and no settings of their own, and one
    scope per user keeps their daily quota one quota however many servers and chats they use
    the command in; their melodies stay theirs to ``/show`` and ``/again`` in all of them. In a
    server that installed the bot, a user's own install changes nothing: the server's limits
    and bans apply, so neither can be stepped around.
    """
    return str(guild.id) if guild is not None else f"dm-{user.id}"


def bot_installed_in_server(interaction: discord.Interaction) -> bool:
    """Whether the interaction comes from a server that installed the bot: the server's install
    authorized it, or the gateway told this process of the server (the bot is a member). Through
    a user's own install in another server the interaction carries only a partial guild."""
    if interaction.guild_id is None:
        return False
    client = interaction.client
    return interaction.is_guild_integration() or client.get_guild(interaction.guild_id) is not None


def interaction_scope(interaction: discord.Interaction) -> str:
    """The :func:`chat_scope` of an interaction: its server's if the server installed the bot,
    the user's own everywhere else."""
    guild = interaction.guild if bot_installed_in_server(interaction) else None
    return chat_scope(guild, interaction.user)


def interaction_reply_address(interaction: discord.Interaction) -> str | None:
    """Where a melody begun for this interaction is posted if this process stops before it is
    sent (the interaction itself is not answered by the next one): its channel, but only where
    the bot may post, as it does for prefix commands: a server the bot is a member of, or its
    own direct messages with a user it reaches through a server's install (Discord marks those
    with the server install's key). Anywhere only the user's install reaches, there is no such
    place: None, and the next process gives the melody's quota slot back
    (:mod:`bot.takeover`) rather than compose it for a channel that would refuse it."""
    if interaction.channel_id is None:
        return None
    if interaction.guild_id is not None:
        here = interaction.client.get_guild(interaction.guild_id) is not None
    else:
        # discord.py keeps the authorizing owners to itself; in the bot's own DMs the server
        # install's key is present (as "0") when a server's install authorized the command.
        owners = getattr(interaction, "_integration_owners", {})
        here = interaction.context.dm_channel and GUILD_INSTALL_KEY in owners
    return str(interaction.channel_id) if here else None


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


class ActionButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"run:(?P<command>.+)",
):
    """A reply's action (:class:`~bot.replies.Action`) as a button that outlives restarts: its
    custom id is the command line it runs."""

    def __init__(self, command_line: str, label: str = "…"):
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=f"run:{command_line}"[:MAX_CUSTOM_ID],
            )
        )
        self.command_line = command_line

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(match["command"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: MelodyBot = interaction.client  # type: ignore[assignment]
        await bot.answer_interaction(interaction, self.command_line)


class OlderMelodyButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"melody:(?P<action>again|vary):(?P<id>\d+):(?P<temp>[\d.]+)",
):
    """The buttons under melodies sent before buttons carried their command: they keep
    working, as "Again" (a new seed) and "Vary" (warmer)."""

    def __init__(self, custom_id: str, command_line: str):
        super().__init__(discord.ui.Button(label="…", custom_id=custom_id))
        self.command_line = command_line

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        again, vary = melody_actions(int(match["id"]), float(match["temp"]))
        return cls(match[0], (again if match["action"] == "again" else vary).command)

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: MelodyBot = interaction.client  # type: ignore[assignment]
        await bot.answer_interaction(interaction, self.command_line)


def buttons_for(reply: Reply) -> discord.ui.View | None:
    if not reply.actions:
        return None
    view = discord.ui.View(timeout=None)
    for number, action in enumerate(reply.actions):
        button = ActionButton(action.command, action.label)
        if number == 0:
            button.item.style = discord.ButtonStyle.primary
        view.add_item(button)
    return view


class MelodyBot(commands.AutoShardedBot):
    """The bot over one or more gateway shards (``DISCORD_SHARD_COUNT`` / ``DISCORD_SHARD_IDS``;
    discord.py's recommended count when unset), each shard a connection of its own."""

    def __init__(self, app: App):
        # The bot never joins a voice channel, so discord.py's warning that the voice libraries
        # (PyNaCl, davey) are missing, logged on every start, tells an operator nothing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands read message text (privileged intent)
        super().__init__(
            command_prefix=app.settings.prefix,
            intents=intents,
            help_command=None,
            # Replies quote what users typed ("!melody @everyone C4"): they must ping no one.
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=app.settings.discord_shard_count,
            shard_ids=app.settings.discord_shard_ids,
        )
        self.app = app
        self._synced = False
        self.commands_checked = asyncio.Event()  # set once the start-up registration is done
        if app.settings.discord_api_base_url:
            discord.http.Route.BASE = app.settings.discord_api_base_url.rstrip("/")

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ActionButton, OlderMelodyButton)
        for spec in registry.commands():
            self.tree.add_command(slash_command(spec))
        self.tree.add_command(
            app_commands.ContextMenu(
                name="Remix",
                callback=remix_message,
                allowed_installs=EVERY_INSTALL,
                allowed_contexts=EVERY_CHAT,
            )
        )

    async def on_ready(self) -> None:
        if not self._synced:
            self._synced = True
            shard_ids = self.app.settings.discord_shard_ids
            if shard_ids is None or 0 in shard_ids:  # one process registers, not every shard's
                await self.register_commands()
            else:
                self.commands_checked.set()
        log.info("discord: connected as %s to %d servers", self.user, len(self.guilds))

    async def register_commands(self) -> bool:
        """Register the slash commands (and the Remix menu) with Discord if what it has differs
        from what this process offers; returns whether they were registered.

        Discord limits how often an application may register its commands, so a bot restarted
        often must not register them on every start. What Discord has is what counts (another
        process or a change in the Developer Portal may have changed them), so it is fetched and
        compared each time; a failed fetch registers them all the same."""
        try:
            changes = await self._command_changes()
            if not changes:
                log.info("discord: the slash commands are registered as they are")
                return False
            log.info("discord: registering the slash commands (%s)", "; ".join(changes))
            await self.tree.sync()
            return True
        except discord.HTTPException as error:
            log.warning("could not register slash commands: %s", error)
            return False
        finally:
            self.commands_checked.set()

    async def _command_changes(self) -> list[str]:
        app_id = self.application_id  # known once Discord said READY
        try:
            registered = await self.http.get_global_commands(app_id)  # type: ignore[arg-type]
        except discord.HTTPException as error:
            log.warning("could not fetch the registered slash commands: %s", error)
            return ["what Discord has could not be fetched"]
        if not registered:
            return ["none registered yet"]
        wanted = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return command_changes(wanted, registered)

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
            answers_melody=self._melody_answered(message),
        )
        reply = await self.app.core.handle(incoming, is_moderator=moderates, on_work_started=typing)
        if reply is None:
            return
        # Answers quote the message they answer; what only the asker needs to see (their
        # history, the limits, a mistake) is removed after a while rather than left in the chat.
        quiet = reply.private and reply.melody_id is None
        try:
            view = buttons_for(reply) or discord.utils.MISSING
            await send_melody(
                lambda text, files: message.reply(
                    text,
                    files=files,
                    view=view,
                    delete_after=QUIET_REPLY_SECONDS if quiet else None,
                ),
                reply,
                lambda: self.app.core.delivered(reply),
            )
        except discord.HTTPException as error:
            log.error("could not answer message %s: %s", message.id, error)
            await self.app.core.undelivered(reply, f"Discord answered {error.status}")

    def _melody_answered(self, message: discord.Message) -> int | None:
        """The melody in the bot's message that ``message`` replies to, if it is one."""
        answered = message.reference.resolved if message.reference is not None else None
        if not isinstance(answered, discord.Message) or answered.author != self.user:
            return None
        return melody_in(answered.content)

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

    async def answer_interaction(
        self,
        interaction: discord.Interaction,
        text: str,
        mentions: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Run a command for a slash command or button: defer once work starts, reply after.
        Every answer goes through the interaction (its response, then its follow-up webhook),
        never to the channel, so it works where only the user's own install reaches."""
        settings = self.app.settings

        async def moderates() -> bool:  # a server's roles count only where it installed the bot
            return bot_installed_in_server(interaction) and is_moderator(
                interaction.user, settings.moderator_role
            )

        async def defer() -> None:
            if not interaction.response.is_done():
                await interaction.response.defer(thinking=True)

        incoming = Incoming(
            platform=PLATFORM,
            chat_id=interaction_scope(interaction),
            user_id=str(interaction.user.id),
            user_name=interaction.user.display_name,
            text=f"{settings.prefix}{text}",
            shown_prefix="/",  # a slash command or a button: "/again 12" is what they would use
            mentions=mentions,
            reply_address=interaction_reply_address(interaction),
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


async def remix_message(interaction: discord.Interaction, message: discord.Message) -> None:
    """Right-click → Apps → Remix on one of the bot's melodies: a new melody from its opening."""
    bot: MelodyBot = interaction.client  # type: ignore[assignment]
    number = melody_in(message.content) if message.author == bot.user else None
    if number is None:
        await interaction.response.send_message(
            "Remix works on my melodies: right-click one of them.", ephemeral=True
        )
        return
    await bot.answer_interaction(interaction, f"remix {number}")


# Fields Discord adds to a registered command, or derives from others that are compared.
_NOT_COMPARED = frozenset(
    {"id", "application_id", "version", "guild_id", "dm_permission", "name_localized"}
    | {"description_localized"}
)


def command_changes(
    wanted: Sequence[Mapping[str, Any]], registered: Sequence[Mapping[str, Any]]
) -> list[str]:
    """How the commands Discord has registered differ from those wanted, one entry per kind of
    difference ("added: melody", "changed: help, Remix", "removed: old"); empty when none.

    Both are compared as Discord reads them: fields left out, null, false or empty are one and
    the same (Discord leaves out ``required: false`` that discord.py sends), permissions are a
    number in one and a string in the other, and the places a command is offered are sets."""

    def by_name(commands: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], object]:
        return {(c.get("type", 1), c["name"]): _comparable(c) for c in commands}

    have, want = by_name(registered), by_name(wanted)
    named = {
        "added": [k for k in want if k not in have],
        "changed": [k for k in want if k in have and want[k] != have[k]],
        "removed": [k for k in have if k not in want],
    }
    return [f"{what}: {', '.join(n for _, n in keys)}" for what, keys in named.items() if keys]


def _comparable(value: object, field: str = "") -> object:
    if field == "default_member_permissions":
        return str(value)
    if field in ("contexts", "integration_types") and isinstance(value, list):
        return sorted(value)
    if isinstance(value, Mapping):
        return {
            k: _comparable(v, k)
            for k, v in value.items()
            if k not in _NOT_COMPARED and not _unset(v)
        }
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _unset(value: object) -> bool:
    return value is None or value is False or value in ("", [], {})


def slash_command(spec: CommandSpec) -> app_commands.Command:
    """The slash twin of a registered command: its typed options become Discord's (ranges,
    choices, suggestions), and what the user filled in is written back into the chat grammar,
    so ``/melody`` and ``!melody`` end in the same request."""

    async def run(interaction: discord.Interaction, **values: object) -> None:
        users = [v for v in values.values() if isinstance(v, discord.abc.User)]
        mentions = tuple((str(u.id), u.display_name) for u in users)
        typed = {
            name: value.mention if isinstance(value, discord.abc.User) else value
            for name, value in values.items()
        }
        bot: MelodyBot = interaction.client  # type: ignore[assignment]
        await bot.answer_interaction(interaction, spec.to_text(typed), mentions)

    parameters = [inspect.Parameter("interaction", _POSITIONAL, annotation=discord.Interaction)]
    for option in spec.options:
        annotation = _annotation(option)
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation if option.required else annotation | None,
                default=inspect.Parameter.empty if option.required else None,
            )
        )
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__discord_app_commands_param_description__ = {  # type: ignore[attr-defined]
        option.name: option.description[:MAX_DESCRIPTION] for option in spec.options
    }
    run.__discord_app_commands_param_autocomplete__ = {  # type: ignore[attr-defined]
        option.name: _SUGGESTIONS[option.suggest] for option in spec.options if option.suggest
    }
    summary = spec.summary[0].upper() + spec.summary[1:]
    command = app_commands.Command(
        name=spec.name,
        description=summary[:MAX_DESCRIPTION],
        callback=run,
        allowed_installs=SERVER_INSTALL if spec.moderator else EVERY_INSTALL,
        allowed_contexts=SERVERS_ONLY if spec.moderator else EVERY_CHAT,
    )
    if spec.moderator:  # shown to those who manage the server; the core checks all the same
        command.default_permissions = discord.Permissions(manage_guild=True)
        command.guild_only = True  # the older flag, said the same way as the contexts
    return command


_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _annotation(option: CommandOption) -> object:
    if option.kind == "user":
        return discord.User
    if option.kind == "choice":
        return Literal[option.choices]  # type: ignore[valid-type]
    if option.kind in ("int", "float"):
        kind = int if option.kind == "int" else float
        low = None if option.low is None else kind(option.low)
        high = None if option.high is None else kind(option.high)
        return app_commands.Range[kind, low, high]  # type: ignore[valid-type]
    return str


async def _suggest_keys(interaction: discord.Interaction, current: str):
    wanted = current.strip().lower()
    return [
        app_commands.Choice(name=k, value=k) for k in COMMON_KEYS if k.lower().startswith(wanted)
    ][:MAX_CHOICES]


async def _suggest_melodies(interaction: discord.Interaction, current: str):
    """The user's own melodies, newest first, those whose number starts as typed."""
    bot: MelodyBot = interaction.client  # type: ignore[assignment]
    user = await bot.app.repo.find_user(PLATFORM, str(interaction.user.id))
    if user is None:
        return []
    here = interaction_scope(interaction)
    wanted = current.strip().lstrip("#")
    found = await bot.app.repo.history(user.id, limit=MAX_HISTORY_SUGGESTED)
    return [
        app_commands.Choice(
            name=f"#{m.id} · {m.request['canonical']}"[:MAX_DESCRIPTION], value=m.id
        )
        for m in found
        if m.chat_id == here and str(m.id).startswith(wanted)
    ][:MAX_CHOICES]


def _described(melody: MelodyRecord) -> str:
    return f"#{melody.id} · {melody.request['canonical']}"[:MAX_DESCRIPTION]


async def _suggest_commands(interaction: discord.Interaction, current: str):
    wanted = current.strip().lower()
    return [
        app_commands.Choice(name=spec.name, value=spec.name)
        for spec in registry.commands()
        if spec.name.startswith(wanted)
    ][:MAX_CHOICES]


_SUGGESTIONS = {
    "keys": _suggest_keys,
    "melodies": _suggest_melodies,
    "commands": _suggest_commands,
}


# the front-end the runner starts -------------------------------------------------------------


class DiscordFrontEnd:
    name = "discord"
    audio_format = "mp3"

    def __init__(self, app: App):
        self.bot = MelodyBot(app)
        self._task: asyncio.Task | None = None
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        token = self.bot.app.settings.discord_token
        assert token is not None
        try:
            await self.bot.login(token.get_secret_value())
        except discord.LoginFailure:
            raise FrontEndFailure(_DISCORD_TOKEN_REJECTED) from None
        self._task = asyncio.create_task(self.bot.connect(reconnect=True), name="discord")
        self._task.add_done_callback(self._connection_ended)

    def _connection_ended(self, task: asyncio.Task) -> None:
        """discord.py reconnects by itself; when its connect() ends, the gateway is gone."""
        if self.gone.done() or task.cancelled():
            return  # stopped on purpose
        error = task.exception()
        if error is None and self.bot.is_closed():
            return  # closed on purpose
        log.error("discord: the gateway connection is gone", exc_info=error)
        self.gone.set_result(_discord_failure(error))

    async def stop_intake(self) -> None:
        """Discord cannot hold events back: they keep arriving and the core answers that the
        bot is restarting."""

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        await self.bot.send_to(address, reply, on_delivered)

    async def stop(self) -> None:
        if not self.gone.done():
            self.gone.cancel()  # stopping on purpose is not a lost connection
        await self.bot.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


_DISCORD_TOKEN_REJECTED = (
    "Discord rejected DISCORD_TOKEN: reset it in the Developer Portal (Bot → Reset Token)."
)


def _discord_failure(error: BaseException | None) -> str:
    """What an operator should know about a gateway that closed for good."""
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return (
            "Discord closed the gateway: the Message Content intent is off for this bot. Turn it "
            "on in the Developer Portal (Bot → Privileged Gateway Intents), then start again."
        )
    if isinstance(error, discord.LoginFailure) or (
        isinstance(error, discord.ConnectionClosed) and error.code == 4004
    ):
        return _DISCORD_TOKEN_REJECTED
    if isinstance(error, discord.ConnectionClosed):
        return f"Discord closed the gateway for good (close code {error.code})."
    what = type(error).__name__ if error is not None else "it ended"
    return f"Discord's gateway connection is gone ({what})."
