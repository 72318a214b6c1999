import Engine
import Foundation

/// The sessions a mode runs over. Sessions outlive a request, so consecutive requests that share a
/// prefix (a system prompt) reuse each model's KV cache.
public struct SessionPair {
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

/// A decoding mode: one declaration says what it is called, which models it needs, which
/// parameters it takes (`name:key=value,...`) and how it is built. The CLI, `relay eval` and the
/// server all go through `ModeSpec.parse` and `Mode.make`.
public struct Mode: Sendable {
    /// What a mode needs of the models.
    public struct Needs: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// The large model, local or remote (text only).
        public static let large = Needs(rawValue: 1)
        public static let small = Needs(rawValue: 2)
        /// The large model's logits: a local large model.
        public static let largeLogits = Needs(rawValue: 4)
    }

    public let name: String
    public let summary: String
    public let needs: Needs
    public let parameters: [AnyModeParameter]
    let build: @Sendable (Builder) throws -> DecodingStrategy

    /// Every mode, in the order help texts list them.
    public static let all: [Mode] = [
        Mode(name: "large", summary: "the large model alone", needs: [.large], parameters: []) { b in try b.largeWriter() },
        Mode(name: "small", summary: "the small model alone", needs: [.small], parameters: []) { b in
            Solo(session: try b.need(.small), role: .small, sampling: b.settings.sampling)
        },
        Mode(name: "speculative", summary: "speculative decoding: the small model drafts, the large one verifies",
             needs: [.largeLogits, .small], parameters: Parameters.draft) { b in
            try Speculative(target: try b.need(.large), draft: try b.need(.small), sampling: b.settings.sampling, draftParams: try b.draft())
        },
        Mode(name: "relaygen", summary: "RelayGen: the small model writes the segments after calibrated cues",
             needs: [.large, .small], parameters: Parameters.relayGen + [Parameters.draftVocab.erased]) { b in try b.relayGen(speculative: false) },
        Mode(name: "relaygen-sd", summary: "RelayGen with speculative decoding in the large model's turns",
             needs: [.largeLogits, .small], parameters: Parameters.relayGen + Parameters.draft) { b in try b.relayGen(speculative: true) },
        Mode(name: "relayllm", summary: "RelayLLM: the small model writes and calls the large one by <call>n</call>",
             needs: [.large, .small], parameters: [Parameters.headThreshold.erased] + Parameters.calls) { b in try b.relayLLM() },
        Mode(name: "random-router", summary: "a baseline that calls the large model at random positions",
             needs: [.large, .small], parameters: [Parameters.rate.erased, Parameters.seed.erased, Parameters.call.erased] + Parameters.calls) { b in
            let policy = RandomRouter(rate: b[Parameters.rate] ?? 0.05, call: b[Parameters.call] ?? 8, seed: b[Parameters.seed] ?? b.settings.sampling.seed ?? 0)
            return try b.relayLLM(policy: policy, maxCalls: Int.max)
        },
        Mode(name: "confidence-router", summary: "a baseline that calls the large model where the small one is unsure",
             needs: [.large, .small], parameters: [Parameters.confidenceThreshold.erased, Parameters.call.erased] + Parameters.calls) { b in
            try b.relayLLM(policy: ConfidenceRouter(threshold: b[Parameters.confidenceThreshold] ?? 0.4, call: b[Parameters.call] ?? 8), maxCalls: Int.max)
        },
        Mode(name: "oracle-router", summary: "a bound: calls where the large model, run beside the small one, disagrees",
             needs: [.largeLogits, .small], parameters: [Parameters.margin.erased, Parameters.call.erased] + Parameters.calls) { b in
            let policy = OracleRouter(large: try b.need(.large), margin: b[Parameters.margin] ?? 0.3, call: b[Parameters.call] ?? 8)
            return try b.relayLLM(policy: policy, maxCalls: Int.max)
        },
    ]

    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) throws -> Mode {
        guard let mode = all.first(where: { $0.name == name }) else { throw ModeError.unknown(name) }
        return mode
    }

    /// The models a set of modes needs: a large model (local unless `remote`) and a small one.
    public static func needs(_ modes: [Mode]) -> Needs { modes.reduce([]) { $0.union($1.needs) } }

    /// `make` for a mode string.
    public static func make(_ text: String, sessions: SessionPair, settings: Settings, promptTokens: Int = 0) throws -> DecodingStrategy {
        try make(ModeSpec.parse(text), sessions: sessions, settings: settings, promptTokens: promptTokens)
    }

    /// The strategy for `spec` over `sessions`; flags' values in `settings` are the parameters'
    /// defaults. The strategy writes the answer to a prompt of `promptTokens` tokens (where the
    /// presence and frequency penalties start counting).
    public static func make(_ spec: ModeSpec, sessions: SessionPair, settings: Settings, promptTokens: Int = 0) throws -> DecodingStrategy {
        let mode = try named(spec.name)
        if mode.name != "small", sessions.large == nil, sessions.remote != nil {
            let s = settings.sampling
            let unsupported = [(s.presencePenalty != 0, "presence_penalty"), (s.frequencyPenalty != 0, "frequency_penalty"), (!s.logitBias.isEmpty, "logit_bias")]
            if let setting = unsupported.first(where: \.0)?.1 { throw ModeError.remoteSampling(mode: mode.name, setting: setting) }
        }
        var settings = settings
        settings.sampling.answerStart = promptTokens
        if settings.sampling.ignoreEOS, let tokenizer = (sessions.small ?? sessions.large)?.model.tokenizer {
            for id in tokenizer.endOfGeneration { settings.sampling.logitBias[id] = -.infinity }
        }
        let builder = Builder(mode: mode, values: spec.parameters, sessions: sessions, settings: settings)
        if let n = settings.topLogprobs {
            // One local model writes every token: its logits give the log-probabilities.
            guard mode.name == "large" || mode.name == "small", let session = mode.name == "large" ? sessions.large : sessions.small else {
                throw ModeError.noLogprobs(mode: mode.name)
            }
            let solo = Solo(session: session, role: mode.name == "large" ? .large : .small, sampling: settings.sampling)
            solo.topLogprobs = n
            return solo
        }
        let strategy = try mode.build(builder)
        // Only a remote large model fails at run time; the small model may then finish the answer.
        guard mode.name != "small", sessions.large == nil, settings.largeFailureToSmall, let small = sessions.small else { return strategy }
        return SmallFallback(primary: strategy, small: Solo(session: small, role: .small, sampling: settings.sampling))
    }

    /// Settings every mode may read: the flags, which are the defaults of the modes' parameters.
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
}

