import Assets
import Engine
import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Relay
@testable import Server
import Testing

enum Smol {
    nonisolated(unsafe) static let model = try! Model(path: AssetStore().modelPath("smollm2-135m"))
}

func request(_ json: String) throws -> CompletionRequest { try CompletionRequest.decode(Data(json.utf8)) }

func apiError(_ body: () throws -> Void) -> APIError? {
    do { try body() } catch let e as APIError { return e } catch { return nil }
    return nil
}

@Suite("OpenAI request decoding")
struct DecodingTests {
    @Test("a chat request with string and part contents, stop as a string, and unknown fields ignored")
    func chatRequest() throws {
        let r = try request("""
        {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
         {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}],
         "stop": "\\n", "temperature": 0, "stream": true, "stream_options": {"include_usage": true},
         "relay_mode": "relaygen", "frequency_penalty": 0, "tools": [], "whatever": {"x": 1}}
        """)
        #expect(r.messages?.map(\.content?.text) == ["Be brief.", "Hi there"])
        #expect(r.stop?.values == ["\n"])
        #expect(r.stream == true && r.stream_options?.include_usage == true)
        #expect(r.relay_mode == "relaygen")
    }

    @Test("malformed JSON and a body that is not an object are 400s that say so")
    func malformed() {
        for body in ["{\"model\": ", "[1, 2]", "", "null"] {
            let e = apiError { _ = try request(body) }
            #expect(e?.status == 400)
            #expect(e?.message.contains("malformed JSON") == true)
        }
    }

    @Test("a known field with the wrong type is a 400 naming the field")
    func wrongTypes() {
        let cases = [("{\"max_tokens\": \"ten\"}", "max_tokens"), ("{\"temperature\": \"hot\"}", "temperature"),
                     ("{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content"),
                     ("{\"messages\": [{\"content\": \"hi\"}]}", "messages[0].role"),
                     ("{\"stop\": [1, 2]}", "stop"), ("{\"stream\": \"yes\"}", "stream")]
        for (body, field) in cases {
            let e = apiError { _ = try request(body) }
            #expect(e?.status == 400, "\(body)")
            #expect(e?.param == field, "\(body): \(e?.message ?? "no error")")
            #expect(e?.message.contains(field) == true)
        }
    }

    @Test("errors are shaped as OpenAI's: error.message, type, param and code")
    func errorShape() throws {
        let e = APIError.badRequest("bad", param: "n", code: "x")
        let object = try JSONSerialization.jsonObject(with: e.json) as! [String: [String: Any]]
        #expect(object["error"]?["message"] as? String == "bad")
        #expect(object["error"]?["type"] as? String == "invalid_request_error")
        #expect(object["error"]?["param"] as? String == "n")
        #expect(object["error"]?["code"] as? String == "x")
        let plain = try JSONSerialization.jsonObject(with: APIError.badRequest("bad").json) as! [String: [String: Any]]
        #expect(plain["error"]?["code"] is NSNull)
    }

    @Test("relay_mode takes parameters as relay eval --modes does, and a bad one is a 400 naming relay_mode")
    func modeParameters() throws {
        let spec = try ModeSpec.parse("relaygen-sd:top-cues=5,draft-max=3")
        #expect(spec.name == "relaygen-sd" && spec.parameters.map(\.key) == ["top-cues", "draft-max"])
        let e = CompletionsController.apiError(ModeError.unknown("huge"))
        #expect(e.status == 400 && e.param == "relay_mode" && e.code == "invalid_mode")
    }
}

@Suite("Request planning", .serialized)
struct PlanTests {
    static func controller(contextSize: Int = 256) throws -> CompletionsController {
        let m = Smol.model
        let template = try ChatTemplate.detect(from: m.file.metadata["tokenizer.chat_template"]?.string)
        let served = ServedModels(ids: ["smol"], defaultMode: "large", tokenizer: m.tokenizer, template: template,
                                  contextSize: contextSize, sampling: SamplingParams())
        let metrics = Metrics()
        let pool = SlotPool(pairs: [], queueLimit: 0, settings: Mode.Settings(), tokenizer: m.tokenizer, contextSize: contextSize, metrics: metrics)
        return CompletionsController(served: served, pool: pool, metrics: metrics, apiKey: nil)
    }

