"""A loopback fake of the Telegram Bot API, enough for python-telegram-bot to run against.

It answers getMe, long-polls getUpdates from a queue the test fills, and records every
send*/setMyCommands call (uploads included) so tests can assert on what the bot sent. Faults are
injected per method (``failing``: every call; ``fail_next``: the next few) or per call
(``fault``: a function that may pick an error for any call), each answered as Telegram would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.loopback import serve

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Melody", "username": "melody_test_bot"}


@dataclass
class Call:
    method: str
    fields: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.perf_counter)  # when the bot's call arrived
    status: int = 200  # what the fake answered: 200, or the error code injected

    @property
    def ok(self) -> bool:
        return self.status == 200


class FakeTelegram:
    def __init__(self, admins: set[int] | None = None):
        self.calls: list[Call] = []
        self.admins = admins or set()
        self.rejected_tokens: set[str] = set()  # answered 401 Unauthorized, as Telegram does
        self.failing: dict[str, tuple[int, str]] = {}  # method → (error code, description)
        self.fail_next: dict[str, list[tuple[int, str]]] = {}  # method → errors, one per call
        self.fault: Callable[[Call], tuple[int, str] | None] | None = None
        # Methods whose calls are never answered (a connection that hangs); they are counted in
        # ``held``, not recorded, and fail with a 502 once the fake stops.
        self.hold: set[str] = set()
        self.held = 0
        self._stopping = asyncio.Event()
        self._updates: list[dict] = []
        self._new_update = asyncio.Event()
        self._update_ids = itertools.count(1)
        self._confirmed = 0  # the highest offset a getUpdates call has given
        self._message_ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.call_arrived = asyncio.Condition()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner, self.port = await serve(app)

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def send_text(
        self,
        text: str,
        *,
        chat_id: int = -100,
        user_id: int = 7,
        username: str = "ann",
        chat_type: str = "group",
        answering: Call | None = None,
    ) -> None:
        """Deliver a user's message to the bot (it arrives with the next getUpdates);
        ``answering`` is a message the bot sent that it replies to."""
        update_id = next(self._update_ids)
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "title": "Folk club"},
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": username.title(),
                "username": username,
            },
            "text": text,
        }
        if answering is not None:
            message["reply_to_message"] = {
                "message_id": int(answering.fields.get("message_id", 1)),
                "date": int(time.time()),
                "chat": message["chat"],
                "from": BOT_USER,
                "caption": answering.fields.get("caption", ""),
            }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._updates.append({"update_id": update_id, "message": message})
        self._new_update.set()

    def press(
        self,
        callback_data: str,
        under: Call,
        *,
        chat_id: int = -100,
        user_id: int = 7,
        username: str = "ann",
    ) -> None:
        """A user presses a button (``callback_data``) under a message the bot sent."""
        message = {
            "message_id": int(under.fields.get("message_id", 1)),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "group", "title": "Folk club"},
            "from": BOT_USER,
            "caption": under.fields.get("caption", ""),
        }
        self._updates.append(
            {
                "update_id": next(self._update_ids),
                "callback_query": {
                    "id": str(next(self._message_ids)),
                    "from": {
                        "id": user_id,
                        "is_bot": False,
                        "first_name": username.title(),
                        "username": username,
                    },
                    "message": message,
                    "chat_instance": "folk-club",
                    "data": callback_data,
                },
            }
        )
        self._new_update.set()

    def inline(self, query: str, *, user_id: int = 7, username: str = "ann") -> str:
        """A user types ``@bot <query>`` in some chat; returns the inline query's id."""
        query_id = str(next(self._message_ids))
        self._updates.append(
            {
                "update_id": next(self._update_ids),
                "inline_query": {
                    "id": query_id,
                    "from": {
                        "id": user_id,
                        "is_bot": False,
                        "first_name": username.title(),
                        "username": username,
                    },
                    "query": query,
                    "offset": "",
                    "chat_type": "supergroup",
                },
            }
        )
        self._new_update.set()
        return query_id

    def unconfirmed_updates(self) -> list[dict]:
        """Updates no getUpdates offset has confirmed: the next poll still gets them."""
        return [u for u in self._updates if u["update_id"] >= self._confirmed]

    def sent(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 120.0) -> list[Call]:
        async def enough() -> list[Call]:
            async with self.call_arrived:
                await self.call_arrived.wait_for(lambda: len(self.sent(method)) >= count)
            return self.sent(method)

        return await asyncio.wait_for(enough(), timeout)

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] in self.rejected_tokens:
            return _error(401, "Unauthorized")
        fields, files = await _read_fields(request)
        if method == "getUpdates":
            return _ok(await self._get_updates(fields))
        if method in self.hold:
            self.held += 1
            await self._stopping.wait()
            return _error(502, "Bad Gateway")
        call = Call(method, fields, files)
        error = self._injected(call)
        if error is not None:
            call.status = error[0]
        async with self.call_arrived:
            self.calls.append(call)
            self.call_arrived.notify_all()
        if error is not None:
            return _error(*error)
        if method == "getMe":
            return _ok(BOT_USER)
        if method == "getChatMember":
            user_id = int(fields["user_id"])
            status = "administrator" if user_id in self.admins else "member"
            member = {"status": status, "user": {"id": user_id, "is_bot": False, "first_name": "U"}}
            if status == "administrator":
                member |= {
                    key: True
                    for key in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                }
            return _ok(member)
        if method.startswith("send") and method != "sendChatAction":
            return _ok(
                {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": {"id": int(fields.get("chat_id", 0)), "type": "group"},
                    "from": BOT_USER,
                    "text": fields.get("text", ""),
                }
            )
        return _ok(True)  # setMyCommands, deleteWebhook, sendChatAction, …

    def _injected(self, call: Call) -> tuple[int, str] | None:
        if call.method in self.failing:
            return self.failing[call.method]
        if self.fail_next.get(call.method):
            return self.fail_next[call.method].pop(0)
        return self.fault(call) if self.fault is not None else None

    async def _get_updates(self, fields: dict[str, str]) -> list[dict]:
        # As Telegram does, an offset confirms every update before it: those are gone for good,
        # also for the next process that polls with this token.
        self._confirmed = max(self._confirmed, int(fields.get("offset", 0) or 0))
        offset = self._confirmed
        timeout = min(float(fields.get("timeout", 0) or 0), 1.0)
        pending = [u for u in self._updates if u["update_id"] >= offset]
        if not pending and timeout:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
            pending = [u for u in self._updates if u["update_id"] >= offset]
        return pending


async def _read_fields(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        body = await request.json()
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    elif request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            data = await part.read()
            if part.filename:
                files[part.name] = bytes(data)
            else:
                fields[part.name] = data.decode()
    else:
        posted = await request.post()
        fields = {k: str(v) for k, v in posted.items()}
    return fields, files


def _error(code: int, description: str) -> web.Response:
    body: dict = {"ok": False, "error_code": code, "description": description}
    if code == 429:  # flood control: Telegram says how long to wait
        body["parameters"] = {"retry_after": 1}
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def _ok(result: object) -> web.Response:
    return web.Response(
        text=json.dumps({"ok": True, "result": result}), content_type="application/json"
    )
