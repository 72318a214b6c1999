import ArgumentParser
import Engine
import Foundation
import Relay

extension RelayCommand {
    struct Chat: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Chat with a model in the terminal.",
            discussion: "Type a message and press Enter. /reset starts a new conversation, /exit (or end of input) quits.")

        @OptionGroup var model: ModelOptions
        @OptionGroup var sampling: SamplingOptions

        @Option(name: .customLong("system"), help: "System message (default: the template's own).")
        var system: String?

        func run() throws {
            let m = try model.load()
            let template = try model.template(for: m)
            guard !sampling.ignoreEOS else { throw ValidationError("--ignore-eos has no use in chat: a turn ends at the end-of-text token") }
            let session = Session(model: m, contextSize: model.ctxSize)
            var options = sampling.options
            options.stop += template.stopStrings
            let start: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
            var messages = start
            let interactive = isatty(0) != 0
            while true {
                if interactive { fputs("> ", stderr) }
                guard let line = readLine() else { break }
                let input = line.trimmingCharacters(in: .whitespaces)
                if input.isEmpty { continue }
                if input == "/exit" || input == "/quit" { break }
                if input == "/reset" { messages = start; note("(new conversation)"); continue }
                messages.append(ChatMessage(role: "user", content: line))
                let prompt = m.tokenizer.encode(template.render(messages), addBOS: m.tokenizer.addBOS)
                do {
                    // The session keeps the conversation's KV cache, so only the new turn is prefilled;
                    // the penalties count this turn's answer.
                    var turn = options.sampling
                    turn.answerStart = prompt.count
                    let strategy = Solo(session: session, role: .large, sampling: turn)
                    let result = try Relay.generate(strategy, prompt: prompt, tokenizer: m.tokenizer, contextSize: model.ctxSize, options: options) { piece, _, _ in
                        writeOut(piece)
                        return true
                    }
                    writeOut("\n")
                    messages.append(ChatMessage(role: "assistant", content: result.text))
                    if interactive { note(Telemetry(result).summary(engine: engineName)) }
                } catch let error as ModelError {
                    note("error: \(error)")
                    messages.removeLast()
                }
            }
        }
    }
}
