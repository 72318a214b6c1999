import ArgumentParser
import Assets
import Eval
import Foundation
import Progress
import Training

extension RelayCommand {
    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find RelayGen's cue phrases: where the small model is sure of the large model's text.",
            discussion: "Generates large-model traces (or reads --traces), re-scores them with the small model, and writes the cues with delta > 0 to --out, with an HTML page beside it. Calibrate on problems disjoint from the evaluation set (e.g. --task math-train).")

        @OptionGroup var model: ModelOptions

        @Option(help: "Task whose problems the large model answers (see `relay eval --help`).")
        var task = "math-train"

        @Option(help: "Problems to trace.") var limit = 20
        @Option(help: "Skip the first K problems.") var offset = 0
        @Option(name: .customLong("max-tokens"), help: "Most tokens per trace.") var maxTokens = 512
        @Option(help: "Read traces from this JSONL file instead of generating them (written beside --out otherwise).")
        var traces: String?
        @Option(name: .customLong("top-cues"), help: "Keep at most K cues.") var topCues: Int?
        @Option(name: .customLong("min-count"), help: "Keep only cues seen at least this often in the traces.") var minCount = 2
        @Option(help: "Cue file to write.") var out: String

        func run() throws {
            let models = try model.pair(needs: [.largeLogits, .small], for: "relay calibrate")
            let template = try model.template(for: models.large!)
            let source: CueCalibration.Source = try traces.map { .file($0) }
                ?? .problems(Selection(offset: offset, limit: limit).apply(try TaskLoader.load(task, dataDirectory: AssetStore().dataDir).problems))
            var settings = CueCalibration.Settings(out: out)
            (settings.maxTokens, settings.topCues, settings.minCount, settings.contextSize) = (maxTokens, topCues, minCount, model.ctxSize)
            let result = try validating {
                try CueCalibration.run(large: models.large!, small: models.small!, source: source, template: template, settings: settings, progress: ProgressBar())
            }
            for c in result.cues.prefix(15) { writeOut(String(format: "%-16@ delta %+.3f  n=%d\n", "\"\(c.text)\"" as NSString, c.delta, c.count)) }
        }
    }
}