/// What building a mode reads: its parameters (already checked by `ModeSpec.parse`), the sessions
/// and the settings.
struct Builder {
    let mode: Mode
    let values: [(key: String, value: String)]
    let sessions: SessionPair
    let settings: Mode.Settings

    subscript<T>(_ p: ModeParameter<T>) -> T? { values.last { $0.key == p.key }.flatMap { p.value($0.value) } }

    func need(_ role: Role) throws -> Session {
        if role == .large, sessions.large == nil, sessions.remote != nil { throw ModeError.needsLocalLarge(mode: mode.name) }
        guard let s = role == .large ? sessions.large : sessions.small else { throw ModeError.missingModel(mode: mode.name, role: role) }
        return s
    }

    /// The flags' draft settings with this mode's parameters over them.
    func draft() throws -> DraftParams {
        var d = settings.draft
        d.max = self[Parameters.draftMax] ?? d.max
        d.min = self[Parameters.draftMin] ?? d.min
        d.pMin = self[Parameters.draftPMin] ?? d.pMin
        d.lookup = self[Parameters.draftLookup] ?? d.lookup
        d.vocabulary = self[Parameters.draftVocab] ?? d.vocabulary
        d.adaptive = self[Parameters.adaptive] ?? d.adaptive
        try d.validate()
        return d
    }

    /// The large model's writer: the local model, or the remote one (text only, ending each
    /// request at `stops`; the local small model's tokenizer reads its text).
    func largeWriter(stops: [String] = [], sampling: SamplingParams? = nil) throws -> DecodingStrategy {
        let sampling = sampling ?? settings.sampling
        if let large = sessions.large {
            if let small = sessions.small, mode.name != "large" { try requireSharedVocabulary(large.model, small.model) }
            return Solo(session: large, role: .large, sampling: sampling)
        }
        guard let remote = sessions.remote else { throw ModeError.missingModel(mode: mode.name, role: .large) }
        return TextContinuation(model: remote, tokenizer: try need(.small).model.tokenizer, stops: stops, sampling: sampling,
                                cancellation: settings.cancellation)
    }

