import Foundation

/// What one generation did, with one set of JSON keys wherever it is reported: `relay generate
/// --json`, the server's `relay` object and each line of `relay eval`'s results.jsonl (which adds
/// its scoring fields). Roles are keyed `large` and `small`.
public struct Telemetry: Codable, Sendable, Equatable {
    /// The mode string, parameters included.
    public var mode: String?
    /// `stop` (end of text or a stop string), `length` (token budget or full context), `eos`.
    public var finishReason: String
    public var promptTokens: Int
    public var generatedTokens: Int
    /// Tokens of the answer each model is responsible for (accepted drafts count as large).
    public var tokens: [String: Int]
    public var largeShare: Double
    public var handovers: Int
    public var drafted: Int
    public var accepted: Int
    /// accepted / drafted; nil when nothing was drafted.
    public var acceptanceRate: Double?
    /// RelayLLM: calls of the large model, tokens they asked for and tokens it wrote, and ρ.
    public var calls: Int
    public var largeTokensRequested: Int
    public var largeTokensWritten: Int
    public var rho: Double
    /// Wall time, prefill included, model loading excluded.
    public var seconds: Double
    public var prefillSeconds: [String: Double]
    public var decodeSeconds: [String: Double]
    /// Generated tokens over `seconds`.
    public var tokensPerSecond: Double?
    /// Prompt tokens over prefill time and generated tokens (the first excluded) over decode time.
    public var prefillTokensPerSecond: Double?
    public var decodeTokensPerSecond: Double?
    public var remote: RemoteStats?
    /// Why the small model finished the answer; then `finishedOn` is `small`.
    public var largeFailure: String?
    public var finishedOn: String?
    public var segments: [Segment]?
    /// The model of every generated token (`relay generate --json`).
    public var tokenRoles: [Role]?

    enum CodingKeys: String, CodingKey {
        case mode, tokens, handovers, drafted, accepted, calls, rho, seconds, remote, segments
        case finishReason = "finish_reason", promptTokens = "prompt_tokens", generatedTokens = "generated_tokens"
        case largeShare = "large_share", acceptanceRate = "acceptance_rate"
        case largeTokensRequested = "large_tokens_requested", largeTokensWritten = "large_tokens_written"
        case prefillSeconds = "prefill_seconds", decodeSeconds = "decode_seconds", tokensPerSecond = "tokens_per_second"
        case prefillTokensPerSecond = "prefill_tokens_per_second", decodeTokensPerSecond = "decode_tokens_per_second"
        case largeFailure = "large_failure", finishedOn = "finished_on", tokenRoles = "token_roles"
        /// What results.jsonl called `large_tokens_requested` before.
        case requested
    }

    public init(_ r: RelayResult, mode: String? = nil, segments: Bool = false, tokenRoles: Bool = false) {
        func keyed<V>(_ d: [Role: V]) -> [String: V] { Dictionary(uniqueKeysWithValues: d.map { ($0.key.rawValue, $0.value) }) }
        let prefill = r.prefillSeconds.values.reduce(0, +), decode = r.decodeSeconds.values.reduce(0, +)
        self.mode = mode
        finishReason = r.finishReason.rawValue
        promptTokens = r.promptTokens
        generatedTokens = r.tokens.count
        tokens = Dictionary(uniqueKeysWithValues: Role.allCases.map { ($0.rawValue, r.stats.tokensByRole[$0] ?? 0) })
        largeShare = r.stats.largeShare
        handovers = r.stats.handovers
        drafted = r.stats.drafted
        accepted = r.stats.accepted
        acceptanceRate = r.stats.acceptanceRate
        calls = r.stats.calls.count
        largeTokensRequested = r.stats.requested
        largeTokensWritten = r.stats.calls.reduce(0) { $0 + $1.written }
        rho = r.rho
        seconds = r.seconds
        prefillSeconds = keyed(r.prefillSeconds)
        decodeSeconds = keyed(r.decodeSeconds)
        tokensPerSecond = r.seconds > 0 ? Double(r.tokens.count) / r.seconds : nil
        prefillTokensPerSecond = prefill > 0 ? Double(r.promptTokens) / prefill : nil
        decodeTokensPerSecond = decode > 0 ? Double(max(r.tokens.count - 1, 0)) / decode : nil
        remote = r.stats.remote
        largeFailure = r.stats.largeFailure
        finishedOn = r.stats.largeFailure == nil ? nil : Role.small.rawValue
        self.segments = segments ? r.segments : nil
        self.tokenRoles = tokenRoles ? r.roles : nil
    }

    /// A generation known only by its token counts and time (as in tests).
    public init(tokens: [String: Int], seconds: Double, finishReason: String = "stop") {
        let total = tokens.values.reduce(0, +)
        self.finishReason = finishReason
        promptTokens = 0
        generatedTokens = total
        self.tokens = tokens
        largeShare = Self.largeShare(tokens)
        (handovers, drafted, accepted, calls, largeTokensRequested, largeTokensWritten, rho) = (0, 0, 0, 0, 0, 0, 0)
        self.seconds = seconds
        (prefillSeconds, decodeSeconds) = ([:], [:])
        tokensPerSecond = seconds > 0 ? Double(total) / seconds : nil
    }

