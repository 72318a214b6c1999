import Engine
import Foundation
import Hummingbird
import Relay

/// What the controller needs to know about the served models.
public struct ServedModels: Sendable {
    /// The ids `/v1/models` lists; a request's `model` must be one of them.
    public var ids: [String]
    public var defaultMode: String
    public var tokenizer: Tokenizer
    public var template: ChatTemplate
    public var contextSize: Int
    /// Sampling defaults (the command line's); request fields override them.
    public var sampling: SamplingParams
    /// The most text bytes one token stands for: a prompt longer than this many bytes per context
    /// position cannot fit, which is known without tokenising it.
    let maxTokenBytes: Int

    public init(ids: [String], defaultMode: String, tokenizer: Tokenizer, template: ChatTemplate, contextSize: Int, sampling: SamplingParams) {
        self.ids = ids
        self.defaultMode = defaultMode
        self.tokenizer = tokenizer
        self.template = template
        self.contextSize = contextSize
        self.sampling = sampling
        maxTokenBytes = max(1, (0..<tokenizer.vocabSize).map { tokenizer.tokenBytes(Int32($0)).count }.max() ?? 1)
    }
}

/// A request turned into engine terms.
struct Plan {
    var chat: Bool
    var model: String
    var mode: ModeSpec
    /// One prompt per completions prompt (chat: one); each is answered by n choices.
    var prompts: [[Int32]]
    var n: Int
    var options: GenerationOptions
    var stream: Bool
    var includeUsage: Bool
    var topLogprobs: Int?
}

extension Plan {
    /// One job per choice: the n choices of each prompt in turn (index = prompt * n + choice, as
    /// OpenAI and vLLM number them); a seed gives choice j the seed + j, so that they differ.
    func jobs(cancel: Cancellation) -> [Job] {
        prompts.flatMap { prompt in
            (0..<n).map { j in
                var options = self.options
                options.sampling.seed = options.sampling.seed.map { $0 &+ UInt64(j) }
                return Job(prompt: prompt, mode: mode, options: options, topLogprobs: topLogprobs, cancel: cancel)
            }
        }
    }
}

/// The OpenAI endpoints: parse and check a request, hand it to the slot pool, and answer with
/// JSON or server-sent events.
final class CompletionsController: @unchecked Sendable {
    let served: ServedModels
    let pool: SlotPool
    let metrics: Metrics
    let apiKey: String?
    let bodyLimit: Int

    init(served: ServedModels, pool: SlotPool, metrics: Metrics, apiKey: String?, bodyLimit: Int = 16 << 20) {
        self.served = served
        self.pool = pool
        self.metrics = metrics
        self.apiKey = apiKey
        self.bodyLimit = bodyLimit
    }

    /// Client `stop` strings: more than OpenAI's 4, but every one is checked at every token.
    static let maxStops = 16
    static let maxStopBytes = 128
    /// OpenAI's limit on `messages`.
    static let maxMessages = 2048

    func authorize(_ request: Request) throws {
        guard let apiKey else { return }
        guard Self.sameBytes(Array((request.headers[.authorization] ?? "").utf8), Array("Bearer \(apiKey)".utf8)) else {
            throw APIError(status: 401, message: "missing or wrong API key: send 'Authorization: Bearer KEY'",
                           type: "invalid_request_error", code: "invalid_api_key")
        }
    }

    /// Compares in a time that depends on the expected value's length only, so that the time of a
    /// refusal does not tell how much of a guessed key was right.
    static func sameBytes(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for i in expected.indices { difference |= expected[i] ^ (i < given.count ? given[i] : 0) }
        return difference == 0
    }

    /// What can be refused before the body is read: the key, the content type (a cross-site form
    /// post must not start a generation), a declared size over the limit, a full queue.
    func admit(_ request: Request) throws {
        try authorize(request)
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/json" else {
            throw APIError(status: 415, message: "the body must be JSON sent as 'Content-Type: application/json' (got \(type.map { "'\($0)'" } ?? "no Content-Type"))",
                           type: "invalid_request_error", code: "unsupported_media_type")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > bodyLimit { throw tooLarge() }
        try pool.checkRoom()
    }

    func tooLarge() -> APIError {
        APIError(status: 413, message: "the request body is larger than this server's limit of \(bodyLimit) bytes (--max-body-mib)",
                 type: "invalid_request_error", code: "request_too_large")
    }

