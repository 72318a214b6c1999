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
        @OptionGroup var relay: RelayOptions
        @OptionGroup var remote: RemoteOptions

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

        @Flag(help: "Colour the text by the model that wrote it (large: default colour, small: green).")
        var color = false

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
            let spec = try ModeSpec.parse(relay.mode)
            let models = try model.pair(for: [try Mode.named(spec.name)], remote: try remote.make())
            let tok = models.primary.tokenizer
            var options = sampling.options
            let input: [Int32]
            if raw {
                input = tok.encode(text, addBOS: tok.addBOS)
            } else {
                let template = try model.template(for: models.primary)
                var messages: [ChatMessage] = []
                if let system { messages.append(ChatMessage(role: "system", content: system)) }
                messages.append(ChatMessage(role: "user", content: text))
                input = tok.encode(template.render(messages), addBOS: tok.addBOS)
                options.stop += template.stopStrings
            }
            var settings = try relay.settings(sampling: options.sampling)
            settings.largeFailureToSmall = remote.fallsBackToSmall
            let strategy = try Mode.make(spec, sessions: models.sessions(contextSize: model.ctxSize), settings: settings, promptTokens: input.count)
            let colors = color && isatty(1) != 0
            let result = try Relay.generate(strategy, prompt: input, tokenizer: tok, contextSize: model.ctxSize, options: options) { piece, role, _ in
                if !json { writeOut(colors ? paint(piece, role) : piece) }
                return true
            }
            let telemetry = Telemetry(result, mode: spec.raw, segments: true, tokenRoles: true)
            if json {
                writeOut(try GenerateJSON(text: result.text, tokenIDs: result.tokens.map(Int.init), telemetry: telemetry).json() + "\n")
            } else {
                if !result.text.hasSuffix("\n") { writeOut("\n") }
                note(telemetry.summary(engine: engineName))
            }
        }
    }
}

/// `relay generate --json`: the text, its token ids and the telemetry, in one object.
struct GenerateJSON: Encodable {
    let text: String
    let tokenIDs: [Int]
    let telemetry: Telemetry

    enum Keys: String, CodingKey { case text, tokenIDs = "token_ids" }

    func encode(to encoder: Encoder) throws {
        try telemetry.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(text, forKey: .text)
        try c.encode(tokenIDs, forKey: .tokenIDs)
    }

    func json() throws -> String { String(decoding: try Telemetry.encoder().encode(self), as: UTF8.self) }
}

/// ANSI colour for text the small model wrote.
func paint(_ text: String, _ role: Role) -> String {
    role == .small ? "\u{1B}[32m" + text + "\u{1B}[0m" : text
}