    /// The large model's share of the tokens, for reports that have only the counts.
    static func largeShare(_ tokens: [String: Int]) -> Double {
        let total = tokens.values.reduce(0, +)
        return total > 0 ? Double(tokens[Role.large.rawValue] ?? 0) / Double(total) : 0
    }

    /// Reads also the lines older versions wrote, which lack the keys added since.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? fallback }
        mode = try c.decodeIfPresent(String.self, forKey: .mode)
        tokens = try get(.tokens, [:])
        let total = tokens.values.reduce(0, +)
        finishReason = try get(.finishReason, "")
        promptTokens = try get(.promptTokens, 0)
        generatedTokens = try get(.generatedTokens, total)
        largeShare = try get(.largeShare, Self.largeShare(tokens))
        handovers = try get(.handovers, 0)
        drafted = try get(.drafted, 0)
        accepted = try get(.accepted, 0)
        acceptanceRate = try c.decodeIfPresent(Double.self, forKey: .acceptanceRate)
        calls = try get(.calls, 0)
        largeTokensRequested = try c.decodeIfPresent(Int.self, forKey: .largeTokensRequested) ?? get(.requested, 0)
        largeTokensWritten = try get(.largeTokensWritten, 0)
        rho = try get(.rho, 0)
        seconds = try get(.seconds, 0)
        prefillSeconds = try get(.prefillSeconds, [:])
        decodeSeconds = try get(.decodeSeconds, [:])
        tokensPerSecond = try c.decodeIfPresent(Double.self, forKey: .tokensPerSecond)
        prefillTokensPerSecond = try c.decodeIfPresent(Double.self, forKey: .prefillTokensPerSecond)
        decodeTokensPerSecond = try c.decodeIfPresent(Double.self, forKey: .decodeTokensPerSecond)
        remote = try c.decodeIfPresent(RemoteStats.self, forKey: .remote)
        largeFailure = try c.decodeIfPresent(String.self, forKey: .largeFailure)
        finishedOn = try c.decodeIfPresent(String.self, forKey: .finishedOn)
        segments = try c.decodeIfPresent([Segment].self, forKey: .segments)
        tokenRoles = try c.decodeIfPresent([Role].self, forKey: .tokenRoles)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(mode, forKey: .mode)
        try c.encode(finishReason, forKey: .finishReason)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(generatedTokens, forKey: .generatedTokens)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(largeShare, forKey: .largeShare)
        try c.encode(handovers, forKey: .handovers)
        try c.encode(drafted, forKey: .drafted)
        try c.encode(accepted, forKey: .accepted)
        try c.encode(acceptanceRate, forKey: .acceptanceRate)   // null when nothing was drafted
        try c.encode(calls, forKey: .calls)
        try c.encode(largeTokensRequested, forKey: .largeTokensRequested)
        try c.encode(largeTokensWritten, forKey: .largeTokensWritten)
        try c.encode(rho, forKey: .rho)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(prefillSeconds, forKey: .prefillSeconds)
        try c.encode(decodeSeconds, forKey: .decodeSeconds)
        try c.encodeIfPresent(tokensPerSecond, forKey: .tokensPerSecond)
        try c.encodeIfPresent(prefillTokensPerSecond, forKey: .prefillTokensPerSecond)
        try c.encodeIfPresent(decodeTokensPerSecond, forKey: .decodeTokensPerSecond)
        try c.encodeIfPresent(remote, forKey: .remote)
        try c.encodeIfPresent(largeFailure, forKey: .largeFailure)
        try c.encodeIfPresent(finishedOn, forKey: .finishedOn)
        try c.encodeIfPresent(segments, forKey: .segments)
        try c.encodeIfPresent(tokenRoles, forKey: .tokenRoles)
    }

    /// The one encoder: sorted keys, so that a line reads the same every time.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// What `relay generate` prints on stderr; `engine` (kernels, threads) ends the first line.
    public func summary(engine: String) -> String {
        var s = String(format: "prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | %.2f s | finish: %@ | %@",
                       promptTokens, prefillTokensPerSecond ?? 0, generatedTokens, decodeTokensPerSecond ?? 0, seconds, finishReason, engine)
        let large = tokens[Role.large.rawValue] ?? 0, small = tokens[Role.small.rawValue] ?? 0
        if calls > 0 {
            s += String(format: "\ncalls %d | large model: %d tokens requested, %d written | large share %.1f%% | rho %.3f",
                        calls, largeTokensRequested, large, largeShare * 100, rho)
        }
        if (large > 0 && small > 0) || drafted > 0 {
            s += String(format: "\nlarge %d tokens, small %d tokens (large share %.1f%%) | hand-overs %d | drafted %d, accepted %d (%.1f%%)",
                        large, small, largeShare * 100, handovers, drafted, accepted, (acceptanceRate ?? 0) * 100)
        }
        if let remote {
            s += String(format: "\nremote large model: %d requests, %d retries, %.2f s", remote.requests, remote.retries, remote.seconds)
        }
        if let largeFailure { s += "\nthe small model finished the answer: \(largeFailure)" }
        return s
    }
}
