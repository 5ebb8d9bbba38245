-- wrk script for benchmarks/webhook.py: signed WeChat text messages, a unique MsgId each, from a pool
-- of users, until this thread has had its share of answers.
--
--   wrk -t1 -c64 -d600s -s benchmarks/webhook.lua URL -- QUERY USERS FIRST_MSGID COUNT
--
-- COUNT is answers per wrk thread.
-- QUERY is a signed query string (signature, timestamp, nonce). In plaintext mode WeChat's signature
-- covers only token, timestamp and nonce, so one valid signature carries any number of bodies.
-- Each thread writes "done" when it has COUNT answers; the driver then stops wrk with SIGINT
-- (wrk itself only stops after -d). done() prints one line the driver reads.

local query, users, first_id, quota
local sent, answered = 0, 0
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   query = args[1]
   users = tonumber(args[2])
   first_id = tonumber(args[3]) + wrk.thread:get("id") * 100000000
   quota = tonumber(args[4])
end

function request()
   local user = "o_bench_" .. (sent % users)
   local body = "<xml><ToUserName><![CDATA[gh_benchmark]]></ToUserName><FromUserName><![CDATA[" .. user ..
      "]]></FromUserName><CreateTime>" .. os.time() .. "</CreateTime><MsgType><![CDATA[text]]></MsgType>" ..
      "<Content><![CDATA[帮助]]></Content><MsgId>" .. (first_id + sent) .. "</MsgId></xml>"
   sent = sent + 1
   return wrk.format("POST", "/wechat?" .. query .. "&openid=" .. user, {["Content-Type"] = "text/xml"}, body)
end

function response(status, headers, body)
   answered = answered + 1
   if answered == quota then
      io.write("done\n")
      io.flush()
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format("figures %d %d %d %d %d\n", summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      errors.status + errors.connect + errors.read + errors.write + errors.timeout))
end
