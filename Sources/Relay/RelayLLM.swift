import Engine
import Foundation

/// RelayLLM (arXiv 2601.05167): the small model writes; when its text contains `<call>n</call>`,
/// the large model receives the prompt and the answer so far with every relay tag removed, writes
/// at most n tokens (or stops at end of text), and the small model goes on after them.
///
/// Every way of deciding to call goes through that one text protocol: a `CallPolicy` (learned
/// head, random or confidence router) that fires writes the tag into the transcript as ordinary
/// small-model text, and the same tag matcher starts the call as for a tag the model wrote by
/// itself (`policyTags` says whether the small model then reads it). Without a policy only the
/// model's own tags count.
///
/// Limits: at most `maxCalls` calls per answer (later tags are left as text and ignored), a call
/// asks for at most `maxCallTokens`, and never past `budget` tokens of answer.
public final class RelayLLM: DecodingStrategy {
    public struct Limits: Sendable {
        public var maxCalls = 5
        public var maxCallTokens = 4096
        public var budget = 8192
        public init() {}
    }

    enum Turn: Equatable { case small, large(left: Int) }

    let small: Session
    /// Writes the large model's turns: a local model (`Solo`) or a remote one (`TextContinuation`).
    let large: DecodingStrategy
    let tokenizer: Tokenizer
    public let policy: CallPolicy?
    public let limits: Limits
    var smallSampler: Sampler
    var turn = Turn.small
    var prompt: [Int32]?
    /// The answer's text as the small model sees it (tags included), and where the tag matcher
    /// starts looking (after the last tag it consumed).
    public private(set) var text = ""
    var scanFrom = 0
    /// What the large model sees during its turn: prompt and tag-free answer, then its own tokens.
    public private(set) var largeContext: [Int32] = []
    /// Calls granted so far, and what the large model received at the last one.
    public private(set) var calls = 0
    public private(set) var callInput: [Int32] = []
    /// Whether the small model reads the tags its policy wrote. The transcript keeps them either way.
    public var policyTags = TagVisibility.hidden
    /// Positions in the context of the tags the policy wrote.
    var policyTagRanges: [Range<Int>] = []

    public init(small: Session, large: DecodingStrategy, policy: CallPolicy?, sampling: SamplingParams, limits: Limits = Limits()) {
        self.small = small
        self.large = large
        self.tokenizer = small.model.tokenizer
        self.policy = policy
        self.limits = limits
        smallSampler = Sampler(sampling)
        small.keepsHidden = policy?.needsHidden ?? false
    }

    /// Both models local; the large one samples with its own seed.
    public convenience init(small: Session, large: Session, policy: CallPolicy?, sampling: SamplingParams, limits: Limits = Limits()) {
        var largeParams = sampling
        largeParams.seed = sampling.seed.map { $0 &+ 1 }
        self.init(small: small, large: Solo(session: large, role: .large, sampling: largeParams), policy: policy,
                  sampling: sampling, limits: limits)
    }

    public var sessions: [Role: Session] { large.sessions.merging([.small: small]) { a, _ in a } }

    public func step(context: [Int32]) throws -> Step {
        if prompt == nil { prompt = context }
        switch turn {
        case .large(let left):
            let step = try large.step(context: largeContext, atMost: left)
            let tokens = Array(step.tokens.prefix(left))
            largeContext += tokens
            text += tokenizer.decode(tokens)
            scanFrom = text.utf8.count     // text the large model wrote never starts a call
            turn = left > tokens.count && !step.fulfilsLimit ? .large(left: left - tokens.count) : .small
            return Step(tokens: tokens, role: .large, events: step.events + (turn == .small ? [.handover] : []))

        case .small:
            let view = policyTags == .visible ? context : withoutPolicyTags(context)
            let logits = try small.sync(to: view)
            // The policy is asked only while a call can still be granted.
            if calls < limits.maxCalls, context.count - prompt!.count < limits.budget, let policy,
               let n = try logits.withUnsafeBufferPointer({ try policy.decide(logits: $0, hidden: small.hidden, context: view) }) {
                let tag = tokenizer.encode(RelayTag.text(n), addBOS: false)
                policyTagRanges.append(context.count ..< context.count + tag.count)
                return consume(tag, context: context)
            }
            let token = logits.withUnsafeBufferPointer { smallSampler.sample($0, history: context) }
            return consume([token], context: context)
        }
    }

    func withoutPolicyTags(_ context: [Int32]) -> [Int32] {
        var view: [Int32] = [], from = 0
        for r in policyTagRanges {
            view += context[from ..< r.lowerBound]
            from = r.upperBound
        }
        return view + context[min(from, context.count)...]
    }

    /// Appends the small model's tokens to the text and starts a call if they complete a tag.
    func consume(_ tokens: [Int32], context: [Int32]) -> Step {
        let piece = tokenizer.decode(tokens)
        text += piece
        // A tag ends with '>': look only when one arrives.
        if piece.contains(">"), let (n, end) = RelayTag.firstCall(in: text, from: scanFrom) {
            scanFrom = end
            let written = context.count + tokens.count - prompt!.count
            let granted = min(n, limits.maxCallTokens, limits.budget - written)
            if calls < limits.maxCalls, granted > 0 {
                // Decoded as a whole, so characters split across tokens reach the large model intact.
                let answer = tokenizer.decode(Array(context[prompt!.count...]) + tokens)
                largeContext = prompt! + tokenizer.encode(RelayTag.strip(answer), addBOS: false)
                callInput = largeContext
                calls += 1
                turn = .large(left: granted)
                return Step(tokens: tokens, role: .small, events: [.called(granted), .handover])
            }
        }
        return Step(tokens: tokens, role: .small)
    }
}