    func models(_ request: Request) throws -> Response {
        try authorize(request)
        let now = Int(Date().timeIntervalSince1970)
        return json(ModelList(data: served.ids.map { ModelList.Entry(id: $0, created: now) }))
    }

    func complete(_ request: Request, connection: ConnectionGuard?, chat: Bool) async -> Response {
        let endpoint = chat ? "/v1/chat/completions" : "/v1/completions"
        let started = Date()
        let cancel = Cancellation()
        // The client going away stops the generation, also before the answer starts (a stream's
        // body notices it too, when a write fails).
        connection?.attach(cancel)
        let body = BodyReader(request.body)
        do {
            try admit(request)
            guard let buffer = try await body.collect(upTo: bodyLimit) else { throw tooLarge() }
            let plan = try self.plan(CompletionRequest.decode(Data(buffer: buffer)), chat: chat)
            let jobs = plan.jobs(cancel: cancel)
            try pool.submit(jobs)
            return try await plan.stream
                ? stream(jobs, plan, started: started, endpoint: endpoint)
                : whole(jobs, plan, started: started, endpoint: endpoint)
        } catch {
            let e = Self.apiError(error)
            metrics.request(endpoint: endpoint, status: e.status, seconds: Date().timeIntervalSince(started))
            return errorResponse(e, dropping: body)
        }
    }

    // MARK: Request to plan

    func plan(_ r: CompletionRequest, chat: Bool) throws -> Plan {
        let model = r.model ?? served.ids[0]
        guard served.ids.contains(model) else {
            throw APIError(status: 404, message: "the model '\(model)' does not exist; this server serves \(served.ids.joined(separator: ", "))",
                           type: "invalid_request_error", code: "model_not_found", param: "model")
        }
        try Self.refuseUnimplemented(r, chat: chat)
        let n = r.n ?? 1
        guard n >= 1 else { throw APIError.badRequest("n must be at least 1 (got \(n))", param: "n") }
        // Refused before any prompt is tokenised.
        let promptCount = chat ? 1 : max(r.prompt?.prompts.count ?? 1, 1)
        guard promptCount * n <= Self.maxChoices else {
            throw APIError.badRequest("\(promptCount) prompt\(promptCount == 1 ? "" : "s") with n = \(n) make \(promptCount * n) choices; this server writes at most \(Self.maxChoices) per request",
                                      param: promptCount > 1 ? "prompt" : "n", code: promptCount > 1 ? "array_above_max_length" : nil)
        }
        // Chat: logprobs true and top_logprobs n; completions: logprobs n.
        var topLogprobs: Int?
        if r.logprobs?.requested == true { topLogprobs = chat ? r.top_logprobs ?? 0 : r.logprobs?.top ?? 0 }
        if let n = topLogprobs {
            guard (0...20).contains(n) else { throw APIError.badRequest("top_logprobs must be in 0...20 (got \(n))", param: chat ? "top_logprobs" : "logprobs") }
        } else if chat, r.top_logprobs != nil {
            throw APIError.badRequest("top_logprobs needs logprobs: true", param: "top_logprobs")
        }
        var options = GenerationOptions()
        options.sampling = try sampling(r)
        let maxTokensField = r.max_completion_tokens != nil ? "max_completion_tokens" : r.max_tokens != nil ? "max_tokens" : "n_predict"
        if let m = r.maxTokens {
            guard m >= 1 else { throw APIError.badRequest("\(maxTokensField) must be at least 1 (got \(m))", param: maxTokensField) }
            guard m < served.contextSize else {
                throw APIError.badRequest("\(maxTokensField) is \(m) but the context holds \(served.contextSize) tokens, prompt included (server -c/--ctx-size)",
                                          param: maxTokensField, code: "context_length_exceeded")
            }
            options.maxTokens = m
        }
        let stops = r.stop?.values ?? []
        guard stops.count <= Self.maxStops else {
            throw APIError.badRequest("stop has \(stops.count) strings; this server takes at most \(Self.maxStops)", param: "stop", code: "array_above_max_length")
        }
        if let long = stops.first(where: { $0.utf8.count > Self.maxStopBytes }) {
            throw APIError.badRequest("a stop string has \(long.utf8.count) bytes; this server takes at most \(Self.maxStopBytes)", param: "stop",
                                      code: "string_above_max_length")
        }
        options.stop = stops.filter { !$0.isEmpty }

        let mode = try ModeSpec.parse(r.relay_mode ?? served.defaultMode)
        var prompts: [[Int32]] = []
        if chat {
            guard let messages = r.messages, !messages.isEmpty else {
                throw APIError.badRequest(r.messages == nil ? "messages is required" : "messages must not be empty", param: "messages")
            }
            guard messages.count <= Self.maxMessages else {
                throw APIError.badRequest("messages has \(messages.count) entries; at most \(Self.maxMessages)", param: "messages", code: "array_above_max_length")
            }
            var turns: [ChatMessage] = []
            for (i, m) in messages.enumerated() {
                let role = m.role == "developer" ? "system" : m.role
                guard ["system", "user", "assistant"].contains(role) else {
                    throw APIError.badRequest("messages[\(i)].role '\(m.role)' is not supported (system, developer, user, assistant)", param: "messages")
                }
                turns.append(ChatMessage(role: role, content: m.content?.text ?? ""))
            }
            prompts = [try encode(served.template.render(turns), param: "messages")]
            options.stop += served.template.stopStrings
        } else {
            guard let p = r.prompt else { throw APIError.badRequest("prompt is required", param: "prompt") }
            guard !p.prompts.isEmpty else { throw APIError.badRequest("prompt must not be an empty array", param: "prompt") }
            for (i, prompt) in p.prompts.enumerated() {
                switch prompt {
                case .text(let text): prompts.append(try encode(text, param: "prompt"))
                case .tokens(let ids):
                    let vocabulary = served.tokenizer.vocabSize
                    if let bad = ids.first(where: { $0 < 0 || $0 >= vocabulary }) {
                        throw APIError.badRequest("prompt \(i) has the token id \(bad); the model's ids are 0...\(vocabulary - 1)", param: "prompt")
                    }
                    prompts.append(ids.map { Int32($0) })
                }
            }
        }
        for prompt in prompts {
            guard !prompt.isEmpty else { throw APIError.badRequest("the prompt is empty", param: chat ? "messages" : "prompt") }
            guard prompt.count + (r.maxTokens ?? 1) <= served.contextSize else {
                let asked = r.maxTokens.map { " and \(maxTokensField) is \($0)" } ?? ""
                throw APIError.badRequest("the prompt has \(prompt.count) tokens\(asked) but the context holds \(served.contextSize) (server -c/--ctx-size)",
                                          param: chat ? "messages" : "prompt", code: "context_length_exceeded")
            }
        }
        return Plan(chat: chat, model: model, mode: mode, prompts: prompts, n: n, options: options,
                    stream: r.stream ?? false, includeUsage: r.stream_options?.include_usage ?? false, topLogprobs: topLogprobs)
    }

