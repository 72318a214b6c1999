import ArgumentParser
import Engine
import Eval
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
            let remoteLarge = try remote.make()
            if remoteLarge != nil && model.draftModel == nil {
                throw ValidationError("--large-url needs -md SMALL: the local small model gives the tokenizer and chat template")
            }
            let needsLarge = spec.name != "small" && remoteLarge == nil
            let (m, draft) = try model.load(large: needsLarge || model.draftModel == nil, small: true)
            let primary = (spec.name == "small" || m == nil ? draft ?? m : m)!
            let tok = primary.tokenizer
            var options = sampling.options
            let input: [Int32]
            if raw {
                input = tok.encode(text, addBOS: tok.addBOS)
            } else {
                let template = try model.template(for: primary)
                var messages: [ChatMessage] = []
                if let system { messages.append(ChatMessage(role: "system", content: system)) }
                messages.append(ChatMessage(role: "user", content: text))
                input = tok.encode(template.render(messages), addBOS: tok.addBOS)
                options.stop += template.stopStrings
            }
            let pair = ModePair(large: needsLarge ? m.map { Session(model: $0, contextSize: model.ctxSize) } : nil,
                                small: draft.map { Session(model: $0, contextSize: model.ctxSize) }, remote: remoteLarge)
            var settings = try relay.settings(sampling: options.sampling)
            settings.largeFailureToSmall = remote.fallsBackToSmall
            let strategy = try Modes.make(spec.name, parameters: Dictionary(spec.parameters.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }),
                                          pair: pair, settings: settings)
            let colors = color && isatty(1) != 0
            let result = try Relay.generate(strategy, prompt: input, tokenizer: tok, contextSize: model.ctxSize, options: options) { piece, role, _ in
                if !json { writeOut(colors ? paint(piece, role) : piece) }
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
        var s = String(format: "prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | %.2f s | finish: %@ | %@, %d threads",
                       result.promptTokens, prefillRate, result.tokens.count, decodeRate, result.seconds,
                       result.finishReason.rawValue, Threads.isa, Threads.count)
        if !result.calls.isEmpty {
            s += String(format: "\ncalls %d | large model: %d tokens requested, %d written | large share %.1f%% | rho %.3f",
                        result.calls.count, result.requested, result.tokensByRole[.large] ?? 0, result.largeShare * 100, result.rho)
        }
        if result.tokensByRole.count > 1 || result.drafted > 0 {
            s += String(format: "\nlarge %d tokens, small %d tokens (large share %.1f%%) | hand-overs %d | drafted %d, accepted %d (%.1f%%)",
                        result.tokensByRole[.large] ?? 0, result.tokensByRole[.small] ?? 0, result.largeShare * 100,
                        result.handovers, result.drafted, result.accepted,
                        result.drafted > 0 ? Double(result.accepted) * 100 / Double(result.drafted) : 0)
        }
        if let remote = result.remote {
            s += String(format: "\nremote large model: %d requests, %d retries, %.2f s", remote.requests, remote.retries, remote.seconds)
        }
        if let failure = result.largeFailure { s += "\nthe small model finished the answer: \(failure)" }
        return s
    }

    func json() throws -> String {
        var object: [String: Any] = [
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
            "tokens_by_role": Dictionary(uniqueKeysWithValues: result.tokensByRole.map { ($0.key.rawValue, $0.value) }),
            "segments": result.segments.map { ["role": $0.role.rawValue, "text": $0.text] },
            "handovers": result.handovers,
            "drafted": result.drafted,
            "accepted": result.accepted,
            "large_share": result.largeShare,
            "token_roles": result.roles.map(\.rawValue),
            "acceptance_rate": result.drafted > 0 ? Double(result.accepted) / Double(result.drafted) : 0,
            "seconds_by_role": Dictionary(uniqueKeysWithValues: Set(result.prefillSeconds.keys).union(result.decodeSeconds.keys).map {
                ($0.rawValue, (result.prefillSeconds[$0] ?? 0) + (result.decodeSeconds[$0] ?? 0))
            }),
            "calls": result.calls.count,
            "large_tokens_requested": result.requested,
            "large_tokens_written": result.tokensByRole[.large] ?? 0,
            "rho": result.rho,
        ]
        if let remote = result.remote {
            object["remote"] = ["requests": remote.requests, "retries": remote.retries, "seconds": remote.seconds]
        }
        if let failure = result.largeFailure { object["large_failure"] = failure }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// ANSI colour for text the small model wrote.
func paint(_ text: String, _ role: Role) -> String {
    role == .small ? "\u{1B}[32m" + text + "\u{1B}[0m" : text
}
