import Assets
import Engine
import Foundation
import GGUF
import Testing

/// Expected renders were produced with Python's jinja2 from the GGUFs' own templates.
@Suite("Chat templates")
struct ChatTemplateTests {
    static let smolSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    static let qwenSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

    /// SmolLM2-135M-Instruct's tokenizer.chat_template, verbatim (its newlines are literal).
    static let smolJinja = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        + "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
        + "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

    /// Qwen2.5-Coder-0.5B-Instruct's tokenizer.chat_template, verbatim (escaped newlines, tools branch).
    static let qwenJinja = #"""
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}

"""#

    static let llama3Jinja = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
        + "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
        + "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
        + "{{ content }}{% endfor %}{% if add_generation_prompt %}"
        + "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"

    static let user = [ChatMessage(role: "user", content: "Hi")]
    static let withSystem = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi")]
    static let multiTurn = [
        ChatMessage(role: "user", content: "What is 2+2?"),
        ChatMessage(role: "assistant", content: "4"),
        ChatMessage(role: "user", content: "And 3+3?"),
    ]

    /// The chat template stored in a model file, or nil when the model has not been fetched.
    static func jinja(ofModel name: String) throws -> String? {
        let path = AssetStore().modelPath(name)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try GGUFFile(path: path).string(GGUFKey.Tokenizer.chatTemplate)
    }

    @Test("the SmolLM2 template is ChatML with its default system prompt")
    func detectSmol() throws {
        let t = try ChatTemplate.detect(from: Self.smolJinja)
        #expect(t.form == .chatml)
        #expect(t.defaultSystemPrompt == Self.smolSystem)
        #expect(t.stopStrings == ["<|im_end|>"])
        #expect(t.endOfTurn == "<|im_end|>")
    }

    @Test("the template read from the real SmolLM2 GGUF is the one these tests use")
    func smolFromModel() throws {
        guard let jinja = try Self.jinja(ofModel: "smollm2-135m") else { try Test.cancel("SmolLM2-135M not fetched") }
        #expect(jinja == Self.smolJinja)
        #expect(try ChatTemplate.detect(from: jinja) == ChatTemplate.detect(from: Self.smolJinja))
    }

    @Test("SmolLM2 renders its default system prompt when the conversation has none")
    func smolNoSystem() throws {
        let t = try ChatTemplate.detect(from: Self.smolJinja)
        #expect(t.render(Self.user) == "<|im_start|>system\n\(Self.smolSystem)<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(t.render(Self.user, addGenerationPrompt: false)
            == "<|im_start|>system\n\(Self.smolSystem)<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
    }

    @Test("SmolLM2 renders the conversation's own system message instead of the default")
    func smolWithSystem() throws {
        let t = try ChatTemplate.detect(from: Self.smolJinja)
        #expect(t.render(Self.withSystem) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(t.render(Self.withSystem, addGenerationPrompt: false)
            == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
    }

    @Test("SmolLM2 renders a multi-turn conversation turn by turn")
    func smolMultiTurn() throws {
        let t = try ChatTemplate.detect(from: Self.smolJinja)
        #expect(t.render(Self.multiTurn) == "<|im_start|>system\n\(Self.smolSystem)<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
            + "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")
        // A system message after the first turn is an ordinary turn; the default still comes first.
        let late = [ChatMessage(role: "user", content: "a"), ChatMessage(role: "system", content: "b")]
        #expect(t.render(late) == "<|im_start|>system\n\(Self.smolSystem)<|im_end|>\n<|im_start|>user\na<|im_end|>\n"
            + "<|im_start|>system\nb<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("SmolLM2 renders no system prompt for an empty conversation, as its message loop holds it")
    func smolEmpty() throws {
        let t = try ChatTemplate.detect(from: Self.smolJinja)
        #expect(t.render([]) == "<|im_start|>assistant\n")
    }

    @Test("the Qwen2.5 template is ChatML with Qwen's default system prompt")
    func detectQwen() throws {
        let t = try ChatTemplate.detect(from: Self.qwenJinja)
        #expect(t.form == .chatml)
        #expect(t.defaultSystemPrompt == Self.qwenSystem)
        #expect(t.defaultSystemWhenEmpty)
    }

    @Test("the Qwen2.5-Coder GGUFs' templates give the same chat template", arguments: ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    func qwenFromModel(model: String) throws {
        guard let jinja = try Self.jinja(ofModel: model) else { try Test.cancel("\(model) not fetched") }
        #expect(try ChatTemplate.detect(from: jinja) == ChatTemplate.detect(from: Self.qwenJinja))
    }

    @Test("Qwen2.5 renders like its Jinja template without tools")
    func qwenRender() throws {
        let t = try ChatTemplate.detect(from: Self.qwenJinja)
        #expect(t.render(Self.user) == "<|im_start|>system\n\(Self.qwenSystem)<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(t.render(Self.withSystem, addGenerationPrompt: false)
            == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        #expect(t.render(Self.multiTurn) == "<|im_start|>system\n\(Self.qwenSystem)<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
            + "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("a template named chatml renders plain ChatML without a system prompt")
    func namedChatML() throws {
        let t = try ChatTemplate.named("chatml")
        #expect(t.defaultSystemPrompt == nil)
        #expect(t.render(Self.user) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("Llama 3 renders as llama.cpp's llama3 template: headers, trimmed content, no BOS text")
    func llama3Render() throws {
        let t = try ChatTemplate.detect(from: Self.llama3Jinja)
        #expect(t == (try ChatTemplate.named("llama3")))
        #expect(t.form == .llama3)
        #expect(t.stopStrings == ["<|eot_id|>"])
        let messages = [ChatMessage(role: "system", content: "  Be brief.\n"), ChatMessage(role: "user", content: "\tHi there \n\n")]
        #expect(t.render(messages) == "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(t.render(messages, addGenerationPrompt: false) == "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>")
    }

    @Test("a missing or unrecognised template is an error that names --chat-template")
    func unknown() throws {
        for jinja in [nil, "", "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"] as [String?] {
            #expect(throws: ChatTemplateError.self) { try ChatTemplate.detect(from: jinja) }
            do {
                _ = try ChatTemplate.detect(from: jinja)
            } catch {
                #expect(String(describing: error).contains("--chat-template chatml|llama3"))
            }
        }
        #expect(throws: ChatTemplateError.unknownName("alpaca")) { try ChatTemplate.named("alpaca") }
        #expect(ChatTemplate.names == ["chatml", "llama3"])
    }
}