/// Whether the small model reads the `<call>n</call>` tags its call policy wrote. The paper's model
/// reads its own, having been fine-tuned to write them; a frozen model never saw such text and
/// imitates it, so by default (`hidden`) its context holds only what it wrote itself.
public enum TagVisibility: String, Codable, Sendable, CaseIterable {
    case visible, hidden
}

/// The relay tag `<call>n</call>`, matched on text as `<call>\s*(\d+)\s*</call>`.
public enum RelayTag {
    public static func text(_ n: Int) -> String { "<call>\(n)</call>" }

    // ASCII digits only: `\d` also takes other scripts' digits, which Int() cannot read (n would
    // become Int.max, a call at the limit).
    static let tag = try! Regex(#"<call>\s*([0-9]+)\s*</call>"#)
    static let anyTag = try! Regex(#"<call>[^<]*</call>|</?call>"#)

    /// The first complete tag in `text` at or after UTF-8 offset `from`: its n (a number too large
    /// for Int reads as Int.max, to be clamped) and the UTF-8 offset where it ends. `<call>0</call>`
    /// and tags without a number are consumed with n = 0 (no call) only when well formed.
    public static func firstCall(in text: String, from: Int) -> (n: Int, end: Int)? {
        let utf8 = text.utf8
        guard from < utf8.count else { return nil }
        let start = utf8.index(utf8.startIndex, offsetBy: from)
        guard let m = text[start...].firstMatch(of: tag) else { return nil }
        let digits = m.output[1].substring ?? ""
        let n = Int(digits) ?? Int.max
        return (n, utf8.distance(from: utf8.startIndex, to: m.range.upperBound))
    }

    /// The text with every relay tag removed: complete tags (well formed or not) and stray
    /// `<call>` / `</call>` markers left by malformed or nested ones.
    /// Removal is repeated until nothing changes: pieces left around a removed tag can form a new
    /// one (`<<call>call>8</call>` leaves `<call>8`...; found by the relayllm-tags fuzz target).
    public static func strip(_ text: String) -> String {
        var text = text
        while text.contains("call>") {
            let stripped = text.replacing(anyTag, with: "")
            if stripped == text { break }
            text = stripped
        }
        return text
    }
}

/// Decides, before the small model writes its next token, whether to call the large model and for
/// how many tokens. Shared by the learned head and the training-free routers.
public protocol CallPolicy: AnyObject {
    /// Whether `decide` reads the small model's last hidden state.
    var needsHidden: Bool { get }
    /// The small model's next-token logits, its last hidden state (after the final norm) if
    /// `needsHidden`, and the tokens it read; returns n to call for n tokens, or nil.
    func decide(logits: UnsafeBufferPointer<Float>, hidden: [Float], context: [Int32]) throws -> Int?
}

/// Calls for `call` tokens at random positions, each with probability `rate`.
public final class RandomRouter: CallPolicy {
    public let rate: Double
    public let call: Int
    var rng: Xoshiro256

    public init(rate: Double, call: Int, seed: UInt64) {
        self.rate = rate
        self.call = call
        rng = Xoshiro256(seed: seed)
    }

    public var needsHidden: Bool { false }
    public func decide(logits: UnsafeBufferPointer<Float>, hidden: [Float], context: [Int32]) -> Int? {
        Double(rng.unit()) < rate ? call : nil
    }
}

/// Calls for `call` tokens whenever the small model's top-1 probability is under `threshold`
/// (training-free).
public final class ConfidenceRouter: CallPolicy {
    public let threshold: Float
    public let call: Int

    public init(threshold: Float, call: Int) {
        self.threshold = threshold
        self.call = call
    }

    public var needsHidden: Bool { false }
    public func decide(logits: UnsafeBufferPointer<Float>, hidden: [Float], context: [Int32]) -> Int? {
        topProbability(logits) < threshold ? call : nil
    }
}

/// Calls for `call` tokens where the large model disagrees with the small one: its top-1 token
/// differs from the small model's and leads it by at least `margin` in probability. An analysis
/// baseline, not a router to deploy: it runs the large model over every position, so it costs more
/// than the large model alone; it shows what knowing where the large model disagrees is worth.
public final class OracleRouter: CallPolicy {
    public let margin: Float
    public let call: Int
    let large: Session

    public init(large: Session, margin: Float, call: Int) {
        self.large = large
        self.margin = margin
        self.call = call
    }

    public var needsHidden: Bool { false }
    public func decide(logits: UnsafeBufferPointer<Float>, hidden: [Float], context: [Int32]) throws -> Int? {
        let smallTop = Int(argmax(logits))
        let l = try large.sync(to: context)
        let largeTop = l.withUnsafeBufferPointer { Int(argmax($0)) }
        guard largeTop != smallTop, smallTop < l.count else { return nil }
        // p(large top) − p(small top) = (1 − exp(l_small − l_top)) / Σ exp(l − l_top)
        let sum = l.reduce(0) { $0 + expf($1 - l[largeTop]) }
        return (1 - expf(l[smallTop] - l[largeTop])) / sum >= margin ? call : nil
    }
}
