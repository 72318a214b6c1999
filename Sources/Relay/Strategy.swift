import Engine
import Foundation

/// Which model of the pair is responsible for a piece of the answer.
public enum Role: String, Codable, Sendable, CaseIterable {
    case large, small
}

/// What one step of a strategy appends to the answer, and what else happened in it.
public struct Step: Sendable {
    public var tokens: [Int32]
    public var role: Role
    /// For the statistics `generate` keeps; a strategy that wraps another passes its events on.
    public var events: [StepEvent] = []
    /// One entry per token, when the strategy was asked for log-probabilities and can give them.
    public var logprobs: [TokenLogprob]?
    /// The step wrote all that `step(context:atMost:)` asked for: a remote model wrote up to that
    /// many of its own tokens, which the local tokenizer may count differently.
    public var fulfilsLimit = false
    public init(tokens: [Int32], role: Role, logprobs: [TokenLogprob]? = nil, events: [StepEvent] = []) {
        self.tokens = tokens
        self.role = role
        self.logprobs = logprobs
        self.events = events
    }
}

/// What a step did besides writing tokens.
public enum StepEvent: Sendable, Equatable {
    /// The small model drafted this many tokens and the large model accepted that many.
    case drafted(Int, accepted: Int)
    /// The other model writes from here on.
    case handover
    /// The small model called the large one for at most this many tokens (RelayLLM); the large
    /// model's tokens from here to the next call are the call's.
    case called(Int)
    /// Requests made to a remote large model.
    case remote(RemoteStats)
    /// The large model failed; the small model writes the rest.
    case largeFailed(String)
}

/// A chosen token's log-probability under the model's raw distribution (log-softmax of the
/// logits, before sampling settings, as OpenAI reports it) and the most likely alternatives.
public struct TokenLogprob: Sendable, Equatable {
    public struct Alternative: Sendable, Equatable {
        public var token: Int32
        public var logprob: Float
    }
    public var token: Int32
    public var logprob: Float
    public var top: [Alternative]

    public init(token: Int32, logits: UnsafeBufferPointer<Float>, top n: Int) {
        var maxLogit = -Float.infinity
        for l in logits { maxLogit = max(maxLogit, l) }
        var sum: Float = 0
        for l in logits { sum += expf(l - maxLogit) }
        let logZ = maxLogit + logf(sum)
        self.token = token
        logprob = logits[Int(token)] - logZ
        // The n largest logits, kept sorted in a short array (n is at most 20).
        var best: [Alternative] = []
        if n > 0 {
            for (i, l) in logits.enumerated() where best.count < n || l > best[best.count - 1].logprob {
                let a = Alternative(token: Int32(i), logprob: l)
                best.insert(a, at: best.firstIndex { $0.logprob < l } ?? best.count)
                if best.count > n { best.removeLast() }
            }
        }
        top = best.map { Alternative(token: $0.token, logprob: $0.logprob - logZ) }
    }
}

/// The contract every decoding strategy implements: given the whole context (prompt and answer so
/// far), append at least one token. The generation loop owns stop conditions, streaming and the
/// statistics, which it adds up from each step's tokens and events.
public protocol DecodingStrategy: AnyObject {
    func step(context: [Int32]) throws -> Step
    /// A step after which at most `limit` more tokens are wanted. Only strategies that write many
    /// tokens per step (a remote model's chunk) need it: they ask for no more than that.
    func step(context: [Int32], atMost limit: Int) throws -> Step
    /// The sessions of the models this strategy uses, for timings.
    var sessions: [Role: Session] { get }
}

/// One call of the large model: the tokens asked for (after clamping) and the tokens it wrote.
public struct LargeCall: Sendable, Equatable, Codable {
    public var requested: Int
    public var written: Int
    public init(requested: Int, written: Int) {
        self.requested = requested
        self.written = written
    }
}

public extension DecodingStrategy {
    func step(context: [Int32], atMost limit: Int) throws -> Step { try step(context: context) }
}

/// One model alone, one token per forward: the `large` and `small` baselines.
public final class Solo: DecodingStrategy {
    public let session: Session
    public let role: Role
    var sampler: Sampler
    /// When set, each step also reports the token's log-probability and this many alternatives.
    public var topLogprobs: Int?
    /// When set, each step records the top-1 probability of the distribution it sampled from.
    public var tracksConfidence = false
    public private(set) var confidence: Float = 1

    public init(session: Session, role: Role, sampling: SamplingParams) {
        self.session = session
        self.role = role
        sampler = Sampler(sampling)
    }

    public var sessions: [Role: Session] { [role: session] }

    public func step(context: [Int32]) throws -> Step { try step(context: context, vocabulary: nil) }

    /// A step choosing among the first `vocabulary` token ids only (nil: all of them).
    public func step(context: [Int32], vocabulary: Int?) throws -> Step {
        let logits = try session.sync(to: context, vocabulary: vocabulary)
        return logits.withUnsafeBufferPointer { l in
            if tracksConfidence { confidence = topProbability(l) }
            let token = sampler.sample(l, history: context)
            return Step(tokens: [token], role: role, logprobs: topLogprobs.map { [TokenLogprob(token: token, logits: l, top: $0)] })
        }
    }
}
