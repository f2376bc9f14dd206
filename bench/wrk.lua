-- wrk script for bench/run. Environment:
--   BENCH_MODE   get_id | mail | other_mail | invite | ceiling_get | ceiling_post
--   BENCH_TOKEN  bearer token (sent in every mode, ceilings included, so the client does the same work)
--   BENCH_KEYS   file of "id<TAB>mail<TAB>otherMail" lines (the read modes pick one at random per request)
--   BENCH_NONCE  makes invitation addresses unique across runs against the same database
-- done() prints one line "BENCHJSON {...}" that bench/run parses.

local mode = os.getenv("BENCH_MODE") or "get_id"
local token = os.getenv("BENCH_TOKEN") or ""
local keys_path = os.getenv("BENCH_KEYS")
local nonce = os.getenv("BENCH_NONCE") or tostring(os.time())

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  table.insert(threads, thread)
end

local function encode(s)
  return (s:gsub("[^%w%-%._~/(),:]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local ids, mails, others = {}, {}, {}
local count = 0
local seq = 0
local headers

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
  headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" }
  if mode == "invite" or mode == "ceiling_post" then
    headers["Content-Type"] = "application/json"
  end
  if keys_path and mode ~= "invite" and mode ~= "ceiling_post" then
    for line in io.lines(keys_path) do
      local id, mail, other = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
      if id then
        count = count + 1
        ids[count] = id
        mails[count] = encode("mail eq '" .. mail .. "'")
        others[count] = encode("otherMails/any(x:x eq '" .. other .. "')")
      end
    end
    if count == 0 then
      error("no keys in " .. keys_path)
    end
  end
end

function request()
  seq = seq + 1
  if mode == "invite" or mode == "ceiling_post" then
    local body = string.format(
      '{"invitedUserEmailAddress":"bench-%s-%d-%d@invitee%d.example","inviteRedirectUrl":"https://myapps.microsoft.com"}',
      nonce, tid or 0, seq, seq % 97)
    local path = (mode == "invite") and "/v1.0/invitations" or "/ceiling"
    return wrk.format("POST", path, headers, body)
  end
  local i = math.random(count > 0 and count or 1)
  if mode == "get_id" then
    return wrk.format("GET", "/v1.0/users/" .. ids[i], headers)
  elseif mode == "mail" then
    return wrk.format("GET", "/v1.0/users?$filter=" .. mails[i], headers)
  elseif mode == "other_mail" then
    return wrk.format("GET", "/v1.0/users?$filter=" .. others[i], headers)
  else -- ceiling_get: same per-request client work as get_id
    return wrk.format("GET", "/ceiling?id=" .. (ids[i] or "x"), headers)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