    /// The most choices (prompts times n) one request may ask for.
    static let maxChoices = 16

    /// The request's sampling settings over the command line's, each checked against its range.
    func sampling(_ r: CompletionRequest) throws -> SamplingParams {
        var s = served.sampling
        func check(_ value: Double?, _ name: String, _ range: ClosedRange<Double>, _ set: (Float) -> Void) throws {
            guard let v = value else { return }
            guard range.contains(v) else { throw APIError.badRequest("\(name) must be in [\(range.lowerBound.formatted()), \(range.upperBound.formatted())] (got \(v))", param: name) }
            set(Float(v))
        }
        try check(r.temperature, "temperature", 0...2) { s.temperature = $0 }
        if let p = r.top_p {
            guard p > 0, p <= 1 else { throw APIError.badRequest("top_p must be in (0, 1] (got \(p))", param: "top_p") }
            s.topP = Float(p)
        }
        try check(r.min_p, "min_p", 0...1) { s.minP = $0 }
        try check(r.presence_penalty, "presence_penalty", -2...2) { s.presencePenalty = $0 }
        try check(r.frequency_penalty, "frequency_penalty", -2...2) { s.frequencyPenalty = $0 }
        if let p = r.repeat_penalty {
            guard p > 0, p <= 10 else { throw APIError.badRequest("repeat_penalty must be in (0, 10] (got \(p))", param: "repeat_penalty") }
            s.repeatPenalty = Float(p)
        }
        if let k = r.top_k { s.topK = max(k, 0) } // llama-server: k <= 0 keeps every token
        if let n = r.repeat_last_n {
            guard n >= -1 else { throw APIError.badRequest("repeat_last_n must be -1 (the whole context) or at least 0 (got \(n))", param: "repeat_last_n") }
            s.repeatLastN = n
        }
        if let bias = r.logit_bias {
            guard bias.count <= Self.maxLogitBias else {
                throw APIError.badRequest("logit_bias has \(bias.count) entries; at most \(Self.maxLogitBias)", param: "logit_bias")
            }
            for (key, value) in bias {
                guard let id = Int32(key), id >= 0, Int(id) < served.tokenizer.vocabSize else {
                    throw APIError.badRequest("logit_bias has the key '\(key.prefix(32))', which is not a token id of this model (0...\(served.tokenizer.vocabSize - 1))", param: "logit_bias")
                }
                guard (-100...100).contains(value) else { throw APIError.badRequest("logit_bias values must be in [-100, 100] (got \(value))", param: "logit_bias") }
                s.logitBias[id] = Float(value)
            }
        }
        s.ignoreEOS = r.ignore_eos ?? false
        s.seed = r.seed.map { UInt64(bitPattern: Int64($0)) }
        return s
    }

