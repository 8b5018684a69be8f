"""The Redis limiter: every API process and machine shares exact counters.

Each reservation is one Lua script, so checking and taking from all of a request's buckets is
atomic; time comes from the Redis server's clock, so processes with skewed clocks agree.
"""

from __future__ import annotations

from redis.asyncio import Redis

from tokenmill.admission.buckets import Bucket, Verdict, state_after, wait_for

PREFIX = "tokenmill:limit:"

# KEYS: bucket keys. ARGV: per bucket capacity, drain per ms, cost.
# Returns {1, use after, ...} or {0, index of the refusing bucket, its use now}.
_RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = {}
for i = 1, #KEYS do
  local cap, rate, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local h = redis.call('HMGET', KEYS[i], 'u', 't')
  local u = tonumber(h[1]) or 0
  if rate > 0 and h[2] then u = math.max(0, u - (now - tonumber(h[2])) * rate) end
  if u + cost > cap then return {0, i, tostring(u)} end
  used[i] = u
end
local out = {1}
for i = 1, #KEYS do
  local cap, rate, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local u = used[i] + cost
  redis.call('HSET', KEYS[i], 'u', tostring(u), 't', now)
  if rate > 0 then redis.call('PEXPIRE', KEYS[i], math.ceil(u / rate) + 1000) end
  out[#out + 1] = tostring(u)
end
return out
"""

# KEYS: bucket keys. ARGV: per bucket drain per ms, amount to give back.
_REFUND = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local rate, amount = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  local h = redis.call('HMGET', KEYS[i], 'u', 't')
  if h[1] then
    local u = tonumber(h[1])
    if rate > 0 and h[2] then u = math.max(0, u - (now - tonumber(h[2])) * rate) end
    u = math.max(0, u - amount)
    redis.call('HSET', KEYS[i], 'u', tostring(u), 't', now)
  end
end
return 1
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url)
        self._reserve = self.redis.register_script(_RESERVE)
        self._refund = self.redis.register_script(_REFUND)

    async def reserve(self, buckets: list[Bucket]) -> Verdict:
        args: list[float | int] = []
        for b in buckets:
            args += [b.capacity, b.rate_per_s / 1000.0, b.cost]
        reply = await self._reserve(keys=[PREFIX + b.key for b in buckets], args=args)
        if int(reply[0]) == 0:
            bucket = buckets[int(reply[1]) - 1]
            used = float(reply[2])
            return Verdict(False, [], bucket, wait_for(used, bucket))
        return Verdict(True, [state_after(float(u), b) for b, u in zip(buckets, reply[1:])])

    async def refund(self, buckets: list[Bucket], amounts: list[int]) -> None:
        pairs = [(b, a) for b, a in zip(buckets, amounts) if a > 0]
        if not pairs:
            return
        args: list[float | int] = []
        for b, amount in pairs:
            args += [b.rate_per_s / 1000.0, amount]
        await self._refund(keys=[PREFIX + b.key for b, _ in pairs], args=args)

    async def seed(self, key: str, used: int) -> None:
        """Start a budget bucket at what the ledger says was spent, unless Redis already tracks it."""
        await self.redis.hsetnx(PREFIX + key, "u", str(used))

    async def close(self) -> None:
        await self.redis.aclose()

