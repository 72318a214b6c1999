import Engine
import Foundation
import Progress
import Relay

/// Runs a benchmark task under decoding modes with a pair of real models: the glue between the
/// harness (selection, scoring, results, reports) and the relay strategies.
public struct EvalRunner {
    public var task: TaskSet
    public var config: EvalConfig
    public var modes: [ModeSpec]
    public var models: ModelPair
    public var contextSize: Int
    public var settings: Mode.Settings
    public var chatTemplate: ChatTemplate

    public init(task: TaskSet, config: EvalConfig, modes: [ModeSpec], models: ModelPair, contextSize: Int,
                settings: Mode.Settings, chatTemplate: ChatTemplate) {
        self.task = task
        self.config = config
        self.modes = modes
        self.models = models
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
        let sessions = models.sessions(contextSize: contextSize)
        let tokenizer = models.primary.tokenizer
        let byName = Dictionary(modes.map { ($0.raw, $0) }, uniquingKeysWith: { a, _ in a })
        var options = GenerationOptions()
        options.maxTokens = config.maxTokens
        options.sampling = settings.sampling
        options.stop = chatTemplate.stopStrings

        try Harness.run(problems: task.problems, modes: modes.map(\.raw), scoring: task.scoring, store: store,
                        progress: progress, onRecord: onRecord) { problem, mode in
            let spec = byName[mode]!
            let prompt = tokenizer.encode(promptText(problem), addBOS: tokenizer.addBOS)
            let strategy = try Mode.make(spec, sessions: sessions, settings: settings, promptTokens: prompt.count)
            let r = try Relay.generate(strategy, prompt: prompt, tokenizer: tokenizer, contextSize: contextSize, options: options)
            return (r.answer, Telemetry(r, mode: spec.raw))
        }
        return try Report.write(directory: directory, modes: modes.map(\.raw))
    }
}
