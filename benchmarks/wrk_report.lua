-- Print wrk's result as one JSON line: requests, errors, seconds, p50/p99 in microseconds.
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "errors": %d, "seconds": %.6f, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, errors, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99)))
end
