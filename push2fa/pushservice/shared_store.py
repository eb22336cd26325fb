"""The emulator's state in Redis: kept across restarts and shared by every emulator process.

The in-memory store is right for one process, but an emulator that forgets its devices on
restart locks every enrolled user out (the app still holds their authy_ids), and several
emulator processes must agree on one request's answer. This store implements the same
interface as :class:`~.store.MemoryStore` on Redis. Every change that can race (the first
registration of a user, deciding a request, accepting a TOTP step, deleting a user) is one
Lua script, which Redis runs atomically: the conditional update a database would run.

Layout, under ``push2fa:emulator:<namespace>:`` (the namespace is the Authy app id, so two
emulators can share one Redis):

    user:<authy_id>          JSON user            phone:<cc>:<number>  authy_id
    registration:<custom id> authy_id             devices:<authy_id>   list of device ids
    device:<id>              JSON device          totp:<device id>     last accepted step
    request:<uuid>           hash: "record" (JSON, immutable), "status", "expires_ts",
                             "decision" (JSON, once decided)
    pending:<authy_id>       zset of undecided request uuids by creation time
    requests:<authy_id>      zset of every request uuid of the user (for deletion)

Scripts touch keys derived from their arguments, so this needs a standalone Redis (or one
primary), not Redis Cluster.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from . import totp
from .store import (
    RETENTION,
    TEST_CALLBACK_AUTHY_ID,
    ApprovalRequest,
    Decision,
    Device,
    NewApprovalRequest,
    Store,
    User,
    build_request,
    new_object_id,
)

if TYPE_CHECKING:  # redis is the optional extra `redis`
    from redis.asyncio import Redis

RETENTION_SECONDS = int(RETENTION.total_seconds())
_NEW_ID_ATTEMPTS = 20

# KEYS: phone, candidate user. ARGV: candidate authy_id, user JSON, key prefix.
_CREATE_USER = """
local existing = redis.call('GET', KEYS[1])
if existing then return {0, redis.call('GET', ARGV[3] .. 'user:' .. existing)} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, false} end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return {1, ARGV[2]}
"""

# KEYS: registration, candidate user, candidate device, candidate devices list.
# ARGV: authy_id, user JSON, device id, device JSON, key prefix.
_REGISTER_DEVICE = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local first = redis.call('LINDEX', ARGV[5] .. 'devices:' .. existing, 0)
  return {0, redis.call('GET', ARGV[5] .. 'user:' .. existing),
          redis.call('GET', ARGV[5] .. 'device:' .. first)}
end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  return {2, false, false}
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1])
return {1, ARGV[2], ARGV[4]}
"""

# KEYS: user. ARGV: key prefix, authy_id.
_DELETE_USER = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local user = cjson.decode(raw)
local p = ARGV[1]
if type(user.cellphone) == 'string' and user.country_code ~= cjson.null then
  redis.call('DEL', p .. 'phone:' .. tostring(user.country_code) .. ':' .. user.cellphone)
end
if type(user.custom_user_id) == 'string' then
  redis.call('DEL', p .. 'registration:' .. user.custom_user_id)
end
for _, id in ipairs(redis.call('LRANGE', p .. 'devices:' .. ARGV[2], 0, -1)) do
  redis.call('DEL', p .. 'device:' .. id, p .. 'totp:' .. id)
end
for _, set in ipairs({'pending:', 'requests:'}) do
  for _, uuid in ipairs(redis.call('ZRANGE', p .. set .. ARGV[2], 0, -1)) do
    redis.call('DEL', p .. 'request:' .. uuid)
  end
  redis.call('DEL', p .. set .. ARGV[2])
