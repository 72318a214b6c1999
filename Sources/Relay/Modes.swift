import Engine
import Foundation

/// The decoding modes, by name, built over one pair of sessions. Sessions outlive a request, so
/// consecutive requests that share a prefix (a system prompt) reuse each model's KV cache.
public struct ModePair {
    public let large: Session?
    public let small: Session?
    /// A large model reached through text only (`--large-url`), used when `large` is nil.
    public let remote: LargeModel?

    public init(large: Session?, small: Session?, remote: LargeModel? = nil) {
        self.large = large
        self.small = small
        self.remote = remote
    }
}

public enum Modes {
    public static let names = ["large", "small", "speculative", "relaygen", "relaygen-sd", "relayllm", "random-router", "confidence-router", "oracle-router"]

    /// Settings a mode may read; `parameters` come from `name:key=value,...`.
    public struct Settings: Sendable {
        public var sampling = SamplingParams()
        public var draft = DraftParams()
        public var cues: CueSet?
        public var head = HeadChoice.shipped
        /// With a remote large model: finish on the small model when it fails, instead of failing.
        public var largeFailureToSmall = false
        /// Log-probabilities with this many alternatives per token; only the one-model local modes give them.
        public var topLogprobs: Int?
        /// Cuts short a step blocked on a remote large model; the generation's own
        /// (`GenerationOptions.cancellation`), so that the loop ends too.
        public var cancellation = Cancellation()
        public init() {}
    }

    /// RelayLLM's call policy: the head shipped for the small model (the bare protocol when none
    /// fits it), no head (only tags the small model writes itself), or a given head.
    public enum HeadChoice: Sendable {
        case shipped, none
        case head(RelayHead, path: String)
    }

