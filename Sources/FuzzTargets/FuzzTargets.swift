import Engine
import Eval
import Foundation
import GGUF
import Kernels
import Relay
@testable import Server

/// Entry points for coverage-guided fuzzing: each takes arbitrary bytes and must return (any
/// error is fine) without crashing, hanging or growing memory. `relay-fuzz` runs them under
/// libFuzzer (scripts/fuzz.sh) or replays a corpus; FuzzTests replay the regression corpus.
public enum FuzzTargets {
    public static let all: [String: (UnsafeRawBufferPointer) -> Void] = [
        "gguf": gguf,
        "tokenizer": tokenizer,
        "tokenizer-meta": tokenizerMetadata,
        "chat-template": chatTemplate,
        "mode": mode,
        "openai-request": openAIRequest,
        "relayllm-tags": relayLLMTags,
        "cues": cues,
        "head": head,
    ]

    public static var names: [String] { all.keys.sorted() }

    static func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The GGUF reader and model load up to the first forward.
    static func gguf(_ bytes: UnsafeRawBufferPointer) {
        Threads.configure(1)
        guard let file = try? GGUFFile(bytes: bytes, name: "fuzz.gguf"),
              let model = try? Model(file: file, maxBatch: 4) else { return }
        _ = try? model.forward([0], cache: model.makeCache(capacity: 2))
        _ = model.tokenizer.encode("Hello <|im_start|> world 123")
    }

    /// SmolLM2's real tokenizer, loaded once, the model file it needs fetched by scripts/test.sh.
    static let smolTokenizer: Tokenizer? = {
        let home = ProcessInfo.processInfo.environment["RELAY_HOME"] ?? NSHomeDirectory() + "/.cache/relay"
        return try? Tokenizer(path: home + "/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }()

    /// Arbitrary bytes through encode and decode, with and without special tokens.
    static func tokenizer(_ bytes: UnsafeRawBufferPointer) {
        guard let tok = smolTokenizer else { fatalError("the SmolLM2 model is missing: run scripts/test.sh once") }
        let s = text(bytes)
        for special in [true, false] {
            let ids = tok.encode(s, addBOS: special, parseSpecial: special)
            _ = tok.decode(ids)
        }
        // Ids from the bytes themselves, in and out of the vocabulary's range.
        let ids = stride(from: 0, to: bytes.count - 1, by: 2).map { Int32(bytes[$0]) << 8 | Int32(bytes[$0 + 1]) }
        _ = tok.decode(ids.map { $0 * 3 })
    }

    /// A tokenizer built from metadata in the input: NUL-separated fields, the first the
    /// pre-tokenizer name, then tokens and merges separated by newlines, then text to encode.
    static func tokenizerMetadata(_ bytes: UnsafeRawBufferPointer) {
        let fields = text(bytes).split(separator: "\0", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 4 else { return }
        let tokens = fields[1].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let merges = fields[2].split(separator: "\n").map(String.init)
        let types = tokens.indices.map { i in Int(tokens[i].utf8.first ?? 0) % 8 }
        guard let tok = try? Tokenizer(tokens: tokens, tokenTypes: types, merges: merges, pre: fields[0].isEmpty ? nil : fields[0],
                                       special: SpecialTokenIDs(bos: 0, eos: Int32(tokens.count - 1))) else { return }
        _ = tok.decode(tok.encode(fields[3]))
    }

    static func chatTemplate(_ bytes: UnsafeRawBufferPointer) {
        guard let t = try? ChatTemplate.detect(from: text(bytes)) else { return }
        _ = t.render([ChatMessage(role: "system", content: "s"), ChatMessage(role: "user", content: text(bytes))])
    }

    /// The mode grammar, as the CLI, eval and the server read it (`ModeSpec`).
    static func mode(_ bytes: UnsafeRawBufferPointer) {
        _ = try? ModeSpec.parse(text(bytes))
        _ = try? ModeSpec.parseList(text(bytes))
    }

    static let controller: CompletionsController? = smolTokenizer.map { tok in
        let served = ServedModels(ids: ["m"], defaultMode: "large", tokenizer: tok, template: ChatTemplate(form: .chatml),
                                  contextSize: 512, sampling: .greedy)
        let metrics = Metrics()
        let pool = SlotPool(pairs: [], queueLimit: 0, settings: Mode.Settings(), tokenizer: tok, contextSize: 512, metrics: metrics)
        return CompletionsController(served: served, pool: pool, metrics: metrics, apiKey: nil)
    }

    /// A request body through decoding and planning (checks, template, tokenising), both endpoints.
    static func openAIRequest(_ bytes: UnsafeRawBufferPointer) {
        guard let controller else { fatalError("the SmolLM2 model is missing: run scripts/test.sh once") }
        guard let request = try? CompletionRequest.decode(Data(bytes)) else { return }
        for chat in [true, false] { _ = try? controller.plan(request, chat: chat) }
    }

    /// The `<call>n</call>` matcher from every offset, and tag removal.
    static func relayLLMTags(_ bytes: UnsafeRawBufferPointer) {
        let s = text(bytes)
        var from = 0
        while let (_, end) = RelayTag.firstCall(in: s, from: from) {
            precondition(end > from, "a tag match must move forward")
            from = end
        }
        for offset in [0, 1, 3, s.utf8.count / 2, s.utf8.count] { _ = RelayTag.firstCall(in: s, from: offset) }
        let stripped = RelayTag.strip(s)
        precondition(RelayTag.firstCall(in: stripped, from: 0) == nil, "strip left a tag")
    }

    static func cues(_ bytes: UnsafeRawBufferPointer) { _ = try? CueSet.decode(Data(bytes), source: "fuzz.json") }

    static func head(_ bytes: UnsafeRawBufferPointer) { _ = try? RelayHead.decode(Data(bytes), source: "fuzz.json") }
}
