import Engine
import Foundation

/// A large model reached only through text: "continue this text for at most n tokens, or until one
/// of these stop strings". A remote OpenAI-compatible completions endpoint is one; the text-level
/// modes (`large`, `relaygen`, `relayllm` and the routers) run on it. Implementations must be safe to call from several threads.
public protocol LargeModel: AnyObject, Sendable {
    /// Where the model is, for messages and telemetry.
    var name: String { get }
    /// Blocks until the continuation is there; a cancel of `cancellation` makes it throw
    /// `CancellationError` at once.
    func continuation(of text: String, maxTokens: Int, stop: [String], sampling: SamplingParams, cancellation: Cancellation) throws -> Continuation
}

/// What a large model wrote after a text.
public struct Continuation: Sendable, Equatable {
    /// The new text; when a stop string ended it, the stop string is included (servers cut it).
    public var text: String
    /// The stop string that ended the continuation, if one did.
    public var stop: String?
    /// The model ended its answer (end of text) right after `text`.
    public var ended: Bool
    /// Requests this continuation took, retries included, and their wall time.
    public var requests: Int
    public var retries: Int
    public var seconds: Double

    public init(text: String, stop: String? = nil, ended: Bool, requests: Int = 1, retries: Int = 0, seconds: Double = 0) {
        self.text = text
        self.stop = stop
        self.ended = ended
        self.requests = requests
        self.retries = retries
        self.seconds = seconds
    }
}

/// The large model could not answer: down, timing out after every retry, or answering nonsense.
public enum LargeModelError: Error, CustomStringConvertible {
    /// Not reachable, or overloaded, after every retry (HTTP 503 to our client).
    case unavailable(String)
    /// It answered, but not with a usable completion (HTTP 502 to our client).
    case badResponse(String)

    public var description: String {
        switch self {
        case .unavailable(let m): return "the large model is unavailable: \(m)"
        case .badResponse(let m): return "the large model gave a bad response: \(m)"
        }
    }
}

/// Calls to a remote large model during one generation.
public struct RemoteStats: Sendable, Equatable, Codable {
    public var requests = 0
    public var retries = 0
    public var seconds = 0.0
    public init(requests: Int = 0, retries: Int = 0, seconds: Double = 0) {
        self.requests = requests
        self.retries = retries
        self.seconds = seconds
    }
}

/// The large model's turns through `LargeModel`: each step asks for a chunk of text (ending early
/// at a stop string) and turns it into tokens with the local tokenizer, so the loop, stop strings
/// and RelayGen's hand-over rules work as with a local model. A retried request asks again for the
/// same continuation of the same text, so nothing is lost or duplicated.
///
/// Limits: the text is re-tokenised locally, so token counts are the local tokenizer's.
public final class TextContinuation: DecodingStrategy {
    let model: LargeModel
    let tokenizer: Tokenizer
    let stops: [String]
    let chunk: Int
    var sampling: SamplingParams
    let cancellation: Cancellation

    public init(model: LargeModel, tokenizer: Tokenizer, stops: [String] = [], chunk: Int = 32, sampling: SamplingParams,
                cancellation: Cancellation = Cancellation()) {
        self.model = model
        self.tokenizer = tokenizer
        self.stops = stops
        self.chunk = chunk
        self.sampling = sampling
        self.cancellation = cancellation
    }

    public var sessions: [Role: Session] { [:] }

    public func step(context: [Int32]) throws -> Step { try step(context: context, atMost: chunk) }

    public func step(context: [Int32], atMost limit: Int) throws -> Step {
        // The server adds its own BOS to the text it is sent.
        let text = tokenizer.addBOS && context.first == tokenizer.bosID ? tokenizer.decode(Array(context.dropFirst())) : tokenizer.decode(context)
        let c = try model.continuation(of: text, maxTokens: max(1, min(chunk, limit)), stop: stops, sampling: sampling,
                                       cancellation: cancellation)
        // A new seed per request: the same seed would repeat the same draws in every chunk.
        sampling.seed = sampling.seed.map { $0 &+ 1 }
        var tokens = tokenizer.encode(c.text, addBOS: false, parseSpecial: false)
        if c.ended || tokens.isEmpty {
            guard let end = tokenizer.eotID ?? tokenizer.eosID ?? tokenizer.endOfGeneration.first else {
                throw LargeModelError.badResponse("the local tokenizer has no end-of-text token to mark the end of the answer")
            }
            tokens.append(end)
        }
        var step = Step(tokens: tokens, role: .large,
                        events: [.remote(RemoteStats(requests: c.requests, retries: c.retries, seconds: c.seconds))])
        step.fulfilsLimit = limit <= chunk
        return step
    }
}

/// Runs `primary`; when the large model fails, the small model writes the rest of the answer
/// (`--on-large-failure small`); its first step says why.
public final class SmallFallback: DecodingStrategy {
    let primary: DecodingStrategy
    let small: Solo
    var failed = false

    public init(primary: DecodingStrategy, small: Solo) {
        self.primary = primary
        self.small = small
    }

    public var sessions: [Role: Session] { primary.sessions.merging(small.sessions) { a, _ in a } }

    public func step(context: [Int32]) throws -> Step { try step(context: context, atMost: Int.max) }

    public func step(context: [Int32], atMost limit: Int) throws -> Step {
        guard !failed else { return try small.step(context: context) }
        do { return try primary.step(context: context, atMost: limit) } catch let e as LargeModelError {
            failed = true
            var step = try small.step(context: context)
            step.events.append(.largeFailed(e.description))
            return step
        }
    }
}
