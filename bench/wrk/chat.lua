-- wrk script: POST a chat completion, JSON or streamed, with an AI Pipe token.
-- Environment: BENCH_TOKEN (sent as "Authorization: Bearer ..."), BENCH_STREAM=1 for a stream.
-- At the end it prints one line "BENCH_JSON {...}" that bench/run.py reads.
local token = os.getenv("BENCH_TOKEN") or "sk-bench"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
  .. '{"role":"user","content":"Say hello in twenty words."}],"max_tokens":64'
  .. (stream and ',"stream":true' or '') .. '}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
