import ArgumentParser
import Assets
import GGUF
import Engine
import Foundation
import Kernels
import Relay
import Training

/// Model selection and run-time settings shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: [.customShort("m"), .long], help: "Model: a GGUF path or a name from `relay models list`.")
    var model: String = "smollm2-135m"

    @Option(name: [.customLong("md", withSingleDash: true), .customLong("model-draft")],
            help: "Small (draft) model for the relay modes: a GGUF path or a model name.")
    var draftModel: String?

    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Context size: the most positions the KV cache holds.")
    var ctxSize: Int = 4096

    @Option(name: [.customShort("t"), .long], help: "Threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("chat-template"), help: "Force a chat template (\(ChatTemplate.names.joined(separator: ", "))) instead of the GGUF's own.")
    var chatTemplate: String?

    func validate() throws {
        guard (1...MemoryBudget.maxContext).contains(ctxSize) else { throw ValidationError("-c/--ctx-size must be in 1...\(MemoryBudget.maxContext)") }
        guard threads > 0 else { throw ValidationError("-t/--threads must be positive") }
        if let name = chatTemplate { _ = try ChatTemplate.named(name) }
    }

    /// The models `modes` need (every model given, with `allGiven`): `ModelPair.load` with -m and -md.
    func pair(for modes: [Mode], remote: LargeModel? = nil, sequences: Int = 1, allGiven: Bool = false) throws -> ModelPair {
        Threads.configure(threads)
        let store = AssetStore()
        return try ModelPair.load(large: remote == nil ? try store.resolveModel(model) : nil, small: try draftModel.map(store.resolveModel),
                                  modes: modes, remote: remote, contextSize: ctxSize, sequences: sequences, allGiven: allGiven)
    }

    /// The models a command (named in errors) needs.
    func pair(needs: Mode.Needs, for command: String) throws -> ModelPair {
        Threads.configure(threads)
        let store = AssetStore()
        return try ModelPair.load(large: try store.resolveModel(model), small: try draftModel.map(store.resolveModel),
                                  needs: needs, for: command, contextSize: ctxSize)
    }

    /// The large model alone.
    func load() throws -> Model { try pair(needs: .large, for: "this command").large! }

    func template(for model: Model) throws -> ChatTemplate {
        if let name = chatTemplate { return try ChatTemplate.named(name) }
        return try ChatTemplate.detect(from: model.file.metadata[GGUFKey.Tokenizer.chatTemplate]?.string)
    }
}

/// llama.cpp's sampling flags and defaults.
struct SamplingOptions: ParsableArguments {
    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Most tokens to generate (-1: until end of text or a full context).")
    var nPredict: Int = -1

    @Option(name: .customLong("temp"), help: "Temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-k"), help: "Top-k sampling (0: off).")
    var topK: Int = 40

    @Option(name: .customLong("top-p"), help: "Top-p sampling (1: off).")
    var topP: Float = 0.95

    @Option(name: .customLong("min-p"), help: "Min-p sampling (0: off).")
    var minP: Float = 0.05

    @Option(name: .customLong("repeat-penalty"), help: "Penalty for repeating recent tokens (1: off).")
    var repeatPenalty: Float = 1.0

    @Option(name: .customLong("repeat-last-n"), help: "Recent tokens the repeat penalty looks at (-1: all).")
    var repeatLastN: Int = 64

    @Option(name: .customLong("presence-penalty"), help: "Subtracted once from the logit of every token the answer has (0: off).")
    var presencePenalty: Float = 0

    @Option(name: .customLong("frequency-penalty"), help: "Subtracted from a token's logit per time the answer has it (0: off).")
    var frequencyPenalty: Float = 0

    @Flag(name: .customLong("ignore-eos"), help: "Never end at the end-of-text token: write until -n or a full context.")
    var ignoreEOS = false

    @Option(name: [.customShort("s"), .long], help: "Random seed for reproducible sampling (default: random).")
    var seed: UInt64?

    @Option(name: .customLong("stop"), help: "Stop when this text appears (repeatable).")
    var stop: [String] = []

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temp must be >= 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1]") }
        guard repeatPenalty > 0 else { throw ValidationError("--repeat-penalty must be positive") }
        guard repeatLastN >= -1 else { throw ValidationError("--repeat-last-n must be -1 (all) or at least 0") }
        guard (-2...2).contains(presencePenalty) else { throw ValidationError("--presence-penalty must be in [-2, 2]") }
        guard (-2...2).contains(frequencyPenalty) else { throw ValidationError("--frequency-penalty must be in [-2, 2]") }
    }

    var options: GenerationOptions {
        var o = GenerationOptions()
        o.maxTokens = nPredict
        o.stop = stop
        o.sampling.temperature = temperature
        o.sampling.topK = topK
        o.sampling.topP = topP
        o.sampling.minP = minP
        o.sampling.repeatPenalty = repeatPenalty
        o.sampling.repeatLastN = repeatLastN
        o.sampling.presencePenalty = presencePenalty
        o.sampling.frequencyPenalty = frequencyPenalty
        o.sampling.ignoreEOS = ignoreEOS
        o.sampling.seed = seed
        return o
    }
}

