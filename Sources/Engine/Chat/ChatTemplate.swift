import Foundation

// Chat templates: the known prompt formats, recognised from a GGUF's Jinja template
// (`tokenizer.chat_template`) or chosen by name, rendered in Swift rather than by a Jinja engine.
//
//   chatml  <|im_start|>ROLE\nCONTENT<|im_end|>\n per message, then <|im_start|>assistant\n.
//           The template's default system prompt (SmolLM2, Qwen2.5) is taken from the Jinja text
//           and rendered when the conversation does not start with a system message.
//   llama3  <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> per message, content
//           trimmed, then <|start_header_id|>assistant<|end_header_id|>\n\n: llama.cpp's built-in
//           "llama3" template. <|begin_of_text|> is the BOS the tokenizer adds, not part of the text.
//
// Known limits: tools and tool calls are not rendered (Qwen's tools branch is ignored; a "tool"
// message renders like any other role).

public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// The model's template is missing or not one of the known forms.
    case unknown(String)
    /// `named` got a name that is not a known form.
    case unknownName(String)

    public var description: String {
        let hint = "pass --chat-template \(ChatTemplate.names.joined(separator: "|")) to choose one"
        switch self {
        case .unknown(let why): return "unknown chat template: \(why); \(hint)"
        case .unknownName(let name): return "unknown chat template name '\(name)'; \(hint)"
        }
    }
}

public struct ChatTemplate: Sendable, Equatable {
    public enum Form: String, Sendable, CaseIterable {
        case chatml, llama3
    }

    public let form: Form
    /// Rendered as the system message when the conversation has none.
    public let defaultSystemPrompt: String?
    /// Whether the default system prompt is rendered for an empty conversation too (Qwen renders it
    /// before its message loop; SmolLM2 inside it, so only with a first message).
    public let defaultSystemWhenEmpty: Bool

    /// Names accepted by `named` (and `--chat-template`).
    public static let names = Form.allCases.map(\.rawValue)

    public init(form: Form, defaultSystemPrompt: String? = nil, defaultSystemWhenEmpty: Bool = true) {
        self.form = form
        self.defaultSystemPrompt = defaultSystemPrompt
        self.defaultSystemWhenEmpty = defaultSystemWhenEmpty
    }

    /// A known form by name, without a default system prompt.
    public static func named(_ name: String) throws -> ChatTemplate {
        guard let form = Form(rawValue: name.lowercased()) else { throw ChatTemplateError.unknownName(name) }
        return ChatTemplate(form: form)
    }

    /// Recognises the form of a GGUF's Jinja chat template.
    public static func detect(from jinja: String?) throws -> ChatTemplate {
        guard let jinja, !jinja.isEmpty else {
            throw ChatTemplateError.unknown("the model has no chat template (tokenizer.chat_template)")
        }
        if jinja.contains("<|im_start|>") {
            let found = JinjaLiterals.defaultSystemPrompt(in: jinja)
            return ChatTemplate(form: .chatml, defaultSystemPrompt: found?.prompt,
                                defaultSystemWhenEmpty: !(found?.insideMessageLoop ?? false))
        }
        if jinja.contains("<|start_header_id|>") {
            return ChatTemplate(form: .llama3)
        }
        throw ChatTemplateError.unknown("the model's chat template is neither ChatML nor Llama 3")
    }

    /// Text that marks the end of a turn; generation should stop there.
    public var endOfTurn: String {
        switch form {
        case .chatml: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        }
    }

    /// Stop strings for generation with this template.
    public var stopStrings: [String] { [endOfTurn] }

    /// The prompt text for a conversation, as the model's template renders it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var all = messages
        if let system = defaultSystemPrompt, messages.first?.role != "system",
           !messages.isEmpty || defaultSystemWhenEmpty {
            all.insert(ChatMessage(role: "system", content: system), at: 0)
        }
        var out = ""
        switch form {
        case .chatml:
            for m in all { out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            for m in all {
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + ChatTemplate.trim(m.content) + "<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }

    /// Strips ASCII whitespace (C isspace) from both ends, as llama.cpp's template code does.
    static func trim(_ s: String) -> String {
        let u = Array(s.utf8)
        func space(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        var lo = 0, hi = u.count
        while lo < hi && space(u[lo]) { lo += 1 }
        while hi > lo && space(u[hi - 1]) { hi -= 1 }
        return String(decoding: u[lo..<hi], as: UTF8.self)
    }
}

/// Just enough Jinja reading to find string literals in a template's tags.
enum JinjaLiterals {
    /// The default system prompt of a ChatML template: the text of a string literal of the form
    /// '<|im_start|>system\n...<|im_end|>' (literals inside {{ }} and {% %} only).
    static func defaultSystemPrompt(in jinja: String) -> (prompt: String, insideMessageLoop: Bool)? {
        let head = "<|im_start|>system\n"
        let tail = "<|im_end|>"
        for (literal, offset) in literals(in: jinja) where literal.hasPrefix(head) {
            let rest = literal.dropFirst(head.count)
            guard let end = rest.range(of: tail) else { continue }
            let prompt = String(rest[..<end.lowerBound])
            guard !prompt.isEmpty else { continue }
            return (prompt, isInsideMessageLoop(jinja, offset))
        }
        return nil
    }

    /// Whether scalar offset `at` lies between a `for ... in messages` tag and its `endfor`.
    static func isInsideMessageLoop(_ jinja: String, _ at: Int) -> Bool {
        let s = Array(jinja.unicodeScalars)
        let text = String(String.UnicodeScalarView(s[..<at]))
        guard let loop = text.range(of: "in messages", options: .backwards) else { return false }
        return !text[loop.upperBound...].contains("endfor")
    }

    /// Unescaped string literals found inside Jinja tags, with the scalar offset of each.
    static func literals(in jinja: String) -> [(String, Int)] {
        let s = Array(jinja.unicodeScalars)
        var out: [(String, Int)] = []
        var i = 0
        var inTag = false
        while i < s.count {
            let c = s[i]
            if !inTag {
                if c == "{", i + 1 < s.count, s[i + 1] == "{" || s[i + 1] == "%" { inTag = true; i += 2 } else { i += 1 }
                continue
            }
            if (c == "}" || c == "%"), i + 1 < s.count, s[i + 1] == "}" { inTag = false; i += 2; continue }
            guard c == "'" || c == "\"" else { i += 1; continue }
            let start = i
            var lit = String.UnicodeScalarView()
            i += 1
            while i < s.count, s[i] != c {
                if s[i] == "\\", i + 1 < s.count {
                    i += 1
                    switch s[i] {
                    case "n": lit.append("\n")
                    case "t": lit.append("\t")
                    case "r": lit.append("\r")
                    default: lit.append(s[i])
                    }
                } else {
                    lit.append(s[i])
                }
                i += 1
            }
            i += 1
            out.append((String(lit), start))
        }
        return out
    }
}