    public static func make(_ name: String, parameters: [String: String] = [:], pair: ModePair, settings: Settings) throws -> DecodingStrategy {
        if let n = settings.topLogprobs {
            // One local model writes every token: its logits give the log-probabilities.
            guard name == "large" || name == "small", let session = name == "large" ? pair.large : pair.small else {
                throw ModeError.noLogprobs(mode: name)
            }
            let solo = Solo(session: session, role: name == "large" ? .large : .small, sampling: settings.sampling)
            solo.topLogprobs = n
            return solo
        }
        func parameter<T>(_ key: String, _ parse: (String) -> T?, default value: T, valid: (T) -> Bool) throws -> T {
            guard let text = parameters[key] else { return value }
            guard let v = parse(text), valid(v) else { throw ModeError.badParameter(mode: name, key: key, value: text) }
            return v
        }
        var draft = settings.draft
        draft.max = try parameter("draft-max", { Int($0) }, default: draft.max, valid: { $0 >= 0 })
        draft.min = try parameter("draft-min", { Int($0) }, default: draft.min, valid: { $0 >= 0 })
        draft.pMin = try parameter("draft-p-min", { Float($0) }, default: draft.pMin, valid: { (0...1).contains($0) })
        draft.lookup = try parameter("draft-lookup", { Int($0) }, default: draft.lookup, valid: { $0 == 0 || $0 >= 2 })
        draft.vocabulary = try parameter("draft-vocab", { Int($0) }, default: draft.vocabulary, valid: { $0 >= 0 })
        draft.adaptive = try parameter("adaptive", { ["on": true, "1": true, "off": false, "0": false][$0] }, default: draft.adaptive, valid: { _ in true })

        func need(_ role: Role) throws -> Session {
            if role == .large, pair.large == nil, pair.remote != nil { throw ModeError.needsLocalLarge(mode: name) }
            guard let s = role == .large ? pair.large : pair.small else { throw ModeError.missingModel(mode: name, role: role) }
            return s
        }
        /// The large model's writer: the local model, or the remote one (text only, ending each
        /// request at `stops`; the local small model's tokenizer reads its text).
        func largeWriter(stops: [String] = [], sampling: SamplingParams = settings.sampling) throws -> DecodingStrategy {
            if let large = pair.large {
                if let small = pair.small, name != "large" { try requireSharedVocabulary(large.model, small.model) }
                return Solo(session: large, role: .large, sampling: sampling)
            }
            guard let remote = pair.remote else { throw ModeError.missingModel(mode: name, role: .large) }
            let small = try need(.small)
            return TextContinuation(model: remote, tokenizer: small.model.tokenizer, stops: stops, sampling: sampling,
                                    cancellation: settings.cancellation)
        }
        func relayGen(speculative: Bool) throws -> DecodingStrategy {
            let small = try need(.small)
            var cues = try CueSet.forMode(name, given: settings.cues, large: pair.large?.model, small: small.model).cues.map(\.text)
            cues = Array(cues.prefix(try parameter("top-cues", { Int($0) }, default: cues.count, valid: { $0 > 0 })))
            var gen = RelayGen.Settings(cues: cues)
            gen.smallPMin = try parameter("small-p-min", { Float($0) }, default: 0, valid: { (0...1).contains($0) })
            gen.checkPMin = try parameter("check-p-min", { Float($0) }, default: pair.large == nil ? 0 : RelayGen.Settings.defaultCheckPMin,
                                          valid: { (0...1).contains($0) })
            gen.checkEvery = try parameter("check-every", { Int($0) }, default: gen.checkEvery, valid: { $0 >= 0 })
            gen.checkedVocabulary = draft.vocabulary > 0 ? draft.vocabulary : nil
            // A remote model stops at a cue or an answer marker, where the hand-over happens.
            let driver: DecodingStrategy = speculative
                ? try Speculative(target: try need(.large), draft: small, sampling: settings.sampling, draftParams: draft)
                : try largeWriter(stops: cues + gen.answerMarkers)
            return try RelayGen(large: driver, small: Solo(session: small, role: .small, sampling: settings.sampling),
                                tokenizer: small.model.tokenizer, settings: gen, sampling: settings.sampling)
        }
        func relayLLM(policy: CallPolicy?, maxCalls: Int, tags: TagVisibility? = nil) throws -> DecodingStrategy {
            let small = try need(.small)
            var limits = RelayLLM.Limits()
            limits.maxCalls = try parameter("turns", { Int($0) }, default: maxCalls, valid: { $0 >= 0 })
            // The large model samples with its own seed.
            var sampling = settings.sampling
            sampling.seed = sampling.seed.map { $0 &+ 1 }
            let relay = RelayLLM(small: small, large: try largeWriter(sampling: sampling), policy: policy, sampling: settings.sampling, limits: limits)
            relay.policyTags = try parameter("tags", { TagVisibility(rawValue: $0) }, default: tags ?? relay.policyTags, valid: { _ in true })
            return relay
        }
        // The routers are the training-free baselines: by default they may call at every position.
        func call() throws -> Int { try parameter("call", { Int($0) }, default: 8, valid: { $0 > 0 }) }
        let strategy: DecodingStrategy
        switch name {
        case "relayllm":
            let small = try need(.small)
            var head: RelayHead?
            switch settings.head {
            case .none: head = nil
            case .shipped: head = try RelayHead.shipped(for: small.model, large: pair.large?.model)
            case .head(let h, let path):
                guard h.dim == small.model.config.dim else {
                    throw HeadError.mismatch(path, detail: "hidden size \(h.dim), the small model's is \(small.model.config.dim)")
                }
                head = h
            }
            // threshold=P trades calls for accuracy without retraining.
            let threshold = try parameter("threshold", { Float($0) }, default: head?.threshold ?? 0.5, valid: { (0..<1).contains($0) })
            head?.threshold = threshold
            // A head runs under the tag visibility it was trained with.
            strategy = try relayLLM(policy: head.map { HeadPolicy(head: $0) }, maxCalls: RelayLLM.Limits().maxCalls, tags: head?.trainedTags)
        case "random-router":
            let rate = try parameter("rate", { Double($0) }, default: 0.05, valid: { (0...1).contains($0) })
            let seed = try parameter("seed", { UInt64($0) }, default: settings.sampling.seed ?? 0, valid: { _ in true })
            strategy = try relayLLM(policy: RandomRouter(rate: rate, call: try call(), seed: seed), maxCalls: Int.max)
        case "confidence-router":
            let threshold = try parameter("threshold", { Float($0) }, default: 0.4, valid: { (0...1).contains($0) })
            strategy = try relayLLM(policy: ConfidenceRouter(threshold: threshold, call: try call()), maxCalls: Int.max)
        case "oracle-router":
            let margin = try parameter("margin", { Float($0) }, default: 0.3, valid: { (0...1).contains($0) })
            strategy = try relayLLM(policy: OracleRouter(large: try need(.large), margin: margin, call: try call()), maxCalls: Int.max)
        case "large": strategy = try largeWriter()
        case "small": return Solo(session: try need(.small), role: .small, sampling: settings.sampling)
        case "speculative":
            return try Speculative(target: try need(.large), draft: try need(.small), sampling: settings.sampling, draftParams: draft)
        case "relaygen": strategy = try relayGen(speculative: false)
        case "relaygen-sd": return try relayGen(speculative: true)
        default: throw ModeError.unknown(name)
        }
        // Only a remote large model fails at run time; the small model may then finish the answer.
        guard pair.large == nil, settings.largeFailureToSmall, let small = pair.small else { return strategy }
        return SmallFallback(primary: strategy, small: Solo(session: small, role: .small, sampling: settings.sampling))
    }
}

public enum ModeError: Error, CustomStringConvertible {
    case unknown(String)
    case missingModel(mode: String, role: Role)
    case missingCues(mode: String, reason: String)
    case badParameter(mode: String, key: String, value: String)
    case needsLocalLarge(mode: String)
    case noLogprobs(mode: String)

    public var description: String {
        switch self {
        case .unknown(let n): return "unknown mode '\(n)' (known: \(Modes.names.joined(separator: ", ")))"
        case .missingModel(let m, let r):
            return "mode '\(m)' needs a \(r) model: pass \(r == .large ? "-m LARGE" : "-md SMALL")"
        case .missingCues(let m, let reason):
            return "mode '\(m)' needs a cue file and none fits: \(reason). Calibrate one for these models with "
                + "`relay calibrate -m LARGE -md SMALL --task math-train --limit 10 --out cues.json` and pass --cues cues.json"
        case .badParameter(let m, let k, let v): return "mode '\(m)': parameter \(k)=\(v) is not valid"
        case .noLogprobs(let m):
            return "mode '\(m)' cannot give log-probabilities: only the modes large and small with a local model (one model writes every token) can"
        case .needsLocalLarge(let m):
            return "mode '\(m)' needs the large model's logits, so a local large model (-m LARGE): a remote one (--large-url) gives only text"
        }
    }
}