end
redis.call('DEL', p .. 'devices:' .. ARGV[2], KEYS[1])
return 1
"""

# KEYS: totp step of a device, the device. ARGV: step.
_ACCEPT_TOTP_STEP = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS: request, pending zset of its user. ARGV: status, decision JSON, now (unix), uuid,
# retention seconds.
_DECIDE_REQUEST = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
local expires = redis.call('HGET', KEYS[1], 'expires_ts')
if expires ~= '' and tonumber(ARGV[3]) >= tonumber(expires) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decision', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _time(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


def _user_json(user: User) -> str:
    return json.dumps(
        {
            "authy_id": user.authy_id,
            "object_id": user.object_id,
            "created_at": _iso(user.created_at),
            "email": user.email,
            "cellphone": user.cellphone,
            "country_code": user.country_code,
            "custom_user_id": user.custom_user_id,
        }
    )


def _user(raw: str) -> User:
    data = json.loads(raw)
    data["created_at"] = _time(data["created_at"])
    return User(**data)


def _device_json(device: Device) -> str:
    return json.dumps(
        {
            "id": device.id,
            "authy_id": device.authy_id,
            "totp_secret": base64.b64encode(device.totp_secret).decode(),
            "registered_at": _iso(device.registered_at),
            "registration_ip": device.registration_ip,
            "os_type": device.os_type,
        }
    )


def _device(raw: str, last_step: Any) -> Device:
    data = json.loads(raw)
    data["totp_secret"] = base64.b64decode(data["totp_secret"])
    data["registered_at"] = _time(data["registered_at"])
    return Device(**data, last_totp_step=-1 if last_step is None else int(last_step))


def _request_record(request: ApprovalRequest) -> str:
    return json.dumps(
        {
            "uuid": request.uuid,
            "object_id": request.object_id,
            "authy_id": request.authy_id,
            "message": request.message,
            "details": dict(request.details),
            "hidden_details": dict(request.hidden_details),
            "logos": None if request.logos is None else [dict(logo) for logo in request.logos],
            "seconds_to_expire": request.seconds_to_expire,
            "created_at": _iso(request.created_at),
        }
    )


def _request(fields: Mapping[str, str]) -> ApprovalRequest:
    data: dict[str, Any] = json.loads(fields["record"])
    data["created_at"] = _time(data["created_at"])
    data["updated_at"] = data["created_at"]
    if data["logos"] is not None:
        data["logos"] = tuple(data["logos"])
    data["status"] = fields["status"]
    decision = fields.get("decision")
    if decision:
        decided = json.loads(decision)
        data.update(
            processed_at=_time(decided["processed_at"]),
            updated_at=_time(decided["processed_at"]),
            device_id=decided["device_id"],
            reason=decided["reason"],
            responder_ip=decided["responder_ip"],
        )
    return ApprovalRequest(**data)


class RedisStore:
    """The emulator's :class:`~.store.Store` on Redis (see the module docstring). The
    client must decode responses (``decode_responses=True``), as `from_url` makes it."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.prefix = f"push2fa:emulator:{namespace}:"
        self._create_user = redis.register_script(_CREATE_USER)
        self._register_device = redis.register_script(_REGISTER_DEVICE)
        self._delete_user = redis.register_script(_DELETE_USER)
        self._accept_totp_step = redis.register_script(_ACCEPT_TOTP_STEP)
        self._decide_request = redis.register_script(_DECIDE_REQUEST)

    @classmethod
    def from_url(cls, url: str, namespace: str) -> RedisStore:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url, decode_responses=True), namespace)

    async def aclose(self) -> None:
        await self.redis.aclose()

    def _key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    @staticmethod
    def _new_authy_id() -> int:
        # Random, not a counter: a Redis emptied by a restart without persistence must not
        # hand an id the app still holds to somebody else.
        while True:
            candidate = 10_000_000 + secrets.randbelow(90_000_000)
            if candidate != TEST_CALLBACK_AUTHY_ID:
                return candidate

    # --- users ---------------------------------------------------------------------

    async def create_user(
        self, email: str, cellphone: str, country_code: int, now: datetime
    ) -> User:
        for _ in range(_NEW_ID_ATTEMPTS):
            user = User(
                authy_id=self._new_authy_id(),
                object_id=new_object_id(),
                created_at=now,
                email=email,
                cellphone=cellphone,
                country_code=country_code,
            )
            outcome, raw = await self._create_user(
                keys=[
                    self._key("phone", country_code, cellphone),
                    self._key("user", user.authy_id),
                ],
                args=[user.authy_id, _user_json(user), self.prefix],
            )
            if int(outcome) != 2:
                return _user(raw)
        raise RuntimeError("no free authy_id found")

    async def get_user(self, authy_id: int) -> User | None:
        raw = await self.redis.get(self._key("user", authy_id))
        return None if raw is None else _user(str(raw))

    async def delete_user(self, authy_id: int) -> bool:
        deleted = await self._delete_user(
            keys=[self._key("user", authy_id)], args=[self.prefix, authy_id]
        )
        return bool(int(deleted))

    async def register_device(
        self, custom_user_id: str, registration_ip: str, now: datetime
    ) -> tuple[User, Device]:
        for _ in range(_NEW_ID_ATTEMPTS):
            user = User(
                authy_id=self._new_authy_id(),
                object_id=new_object_id(),
                created_at=now,
                custom_user_id=custom_user_id,
            )
            device = Device(
                id=1_000_000 + secrets.randbelow(9_000_000),
                authy_id=user.authy_id,
                totp_secret=totp.new_secret(),
                registered_at=now,
                registration_ip=registration_ip,
            )
            outcome, raw_user, raw_device = await self._register_device(
                keys=[
                    self._key("registration", custom_user_id),
                    self._key("user", user.authy_id),
                    self._key("device", device.id),
                    self._key("devices", user.authy_id),
                ],
                args=[
                    user.authy_id,
                    _user_json(user),
                    device.id,
                    _device_json(device),
                    self.prefix,
                ],
            )
            if int(outcome) != 2:
                registered_id = json.loads(raw_device)["id"]
                step = await self.redis.get(self._key("totp", registered_id))
                return _user(raw_user), _device(raw_device, step)
        raise RuntimeError("no free authy_id or device id found")

    async def registration_status(self, custom_user_id: str) -> int | None:
        raw = await self.redis.get(self._key("registration", custom_user_id))
        return None if raw is None else int(raw)

    # --- devices -------------------------------------------------------------------

    async def get_device(self, device_id: int) -> Device | None:
        raw, step = await self.redis.mget(
            self._key("device", device_id), self._key("totp", device_id)
        )
        return None if raw is None else _device(str(raw), step)

    async def devices_for(self, authy_id: int) -> list[Device]:
        ids = await self.redis.lrange(self._key("devices", authy_id), 0, -1)
        devices = [await self.get_device(int(device_id)) for device_id in ids]
        return [device for device in devices if device is not None]

    async def accept_totp_step(self, device_id: int, step: int) -> bool:
        accepted = await self._accept_totp_step(
            keys=[self._key("totp", device_id), self._key("device", device_id)], args=[step]
        )
        return bool(int(accepted))

    # --- approval requests -----------------------------------------------------------

    async def create_request(
        self, authy_id: int, new: NewApprovalRequest, now: datetime
    ) -> ApprovalRequest:
        request = build_request(authy_id, new, now)
        expires_at = request.expires_at
        key = self._key("request", request.uuid)
        created = now.timestamp()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "record": _request_record(request),
                    "status": "pending",
                    "expires_ts": "" if expires_at is None else repr(expires_at.timestamp()),
                },
            )
            if expires_at is not None:  # answered or not, it goes after the retention time
                pipe.expireat(key, int(expires_at.timestamp()) + RETENTION_SECONDS)
            pipe.zadd(self._key("pending", authy_id), {request.uuid: created})
            pipe.zadd(self._key("requests", authy_id), {request.uuid: created})
            pipe.zremrangebyscore(
                self._key("requests", authy_id), "-inf", created - 2 * RETENTION_SECONDS
            )
            await pipe.execute()
        return request

    async def get_request(self, request_uuid: str) -> ApprovalRequest | None:
        fields = await self.redis.hgetall(self._key("request", request_uuid))
        return _request(cast(dict[str, str], fields)) if fields else None

    async def decide_request(
        self,
        request_uuid: str,
        status: Decision,
        *,
        device_id: int,
        reason: str | None,
        responder_ip: str | None,
        now: datetime,
    ) -> bool:
        request = await self.get_request(request_uuid)
        if request is None:
            return False
        decision = json.dumps(
            {
                "processed_at": _iso(now),
                "device_id": device_id,
                "reason": reason,
                "responder_ip": responder_ip,
            }
        )
        won = await self._decide_request(
            keys=[self._key("request", request_uuid), self._key("pending", request.authy_id)],
            args=[status, decision, repr(now.timestamp()), request_uuid, RETENTION_SECONDS],
        )
        return bool(int(won))

    async def pending_requests_for(self, authy_id: int, now: datetime) -> list[ApprovalRequest]:
        key = self._key("pending", authy_id)
        pending: list[ApprovalRequest] = []
        for request_uuid in cast(list[str], await self.redis.zrange(key, 0, -1)):
            request = await self.get_request(request_uuid)
            if request is None:  # gone after its retention time
                await self.redis.zrem(key, request_uuid)
            elif request.status_at(now) == "pending":
                pending.append(request)
        return pending


def store_for(url: str, namespace: str) -> Store | None:
    """The store a setting asks for: Redis for a ``redis://`` URL, None (the emulator's
    in-memory default) for an empty one."""
    if not url:
        return None
    return cast(Store, RedisStore.from_url(url, namespace))