    @Test("a chat request becomes the template's prompt, its stop strings and the request's sampling")
    func chatPlan() throws {
        let c = try Self.controller()
        let plan = try c.plan(request("""
        {"model": "smol", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 7, "temperature": 0.5, "seed": 3, "stop": ["END"]}
        """), chat: true)
        #expect(plan.options.maxTokens == 7 && plan.options.sampling.temperature == 0.5 && plan.options.sampling.seed == 3)
        #expect(plan.options.stop == ["END", "<|im_end|>"])
        #expect(Smol.model.tokenizer.decode(plan.prompts[0]).hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
        #expect(plan.mode.raw == "large" && !plan.stream)
    }

    @Test("unknown model 404, bad n, bad ranges, unimplemented fields and an over-long prompt are refused with clear errors")
    func refusals() throws {
        let c = try Self.controller(contextSize: 64)
        let cases: [(String, Int, String)] = [
            ("{\"model\": \"gpt-4o\", \"prompt\": \"x\"}", 404, "gpt-4o"),
            ("{\"prompt\": \"x\", \"n\": 0}", 400, "n must be at least 1"),
            ("{\"prompt\": \"x\", \"n\": 17}", 400, "at most 16"),
            ("{\"prompt\": [\"a\", \"b\", \"c\"], \"n\": 6}", 400, "18 choices"),
            ("{\"prompt\": []}", 400, "empty array"),
            ("{\"prompt\": [49152]}", 400, "token id 49152"),
            ("{\"prompt\": [[1], [-1]]}", 400, "token id -1"),
            ("{\"prompt\": \"x\", \"presence_penalty\": 2.5}", 400, "presence_penalty"),
            ("{\"prompt\": \"x\", \"frequency_penalty\": -3}", 400, "frequency_penalty"),
            ("{\"prompt\": \"x\", \"logit_bias\": {\"abc\": 1}}", 400, "'abc'"),
            ("{\"prompt\": \"x\", \"logit_bias\": {\"5\": 101}}", 400, "[-100, 100]"),
            ("{\"prompt\": \"x\", \"min_p\": 2}", 400, "min_p"),
            ("{\"prompt\": \"x\", \"repeat_penalty\": 0}", 400, "repeat_penalty"),
            ("{\"prompt\": \"x\", \"repeat_last_n\": -2}", 400, "repeat_last_n"),
            ("{\"prompt\": \"x\", \"n_predict\": 0}", 400, "n_predict must be at least 1"),
            ("{\"prompt\": \"x\", \"response_format\": {\"type\": \"json_object\"}}", 400, "response_format"),
            ("{\"prompt\": \"x\", \"tools\": [{\"type\": \"function\"}]}", 400, "tools"),
            ("{\"prompt\": \"x\", \"tool_choice\": \"required\"}", 400, "tool_choice"),
            ("{\"prompt\": \"x\", \"suffix\": \"end\"}", 400, "suffix"),
            ("{\"prompt\": \"x\", \"store\": true}", 400, "store"),
            ("{\"prompt\": \"x\", \"best_of\": 3}", 400, "best_of"),
            ("{\"prompt\": \"x\", \"temperature\": 3}", 400, "temperature"),
            ("{\"prompt\": \"x\", \"top_p\": 0}", 400, "top_p"),
            ("{\"prompt\": \"x\", \"max_tokens\": 0}", 400, "max_tokens"),
            ("{\"prompt\": \"x\", \"logprobs\": 30}", 400, "0...20"),
            ("{\"max_tokens\": 3}", 400, "prompt is required"),
            ("{\"prompt\": \"\(String(repeating: "word ", count: 100))\"}", 400, "context"),
        ]
        for (body, status, words) in cases {
            let e = apiError { _ = try c.plan(request(body), chat: false) }
            #expect(e?.status == status, "\(body)")
            #expect(e?.message.contains(words) == true, "\(body): \(e?.message ?? "no error")")
        }
        #expect(apiError { _ = try c.plan(request("{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}"), chat: true) }?.status == 400)
        let noFlag = apiError { _ = try c.plan(request("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}"), chat: true) }
        #expect(noFlag?.message.contains("logprobs: true") == true)
    }

