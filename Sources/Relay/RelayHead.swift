import Engine
import Foundation

/// The learned call policy of RelayLLM, scaled to a frozen backbone: a logistic call unit (the role
/// of the paper's `<call>` output row, only its weights and bias trained) and a softmax over a few
/// call lengths, both reading the small model's last hidden state. Two scalars join the hidden
/// state: the small model's top-1 probability and entropy, which the paper's call row sees through
/// the softmax normaliser it shares with the vocabulary. Features are standardised with `mean` and
/// `scale` (fixed from the warm-up data) before the linear maps.
public struct RelayHead: Codable, Sendable, Equatable {
    public var format = RelayHead.formatName
    /// The small model the head was trained on, and its hidden size.
    public var model: String
    public var dim: Int
    /// The call lengths n the length head chooses from.
    public var lengths: [Int]
    public var mean: [Float]
    public var scale: [Float]
    public var callWeights: [Float]
    public var callBias: Float
    /// (lengths.count, features) row-major.
    public var lengthWeights: [Float]
    public var lengthBias: [Float]
    /// At inference the head calls when p(call) exceeds this.
    public var threshold: Float = 0.5
    /// Whether the small model read the head's tags in training, and so at inference (nil: visible).
    public var tags: TagVisibility?
    /// The visibility the head runs with: files written before the field existed were trained visible.
    public var trainedTags: TagVisibility { tags ?? .visible }
    /// How it was trained: settings, and curves (one value per warm-up epoch or GRPO step).
    public var training: Training?
    /// The small model it reads and the large model it was trained calling (nil in files written
    /// before they were recorded): what finds a shipped head (`RelayHead.shipped(small:large:)`).
    public var small: ModelIdentity?
    public var large: ModelIdentity?

    public struct Training: Codable, Sendable, Equatable {
        public var config: [String: String]
        public var curves: [String: [Double]]
        public init(config: [String: String] = [:], curves: [String: [Double]] = [:]) {
            self.config = config
            self.curves = curves
        }
    }

    public static let formatName = "relay-head/1"
    public static let defaultLengths = [4, 8, 16, 32]

    /// Features per position: the hidden state, top-1 probability, entropy.
    public var features: Int { dim + 2 }

    /// A head that calls almost never (p ≈ `rate` everywhere) and picks lengths uniformly.
    public init(model: String, dim: Int, lengths: [Int] = RelayHead.defaultLengths, rate: Float = 0.005) {
        self.model = model
        self.dim = dim
        self.lengths = lengths
        mean = [Float](repeating: 0, count: dim + 2)
        scale = [Float](repeating: 1, count: dim + 2)
        callWeights = [Float](repeating: 0, count: dim + 2)
        callBias = logf(rate / (1 - rate))
        lengthWeights = [Float](repeating: 0, count: lengths.count * (dim + 2))
        lengthBias = [Float](repeating: 0, count: lengths.count)
    }

    /// Raw features of one position (before standardisation).
    public static func features(logits: UnsafeBufferPointer<Float>, hidden: [Float]) -> [Float] {
        let m = logits.max() ?? 0
        var sum: Float = 0, weighted: Float = 0
        for v in logits {
            let e = expf(v - m)
            sum += e
            weighted += e * (v - m)
        }
        // entropy = log Z − E[l − m] with Z = Σ exp(l − m)
        let entropy = logf(sum) - weighted / sum
        return hidden + [1 / sum, entropy]
    }

    /// Features standardised with `mean` and `scale` (what the linear maps read).
    public func standardised(_ x: [Float]) -> [Float] {
        var z = x
        for i in z.indices { z[i] = (z[i] - mean[i]) / scale[i] }
        return z
    }

    /// The call logit and the length logits of standardised features `z`.
    public func logits(_ z: [Float]) -> (call: Float, lengths: [Float]) {
        let F = features
        var c = callBias
        for i in 0..<F { c += callWeights[i] * z[i] }
        var l = lengthBias
        for k in lengths.indices {
            var s: Float = 0
            for i in 0..<F { s += lengthWeights[k * F + i] * z[i] }
            l[k] += s
        }
        return (c, l)
    }

    /// p(call) and the distribution over `lengths` for raw features.
    public func evaluate(_ raw: [Float]) -> (pCall: Float, lengths: [Float]) {
        let (c, l) = logits(standardised(raw))
        return (sigmoid(c), softmax(l))
    }

    /// Reads and checks a head file; errors name the file and what is wrong.
    public static func load(_ path: String) throws -> RelayHead {
        guard let data = FileManager.default.contents(atPath: path) else { throw HeadError.unreadable(path) }
        return try decode(data, source: path)
    }

