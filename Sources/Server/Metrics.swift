import Engine
import Foundation
import Relay

/// Counters for `GET /metrics`, in Prometheus' text format.
final class Metrics: @unchecked Sendable {
    static let buckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.buckets.count)
        var sum = 0.0
        var total = 0

        mutating func observe(_ v: Double) {
            for (i, b) in Metrics.buckets.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            total += 1
        }
    }

    private let lock = NSLock()
    private var requests: [String: Int] = [:]          // "endpoint|status"
    private var tokens: [Role: Int] = [:]
    private var promptTokens = 0
    private var cancelledCount = 0
    private var largeFailures = 0
    private var latency: [String: Histogram] = [:]     // by endpoint
    private var firstToken = Histogram()
    private var connections = 0
    private var refusedConnections = 0

    func request(endpoint: String, status: Int, seconds: Double) {
        lock.withLock {
            requests["\(endpoint)|\(status)", default: 0] += 1
            latency[endpoint, default: Histogram()].observe(seconds)
        }
    }

    func generated(_ result: RelayResult) {
        lock.withLock {
            for (role, n) in result.tokensByRole { tokens[role, default: 0] += n }
            promptTokens += result.promptTokens
            if result.largeFailure != nil { largeFailures += 1 }
        }
    }

    func timeToFirstToken(_ seconds: Double) { lock.withLock { firstToken.observe(seconds) } }
    func cancelled() { lock.withLock { cancelledCount += 1 } }
    func connection(admitted: Bool) { lock.withLock { if admitted { connections += 1 } else { refusedConnections += 1 } } }

    func render(queueDepth: Int, busySlots: Int, slots: Int, openConnections: Int = 0) -> String {
        lock.withLock {
            var out = ""
            out += "# HELP relay_requests_total HTTP requests by endpoint and status.\n# TYPE relay_requests_total counter\n"
            for key in requests.keys.sorted() {
                let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
                out += "relay_requests_total{endpoint=\"\(parts[0])\",status=\"\(parts[1])\"} \(requests[key]!)\n"
            }
            out += "# HELP relay_generated_tokens_total Generated tokens by the model responsible for them.\n# TYPE relay_generated_tokens_total counter\n"
            for role in Role.allCases { out += "relay_generated_tokens_total{model=\"\(role.rawValue)\"} \(tokens[role] ?? 0)\n" }
            out += "# HELP relay_prompt_tokens_total Prompt tokens of finished generations.\n# TYPE relay_prompt_tokens_total counter\n"
            out += "relay_prompt_tokens_total \(promptTokens)\n"
            out += "# HELP relay_cancelled_total Generations stopped because the client went away.\n# TYPE relay_cancelled_total counter\n"
            out += "relay_cancelled_total \(cancelledCount)\n"
            out += "# HELP relay_large_failures_total Generations finished on the small model after the large one failed.\n# TYPE relay_large_failures_total counter\n"
            out += "relay_large_failures_total \(largeFailures)\n"
            out += "# HELP relay_request_duration_seconds Request latency by endpoint.\n# TYPE relay_request_duration_seconds histogram\n"
            for endpoint in latency.keys.sorted() {
                out += histogram("relay_request_duration_seconds", latency[endpoint]!, label: "endpoint=\"\(endpoint)\",")
            }
            out += "# HELP relay_time_to_first_token_seconds Time from request to first streamed text.\n# TYPE relay_time_to_first_token_seconds histogram\n"
            out += histogram("relay_time_to_first_token_seconds", firstToken, label: "")
            let batches = Batcher.totals
            out += "# HELP relay_forwards_total Forwards run; several slots' rows may share one.\n# TYPE relay_forwards_total counter\n"
            out += "relay_forwards_total \(batches.forwards)\n"
            out += "# HELP relay_forward_rows_total Rows (one sequence's positions) in those forwards.\n# TYPE relay_forward_rows_total counter\n"
            out += "relay_forward_rows_total \(batches.rows)\n"
            out += "# HELP relay_forward_positions_total Positions (tokens) in those forwards.\n# TYPE relay_forward_positions_total counter\n"
            out += "relay_forward_positions_total \(batches.positions)\n"
            out += "# HELP relay_queue_depth Requests waiting for a slot.\n# TYPE relay_queue_depth gauge\nrelay_queue_depth \(queueDepth)\n"
            out += "# HELP relay_slots_busy Slots generating.\n# TYPE relay_slots_busy gauge\nrelay_slots_busy \(busySlots)\n"
            out += "# HELP relay_slots Parallel slots (-np).\n# TYPE relay_slots gauge\nrelay_slots \(slots)\n"
            out += "# HELP relay_connections_total Connections accepted.\n# TYPE relay_connections_total counter\nrelay_connections_total \(connections)\n"
            out += "# HELP relay_connections_refused_total Connections closed at once: --max-connections were open.\n# TYPE relay_connections_refused_total counter\n"
            out += "relay_connections_refused_total \(refusedConnections)\n"
            out += "# HELP relay_connections_open Open connections.\n# TYPE relay_connections_open gauge\nrelay_connections_open \(openConnections)\n"
            return out
        }
    }

    private func histogram(_ name: String, _ h: Histogram, label: String) -> String {
        var out = ""
        for (i, b) in Metrics.buckets.enumerated() { out += "\(name)_bucket{\(label)le=\"\(b)\"} \(h.counts[i])\n" }
        out += "\(name)_bucket{\(label)le=\"+Inf\"} \(h.total)\n"
        let plain = label.isEmpty ? "" : "{\(label.dropLast())}"
        out += "\(name)_sum\(plain) \(h.sum)\n\(name)_count\(plain) \(h.total)\n"
        return out
    }
}