    /// OpenAI's limit on `logit_bias`.
    static let maxLogitBias = 300

    /// OpenAI fields Relay does not implement, refused at any value that would change the answer.
    static func refuseUnimplemented(_ r: CompletionRequest, chat: Bool) throws {
        func refuse(_ field: String, _ what: String) throws -> Never {
            throw APIError.badRequest("\(field) is not supported by this server (\(what))", param: field, code: "unsupported_parameter")
        }
        if r.echo == true { try refuse("echo", "only false") }
        if let f = r.response_format, !f.isNull, f.object?["type"]?.string != "text" { try refuse("response_format", "only {\"type\": \"text\"}") }
        if let t = r.tools, !t.isNull, t.count != 0 { try refuse("tools", "no tool calls") }
        if let t = r.tool_choice, !t.isNull, t.string != "none", t.string != "auto" { try refuse("tool_choice", "only none or auto, with no tools") }
        if let f = r.functions, !f.isNull, f.count != 0 { try refuse("functions", "no function calls") }
        if let f = r.function_call, !f.isNull, f.string != "none", f.string != "auto" { try refuse("function_call", "only none or auto") }
        if let s = r.suffix, !s.isEmpty { try refuse("suffix", "no insertion") }
        if let b = r.best_of, b != 1, b != (r.n ?? 1) { try refuse("best_of", "only equal to n") }
        if r.store == true { try refuse("store", "nothing is stored") }
        if let m = r.modalities, m != ["text"] { try refuse("modalities", "only [\"text\"]") }
        if let a = r.audio, !a.isNull { try refuse("audio", "text only") }
        if let p = r.prediction, !p.isNull { try refuse("prediction", "no predicted outputs") }
        if let e = r.reasoning_effort, !e.isNull { try refuse("reasoning_effort", "the models do not reason on request") }
        if let w = r.web_search_options, !w.isNull { try refuse("web_search_options", "no web search") }
        if let t = r.service_tier, t != "auto", t != "default" { try refuse("service_tier", "only auto or default") }
    }

    /// Tokenises a prompt, refusing at once one too long to fit whatever its tokens.
    func encode(_ text: String, param: String) throws -> [Int32] {
        let bytes = text.utf8.count
        guard bytes <= served.maxTokenBytes * served.contextSize else {
            throw APIError.badRequest("the prompt has \(bytes) bytes, so at least \(bytes / served.maxTokenBytes) tokens, but the context holds \(served.contextSize) (server -c/--ctx-size)",
                                      param: param, code: "context_length_exceeded")
        }
        return served.tokenizer.encode(text, addBOS: served.tokenizer.addBOS)
    }

    // MARK: Answers

    /// The whole answer in one JSON object: every choice, in index order.
    func whole(_ jobs: [Job], _ plan: Plan, started: Date, endpoint: String) async throws -> Response {
        var results = [RelayResult?](repeating: nil, count: jobs.count)
        for await (i, event) in Self.merge(jobs) {
            switch event {
            case .text, .heartbeat: break
            case .done(let r): results[i] = r
            case .failed(let e):
                jobs.forEach { $0.cancel.cancel() }
                throw e
            }
        }
        guard results.allSatisfy({ $0 != nil }) else { throw APIError(status: 499, message: "the client closed the connection", type: "server_error", code: "cancelled") }
        let done = results.map { $0! }
        done.forEach(metrics.generated)
        metrics.request(endpoint: endpoint, status: 200, seconds: Date().timeIntervalSince(started))
        var object = header(Self.id(plan.chat), plan, chunk: false)
        for (i, result) in done.enumerated() {
            let logprobs = result.logprobs.map { Logprobs($0, chat: plan.chat, tokenizer: served.tokenizer) }
            object.choices.append(Choice(index: i, text: plan.chat ? nil : result.text,
                                         message: plan.chat ? Choice.Message(content: result.text) : nil,
                                         finishReason: Self.finish(result), logprobs: logprobs,
                                         relay: done.count > 1 ? telemetry(result, plan, withSegments: true) : nil))
        }
        object.usage = NullWhenNil(wrappedValue: Self.usage(done, n: plan.n))
        if done.count == 1 { object.relay = telemetry(done[0], plan, withSegments: true) }
        return json(object)
    }

