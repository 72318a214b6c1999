import CoreMetrics
import Engine
import Foundation
import Prometheus
import Relay

/// The server's metrics for `GET /metrics`: swift-metrics types whose handlers come from a
/// swift-prometheus registry of this server's own (no global bootstrap, so tests and several
/// servers in one process keep theirs apart); the registry writes Prometheus' text format.
final class Metrics: @unchecked Sendable {
    static let buckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
    /// Each metric's `# HELP` text; the registry wants the same one every time a name is made.
    static let help = [
        "relay_requests_total": "HTTP requests by endpoint and status.",
        "relay_request_duration_seconds": "Request latency by endpoint.",
        "relay_generated_tokens_total": "Generated tokens by the model responsible for them.",
        "relay_prompt_tokens_total": "Prompt tokens of finished generations.",
        "relay_cancelled_total": "Generations stopped because the client went away.",
        "relay_large_failures_total": "Generations finished on the small model after the large one failed.",
        "relay_time_to_first_token_seconds": "Time from request to first streamed text.",
        "relay_forwards_total": "Forwards run; several slots' rows may share one.",
        "relay_forward_rows_total": "Rows (one sequence's positions) in those forwards.",
        "relay_forward_positions_total": "Positions (tokens) in those forwards.",
        "relay_queue_depth": "Requests waiting for a slot.",
        "relay_slots_busy": "Slots generating.",
        "relay_slots": "Parallel slots (-np).",
        "relay_connections_total": "Connections accepted.",
        "relay_connections_refused_total": "Connections closed at once: --max-connections were open.",
        "relay_connections_open": "Open connections.",
    ]

    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private var tokens: [Role: CoreMetrics.Counter] = [:]
    private var promptTokens, cancelledCount, largeFailures, connections, refusedConnections: CoreMetrics.Counter!
    private var forwards, forwardRows, forwardPositions: CoreMetrics.Counter!
    private var firstToken: CoreMetrics.Timer!
    private var queueDepth, slotsBusy, slots, connectionsOpen: Meter!
    /// The engine's forward totals already counted (they are process-wide, read at each render).
    private var counted = (forwards: 0, rows: 0, positions: 0)
    private let lock = NSLock()

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
        for role in Role.allCases { tokens[role] = counter("relay_generated_tokens_total", [("model", role.rawValue)]) }
        promptTokens = counter("relay_prompt_tokens_total")
        cancelledCount = counter("relay_cancelled_total")
        largeFailures = counter("relay_large_failures_total")
        forwards = counter("relay_forwards_total")
        forwardRows = counter("relay_forward_rows_total")
        forwardPositions = counter("relay_forward_positions_total")
        connections = counter("relay_connections_total")
        refusedConnections = counter("relay_connections_refused_total")
        firstToken = timer("relay_time_to_first_token_seconds")
        queueDepth = meter("relay_queue_depth")
        slotsBusy = meter("relay_slots_busy")
        slots = meter("relay_slots")
        connectionsOpen = meter("relay_connections_open")
    }

    private func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: name, dimensions: labels, handler: registry.makeCounter(name: name, labels: labels, help: Self.help[name]!), factory: factory)
    }

    private func timer(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Timer {
        let buckets = Self.buckets.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        return CoreMetrics.Timer(label: name, dimensions: labels,
                                 handler: registry.makeDurationHistogram(name: name, labels: labels, buckets: buckets, help: Self.help[name]!), factory: factory)
    }

    private func meter(_ name: String) -> Meter {
        Meter(label: name, dimensions: [], handler: registry.makeGauge(name: name, labels: [], help: Self.help[name]!), factory: factory)
    }

    func request(endpoint: String, status: Int, seconds: Double) {
        counter("relay_requests_total", [("endpoint", endpoint), ("status", "\(status)")]).increment()
        timer("relay_request_duration_seconds", [("endpoint", endpoint)]).recordNanoseconds(Int64(seconds * 1e9))
    }

    func generated(_ result: RelayResult) {
        for (role, n) in result.tokensByRole { tokens[role]?.increment(by: n) }
        promptTokens.increment(by: result.promptTokens)
        if result.largeFailure != nil { largeFailures.increment() }
    }

    func timeToFirstToken(_ seconds: Double) { firstToken.recordNanoseconds(Int64(seconds * 1e9)) }
    func cancelled() { cancelledCount.increment() }
    func connection(admitted: Bool) { (admitted ? connections : refusedConnections).increment() }

    func render(queueDepth depth: Int, busySlots: Int, slots count: Int, openConnections: Int = 0) -> String {
        lock.withLock {
            let totals = Batcher.totals
            forwards.increment(by: totals.forwards - counted.forwards)
            forwardRows.increment(by: totals.rows - counted.rows)
            forwardPositions.increment(by: totals.positions - counted.positions)
            counted = totals
        }
        queueDepth.set(depth)
        slotsBusy.set(busySlots)
        slots.set(count)
        connectionsOpen.set(openConnections)
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
