import Engine

/// Which model of the pair is responsible for a piece of the answer.
public enum Role: String, Codable, Sendable, CaseIterable {
    case large, small
}

/// What one step of a strategy appends to the answer.
public struct Step: Sendable {
    public var tokens: [Int32]
    public var role: Role
    public init(tokens: [Int32], role: Role) {
        self.tokens = tokens
        self.role = role
    }
}

/// The contract every decoding strategy implements: given the whole context (prompt and answer so
/// far), append at least one token. The generation loop owns stop conditions, streaming and the
/// counts of tokens per role; a strategy reports only what it alone knows (drafts, hand-overs).
public protocol DecodingStrategy: AnyObject {
    func step(context: [Int32]) throws -> Step
    /// The sessions of the models this strategy uses, for timings.
    var sessions: [Role: Session] { get }
    /// Draft tokens proposed and accepted, and hand-overs between the models, so far.
    var drafted: Int { get }
    var accepted: Int { get }
    var handovers: Int { get }
    /// Calls to a remote large model, when the large model is remote.
    var remoteStats: RemoteStats? { get }
    /// Why the large model's part was given to the small model (`--on-large-failure small`).
    var largeFailure: String? { get }
}

public extension DecodingStrategy {
    var drafted: Int { 0 }
    var accepted: Int { 0 }
    var handovers: Int { 0 }
    var remoteStats: RemoteStats? { nil }
    var largeFailure: String? { nil }
}

/// One model alone, one token per forward: the `large` and `small` baselines.
public final class Solo: DecodingStrategy {
    public let session: Session
    public let role: Role
    var sampler: Sampler

    public init(session: Session, role: Role, sampling: SamplingParams) {
        self.session = session
        self.role = role
        sampler = Sampler(sampling)
    }

    public var sessions: [Role: Session] { [role: session] }

    public func step(context: [Int32]) throws -> Step {
        let logits = try session.sync(to: context)
        let token = logits.withUnsafeBufferPointer { sampler.sample($0, history: context) }
        return Step(tokens: [token], role: role)
    }
}