    func relayGen(speculative: Bool) throws -> DecodingStrategy {
        let small = try need(.small)
        var cues = try CueSet.forMode(mode.name, given: settings.cues, large: sessions.large?.model, small: small.model).cues.map(\.text)
        cues = Array(cues.prefix(self[Parameters.topCues] ?? cues.count))
        let draft = try self.draft()
        var gen = RelayGen.Settings(cues: cues)
        gen.smallPMin = self[Parameters.smallPMin] ?? 0
        gen.checkPMin = self[Parameters.checkPMin] ?? (sessions.large == nil ? 0 : RelayGen.Settings.defaultCheckPMin)
        gen.checkEvery = self[Parameters.checkEvery] ?? gen.checkEvery
        gen.checkedVocabulary = draft.vocabulary > 0 ? draft.vocabulary : nil
        // A remote model stops at a cue or an answer marker, where the hand-over happens.
        let driver: DecodingStrategy = speculative
            ? try Speculative(target: try need(.large), draft: small, sampling: settings.sampling, draftParams: draft)
            : try largeWriter(stops: cues + gen.answerMarkers)
        return try RelayGen(large: driver, small: Solo(session: small, role: .small, sampling: settings.sampling),
                            tokenizer: small.model.tokenizer, settings: gen, sampling: settings.sampling)
    }

    /// `relayllm` itself: the head chosen by `settings.head`, at its threshold unless `threshold=` says otherwise.
    func relayLLM() throws -> DecodingStrategy {
        let small = try need(.small)
        var head: RelayHead?
        switch settings.head {
        case .none: head = nil
        case .shipped: head = try RelayHead.shipped(for: small.model, large: sessions.large?.model)
        case .head(let h, let path):
            guard h.dim == small.model.config.dim else {
                throw HeadError.mismatch(path, detail: "hidden size \(h.dim), the small model's is \(small.model.config.dim)")
            }
            head = h
        }
        // threshold=P trades calls for accuracy without retraining.
        if let threshold = self[Parameters.headThreshold] { head?.threshold = threshold }
        // A head runs under the tag visibility it was trained with.
        return try relayLLM(policy: head.map { HeadPolicy(head: $0) }, maxCalls: RelayLLM.Limits().maxCalls, tags: head?.trainedTags)
    }

    /// The small model writing with `policy` deciding its calls. The routers (training-free
    /// baselines) may call at every position, so their calls are not capped by default.
    func relayLLM(policy: CallPolicy?, maxCalls: Int, tags: TagVisibility? = nil) throws -> DecodingStrategy {
        let small = try need(.small)
        var limits = RelayLLM.Limits()
        limits.maxCalls = self[Parameters.turns] ?? maxCalls
        // The large model samples with its own seed.
        var sampling = settings.sampling
        sampling.seed = sampling.seed.map { $0 &+ 1 }
        let relay = RelayLLM(small: small, large: try largeWriter(sampling: sampling), policy: policy, sampling: settings.sampling, limits: limits)
        relay.policyTags = self[Parameters.tags] ?? tags ?? relay.policyTags
        return relay
    }
}

/// A mode parameter with its type and rule, declared once: `ModeSpec.parse` checks mode strings
/// with it and the CLI checks the flag that sets its default with it.
public struct ModeParameter<Value>: Sendable {
    public let key: String
    /// What a valid value is, as errors say it.
    public let rule: String
    let parse: @Sendable (String) -> Value?
    let valid: @Sendable (Value) -> Bool

    init(_ key: String, _ rule: String, parse: @escaping @Sendable (String) -> Value?, valid: @escaping @Sendable (Value) -> Bool = { _ in true }) {
        self.key = key
        self.rule = rule
        self.parse = parse
        self.valid = valid
    }

    /// The value of `text`, if it is a valid one.
    public func value(_ text: String) -> Value? { parse(text).flatMap { valid($0) ? $0 : nil } }

    /// Checks a flag that sets this parameter's default.
    public func check(_ value: Value, flag: String) throws {
        guard valid(value) else { throw ModeError.badFlag(flag: flag, rule: rule) }
    }

    public var erased: AnyModeParameter { AnyModeParameter(key: key, rule: rule, accepts: { [self] in value($0) != nil }) }
}

