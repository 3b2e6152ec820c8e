-- wrk script for scripts/loadtest.py: POST /v1/sentiment with a distinct short
-- text every request (no result-cache hits), paced per connection by delay().
-- Args after "--": <delay between requests of one connection, ms> <connections>.
local subjects = {"the support", "your app", "the refund", "checkout", "the update",
                  "the delivery", "this invoice", "the new release"}
local verdicts = {"was great", "is broken again", "took forever", "works fine",
                  "made my day", "is a mess", "was okay I guess", "saved me hours"}
local counter = 0
local pause = 0
local connections = 0
local threads = {}
local calls = 0
local keys = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  pause = tonumber(args[1]) or 0
  connections = tonumber(args[2]) or 0
  math.randomseed(os.time() + thread_id)
  wrk.method = "POST"
  for key in string.gmatch(os.getenv("TONEHUB_KEYS"), "[^,]+") do
    table.insert(keys, key)
  end
end


function delay()
  -- The first request of each connection goes at once: gunicorn's gthread
  -- worker holds a thread for up to 5 s waiting for a new connection's first
  -- bytes, which would measure wrk's pacing, not the service. wrk asks for
  -- one delay per connection before its first request.
  calls = calls + 1
  if calls <= connections then
    return 0
  end
  -- Jitter, so that connections opened together do not fire in waves.
  return math.floor(pause * (0.5 + math.random()))
end

function request()
  counter = counter + 1
  local text = string.format("%s %s, ticket %d-%d", subjects[counter % #subjects + 1],
    verdicts[(counter * 7) % #verdicts + 1], thread_id, counter)
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. keys[counter % #keys + 1]}
  return wrk.format(nil, nil, headers, '{"text": "' .. text .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, ' ..
    '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
