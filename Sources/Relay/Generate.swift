import Engine
import Foundation

public struct GenerationOptions: Sendable {
    public var maxTokens: Int = -1               // -1: until end of text or a full context
    public var sampling = SamplingParams()
    public var stop: [String] = []
    /// Checked between steps and before each piece of text: once cancelled, the generation ends
    /// as if `onText` had returned false. A step blocked on a remote model needs the same
    /// cancellation in `Mode.Settings` to be cut short.
    public var cancellation = Cancellation()
    public init() {}
}

public enum FinishReason: String, Sendable, Codable {
    case stop, length, eos
}

/// A stretch of the answer's text written by one model.
public struct Segment: Sendable, Codable, Equatable {
    public var role: Role
    public var text: String
}

/// What a generation did, added up by `generate` from each step's tokens and events.
public struct Stats: Sendable, Equatable {
    /// Tokens of the answer each model is responsible for.
    public var tokensByRole: [Role: Int] = [:]
    public var drafted = 0
    public var accepted = 0
    public var handovers = 0
    /// Calls of the large model by the small one: tokens asked for and written.
    public var calls: [LargeCall] = []
    /// Requests to a remote large model, when there was one.
    public var remote: RemoteStats?
    /// Why the small model finished the answer (`--on-large-failure small`).
    public var largeFailure: String?

    public init() {}

    mutating func add(_ event: StepEvent) {
        switch event {
        case .drafted(let n, let m): drafted += n; accepted += m
        case .handover: handovers += 1
        case .called(let n): calls.append(LargeCall(requested: n, written: 0))
        case .remote(let r):
            var total = remote ?? RemoteStats()
            total.requests += r.requests
            total.retries += r.retries
            total.seconds += r.seconds
            remote = total
        case .largeFailed(let why): largeFailure = why
        }
    }

    /// One token appended to the answer; the large model's tokens after a call are the call's.
    mutating func count(_ role: Role) {
        tokensByRole[role, default: 0] += 1
        if role == .large, !calls.isEmpty { calls[calls.count - 1].written += 1 }
    }

    public var largeShare: Double {
        let total = tokensByRole.values.reduce(0, +)
        return total > 0 ? Double(tokensByRole[.large] ?? 0) / Double(total) : 0
    }

    /// Tokens asked of the large model, over all calls.
    public var requested: Int { calls.reduce(0) { $0 + $1.requested } }

    public var acceptanceRate: Double? { drafted > 0 ? Double(accepted) / Double(drafted) : nil }
}

/// A generation's answer, with its statistics (`result.calls` reads `result.stats.calls`).
@dynamicMemberLookup
public struct RelayResult: Sendable {
    public var text: String
    public var segments: [Segment]
    public var tokens: [Int32]
    public var promptTokens: Int
    public var finishReason: FinishReason
    /// The model responsible for each token of `tokens`.
    public var roles: [Role]
    public var stats: Stats
    public var prefillSeconds: [Role: Double]
    public var decodeSeconds: [Role: Double]
    /// Wall time, prefill included.
    public var seconds: Double
    /// One entry per token of `tokens`, when the strategy gave log-probabilities.
    public var logprobs: [TokenLogprob]?

    public subscript<T>(dynamicMember path: KeyPath<Stats, T>) -> T { stats[keyPath: path] }

    /// RelayLLM's ρ: the share of the answer requested from the large model,
    /// min(Σ min(n_i, 4096) / L, 1) with L the generated length.
    public var rho: Double { Reward.rho(requested: stats.calls.map(\.requested), length: tokens.count) }

    /// The answer as a user sees it: relay tags removed.
    public var answer: String { RelayTag.strip(text) }
}

/// The generation loop shared by every strategy: step, stop at end of text, a stop string, the
/// token budget or a full context, and stream text with the role that wrote it.
/// `onText` gets each piece of text with the log-probabilities (when the strategy gives them) of
/// the tokens read since the last piece, and returns false to stop early; so does a cancel of
/// `options.cancellation`, also while a step is running (the step's error is then dropped).
public func generate(_ strategy: DecodingStrategy, prompt: [Int32], tokenizer: Tokenizer, contextSize: Int,
                     options: GenerationOptions, onText: (String, Role, ArraySlice<TokenLogprob>) -> Bool = { _, _, _ in true }) throws -> RelayResult {
    let start = Date()
    for s in strategy.sessions.values { s.resetTimings() }
    defer { for s in strategy.sessions.values { s.model.batcher.finished(s.cache) } }
    guard prompt.count < contextSize else {
        throw ModelError.contextOverflow(needed: prompt.count + 1, contextSize: contextSize)
    }
    var stream = TextStream(tokenizer: tokenizer, stops: options.stop)
    var context = prompt
    var segments: [Segment] = []
    var stats = Stats()
    var roles: [Role] = []
    var logprobs: [TokenLogprob] = []
    var finish = FinishReason.length
    let budget = options.maxTokens < 0 ? Int.max : options.maxTokens

    var logprobsSent = 0
    func emit(_ text: String, _ role: Role) -> Bool {
        guard !text.isEmpty else { return true }
        if let last = segments.last, last.role == role { segments[segments.count - 1].text += text } else { segments.append(Segment(role: role, text: text)) }
        defer { logprobsSent = logprobs.count }
        return !options.cancellation.isCancelled && onText(text, role, logprobs[logprobsSent...])
    }

    loop: while context.count - prompt.count < budget && context.count < contextSize {
        if options.cancellation.isCancelled { finish = .stop; break }
        let step: Step
        do {
            // A cancel also drops what the step has queued on the models (the rest of a long prompt).
            step = try options.cancellation.onCancel({ for s in strategy.sessions.values { s.model.batcher.abandon(s.cache) } }) {
                try strategy.step(context: context, atMost: min(budget - (context.count - prompt.count), contextSize - context.count))
            }
        } catch where options.cancellation.isCancelled {
            finish = .stop
            break
        }
        if context.count == prompt.count { for s in strategy.sessions.values { s.promptDone() } }
        for event in step.events { stats.add(event) }
        for (i, token) in step.tokens.enumerated() {
            if tokenizer.endOfGeneration.contains(token) { finish = .eos; break loop }
            context.append(token)
            if let l = step.logprobs, i < l.count { logprobs.append(l[i]) }
            stats.count(step.role)
            roles.append(step.role)
            if !emit(stream.push(token), step.role) { finish = .stop; break loop }
            if stream.stopped { finish = .stop; break loop }
            if context.count - prompt.count >= budget || context.count >= contextSize { break loop }
        }
    }
    _ = emit(stream.finish(), segments.last?.role ?? .large)

    var prefill: [Role: Double] = [:], decode: [Role: Double] = [:]
    for (role, s) in strategy.sessions {
        prefill[role] = s.prefillSeconds
        decode[role] = s.decodeSeconds
    }
    return RelayResult(text: stream.text, segments: segments, tokens: Array(context[prompt.count...]), promptTokens: prompt.count,
                       finishReason: finish, roles: roles, stats: stats, prefillSeconds: prefill, decodeSeconds: decode,
                       seconds: Date().timeIntervalSince(start), logprobs: logprobs.count == context.count - prompt.count && !logprobs.isEmpty ? logprobs : nil)
}
