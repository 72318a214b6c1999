import Engine
import Foundation
import Relay

// OpenAI's response shapes as Codable types (the OpenAPI document, Resources/openapi.json,
// describes the same), with Relay's `Telemetry` as the `relay` field. Where OpenAI writes a null
// (a chunk's `finish_reason`, `logprobs`), these write one too.

/// A field OpenAI writes as null when it has no value, where synthesised Encodable would leave the
/// key out (an optional wrapped in this is always encoded).
@propertyWrapper
struct NullWhenNil<T: Encodable>: Encodable {
    var wrappedValue: T?

    init(wrappedValue: T?) { self.wrappedValue = wrappedValue }

    static var null: Self { Self(wrappedValue: nil) }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let value = wrappedValue { try c.encode(value) } else { try c.encodeNil() }
    }
}

/// A chat completion, a text completion, or a chunk of either.
struct CompletionObject: Encodable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var choices: [Choice]
    /// Left out when nil; a stream with usage asked for writes null in its chunks.
    var usage: NullWhenNil<Usage>?
    /// One choice's telemetry (with several choices, each carries its own).
    var relay: Telemetry?
    /// Which model wrote a chunk's text.
    var relayRole: Role?

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage, relay, relayRole = "relay_role" }
}

struct Usage: Encodable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
}

struct Choice: Encodable {
    var index: Int
    /// Completions.
    var text: String? = nil
    /// Chat, a whole answer.
    var message: Message? = nil
    /// Chat, a chunk.
    var delta: Delta? = nil
    /// null while a stream goes on.
    @NullWhenNil var finishReason: String? = nil
    /// null when not asked for.
    @NullWhenNil var logprobs: Logprobs? = nil
    var relay: Telemetry? = nil

    struct Message: Encodable {
        var role = "assistant"
        var content: String
    }

    struct Delta: Encodable {
        var role: String?
        var content: String?
    }

    enum CodingKeys: String, CodingKey { case index, text, message, delta, finishReason = "finish_reason", logprobs, relay }
}

/// OpenAI's two log-probability shapes: chat's `content` list, completions' parallel arrays.
enum Logprobs: Encodable {
    struct Token: Encodable {
        var token: String
        var logprob: Float
        var bytes: [Int]
    }

    struct Entry: Encodable {
        var token: String
        var logprob: Float
        var bytes: [Int]
        var top_logprobs: [Token]
    }

    case chat(content: [Entry])
    case text(tokens: [String], tokenLogprobs: [Float], top: [[String: Float]], textOffset: [Int])

    enum CodingKeys: String, CodingKey { case content, tokens, tokenLogprobs = "token_logprobs", top = "top_logprobs", textOffset = "text_offset" }

    /// `offset`: where the entries' text starts in the answer (a stream's later chunks).
    init(_ entries: [TokenLogprob], chat: Bool, tokenizer tok: Tokenizer, offset start: Int = 0) {
        func text(_ id: Int32) -> String { tok.decode([id]) }
        func bytes(_ id: Int32) -> [Int] { tok.tokenBytes(id).map(Int.init) }
        if chat {
            self = .chat(content: entries.map { e in
                Entry(token: text(e.token), logprob: e.logprob, bytes: bytes(e.token),
                      top_logprobs: e.top.map { Token(token: text($0.token), logprob: $0.logprob, bytes: bytes($0.token)) })
            })
            return
        }
        var offsets: [Int] = [], offset = start
        for e in entries { offsets.append(offset); offset += text(e.token).count }
        self = .text(tokens: entries.map { text($0.token) }, tokenLogprobs: entries.map(\.logprob),
                     top: entries.map { e in Dictionary(e.top.map { (text($0.token), $0.logprob) }, uniquingKeysWith: max) },
                     textOffset: offsets)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .chat(let content): try c.encode(content, forKey: .content)
        case let .text(tokens, logprobs, top, offsets):
            try c.encode(tokens, forKey: .tokens)
            try c.encode(logprobs, forKey: .tokenLogprobs)
            try c.encode(top, forKey: .top)
            try c.encode(offsets, forKey: .textOffset)
        }
    }
}

struct ModelList: Encodable {
    struct Entry: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "relay"
    }

    var object = "list"
    var data: [Entry]
}

struct Health: Encodable {
    var status = "ok"
    var slots: Int
    var slots_busy: Int
    var queue_depth: Int
}

/// `{"error": {"message", "type", "param", "code"}}`, param and code null when unset.
struct ErrorBody: Encodable {
    struct Detail: Encodable {
        var message: String
        var type: String
        @NullWhenNil var param: String?
        @NullWhenNil var code: String?
    }

    var error: Detail
}

/// The one JSON encoder of the server's answers: Telemetry's, and a non-finite number (which no
/// answer should have) written as a string rather than failing the answer.
let responseEncoder: JSONEncoder = {
    let e = Telemetry.encoder()
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    return e
}()

func encodeJSON<T: Encodable>(_ value: T) -> Data {
    (try? responseEncoder.encode(value)) ?? Data(#"{"error":{"message":"the answer could not be encoded","type":"server_error","param":null,"code":null}}"#.utf8)
}
