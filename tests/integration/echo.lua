-- Test script for test_redis_scripts.py: replies with its keys and arguments, in order;
-- raises when its first argument is 'fail'.
if ARGV[1] == 'fail' then
  return redis.error_reply('ERR asked to fail')
end
local out = {}
for _, key in ipairs(KEYS) do out[#out + 1] = key end
for _, arg in ipairs(ARGV) do out[#out + 1] = arg end
return out