    /// The events of several jobs as one stream, each with its choice's index.
    static func merge(_ jobs: [Job]) -> AsyncStream<(Int, GenerationEvent)> {
        let (stream, sink) = AsyncStream.makeStream(of: (Int, GenerationEvent).self, bufferingPolicy: .unbounded)
        let readers = Task {
            await withTaskGroup(of: Void.self) { group in
                for (i, job) in jobs.enumerated() {
                    group.addTask { for await event in job.events { sink.yield((i, event)) } }
                }
            }
            sink.finish()
        }
        sink.onTermination = { _ in readers.cancel() }
        return stream
    }

    /// Server-sent events: the first event is awaited before answering, so a request that fails
    /// before writing anything still gets a proper error status. Each choice's last chunk carries
    /// its finish reason and its `relay` telemetry; with `include_usage`, a chunk with the whole
    /// request's usage and no choices ends the stream.
    func stream(_ jobs: [Job], _ plan: Plan, started: Date, endpoint: String) async throws -> Response {
        let events = EventCursor(Self.merge(jobs).makeAsyncIterator())
        let first = await events.next()
        if case .failed(let e)? = first?.1 { throw e }
        metrics.timeToFirstToken(Date().timeIntervalSince(started))
        let id = Self.id(plan.chat)
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            // Only a failed write tells that the client left, and a remote large model that hangs
            // writes nothing: while the stream is silent, a comment line every 0.25 s asks.
            let ticker = Task {
                while (try? await Task.sleep(for: .milliseconds(250))) != nil { jobs.forEach { $0.sink.yield(.heartbeat) } }
            }
            defer { ticker.cancel() }
            var lastWrite = Date()
            var event = first
            var sentRole = [Bool](repeating: false, count: jobs.count)
            var offset = [Int](repeating: 0, count: jobs.count)
            var results: [RelayResult] = []
            var status = 200
            do {
                while let (i, e) = event {
                    switch e {
                    case .text(let text, let role, let logprobs):
                        var object = self.header(id, plan, chunk: true)
                        let lp = plan.topLogprobs == nil ? nil : Logprobs(logprobs, chat: plan.chat, tokenizer: self.served.tokenizer, offset: offset[i])
                        offset[i] += text.count
                        var choice = Choice(index: i, logprobs: lp)
                        if plan.chat {
                            choice.delta = Choice.Delta(role: sentRole[i] ? nil : "assistant", content: text)
                            sentRole[i] = true
                        } else {
                            choice.text = text
                        }
                        object.choices = [choice]
                        object.relayRole = role
                        if plan.includeUsage { object.usage = .null }
                        try await writer.write(Self.sse(object))
                        lastWrite = Date()
                    case .done(let result):
                        self.metrics.generated(result)
                        results.append(result)
                        var object = self.header(id, plan, chunk: true)
                        var choice = Choice(index: i, finishReason: Self.finish(result))
                        if plan.chat { choice.delta = sentRole[i] ? Choice.Delta() : Choice.Delta(role: "assistant", content: "") } else { choice.text = "" }
                        object.choices = [choice]
                        if plan.includeUsage { object.usage = .null }
                        object.relay = self.telemetry(result, plan, withSegments: false)
                        try await writer.write(Self.sse(object))
                        if plan.includeUsage, results.count == jobs.count {
                            // OpenAI's usage chunk: no choices, the usage of the whole request.
                            var usage = self.header(id, plan, chunk: true)
                            usage.usage = NullWhenNil(wrappedValue: Self.usage(results, n: plan.n))
                            try await writer.write(Self.sse(usage))
                        }
                    case .failed(let error):
                        let e = Self.apiError(error)
                        status = e.status
                        jobs.forEach { $0.cancel.cancel() }
                        try await writer.write(Self.sse(e.body))
                    case .heartbeat:
                        if Date().timeIntervalSince(lastWrite) >= 0.25 {
                            try await writer.write(ByteBuffer(string: ":\n\n"))
                            lastWrite = Date()
                        }
                    }
                    event = await events.next()
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                // The client went away: stop the generation.
                jobs.forEach { $0.cancel.cancel() }
                status = 499
            }
            self.metrics.request(endpoint: endpoint, status: status, seconds: Date().timeIntervalSince(started))
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    func header(_ id: String, _ plan: Plan, chunk: Bool) -> CompletionObject {
        let object = plan.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"
        return CompletionObject(id: id, object: object, created: Int(Date().timeIntervalSince1970), model: plan.model, choices: [])
    }

    /// The relay telemetry of one answer (the `relay` object).
    func telemetry(_ r: RelayResult, _ plan: Plan, withSegments: Bool) -> Telemetry {
        Telemetry(r, mode: plan.mode.raw, segments: withSegments)
    }

    /// A request's usage: each prompt counted once (its n choices share it, as OpenAI counts them).
    static func usage(_ results: [RelayResult], n: Int) -> Usage {
        let prompt = results.enumerated().reduce(0) { $0 + ($1.offset % n == 0 ? $1.element.promptTokens : 0) }
        let completion = results.reduce(0) { $0 + $1.tokens.count }
        return Usage(prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion)
    }

    static func finish(_ r: RelayResult) -> String { r.finishReason == .length ? "length" : "stop" }

    static func id(_ chat: Bool) -> String {
        (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }

    /// One server-sent event.
    static func sse<T: Encodable>(_ value: T) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(encodeJSON(value))
        buffer.writeString("\n\n")
        return buffer
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encodeJSON(value))))
    }

    func errorResponse(_ e: APIError) -> Response {
        json(e.body, status: .init(code: e.status))
    }

    /// An error, then the rest of the request's body read and dropped (within the body deadline):
    /// a client that sends its whole body before reading gets the answer, not a reset connection
    /// (Hummingbird drops the body itself only on a connection kept alive).
    func errorResponse(_ e: APIError, dropping body: BodyReader) -> Response {
        let json = e.json
        return Response(status: .init(code: e.status), headers: [.contentType: "application/json"],
                        body: .init(contentLength: json.count) { writer in
                            try await writer.write(ByteBuffer(bytes: json))
                            await body.drop()
                            try await writer.finish(nil)
                        })
    }

    /// Every failure as OpenAI shapes it, with the status that fits.
    static func apiError(_ error: Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case ModelError.contextOverflow(let needed, let size):
            return .badRequest("the request needs \(needed) positions but the context holds \(size)", code: "context_length_exceeded")
        case let e as ModeError: return .badRequest(e.description, param: "relay_mode", code: "invalid_mode")
        case let e as LargeModelError:
            switch e {
            case .unavailable: return APIError(status: 503, message: e.description, type: "server_error", code: "large_model_unavailable")
            case .badResponse: return APIError(status: 502, message: e.description, type: "server_error", code: "large_model_bad_response")
            }
        default:
            return APIError(status: 500, message: String(describing: error), type: "server_error", code: "internal_error")
        }
    }
}

/// Reads a request's body once: up to the limit for the handler, and what is left after an error.
final class BodyReader: @unchecked Sendable {
    private var iterator: RequestBody.AsyncIterator
    init(_ body: RequestBody) { iterator = body.makeAsyncIterator() }

    /// The body, or nil once it is over `limit` bytes.
    func collect(upTo limit: Int) async throws -> ByteBuffer? {
        var buffer = ByteBuffer()
        while let part = try await iterator.next() {
            guard buffer.readableBytes + part.readableBytes <= limit else { return nil }
            buffer.writeImmutableBuffer(part)
        }
        return buffer
    }

    func drop() async {
        do { while try await iterator.next() != nil {} } catch {}
    }
}

/// Lets the response body go on reading the events the handler started reading.
final class EventCursor: @unchecked Sendable {
    var iterator: AsyncStream<(Int, GenerationEvent)>.AsyncIterator
    init(_ iterator: AsyncStream<(Int, GenerationEvent)>.AsyncIterator) { self.iterator = iterator }
    func next() async -> (Int, GenerationEvent)? { await iterator.next() }
}