public struct AnyModeParameter: Sendable {
    public let key: String
    public let rule: String
    let accepts: @Sendable (String) -> Bool
}

/// Every mode parameter. A flag of the same name (`--draft-max`) sets its default for every mode.
public enum Parameters {
    public static let draftMax = ModeParameter<Int>("draft-max", "an integer ≥ 0 (0: no drafting)", parse: { Int($0) }, valid: { $0 >= 0 })
    public static let draftMin = ModeParameter<Int>("draft-min", "an integer ≥ 0, at most draft-max", parse: { Int($0) }, valid: { $0 >= 0 })
    public static let draftPMin = ModeParameter<Float>("draft-p-min", "a number in 0...1", parse: { Float($0) }, valid: { (0...1).contains($0) })
    public static let draftLookup = ModeParameter<Int>("draft-lookup", "0 (off) or an n-gram length ≥ 2", parse: { Int($0) }, valid: { $0 == 0 || $0 >= 2 })
    public static let draftVocab = ModeParameter<Int>("draft-vocab", "0 (the whole vocabulary) or a token count", parse: { Int($0) }, valid: { $0 >= 0 })
    public static let adaptive = ModeParameter<Bool>("adaptive", "on or off", parse: { ["on": true, "1": true, "off": false, "0": false][$0] })
    public static let topCues = ModeParameter<Int>("top-cues", "a positive integer", parse: { Int($0) }, valid: { $0 > 0 })
    public static let smallPMin = ModeParameter<Float>("small-p-min", "a number in 0...1", parse: { Float($0) }, valid: { (0...1).contains($0) })
    public static let checkPMin = ModeParameter<Float>("check-p-min", "a number in 0...1", parse: { Float($0) }, valid: { (0...1).contains($0) })
    public static let checkEvery = ModeParameter<Int>("check-every", "an integer ≥ 0", parse: { Int($0) }, valid: { $0 >= 0 })
    public static let turns = ModeParameter<Int>("turns", "an integer ≥ 0", parse: { Int($0) }, valid: { $0 >= 0 })
    public static let tags = ModeParameter<TagVisibility>("tags", "hidden or visible", parse: { TagVisibility(rawValue: $0) })
    public static let headThreshold = ModeParameter<Float>("threshold", "a number in 0..<1", parse: { Float($0) }, valid: { (0..<1).contains($0) })
    public static let confidenceThreshold = ModeParameter<Float>("threshold", "a number in 0...1", parse: { Float($0) }, valid: { (0...1).contains($0) })
    public static let rate = ModeParameter<Double>("rate", "a number in 0...1", parse: { Double($0) }, valid: { (0...1).contains($0) })
    public static let seed = ModeParameter<UInt64>("seed", "an integer ≥ 0", parse: { UInt64($0) })
    public static let call = ModeParameter<Int>("call", "a positive integer", parse: { Int($0) }, valid: { $0 > 0 })
    public static let margin = ModeParameter<Float>("margin", "a number in 0...1", parse: { Float($0) }, valid: { (0...1).contains($0) })

    static let draft = [draftMax.erased, draftMin.erased, draftPMin.erased, draftLookup.erased, draftVocab.erased, adaptive.erased]
    static let relayGen = [topCues.erased, smallPMin.erased, checkPMin.erased, checkEvery.erased]
    static let calls = [turns.erased, tags.erased]
}

extension DraftParams {
    /// The rule no single parameter can check.
    public func validate() throws {
        guard min <= max else { throw ModeError.badDraft("draft-min (\(min)) is more than draft-max (\(max))") }
    }
}

/// A mode string, `name` or `name:key=value,key=value`, read and checked against the mode's declaration.
public struct ModeSpec: Sendable, Equatable, CustomStringConvertible {
    /// The string as given (trimmed), recorded as the mode of each eval result.
    public let raw: String
    public let name: String
    /// Parameters in the order given.
    public let parameters: [(key: String, value: String)]

    public var description: String { raw }

    public static func == (a: ModeSpec, b: ModeSpec) -> Bool {
        a.raw == b.raw && a.name == b.name && a.parameters.map(\.key) == b.parameters.map(\.key)
            && a.parameters.map(\.value) == b.parameters.map(\.value)
    }

