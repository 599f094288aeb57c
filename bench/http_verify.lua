-- wrk script of bench/http_vs_grpc.sh: POSTs the Verify requests of a file written by
-- `srn-loadgen --http_requests_out` (one per line: path, a tab, the JSON body), cycling through
-- them, and counts the responses that are not 200.
--   wrk -c N -d S -s bench/http_verify.lua http://127.0.0.1:PORT -- REQUESTS_FILE
local requests = {}
local next_request = 1

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the requests file " .. tostring(args[1]))
  for line in file:lines() do
    local path, body = line:match("^([^\t]+)\t(.+)$")
    if path then
      requests[#requests + 1] = wrk.format("POST", path,
          {["Content-Type"] = "application/json"}, body)
    end
  end
  file:close()
  assert(#requests > 0, "no requests in " .. args[1])
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

local failed = 0
function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    if failed == 1 then io.stderr:write("first failure: ", status, " ", body, "\n") end
  end
end

function done(summary, latency, requests)
  io.write(string.format("HTTP_RESULT requests=%d seconds=%.3f non2xx=%d p50_ms=%.2f p99_ms=%.2f\n",
      summary.requests, summary.duration / 1e6,
      summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
