import Foundation
import Relay

// The OpenAI request shapes Relay accepts. Fields OpenAI does not define are ignored (JSONDecoder
// skips them), except llama-server's per-request sampling fields, which are honoured; an OpenAI
// field Relay cannot honour is refused at any value but its no-op default (`Controller.plan`), and
// a field with the wrong type is a 400 that names it.

/// Text content: a string, or an array of `{"type": "text", "text": ...}` parts.
struct MessageContent: Decodable {
    var text: String

    struct Part: Decodable {
        var type: String
        var text: String?
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { text = ""; return }
        if let s = try? c.decode(String.self) { text = s; return }
        guard let parts = try? c.decode([Part].self) else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath,
                                                                debugDescription: "expected a string or an array of text parts"))
        }
        guard parts.allSatisfy({ $0.type == "text" }) else {
            throw APIError.badRequest("only text content parts are supported", param: "messages")
        }
        text = parts.compactMap(\.text).joined()
    }
}

/// A completions `prompt`: a string, an array of strings, an array of token ids, or an array of
/// arrays of token ids. Each is one prompt, answered by its own choices.
struct PromptInput: Decodable {
    enum Prompt { case text(String), tokens([Int]) }
    var prompts: [Prompt]

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { prompts = [.text(s)]; return }
        if let a = try? c.decode([String].self) { prompts = a.map(Prompt.text); return }
        if let a = try? c.decode([Int].self) { prompts = [.tokens(a)]; return }
        if let a = try? c.decode([[Int]].self) { prompts = a.map(Prompt.tokens); return }
        throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath,
                                                            debugDescription: "expected a string, an array of strings, an array of token ids or an array of arrays of token ids"))
    }
}

/// Any JSON value, kept only as whether it is null and, for an array, how long it is: enough to
/// refuse a field Relay does not implement at a value that would change the answer.
struct AnyValue: Decodable {
    var isNull: Bool
    var count: Int?
    var string: String?
    var object: [String: AnyValue]?

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        isNull = c.decodeNil()
        if isNull { return }
        string = try? c.decode(String.self)
        count = (try? c.decode([AnyValue].self))?.count
        if string == nil, count == nil { object = try? c.decode([String: AnyValue].self) }
    }
}

/// A string or an array of strings (`stop`).
struct StringOrArray: Decodable {
    var values: [String]

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { values = [s]; return }
        if let a = try? c.decode([String].self) { values = a; return }
        throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath,
                                                            debugDescription: "expected a string or an array of strings"))
    }
}

struct ChatMessageIn: Decodable {
    var role: String
    var content: MessageContent?
}

struct StreamOptions: Decodable {
    var include_usage: Bool?
}

/// The fields of both endpoints; which are required depends on the endpoint.
struct CompletionRequest: Decodable {
    var model: String?
    var messages: [ChatMessageIn]?
    var prompt: PromptInput?
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var temperature: Double?
    var top_p: Double?
    var seed: Int?
    var stop: StringOrArray?
    var n: Int?
    var stream: Bool?
    var stream_options: StreamOptions?
    /// Chat: a Bool; completions: the number of top log-probabilities (an Int).
    var logprobs: FlexibleLogprobs?
    var top_logprobs: Int?
    var relay_mode: String?
    var echo: Bool?
    // Sampling, as OpenAI defines them.
    var presence_penalty: Double?
    var frequency_penalty: Double?
    var logit_bias: [String: Double]?
    // llama-server's per-request sampling fields.
    var top_k: Int?
    var min_p: Double?
    var repeat_penalty: Double?
    var repeat_last_n: Int?
    var n_predict: Int?
    var ignore_eos: Bool?
    // OpenAI fields Relay does not implement: refused unless at their no-op default.
    var response_format: AnyValue?
    var tools: AnyValue?
    var tool_choice: AnyValue?
    var functions: AnyValue?
    var function_call: AnyValue?
    var parallel_tool_calls: Bool?
    var suffix: String?
    var best_of: Int?
    var store: Bool?
    var modalities: [String]?
    var audio: AnyValue?
    var prediction: AnyValue?
    var reasoning_effort: AnyValue?
    var web_search_options: AnyValue?
    var service_tier: String?

    /// OpenAI's `max_completion_tokens` or `max_tokens`, or llama-server's `n_predict` (-1: no limit).
    var maxTokens: Int? {
        if let m = max_completion_tokens ?? max_tokens { return m }
        if let n = n_predict, n >= 0 { return n }
        return nil
    }
}

/// `logprobs` is a Bool in chat requests and an Int in completion requests.
struct FlexibleLogprobs: Decodable {
    var requested: Bool
    var top: Int?

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { requested = false; return }
        if let b = try? c.decode(Bool.self) { requested = b; return }
        if let n = try? c.decode(Int.self) { requested = true; top = n; return }
        throw DecodingError.typeMismatch(Bool.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a boolean or an integer"))
    }
}

/// An error as OpenAI shapes it: `{"error": {"message", "type", "param", "code"}}`, with its status.
struct APIError: Error, CustomStringConvertible {
    var status: Int
    var message: String
    var type: String
    var code: String?
    var param: String?

    static func badRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", code: code, param: param)
    }

    var description: String { message }

    var body: ErrorBody { ErrorBody(error: .init(message: message, type: type, param: param, code: code)) }
    var json: Data { encodeJSON(body) }
}

extension CompletionRequest {
    /// Decodes a request body (parsed once), turning every failure into a 400 that says what is wrong.
    static func decode(_ data: Data) throws -> CompletionRequest {
        do {
            return try JSONDecoder().decode(CompletionRequest.self, from: data)
        } catch let e as APIError {
            throw e
        } catch let e as DecodingError {
            throw badRequest(e)
        } catch {
            throw APIError.badRequest("the request could not be read: \(error)")
        }
    }

    static func badRequest(_ error: DecodingError) -> APIError {
        let (keys, detail): ([CodingKey], String)
        switch error {
        case .typeMismatch(let type, let c): (keys, detail) = (c.codingPath, "has the wrong type: expected \(describe(type)); \(c.debugDescription)")
        case .valueNotFound(let type, let c): (keys, detail) = (c.codingPath, "is null: expected \(describe(type))")
        case .keyNotFound(let key, let c): (keys, detail) = (c.codingPath + [key], "is missing")
        case .dataCorrupted(let c): (keys, detail) = (c.codingPath, "is not valid: \(c.debugDescription)")
        @unknown default: (keys, detail) = ([], "")
        }
        // Nothing decoded yet: the body itself is not JSON, or not an object.
        guard !keys.isEmpty else { return APIError.badRequest("the request body is not a JSON object (malformed JSON)") }
        let field = path(keys)
        return APIError.badRequest("field '\(field)' \(detail)", param: field)
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.reduce("") { s, k in
            if let i = k.intValue { return s + "[\(i)]" }
            return s.isEmpty ? k.stringValue : s + "." + k.stringValue
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : name
        }
    }
}
