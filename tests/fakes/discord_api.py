"""A loopback fake of Discord's REST API and gateway, enough for discord.py to run against.

The gateway says HELLO, answers IDENTIFY with READY and one GUILD_CREATE, acknowledges heartbeats,
and lets a test dispatch MESSAGE_CREATE and INTERACTION_CREATE events. The REST side answers login
and command registration (and reads the registered commands back as Discord does) and records
every message, interaction response and follow-up (with their files) for the test to inspect.
Replies carry ``Content-Type: application/json`` exactly, as discord.py checks.

Interactions come from one of several places (``where``): the server that installed the bot, or,
through a user's own install of it, a server without the bot, the bot's direct messages, or a
group message between users.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from tests.fakes.loopback import serve

APP_ID = "900000000000000001"
BOT_ID = "900000000000000002"
GUILD_ID = "900000000000000003"
CHANNEL_ID = "900000000000000004"
MOD_ROLE_ID = "900000000000000005"
OTHER_GUILD_ID = "900000000000000006"  # a server the bot is not in
OTHER_CHANNEL_ID = "900000000000000007"
DM_CHANNEL_ID = "900000000000000008"  # a user's direct messages with the bot
GROUP_DM_ID = "900000000000000009"  # a group message between users
MANAGE_GUILD = 1 << 5
BOT_USER = {
    "id": BOT_ID,
    "username": "melodybot",
    "discriminator": "0",
    "avatar": None,
    "bot": True,
    "global_name": "melodybot",
}


@dataclass
class Posted:
    route: str
    payload: dict
    files: dict[str, bytes] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: str, name: str) -> dict:
    return {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "avatar": None,
        "global_name": name,
    }


class FakeDiscord:
    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self.arrived = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self._ids = itertools.count(910000000000000000)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.identified = asyncio.Event()
        # Discord's answer to IDENTIFY when set: close the gateway with this code, e.g. 4014
        # (disallowed intents: the Message Content intent is off) or 4004 (token rejected).
        self.close_on_identify: int | None = None
        self.max_upload_bytes: int | None = None  # larger messages get 413, as Discord answers
        self.refuse: dict[str, int] = {}  # route ending → HTTP status, e.g. {"/typing": 403}
        # the application commands the bot last registered, with the ids Discord gave them
        self.identifies: list[dict] = []  # what each gateway connection said in IDENTIFY
        self.registered: list[dict] = []
        self.messages: list[dict] = []  # every message the bot posted, as the fake answered
        self.requests: list[str] = []  # every REST call's method and path, in order
        self._places: dict[str, tuple[str, str | None]] = {}  # token → (channel, guild)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner, self.port = await serve(app)

    async def stop(self) -> None:
        for socket in self._sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # gateway -------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for frame in socket:
            message = json.loads(frame.data)
            if message["op"] == 1:
                await socket.send_json({"op": 11})
            elif message["op"] == 2 and self.close_on_identify is not None:
                await socket.close(code=self.close_on_identify)
                break
            elif message["op"] == 2:
                self.identifies.append(message["d"])
                await self._send(
                    socket,
                    "READY",
                    {
                        "v": 10,
                        "user": BOT_USER,
                        "guilds": [{"id": GUILD_ID, "unavailable": True}],
                        "session_id": "fake-session",
                        "shard": message["d"].get("shard") or [0, 1],
                        "resume_gateway_url": self.gateway_url,
                        "application": {"id": APP_ID, "flags": 0},
                        "private_channels": [],
                        "relationships": [],
                    },
                )
                await self._send(socket, "GUILD_CREATE", self._guild())
                self.identified.set()
        return socket

    async def _send(self, socket: web.WebSocketResponse, event: str, data: dict) -> None:
        await socket.send_json({"op": 0, "t": event, "s": next(self._sequence), "d": data})

    def _guild(self) -> dict:
        role = {"managed": False, "hoist": False, "mentionable": False, "color": 0, "flags": 0}
        return {
            "id": GUILD_ID,
            "name": "Folk club",
            "owner_id": "1",
            "unavailable": False,
            "member_count": 3,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [
                role | {"id": GUILD_ID, "name": "@everyone", "permissions": "0", "position": 0},
                role
                | {
                    "id": MOD_ROLE_ID,
                    "name": "Mods",
                    "permissions": str(MANAGE_GUILD),
                    "position": 1,
                },
            ],
            "channels": [
                {
                    "id": CHANNEL_ID,
                    "type": 0,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                    "guild_id": GUILD_ID,
                }
            ],
            "members": [
                {
                    "user": BOT_USER,
                    "roles": [],
                    "joined_at": _now(),
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                }
            ],
            "voice_states": [],
            "presences": [],
            "threads": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    async def _dispatch(self, event: str, data: dict) -> None:
        await self.identified.wait()
        for socket in self._sockets:
            if not socket.closed:
                await self._send(socket, event, data)

    def _member(self, user_id: str, name: str, moderator: bool) -> dict:
        return {
            "user": user(user_id, name),
            "roles": [MOD_ROLE_ID] if moderator else [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(MANAGE_GUILD if moderator else 0),
        }

    async def send_message(
        self,
        content: str,
        *,
        user_id: str = "7",
        name: str = "ann",
        moderator: bool = False,
        answering: dict | None = None,
    ) -> None:
        """A user's message; ``answering`` is a message (as the fake answered its POST) that it
        replies to."""
        member = self._member(user_id, name, moderator)
        author = member.pop("user")
        member.pop("permissions")
        reply = {}
        if answering is not None:
            reference = {"message_id": answering["id"], "channel_id": CHANNEL_ID}
            reply = {"message_reference": reference, "referenced_message": answering, "type": 19}
        await self._dispatch(
            "MESSAGE_CREATE",
            reply
            | {
                "id": str(next(self._ids)),
                "channel_id": CHANNEL_ID,
                "guild_id": GUILD_ID,
                "author": author,
                "member": member,
                "content": content,
                "timestamp": _now(),
                "edited_timestamp": None,
                "tts": False,
                "mention_everyone": False,
                "mentions": [],
                "mention_roles": [],
                "attachments": [],
                "embeds": [],
                "pinned": False,
            }
            | ({"type": 0} if answering is None else {}),
        )

    async def send_message_command(
        self, name: str, target: dict, *, user_id: str = "7", where: str = "server"
    ):
        """A message's context menu command (right-click → Apps → ``name``) on ``target``."""
        data = {
            "id": str(next(self._ids)),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        await self._interaction(2, data, user_id, "ann", False, where=where)

    async def send_slash(
        self,
        name: str,
        options: list[dict],
        *,
        user_id: str = "7",
        user_name: str = "ann",
        moderator: bool = False,
        resolved: dict | None = None,
        where: str = "server",
    ) -> None:
        """A slash command; ``resolved`` carries the users a user option names, as Discord
        sends them beside the options; ``where`` is the place it comes from (:meth:`_place`)."""
        data = {"id": str(next(self._ids)), "name": name, "type": 1, "options": options}
        if resolved:
            data["resolved"] = resolved
        await self._interaction(2, data, user_id, user_name, moderator, where=where)

    async def send_autocomplete(
        self, name: str, options: list[dict], *, user_id: str = "7", where: str = "server"
    ):
        """The user typing into an option with suggestions (the one marked ``focused``)."""
        data = {"id": str(next(self._ids)), "name": name, "type": 1, "options": options}
        await self._interaction(4, data, user_id, "ann", False, where=where)

    async def click(
        self, custom_id: str, message: dict, *, user_id: str = "7", where: str = "server"
    ) -> None:
        """A button press under ``message`` (as the fake answered its POST)."""
        data = {"custom_id": custom_id, "component_type": 2}
        await self._interaction(3, data, user_id, "ann", False, message=message, where=where)

    async def _interaction(
        self,
        kind: int,
        data: dict,
        user_id: str,
        user_name: str,
        moderator: bool,
        message: dict | None = None,
        where: str = "server",
    ) -> None:
        extra = {} if message is None else {"message": message}
        token = f"interaction-token-{next(self._ids)}"
        place = self._place(where, user_id, user_name, moderator)
        self._places[token] = (place["channel_id"], place.get("guild_id"))
        await self._dispatch(
            "INTERACTION_CREATE",
            extra
            | place
            | {
                "id": str(next(self._ids)),
                "application_id": APP_ID,
                "type": kind,
                "data": data,
                "token": token,
                "version": 1,
                "attachment_size_limit": 10 * 2**20,
                "app_permissions": "0",
                "locale": "en-US",
                "entitlements": [],
            },
        )

    def _place(self, where: str, user_id: str, user_name: str, moderator: bool) -> dict:
        """Where an interaction comes from, as Discord describes it: ``server`` (the one that
        installed the bot), or through the user's own install ``other-server`` (one without the
        bot: a partial guild), ``dm`` (their direct messages with the bot) or ``group`` (a group
        message between users); ``server-dm`` is the bot's direct messages with a user whom a
        server's install reaches as well."""
        by_user = {"authorizing_integration_owners": {"1": user_id}}
        if where == "server":
            return {
                "guild_id": GUILD_ID,
                "guild_locale": "en-US",
                "channel_id": CHANNEL_ID,
                "channel": {"id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "general"},
                "member": self._member(user_id, user_name, moderator),
                "authorizing_integration_owners": {"0": GUILD_ID},
                "context": 0,
            }
        if where == "other-server":
            channel = {
                "id": OTHER_CHANNEL_ID,
                "type": 0,
                "guild_id": OTHER_GUILD_ID,
                "position": 3,
                "permission_overwrites": [],
                "flags": 0,
                "nsfw": False,
                "permissions": "0",
            }
            return by_user | {
                "guild_id": OTHER_GUILD_ID,
                "guild": {"id": OTHER_GUILD_ID, "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "channel_id": OTHER_CHANNEL_ID,
                "channel": channel | {"name": "off-topic"},
                "member": self._member(user_id, user_name, moderator),
                "context": 0,
            }
        if where in ("dm", "server-dm"):
            channel = {"id": DM_CHANNEL_ID, "type": 1, "last_message_id": None, "flags": 0}
            # "server-dm": a server's install of the bot reaches this user too (Discord's "0")
            owners = {"0": "0", "1": user_id} if where == "server-dm" else {"1": user_id}
            return {
                "authorizing_integration_owners": owners,
                "channel_id": DM_CHANNEL_ID,
                "channel": channel | {"recipients": [user(user_id, user_name)]},
                "user": user(user_id, user_name),
                "context": 1,
            }
        if where == "group":
            friends = [user(user_id, user_name), user("12", "cai")]
            return by_user | {
                "channel_id": GROUP_DM_ID,
                "channel": {
                    "id": GROUP_DM_ID,
                    "type": 3,
                    "name": None,
                    "icon": None,
                    "owner_id": "12",
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": friends,
                },
                "user": user(user_id, user_name),
                "context": 2,
            }
        raise ValueError(f"no such place: {where}")

    # REST ----------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        route = f"{request.method} /{request.match_info['tail']}"
        self.requests.append(route)
        payload, files = await _read_body(request)
        for ending, status in self.refuse.items():
            if route.endswith(ending):
                body = {"message": "Missing Permissions", "code": 50013}
                return web.json_response(body, status=status)
        if (
            self.max_upload_bytes is not None
            and sum(map(len, files.values())) > self.max_upload_bytes
        ):
            return web.json_response(
                {"message": "Request entity too large", "code": 40005}, status=413
            )
        if route == "GET /users/@me":
            return _json(BOT_USER)
        if route == "GET /oauth2/applications/@me":
            return _json(
                {
                    "id": APP_ID,
                    "name": "melodybot",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": BOT_USER,
                    "verify_key": "0" * 64,
                    "flags": 0,
                    "summary": "",
                }
            )
        if route.startswith("GET /gateway"):
            limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
            return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})
        if route == f"GET /applications/{APP_ID}/commands":
            return _json([_as_discord_reads_it(c) for c in self.registered])
        if route == f"PUT /applications/{APP_ID}/commands":
            commands = payload if isinstance(payload, list) else []
            self.registered = [
                c | {"id": str(next(self._ids)), "application_id": APP_ID, "version": "1"}
                for c in commands
            ]
            return _json([_as_discord_reads_it(c) for c in self.registered])
        await self._record(Posted(route, payload if isinstance(payload, dict) else {}, files))
        if route.endswith("/typing"):
            return web.Response(status=204)
        if route.endswith("/callback"):  # discord.py asks for the callback response back
            interaction_id = request.match_info["tail"].split("/")[1]
            body = payload if isinstance(payload, dict) else {}
            flags = (body.get("data") or {}).get("flags", 0)
            return _json(
                {
                    "interaction": {
                        "id": interaction_id,
                        "type": 2,
                        "response_message_loading": body.get("type") == 5,
                        "response_message_ephemeral": bool(flags & 64),
                    }
                }
            )
        where = CHANNEL_ID, GUILD_ID
        parts = request.match_info["tail"].split("/")
        if parts[0] == "webhooks" and len(parts) > 2:  # an interaction's: where it came from
            where = self._places.get(parts[2], where)
        message = self._message(payload if isinstance(payload, dict) else {}, files, *where)
        self.messages.append(message)
        return _json(message)

    async def _record(self, posted: Posted) -> None:
        async with self.arrived:
            self.posted.append(posted)
            self.arrived.notify_all()

    def _message(
        self,
        payload: dict,
        files: dict[str, bytes],
        channel_id: str = CHANNEL_ID,
        guild_id: str | None = GUILD_ID,
    ) -> dict:
        attachments = [
            {
                "id": str(next(self._ids)),
                "filename": f"file{i}",
                "size": len(data),
                "url": "http://127.0.0.1/f",
                "proxy_url": "http://127.0.0.1/f",
            }
            for i, data in enumerate(files.values())
        ]
        return ({} if guild_id is None else {"guild_id": guild_id}) | {
            "id": str(next(self._ids)),
            "channel_id": channel_id,
            "author": BOT_USER,
            "content": payload.get("content", ""),
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "pinned": False,
            "type": 0,
            "components": payload.get("components", []),
        }

    async def wait_for(self, predicate, count: int = 1, timeout: float = 60.0) -> list[Posted]:
        async def enough() -> list[Posted]:
            async with self.arrived:
                await self.arrived.wait_for(
                    lambda: len([p for p in self.posted if predicate(p)]) >= count
                )
                return [p for p in self.posted if predicate(p)]

        return await asyncio.wait_for(enough(), timeout)


def _as_discord_reads_it(command: dict) -> dict:
    """A registered command as Discord lists it: what is false or unset is left out of its
    options, permissions are a string, a context menu has an empty description."""
    options = [
        {k: v for k, v in option.items() if v is not None and v is not False}
        for option in command.get("options") or []
    ]
    permissions = command.get("default_member_permissions")
    return (
        {k: v for k, v in command.items() if k != "options"}
        | {
            "description": command.get("description", ""),
            "default_member_permissions": None if permissions is None else str(permissions),
            "nsfw": bool(command.get("nsfw")),
        }
        | ({"options": options} if options else {})
    )


async def _read_body(request: web.Request) -> tuple[object, dict[str, bytes]]:
    files: dict[str, bytes] = {}
    if request.content_type.startswith("multipart/"):
        payload: object = {}
        reader = await request.multipart()
        async for part in reader:
            data = bytes(await part.read())
            if part.name == "payload_json":
                payload = json.loads(data)
            elif part.filename:
                files[part.filename] = data
        return payload, files
    if request.can_read_body:
        text = await request.text()
        return (json.loads(text) if text else {}), files
    return {}, files


def _json(data: object) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )
