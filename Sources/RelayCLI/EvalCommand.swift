import ArgumentParser
import Assets
import Engine
import Eval
import Foundation
import Progress
import Relay

extension RelayCommand {
    struct EvalCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval",
            abstract: "Accuracy, speed and cost of decoding modes on a benchmark.",
            subcommands: [Run.self, Compare.self],
            defaultSubcommand: Run.self)
    }
}

extension RelayCommand.EvalCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run problems under each mode; results go to --out DIR (re-running resumes).",
            discussion: "-m is the large model, -md the small one (as llama.cpp's draft model); mode `small` runs -md.")

        @OptionGroup var model: ModelOptions
        @OptionGroup var relay: RelayOptions
        @OptionGroup var remote: RemoteOptions

        @Option(help: "gsm8k, math500, math-train, or a JSONL file of {\"id\",\"question\",\"answer\"}.")
        var task: String

        @Option(help: "Modes, comma separated; a mode may carry parameters: name:key=value,key=value.")
        var modes: String = "large,small"

        @Option(help: "Results folder.")
        var out: String

        @Option(help: "Run at most N problems.") var limit: Int?
        @Option(help: "Skip the first K problems (after shuffling).") var offset = 0
        @Flag(help: "Shuffle the problems with --seed before --offset/--limit.") var shuffle = false
        @Option(help: "Seed of --shuffle and of sampling.") var seed: UInt64 = 0

        @Option(name: .customLong("max-tokens"), help: "Most tokens per answer.") var maxTokens = 1024
        @Option(name: .customLong("temp"), help: "Temperature (0: greedy).") var temperature: Float = 0
        @Option(name: .customLong("system"), help: "System prompt (default: the template's own).") var system: String?
        @Flag(name: .customLong("show-prompt"), help: "Print the first problem's prompt and exit.") var showPrompt = false

        func run() throws {
            let specs = try ModeSpec.parseList(modes)
            let taskSet = try TaskLoader.load(task, dataDirectory: AssetStore().dataDir)
            let selection = Selection(offset: offset, limit: limit, shuffle: shuffle, seed: seed)
            let problems = selection.apply(taskSet.problems)
            let remoteLarge = try remote.make()
            let models = try model.pair(for: try specs.map { try Mode.named($0.name) }, remote: remoteLarge)
            let (large, small) = (models.large, models.small)
            let store = AssetStore()
            let primary = models.primary
            let template = try model.template(for: primary)

            var sampling = SamplingParams.greedy
            sampling.temperature = temperature
            sampling.seed = seed
            var infos: [String: ModelInfo] = [:]
            for (role, m) in [("large", large), ("small", small)] {
                guard let m else { continue }
                infos[role] = ModelInfo(path: m.file.path, sha256: try store.sha256(m.file.path), parameters: Double(m.parameterCount))
            }
            var settings = try relay.settings(sampling: sampling)
            settings.largeFailureToSmall = remote.fallsBackToSmall
            // The settings of the relay modes are part of the configuration: a re-run with other cues,
            // another head or other draft settings must not join this run.
            var extra = ["chat_template": "\(template)", "context": "\(model.ctxSize)",
                         "draft": "max=\(settings.draft.max) min=\(settings.draft.min) p-min=\(settings.draft.pMin) vocab=\(settings.draft.vocabulary)"
                             + (settings.draft.adaptive ? " adaptive" : ""),
                         "relay_head": try headIdentity(relay.relayHead, small: small, store: store)]
            if let cues = settings.cues ?? large.flatMap({ l in small.flatMap { CueSet.shipped(large: l, small: $0).file } }) {
                extra["cues"] = cues.cues.map(\.text).joined(separator: " | ")
            }
            if let remoteLarge { extra["large_url"] = remoteLarge.name } else { extra["relaygen_check_p_min"] = "\(RelayGen.Settings.defaultCheckPMin)" }
            let config = EvalConfig(task: task, selection: selection, systemPrompt: system, maxTokens: maxTokens,
                                    sampling: SamplingConfig(temperature: Double(temperature), seed: seed), models: infos, extra: extra)
            var set = taskSet
            set.problems = problems
            let runner = EvalRunner(task: set, config: config, modes: specs, models: models, contextSize: model.ctxSize,
                                    settings: settings, chatTemplate: template)
            if showPrompt {
                if let first = problems.first { writeOut(runner.promptText(first) + "\n") }
                return
            }
            note("\(taskSet.name): \(problems.count) problems × \(specs.count) modes → \(out)")
            let summary = try runner.run(directory: out, progress: ProgressBar())
            writeOut(Report.table(summary) + "\n")
            for line in Report.draftBounds(summary) { writeOut(line + "\n") }
        }

        /// The relayllm head as the configuration pins it: by content, so that retraining the
        /// shipped head (or rewriting a head file) starts a new run instead of joining an old one.
        func headIdentity(_ choice: String?, small: Model?, store: AssetStore) throws -> String {
            switch choice {
            case "none": return "none"
            case let path?: return "\(path) sha256:\(try store.sha256(path).prefix(16))"
            case nil:
                guard let shipped = small.flatMap({ RelayHead.shippedDigest(for: $0) }) else { return "shipped (none for this model)" }
                return "shipped sha256:\(shipped.sha256.prefix(16))"
            }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Differences between two eval runs, with a paired test on accuracy.")
        @Argument(help: "First results folder.") var first: String
        @Argument(help: "Second results folder.") var second: String

        func run() throws {
            writeOut(try Eval.Compare.compare(directoryA: first, directoryB: second) + "\n")
        }
    }
}