    /// Reads one mode and checks its name, parameter names and values.
    public static func parse(_ text: String) throws -> ModeSpec {
        let raw = text.trimmingCharacters(in: .whitespaces)
        let pieces = raw.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(pieces[0])
        guard !name.isEmpty else { throw ModeError.malformed(raw, detail: "expected NAME or NAME:key=value,key=value") }
        let mode = try Mode.named(name)
        var parameters: [(key: String, value: String)] = []
        if pieces.count == 2 {
            for item in pieces[1].split(separator: ",", omittingEmptySubsequences: false) {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                    throw ModeError.malformed(raw, detail: "parameter '\(item)' is not key=value")
                }
                let (key, value) = (String(kv[0]), String(kv[1]))
                guard let p = mode.parameters.first(where: { $0.key == key }) else { throw ModeError.unknownKey(mode, key) }
                guard !parameters.contains(where: { $0.key == key }) else { throw ModeError.malformed(raw, detail: "parameter \(key) is given twice") }
                guard p.accepts(value) else { throw ModeError.badParameter(mode: name, key: key, value: value, rule: p.rule) }
                parameters.append((key, value))
            }
        }
        return ModeSpec(raw: raw, name: name, parameters: parameters)
    }

    /// Reads a `--modes` list. Commas separate modes and also a mode's parameters: an item with
    /// `=` but no `:` continues the previous mode (`large,random-router:rate=0.05,seed=3,small`).
    /// Duplicates are dropped.
    public static func parseList(_ text: String) throws -> [ModeSpec] {
        var groups: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true).map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if item.contains("="), !item.contains(":"), let last = groups.last, last.contains(":") {
                groups[groups.count - 1] = last + "," + item
            } else {
                groups.append(item)
            }
        }
        guard !groups.isEmpty else { throw ModeError.malformed(text, detail: "no modes given") }
        var specs: [ModeSpec] = []
        for group in groups {
            let spec = try parse(group)
            if !specs.contains(where: { $0.raw == spec.raw }) { specs.append(spec) }
        }
        return specs
    }
}

public enum ModeError: Error, CustomStringConvertible, Equatable {
    case unknown(String)
    case malformed(String, detail: String)
    case unknownParameter(mode: String, key: String, known: [String])
    case badParameter(mode: String, key: String, value: String, rule: String)
    case badFlag(flag: String, rule: String)
    case badDraft(String)
    case missingModel(mode: String, role: Role)
    case missingCues(mode: String, reason: String)
    case needsLocalLarge(mode: String)
    case noLogprobs(mode: String)
    /// A sampling setting a remote large model cannot honour as the local one would.
    case remoteSampling(mode: String, setting: String)

    static func unknownKey(_ mode: Mode, _ key: String) -> ModeError {
        .unknownParameter(mode: mode.name, key: key, known: mode.parameters.map(\.key))
    }

    public var description: String {
        switch self {
        case .unknown(let n): return "unknown mode '\(n)' (modes: \(Mode.names.joined(separator: ", ")))"
        case .malformed(let text, let detail): return "bad mode '\(text)': \(detail)"
        case .unknownParameter(let m, let k, let known):
            return "mode '\(m)' has no parameter '\(k)'" + (known.isEmpty ? " (it takes none)" : " (parameters: \(known.joined(separator: ", ")))")
        case .badParameter(let m, let k, let v, let rule): return "mode '\(m)': \(k)=\(v) is not valid: \(k) must be \(rule)"
        case .badFlag(let flag, let rule): return "\(flag) must be \(rule)"
        case .badDraft(let detail): return detail
        case .missingModel(let m, let r): return ModelPairError.missing(r, purpose: "mode '\(m)'").description
        case .missingCues(let m, let reason):
            return "mode '\(m)' needs a cue file and none fits: \(reason). Calibrate one for these models with "
                + "`relay calibrate -m LARGE -md SMALL --task math-train --limit 10 --out cues.json` and pass --cues cues.json"
        case .noLogprobs(let m):
            return "mode '\(m)' cannot give log-probabilities: only the modes large and small with a local model (one model writes every token) can"
        case .remoteSampling(let m, let setting):
            return "mode '\(m)' with a remote large model cannot apply \(setting): the remote model sees text, not this answer's token ids"
        case .needsLocalLarge(let m):
            return "mode '\(m)' needs the large model's logits, so a local large model (-m LARGE): a remote one (--large-url) gives only text"
        }
    }
}