/// Mode selection and the relay methods' settings.
struct RelayOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Decoding mode, NAME or NAME:key=value,...: \(Mode.names.joined(separator: ", ")).",
                               discussion: Mode.all.map { "\($0.name): \($0.summary)" + ($0.parameters.isEmpty ? "" : " (\($0.parameters.map(\.key).joined(separator: ", ")))") }.joined(separator: "\n")))
    var mode = "large"

    @Option(name: [.customLong("draft-max"), .customLong("spec-draft-n-max")], help: "Most tokens drafted per speculative step (0: no drafting).")
    var draftMax = DraftParams().max

    @Option(name: [.customLong("draft-min"), .customLong("spec-draft-n-min")], help: "Fewest drafted tokens worth verifying.")
    var draftMin = DraftParams().min

    @Option(name: [.customLong("draft-p-min"), .customLong("spec-draft-p-min")], help: "Stop drafting below this draft probability.")
    var draftPMin = DraftParams().pMin

    @Option(help: "The small model drafts from the first N token ids only (0: the whole vocabulary).")
    var draftVocab = DraftParams().vocabulary

    @Option(help: "Also draft by looking up the context's last N tokens (N down to 2) earlier in the context and proposing what followed there (0: off; 3 is a good start).")
    var draftLookup = DraftParams().lookup

    @Option(name: .customLong("draft-adaptive"), help: "on: draft only as many tokens as pay off, from measured costs and acceptance; off: always up to --draft-max.")
    var draftAdaptive = "on"

    @Option(help: "Cue file for relaygen modes (from `relay calibrate`).")
    var cues: String?

    @Option(name: .customLong("relay-head"), help: "Call head for relayllm: a file from `relay train-relay`, or `none` for only the <call>n</call> tags the small model writes itself (default: the head shipped for the small model, if any).")
    var relayHead: String?

    func validate() throws {
        _ = try ModeSpec.parse(mode)
        try Parameters.draftMax.check(draftMax, flag: "--draft-max")
        try Parameters.draftMin.check(draftMin, flag: "--draft-min")
        try Parameters.draftPMin.check(draftPMin, flag: "--draft-p-min")
        try Parameters.draftVocab.check(draftVocab, flag: "--draft-vocab")
        try Parameters.draftLookup.check(draftLookup, flag: "--draft-lookup")
        guard let adaptive = Parameters.adaptive.value(draftAdaptive) else { throw ModeError.badFlag(flag: "--draft-adaptive", rule: Parameters.adaptive.rule) }
        var draft = DraftParams()
        (draft.max, draft.min, draft.adaptive) = (draftMax, draftMin, adaptive)
        try draft.validate()
    }

    func settings(sampling: SamplingParams) throws -> Mode.Settings {
        var s = Mode.Settings()
        s.sampling = sampling
        s.draft.max = draftMax
        s.draft.min = draftMin
        s.draft.pMin = draftPMin
        s.draft.vocabulary = draftVocab
        s.draft.lookup = draftLookup
        s.draft.adaptive = Parameters.adaptive.value(draftAdaptive)!
        s.cues = try cues.map(CueSet.load)
        switch relayHead {
        case nil: s.head = .shipped
        case "none": s.head = .none
        case let path?: s.head = .head(try RelayHead.load(path), path: path)
        }
        return s
    }
}

/// A comma-separated list of positive integers such as "1,4,16", or nil when an entry is not one.
func positiveIntegers(_ list: String) -> [Int]? {
    let n = list.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard n.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
    return n.map { $0! }
}

/// Runs library work whose errors about what the command was given (`TrainingError`) read as bad
/// flags do, with the usage.
@discardableResult
func validating<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as TrainingError { throw ValidationError(error.description) }
}

/// Writes to stderr, unbuffered.
func note(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

func writeOut(_ s: String) {
    fputs(s, stdout)
    fflush(stdout)
}

/// The kernels and threads in use, as the summaries on stderr end.
var engineName: String { "\(Threads.isa), \(Threads.count) threads" }
