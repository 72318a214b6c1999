import ArgumentParser
import Eval
import Foundation

extension RelayCommand {
    struct Perplexity: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure a model's perplexity on a text, as llama-perplexity does.",
            discussion: """
                The text's tokens are cut into chunks of -c tokens (the first of each replaced by BOS when the model \
                adds one), each run from an empty cache, and the second half of each chunk is scored. \
                --logits-out keeps the scored positions' logits for scripts/fidelity.sh.
                """)

        @OptionGroup var model: ModelOptions

        @Option(name: [.customShort("f"), .long], help: "The text, a file.")
        var file: String?

        @Option(name: .customLong("token-ids"), help: "The text as token ids, a file with a JSON array (as `relay tokenize` prints).")
        var tokenIDs: String?

        @Option(help: "Most chunks to run (-1: all).")
        var chunks = -1

        @Option(name: .customLong("logits-out"), help: "Write the logits of every scored position here: float32 rows of the vocabulary, chunk after chunk.")
        var logitsOut: String?

        func validate() throws {
            guard (file == nil) != (tokenIDs == nil) else { throw ValidationError("give exactly one of -f/--file and --token-ids") }
            guard model.ctxSize >= 4 else { throw ValidationError("-c/--ctx-size \(model.ctxSize): a chunk takes at least 4 tokens") }
            guard chunks == -1 || chunks > 0 else { throw ValidationError("--chunks \(chunks): expected -1 (all) or a positive number") }
        }

        func run() throws {
            let m = try model.load()
            let tokens: [Int32]
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                tokens = m.tokenizer.encode(String(decoding: data, as: UTF8.self), addBOS: m.tokenizer.addBOS)
            } else {
                guard let data = FileManager.default.contents(atPath: tokenIDs!),
                      let ids = try? JSONDecoder().decode([Int32].self, from: data) else {
                    throw ValidationError("--token-ids \(tokenIDs!): expected a file holding a JSON array of token ids")
                }
                tokens = ids
            }
            let measure = Eval.Perplexity(model: m, context: model.ctxSize)
            var all = try measure.chunks(of: tokens)
            if chunks > 0 { all = Array(all.prefix(chunks)) }
            var out: FileHandle?
            if let logitsOut {
                guard FileManager.default.createFile(atPath: logitsOut, contents: nil), let handle = FileHandle(forWritingAtPath: logitsOut) else {
                    throw ValidationError("--logits-out \(logitsOut): cannot write there")
                }
                out = handle
            }
            defer { try? out?.close() }
            note("perplexity: \(tokens.count) tokens, \(all.count) chunks of \(model.ctxSize), positions \(measure.scored.lowerBound)..<\(measure.scored.upperBound) of each scored (\(engineName))")
            let start = Date()
            var score = Eval.Perplexity.Score()
            for (i, chunk) in all.enumerated() {
                try measure.run(chunk, into: &score) { rows in try out?.write(contentsOf: Data(buffer: rows)) }
                writeOut("[\(i + 1)]\(String(format: "%.4f", score.perplexity)),")
            }
            writeOut("\nFinal estimate: PPL = \(String(format: "%.4f +/- %.5f", score.perplexity, score.error))\n")
            note(String(format: "%d positions scored in %.1f s", score.count, Date().timeIntervalSince(start)))
        }
    }
}
