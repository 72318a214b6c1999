import Engine
import Foundation
import Relay

/// Runs a benchmark task under decoding modes with a pair of real models: the glue between the
/// harness (selection, scoring, results, reports) and the relay strategies.
public struct EvalRunner {
    public var task: TaskSet
    public var config: EvalConfig
    public var modes: [ModeSpec]
    public var large: Model?
    public var small: Model?
    public var contextSize: Int
    public var settings: Modes.Settings
    public var chatTemplate: ChatTemplate
    /// A remote large model (`--large-url`), used by the text-level modes when `large` is nil.
    public var remote: LargeModel?

    public init(task: TaskSet, config: EvalConfig, modes: [ModeSpec], large: Model?, small: Model?, contextSize: Int,
                settings: Modes.Settings, chatTemplate: ChatTemplate) {
        self.task = task
        self.config = config
        self.modes = modes
        self.large = large
        self.small = small
        self.contextSize = contextSize
        self.settings = settings
        self.chatTemplate = chatTemplate
    }

    /// The prompt of one problem, as the model sees it.
    public func promptText(_ problem: Problem) -> String {
        var messages: [ChatMessage] = []
        if let system = config.systemPrompt { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: Prompt.userMessage(problem, suffix: config.promptSuffix)))
        return chatTemplate.render(messages)
    }

    /// Runs every (problem, mode) pair not yet in `directory`, then writes the reports.
    public func run(directory: String, progress: ProgressBar?, onRecord: ((EvalRecord) -> Void)? = nil) throws -> Summary {
        let store = try ResultStore(directory: directory, config: config)
        defer { store.close() }
        for w in store.warnings { FileHandle.standardError.write(Data(("warning: " + w + "\n").utf8)) }
        // One session per model for the whole run: problems share the system prompt's KV cache.
        let pair = ModePair(large: large.map { Session(model: $0, contextSize: contextSize) },
                            small: small.map { Session(model: $0, contextSize: contextSize) }, remote: remote)
        let tokenizer = (large ?? small)!.tokenizer
        let byName = Dictionary(modes.map { ($0.raw, $0) }, uniquingKeysWith: { a, _ in a })
        var options = GenerationOptions()
        options.maxTokens = config.maxTokens
        options.sampling = settings.sampling
        options.stop = chatTemplate.stopStrings

        try Harness.run(problems: task.problems, modes: modes.map(\.raw), scoring: task.scoring, store: store,
                        progress: progress, onRecord: onRecord) { problem, mode in
            let spec = byName[mode]!
            let strategy = try Modes.make(spec.name, parameters: Dictionary(spec.parameters.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }),
                                          pair: pair, settings: settings)
            let prompt = tokenizer.encode(promptText(problem), addBOS: tokenizer.addBOS)
            let r = try Relay.generate(strategy, prompt: prompt, tokenizer: tokenizer, contextSize: contextSize, options: options)
            func keyed(_ d: [Role: Double]) -> [String: Double] { Dictionary(uniqueKeysWithValues: d.map { ($0.key.rawValue, $0.value) }) }
            let relay = strategy is RelayLLM
            return Generation(output: r.answer, tokens: Dictionary(uniqueKeysWithValues: r.tokensByRole.map { ($0.key.rawValue, $0.value) }),
                              drafted: r.drafted > 0 ? r.drafted : nil, accepted: r.drafted > 0 ? r.accepted : nil,
                              handovers: r.handovers > 0 ? r.handovers : nil,
                              calls: relay ? r.calls.count : nil, requested: relay ? r.requested : nil, seconds: r.seconds,
                              prefillSeconds: keyed(r.prefillSeconds), decodeSeconds: keyed(r.decodeSeconds),
                              finishReason: r.finishReason.rawValue)
        }
        return try Report.write(directory: directory, modes: modes.map(\.raw))
    }
}