    @Test("sampling fields: OpenAI's and llama-server's per-request ones reach the sampler; no-op defaults of unimplemented fields pass")
    func samplingFields() throws {
        let c = try Self.controller()
        let plan = try c.plan(request("""
        {"prompt": "x", "presence_penalty": 0.5, "frequency_penalty": -0.25, "logit_bias": {"5": -100, "7": 2.5}, "top_k": 3,
         "min_p": 0.2, "repeat_penalty": 1.3, "repeat_last_n": -1, "n_predict": 9, "ignore_eos": true,
         "response_format": {"type": "text"}, "tools": [], "tool_choice": "none", "store": false, "user": "u", "service_tier": "auto",
         "best_of": 1, "modalities": ["text"], "parallel_tool_calls": true}
        """), chat: false)
        let s = plan.options.sampling
        #expect(s.presencePenalty == 0.5 && s.frequencyPenalty == -0.25 && s.logitBias == [5: -100, 7: 2.5])
        #expect(s.topK == 3 && s.minP == 0.2 && s.repeatPenalty == 1.3 && s.repeatLastN == -1 && s.ignoreEOS)
        #expect(plan.options.maxTokens == 9)
        #expect(try c.plan(request("{\"prompt\": \"x\", \"top_k\": -1}"), chat: false).options.sampling.topK == 0)
    }

    @Test("prompt as strings or token ids: one prompt each, n choices each, numbered prompt by prompt with seeds apart")
    func prompts() throws {
        let c = try Self.controller()
        let tok = Smol.model.tokenizer
        let strings = try c.plan(request("{\"prompt\": [\"a b\", \"c\"], \"n\": 2, \"seed\": 10}"), chat: false)
        #expect(strings.prompts == [tok.encode("a b", addBOS: tok.addBOS), tok.encode("c", addBOS: tok.addBOS)] && strings.n == 2)
        let jobs = strings.jobs(cancel: Cancellation())
        #expect(jobs.map(\.prompt) == [strings.prompts[0], strings.prompts[0], strings.prompts[1], strings.prompts[1]])
        #expect(jobs.map(\.options.sampling.seed) == [10, 11, 10, 11])
        #expect(try c.plan(request("{\"prompt\": [1, 2, 3]}"), chat: false).prompts == [[1, 2, 3]])
        #expect(try c.plan(request("{\"prompt\": [[4], [5, 6]]}"), chat: false).prompts == [[4], [5, 6]])
    }