    public static func decode(_ data: Data, source: String) throws -> RelayHead {
        let head: RelayHead
        do { head = try JSONDecoder().decode(RelayHead.self, from: data) } catch {
            throw HeadError.malformed(source, detail: "not a relay head: \(error)")
        }
        if let problem = head.problem { throw HeadError.malformed(source, detail: problem) }
        return head
    }

    /// What is inconsistent in the head, if anything.
    public var problem: String? {
        let F = features
        if format != RelayHead.formatName { return "format '\(format)', expected '\(RelayHead.formatName)'" }
        if dim <= 0 || dim > 1 << 20 { return "dim \(dim) is outside 1...\(1 << 20)" }
        if lengths.isEmpty || lengths.count > 64 || lengths.contains(where: { $0 <= 0 || $0 > RelayLLM.Limits().maxCallTokens }) {
            return "lengths \(lengths.prefix(8)) must be 1 to 64 values in 1...\(RelayLLM.Limits().maxCallTokens)"
        }
        for (name, v, n) in [("mean", mean, F), ("scale", scale, F), ("callWeights", callWeights, F),
                             ("lengthWeights", lengthWeights, lengths.count * F), ("lengthBias", lengthBias, lengths.count)] {
            if v.count != n { return "\(name) has \(v.count) values, expected \(n) (dim \(dim) + 2 features, \(lengths.count) lengths)" }
            if v.contains(where: { !$0.isFinite }) { return "\(name) has a value that is not finite" }
        }
        if scale.contains(where: { $0 <= 0 }) { return "scale must be positive" }
        if !callBias.isFinite || !threshold.isFinite { return "callBias or threshold is not finite" }
        return nil
    }

    public func write(to path: String) throws {
        try encoded().write(to: URL(fileURLWithPath: path))
    }

    /// The file's bytes: compact JSON with sorted keys.
    func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(self)
    }
}

public func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

extension RelayHead {
    /// The call probability of training rollouts: p mixed with a floor rate `explore`.
    public static func explored(_ p: Float, _ explore: Float) -> Float { explore + (1 - explore) * p }
}

public func softmax(_ x: [Float]) -> [Float] {
    let m = x.max() ?? 0
    let e = x.map { expf($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

public enum HeadError: Error, CustomStringConvertible {
    case unreadable(String)
    case malformed(String, detail: String)
    case mismatch(String, detail: String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read relay head file \(p)"
        case .malformed(let p, let d): return "relay head file \(p) is malformed: \(d.prefix(300))"
        case .mismatch(let p, let d): return "relay head file \(p) does not fit the small model: \(d)"
        }
    }
}

/// A decision the head took, kept for training: the raw features, whether it called, the length
/// index chosen, and the probability the head gave that decision when it took it.
public struct HeadDecision: Sendable {
    public var features: [Float]
    public var called: Bool
    public var choice: Int
    public var probability: Float
}

/// The learned head as a call policy. At inference it calls when p(call) > threshold for the most
/// likely length; when `sampling`, it draws both (for training rollouts) and records each decision.
public final class HeadPolicy: CallPolicy {
    public var head: RelayHead
    var rng: Xoshiro256?
    let explore: Float
    public private(set) var decisions: [HeadDecision] = []

    /// `seed` nil: deterministic inference; otherwise decisions are drawn and recorded, calling
    /// with probability explore + (1 − explore) p(call) so that a head that (almost) never calls
    /// still tries calls for GRPO to score.
    public init(head: RelayHead, samplingSeed seed: UInt64? = nil, explore: Float = 0) {
        self.head = head
        rng = seed.map(Xoshiro256.init)
        self.explore = explore
    }

    public var needsHidden: Bool { true }

    public func decide(logits: UnsafeBufferPointer<Float>, hidden: [Float], context: [Int32]) -> Int? {
        let x = RelayHead.features(logits: logits, hidden: hidden)
        let (p, q) = head.evaluate(x)
        guard var r = rng else {
            guard p > head.threshold else { return nil }
            return head.lengths[q.indices.max { q[$0] < q[$1] }!]
        }
        let pe = RelayHead.explored(p, explore)
        let called = r.unit() < pe
        var choice = 0
        if called {
            var u = r.unit()
            choice = q.count - 1
            for (k, v) in q.enumerated() {
                u -= v
                if u < 0 { choice = k; break }
            }
        }
        rng = r
        decisions.append(HeadDecision(features: x, called: called, choice: choice, probability: called ? pe * q[choice] : 1 - pe))
        return called ? head.lengths[choice] : nil
    }
}
