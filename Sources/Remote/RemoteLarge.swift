import Engine
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Relay

/// A large model behind any OpenAI-compatible `/v1/completions` endpoint (llama.cpp's llama-server,
/// vLLM, ...). Every call is stateless: the whole text goes out each time, so a retried request
/// asks for exactly the same continuation and nothing is lost or duplicated.
///
/// Servers cut a matched stop string from the text. vLLM says which one matched (`stop_reason`);
/// for servers that do not (llama.cpp), one short greedy request after the cut text tells whether a
/// stop string or the end of the answer stopped it. Limits: when sampling (temperature > 0) on such a
/// server, that greedy probe may not write the stop string the sample matched; then the
/// continuation goes on without it.
public final class RemoteLarge: LargeModel, @unchecked Sendable {
    public struct Options: Sendable {
        /// The server's address, e.g. http://127.0.0.1:8081 or http://host/v1.
        public var url: URL
        /// The `model` field of each request (some servers need it).
        public var model: String?
        public var apiKey: String?
        /// Seconds one request may take.
        public var timeout: Double = 60
        /// Further attempts after a failed one (connection error, time-out, HTTP 429 or 5xx).
        public var retries = 2
        /// Wait before the first retry; it doubles for each further one.
        public var backoff: Double = 0.25
        public init(url: URL) { self.url = url }
    }

    public let options: Options
    let endpoint: URL
    let session: URLSession

    public init(options: Options) {
        self.options = options
        var base = options.url.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        if !base.hasSuffix("/v1") { base += "/v1" }
        endpoint = URL(string: base + "/completions")!
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = options.timeout
        config.timeoutIntervalForResource = options.timeout
        session = URLSession(configuration: config)
    }

    public var name: String { options.model.map { "\($0) at \(options.url)" } ?? options.url.absoluteString }

    public func continuation(of text: String, maxTokens: Int, stop: [String], sampling: SamplingParams) throws -> Continuation {
        let start = Date()
        var calls = Calls()
        let reply = try complete(text, maxTokens: maxTokens, stop: stop, sampling: sampling, calls: &calls)
        var result = Continuation(text: reply.text, ended: false)
        if reply.finish == "stop" {
            if stop.isEmpty {
                result.ended = true
            } else if let matched = reply.stopReason, stop.contains(matched) {
                result.text += matched
                result.stop = matched
            } else {
                // Which stop string, if any? Ask greedily for a few tokens after the cut text. The
                // token that completed a stop string often began with a space, which the cut leaves
                // at the end of the text: probe from before that whitespace.
                let trailing = String(reply.text.reversed().prefix(while: \.isWhitespace).reversed())
                let kept = String(reply.text.dropLast(trailing.count))
                let probeTokens = (stop.map { $0.utf8.count }.max() ?? 1) + trailing.utf8.count
                let probe = try complete(text + kept, maxTokens: probeTokens, stop: [], sampling: .greedy, calls: &calls)
                if let matched = stop.filter({ probe.text.hasPrefix(trailing + $0) }).max(by: { $0.count < $1.count }) {
                    result.text += matched
                    result.stop = matched
                } else {
                    result.ended = probe.text.allSatisfy(\.isWhitespace) && probe.finish == "stop"
                }
            }
        }
        result.requests = calls.requests
        result.retries = calls.retries
        result.seconds = Date().timeIntervalSince(start)
        return result
    }

    struct Calls {
        var requests = 0
        var retries = 0
    }

    struct Reply {
        var text: String
        var finish: String?
        var stopReason: String?
    }

    func complete(_ prompt: String, maxTokens: Int, stop: [String], sampling: SamplingParams, calls: inout Calls) throws -> Reply {
        var body: [String: Any] = ["prompt": prompt, "max_tokens": maxTokens, "temperature": Double(sampling.temperature),
                                   "top_p": Double(sampling.topP), "stream": false]
        if let model = options.model { body["model"] = model }
        if !stop.isEmpty { body["stop"] = stop }
        if let seed = sampling.seed { body["seed"] = Int(truncatingIfNeeded: seed & 0x7FFF_FFFF) }
        let data = try JSONSerialization.data(withJSONObject: body)

        var lastFailure = ""
        for attempt in 0...options.retries {
            if attempt > 0 {
                calls.retries += 1
                Thread.sleep(forTimeInterval: options.backoff * Double(1 << (attempt - 1)))
            }
            calls.requests += 1
            switch post(data) {
            case .failure(let message):
                lastFailure = message
            case .success(let status, let payload) where status == 429 || status >= 500:
                lastFailure = "HTTP \(status): \(snippet(payload))"
            case .success(let status, let payload) where status != 200:
                throw LargeModelError.badResponse("\(endpoint) answered HTTP \(status): \(snippet(payload))")
            case .success(_, let payload):
                return try parse(payload)
            }
        }
        throw LargeModelError.unavailable("\(endpoint): \(lastFailure) (\(options.retries + 1) attempts)")
    }

    enum PostResult {
        case success(Int, Data)
        case failure(String)
    }

    /// One blocking POST; engine threads call this, never NIO event loops.
    func post(_ body: Data) -> PostResult {
        var request = URLRequest(url: endpoint, timeoutInterval: options.timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key = options.apiKey { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        request.httpBody = body
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result = PostResult.failure("no answer")
        session.dataTask(with: request) { data, response, error in
            if let error {
                result = .failure(error.localizedDescription)
            } else if let http = response as? HTTPURLResponse {
                result = .success(http.statusCode, data ?? Data())
            }
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    func parse(_ payload: Data) throws -> Reply {
        guard let object = try? JSONSerialization.jsonObject(with: payload) as? [String: Any],
              let choices = object["choices"] as? [[String: Any]], let choice = choices.first,
              let text = choice["text"] as? String else {
            throw LargeModelError.badResponse("\(endpoint) did not answer with a completion: \(snippet(payload))")
        }
        return Reply(text: text, finish: choice["finish_reason"] as? String, stopReason: choice["stop_reason"] as? String)
    }

    func snippet(_ data: Data) -> String { String(String(decoding: data, as: UTF8.self).prefix(300)) }
}