    @Test("client stop strings: at most 16 of at most 128 bytes; the template's own stops are not counted")
    func stopLimits() throws {
        let c = try Self.controller()
        let sixteen = (0..<16).map { "\"s\($0)\"" }.joined(separator: ", ")
        let plan = try c.plan(request("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": [\(sixteen)]}"), chat: true)
        #expect(plan.options.stop.count == 17 && plan.options.stop.last == "<|im_end|>")
        let many = apiError { _ = try c.plan(request("{\"prompt\": \"x\", \"stop\": [\(sixteen), \"one more\"]}"), chat: false) }
        #expect(many?.status == 400 && many?.param == "stop" && many?.code == "array_above_max_length")
        #expect(many?.message.contains("17") == true)
        let long = apiError { _ = try c.plan(request("{\"prompt\": \"x\", \"stop\": \"\(String(repeating: "y", count: 129))\"}"), chat: false) }
        #expect(long?.status == 400 && long?.param == "stop" && long?.message.contains("129 bytes") == true)
    }

    @Test("max_tokens past the context, alone or with the prompt, is a 400 context_length_exceeded; messages are bounded")
    func contextAndMessages() throws {
        let c = try Self.controller(contextSize: 64)
        let alone = apiError { _ = try c.plan(request("{\"prompt\": \"x\", \"max_tokens\": 64}"), chat: false) }
        #expect(alone?.status == 400 && alone?.code == "context_length_exceeded" && alone?.param == "max_tokens")
        let prompt = String(repeating: "word ", count: 40)
        let plan = try c.plan(request("{\"prompt\": \"\(prompt)\", \"max_tokens\": 20}"), chat: false)
        let both = apiError { _ = try c.plan(request("{\"prompt\": \"\(prompt)\", \"max_tokens\": \(64 - plan.prompts[0].count + 1)}"), chat: false) }
        #expect(both?.code == "context_length_exceeded" && both?.message.contains("max_tokens is") == true, "\(both?.message ?? "no error")")
        #expect((try? c.plan(request("{\"prompt\": \"\(prompt)\", \"max_tokens\": \(64 - plan.prompts[0].count)}"), chat: false)) != nil)
        let turns = Array(repeating: "{\"role\": \"user\", \"content\": \"\"}", count: 2049).joined(separator: ",")
        let messages = apiError { _ = try c.plan(request("{\"messages\": [\(turns)]}"), chat: true) }
        #expect(messages?.param == "messages" && messages?.code == "array_above_max_length")
    }

    @Test("a prompt with more bytes than the context could hold is refused without tokenising it")
    func promptBytes() throws {
        let c = try Self.controller(contextSize: 64)
        let bytes = c.served.maxTokenBytes * 64 + 1
        let e = apiError { _ = try c.plan(request("{\"prompt\": \"\(String(repeating: "a", count: bytes))\"}"), chat: false) }
        #expect(e?.code == "context_length_exceeded" && e?.message.contains("\(bytes) bytes") == true, "\(e?.message ?? "no error")")
    }

    @Test("engine errors map to OpenAI statuses: context overflow 400, large model down 503 or bad 502")
    func errorMapping() {
        #expect(CompletionsController.apiError(ModelError.contextOverflow(needed: 9, contextSize: 8)).code == "context_length_exceeded")
        #expect(CompletionsController.apiError(ModeError.unknown("x")).status == 400)
        #expect(CompletionsController.apiError(LargeModelError.unavailable("down")).status == 503)
        #expect(CompletionsController.apiError(LargeModelError.badResponse("junk")).status == 502)
    }
}

@Suite("API key")
struct KeyTests {
    @Test("the key is compared whole: a prefix, a longer key or another key of the same length is refused")
    func comparison() {
        let key = Array("Bearer secret".utf8)
        #expect(CompletionsController.sameBytes(key, key))
        for given in ["", "Bearer secre", "Bearer secretx", "Bearer secreu", "bearer secret"] {
            #expect(!CompletionsController.sameBytes(Array(given.utf8), key), "\(given)")
        }
    }

