import ArgumentParser
import Engine
import Foundation
import Kernels
import Relay

extension RelayCommand {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a continuation of a prompt, streamed to stdout.",
            discussion: "By default PROMPT is sent as a user message through the model's chat template; --raw feeds it as plain text.")

        @OptionGroup var model: ModelOptions
        @OptionGroup var sampling: SamplingOptions

        @Option(name: [.customShort("p"), .long], help: "Prompt text.")
        var prompt: String?

        @Option(name: [.customShort("f"), .long], help: "Read the prompt from a file.")
        var file: String?

        @Flag(help: "Feed the prompt as plain text (BOS as the model's metadata says) and print only the continuation.")
        var raw = false

        @Option(name: .customLong("system"), help: "System message (default: the template's own).")
        var system: String?

        @Flag(help: "Print one JSON object with the text and timings instead of streaming text.")
        var json = false

        func validate() throws {
            guard (prompt == nil) != (file == nil) else { throw ValidationError("give exactly one of -p/--prompt and -f/--file") }
        }

        func run() throws {
            let text: String
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read prompt file \(file)") }
                text = String(decoding: data, as: UTF8.self)
            } else {
                text = prompt!
            }
            let m = try model.load()
            let tok = m.tokenizer
            var options = sampling.options
            let input: [Int32]
            if raw {
                input = tok.encode(text, addBOS: tok.addBOS)
            } else {
                let template = try model.template(for: m)
                var messages: [ChatMessage] = []
                if let system { messages.append(ChatMessage(role: "system", content: system)) }
                messages.append(ChatMessage(role: "user", content: text))
                input = tok.encode(template.render(messages), addBOS: tok.addBOS)
                options.stop += template.stopStrings
            }
            let strategy = Solo(session: Session(model: m, contextSize: model.ctxSize), role: .large, sampling: options.sampling)
            let result = try Relay.generate(strategy, prompt: input, tokenizer: tok, contextSize: model.ctxSize, options: options) { piece, _ in
                if !json { writeOut(piece) }
                return true
            }
            let stats = Telemetry(result)
            if json {
                writeOut(try stats.json() + "\n")
            } else {
                if !result.text.hasSuffix("\n") { writeOut("\n") }
                note(stats.summary)
            }
        }
    }
}

/// Timings of one generation, as printed on stderr or in --json.
struct Telemetry {
    let result: RelayResult

    init(_ result: RelayResult) { self.result = result }

    var prefillSeconds: Double { result.prefillSeconds.values.reduce(0, +) }
    var decodeSeconds: Double { result.decodeSeconds.values.reduce(0, +) }
    var prefillRate: Double { prefillSeconds > 0 ? Double(result.promptTokens) / prefillSeconds : 0 }
    var decodeRate: Double { decodeSeconds > 0 ? Double(max(result.tokens.count - 1, 0)) / decodeSeconds : 0 }

    var summary: String {
        String(format: "prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | %.2f s | finish: %@ | %@, %d threads",
               result.promptTokens, prefillRate, result.tokens.count, decodeRate, result.seconds,
               result.finishReason.rawValue, Threads.isa, Threads.count)
    }

    func json() throws -> String {
        let object: [String: Any] = [
            "text": result.text,
            "tokens": result.tokens.map(Int.init),
            "prompt_tokens": result.promptTokens,
            "generated_tokens": result.tokens.count,
            "finish_reason": result.finishReason.rawValue,
            "prefill_seconds": prefillSeconds,
            "decode_seconds": decodeSeconds,
            "prefill_tokens_per_second": prefillRate,
            "decode_tokens_per_second": decodeRate,
            "seconds": result.seconds,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
