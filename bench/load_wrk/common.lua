-- What get.lua and declare.lua share: thread ids, Accept-Encoding and the header from
-- LOAD_HEADER, the count of answers by status in each thread, and the one-line JSON
-- summary done() prints.
local common = {}
local threads = {}

function common.setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function common.init()
   statuses = {}
   -- As every browser and HTTP library (requests, httpx) sends; a server may ignore it.
   common.headers = {["Accept-Encoding"] = "gzip"}
   local header = os.getenv("LOAD_HEADER")
   if header and header ~= "" then
      local name, value = header:match("^([^:]+):%s*(.*)$")
      common.headers[name] = value
   end
end

function common.response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function common.done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         total[status] = (total[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(total) do
      table.insert(parts, string.format('"%s": %d', status, count))
   end
   local errors = summary.errors
   io.write(string.format(
      'LOAD_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"p50_us": %.0f, "p95_us": %.0f, "p99_us": %.0f, "max_us": %.0f, "mean_us": %.0f, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"statuses": {%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
      latency.mean, errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      table.concat(parts, ", ")
   ))
end

return common