    @Test("an empty or blank API key, or one a header cannot carry, is refused at start")
    func emptyKey() {
        for key in ["", "  ", "new\nline", " padded", "clé"] {
            var config = RelayServer.Configuration()
            config.apiKey = key
            #expect(throws: RelayServer.ConfigurationError.self) { try config.validate() }
        }
        var config = RelayServer.Configuration()
        config.apiKey = "k"
        #expect(throws: Never.self) { try config.validate() }
    }
}

@Suite("Metrics")
struct MetricsTests {
    @Test("the Prometheus text has requests, tokens per model, a latency histogram and the queue depth")
    func render() {
        let m = Metrics()
        m.request(endpoint: "/v1/completions", status: 200, seconds: 0.3)
        m.request(endpoint: "/v1/completions", status: 200, seconds: 7)
        let text = m.render(queueDepth: 3, busySlots: 1, slots: 2)
        #expect(text.contains("relay_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2"))
        #expect(text.contains("relay_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"0.5\"} 1"))
        #expect(text.contains("relay_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"+Inf\"} 2"))
        #expect(text.contains("relay_request_duration_seconds_count{endpoint=\"/v1/completions\"} 2"))
        #expect(text.contains("relay_generated_tokens_total{model=\"small\"} 0"))
        #expect(text.contains("relay_queue_depth 3"))
        m.connection(admitted: true)
        m.connection(admitted: false)
        let after = m.render(queueDepth: 0, busySlots: 0, slots: 1, openConnections: 1)
        #expect(after.contains("relay_connections_total 1") && after.contains("relay_connections_refused_total 1") && after.contains("relay_connections_open 1"))
    }
}

@Suite("Connection deadlines")
struct ConnectionGuardTests {
    /// A connection through the server's pipeline (guard, HTTP/1.1 codec, guard) on an embedded
    /// loop whose clock the test moves: 10 s for a header, 30 s for a body, 60 s idle.
    static func connection() throws -> (EmbeddedChannel, ConnectionGuard) {
        var limits = ConnectionLimits()
        limits.headers = .seconds(10)
        limits.body = .seconds(30)
        limits.idle = .seconds(60)
        let watch = ConnectionGuard(limits)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionGuard.BytesSide(watch))
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
        try channel.pipeline.syncOperations.addHandlers([HTTP1ToHTTPServerCodec(secure: false), ConnectionGuard.PartsSide(watch)])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, watch)
    }

    static func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
        while try channel.readInbound(as: HTTPRequestPart.self) != nil {}
    }

    static func answer(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
    }

    @Test("a header trickled a line a second is closed 10 s after its first byte")
    func headerTrickle() throws {
        let (channel, _) = try Self.connection()
        try Self.send(channel, "POST /v1/completions HTTP/1.1\r\n")
        for _ in 0..<9 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            try Self.send(channel, "X-Slow: 1\r\n")
        }
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("half a body is closed 30 s after its header")
    func halfBody() throws {
        let (channel, _) = try Self.connection()
        try Self.send(channel, "POST /v1/completions HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        try Self.send(channel, "d")
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("a request being answered has no deadline; after the answer the connection may idle 60 s, and a new header has 10 s")
    func answeringThenIdle() throws {
        let (channel, _) = try Self.connection()
        try Self.send(channel, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1000))
        #expect(channel.isActive)
        try Self.answer(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        try Self.send(channel, "GET /health HTTP/1.1\r\n")
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("a client that reads nothing of its answer for 60 s is closed")
    func unread() throws {
        let (channel, _) = try Self.connection()
        try Self.send(channel, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("a connection that closes cancels the generation its request attached, also one attached after")
    func disconnect() throws {
        let (channel, watch) = try Self.connection()
        let first = Cancellation()
        watch.attach(first)
        #expect(!first.isCancelled)
        try channel.close().wait()
        #expect(first.isCancelled)
        let late = Cancellation()
        watch.attach(late)
        #expect(late.isCancelled)
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    static func schemas() throws -> [String: Any] {
        let root = try #require(try JSONSerialization.jsonObject(with: OpenAPI.document(contextSize: 64)) as? [String: Any])
        return try #require((root["components"] as? [String: Any])?["schemas"] as? [String: Any])
    }

    static func properties(_ schema: Any?) -> Set<String> {
        guard let s = schema as? [String: Any] else { return [] }
        var names = Set((s["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
        for part in s["allOf"] as? [Any] ?? [] { names.formUnion(properties(part)) }
        return names
    }

    @Test("the document's request fields are exactly the fields the server reads, and the token limits follow -c")
    func requestFields() throws {
        let schemas = try Self.schemas()
        let sampling = try #require(schemas["Sampling"] as? [String: Any])
        let documented = Self.properties(sampling).union(Self.properties(schemas["ChatCompletionRequest"]))
            .union(Self.properties(schemas["CompletionRequest"]))
        let read = Set(Mirror(reflecting: try CompletionRequest.decode(Data("{}".utf8))).children.compactMap(\.label))
        #expect(documented == read, "documented, not read: \(documented.subtracting(read)); read, not documented: \(read.subtracting(documented))")
        let maxTokens = (sampling["properties"] as? [String: Any])?["max_tokens"] as? [String: Any]
        #expect(maxTokens?["maximum"] as? Int == 63)
    }

    @Test("every status the endpoints answer with is documented")
    func statuses() throws {
        let root = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPI.template)) as? [String: Any])
        let paths = try #require(root["paths"] as? [String: Any])
        for path in ["/v1/chat/completions", "/v1/completions"] {
            let post = try #require((paths[path] as? [String: Any])?["post"] as? [String: Any])
            let statuses = Set((post["responses"] as? [String: Any])?.keys.map { $0 } ?? [])
            // 200, and every APIError status the controller or the pool can give (499 is written to no one).
            #expect(statuses == ["200", "400", "401", "404", "413", "415", "429", "502", "503"], "\(path)")
        }
        #expect(Set(paths.keys) == ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/openapi.json", "/"])
    }
}
