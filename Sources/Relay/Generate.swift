import Engine
import Foundation

public struct GenerationOptions: Sendable {
    public var maxTokens: Int = -1               // -1: until end of text or a full context
    public var sampling = SamplingParams()
    public var stop: [String] = []
    /// Checked between steps and before each piece of text: once cancelled, the generation ends
    /// as if `onText` had returned false. A step blocked on a remote model needs the same
    /// cancellation in `Modes.Settings` to be cut short.
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

public struct RelayResult: Sendable {
    public var text: String
    public var segments: [Segment]
    public var tokens: [Int32]
    public var promptTokens: Int
    public var finishReason: FinishReason
    /// The model responsible for each token of `tokens`.
    public var roles: [Role]
    /// Tokens of the answer each model is responsible for.
    public var tokensByRole: [Role: Int]
    public var drafted: Int
    public var accepted: Int
    public var handovers: Int
    public var calls: [LargeCall]
    public var prefillSeconds: [Role: Double]
    public var decodeSeconds: [Role: Double]
    /// Wall time, prefill included.
    public var seconds: Double
    public var remote: RemoteStats?
    public var largeFailure: String?
    /// One entry per token of `tokens`, when the strategy gave log-probabilities.
    public var logprobs: [TokenLogprob]?

    public var largeShare: Double {
        let total = tokensByRole.values.reduce(0, +)
        return total > 0 ? Double(tokensByRole[.large] ?? 0) / Double(total) : 0
    }

    /// Tokens asked of the large model, over all calls.
    public var requested: Int { calls.reduce(0) { $0 + $1.requested } }

    /// RelayLLM's ρ: the share of the answer requested from the large model,
    /// min(Σ min(n_i, 4096) / L, 1) with L the generated length.
    public var rho: Double { Reward.rho(requested: calls.map(\.requested), length: tokens.count) }

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
    guard prompt.count < contextSize else {
        throw ModelError.contextOverflow(needed: prompt.count + 1, contextSize: contextSize)
    }
    var stream = TextStream(tokenizer: tokenizer, stops: options.stop)
    var context = prompt
    var segments: [Segment] = []
    var byRole: [Role: Int] = [:]
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
            step = try strategy.step(context: context, atMost: min(budget - (context.count - prompt.count), contextSize - context.count))
        } catch where options.cancellation.isCancelled {
            finish = .stop
            break
        }
        for (i, token) in step.tokens.enumerated() {
            if tokenizer.endOfGeneration.contains(token) { finish = .eos; break loop }
            context.append(token)
            if let l = step.logprobs, i < l.count { logprobs.append(l[i]) }
            byRole[step.role, default: 0] += 1
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
                       finishReason: finish, roles: roles, tokensByRole: byRole, drafted: strategy.drafted, accepted: strategy.accepted,
                       handovers: strategy.handovers, calls: strategy.calls, prefillSeconds: prefill, decodeSeconds: decode,
                       seconds: Date().timeIntervalSince(start), remote: strategy.remoteStats, largeFailure: strategy.largeFailure,
                       logprobs: logprobs.count == context.count - prompt.count && !logprobs.isEmpty ? logprobs : nil)
}
