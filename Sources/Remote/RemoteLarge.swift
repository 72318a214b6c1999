import AsyncHTTPClient
import Engine
import Foundation
import NIOCore
import NIOHTTP1
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
///
/// Requests go through AsyncHTTPClient: its requests can be cancelled at any moment (a
/// `Cancellation` cancels the one in flight, or the back-off before a retry) and it bounds
/// connecting, silence and the whole attempt separately. The calling thread blocks on the reply,
/// so callers are engine threads, never NIO event loops.

public final class RemoteLarge: LargeModel, @unchecked Sendable {
    public struct Options: Sendable {
        /// The server's address, e.g. http://127.0.0.1:8081 or http://host/v1.
        public var url: URL
        /// The `model` field of each request (some servers need it).
        public var model: String?
        public var apiKey: String?
        /// Seconds to open a connection.
        public var connectTimeout: Double = 5
        /// Seconds the server may send nothing while a reply is due. A completion that is not
        /// streamed comes only when it is done, so this also bounds the time to write it.
        public var readTimeout: Double = 30
        /// Seconds one attempt may take in all, connecting included: a server that trickles its
        /// reply never trips the read timeout, this ends it.
        public var timeout: Double = 60
        /// Bytes a reply may have; a longer one is refused (bad response) without reading the rest.
        public var maxReply = 8 << 20
        /// Further attempts after a failed one (connection error, time-out, HTTP 429 or 5xx).
        public var retries = 2
        /// Wait before the first retry; it doubles for each further one.
        public var backoff: Double = 0.25
        public init(url: URL) { self.url = url }
    }

    public let options: Options
    let endpoint: URL
    let client: HTTPClient

    public init(options: Options) {
        self.options = options
        var base = options.url.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        if !base.hasSuffix("/v1") { base += "/v1" }
        endpoint = URL(string: base + "/completions")!
        let timeout = HTTPClient.Configuration.Timeout(connect: .seconds(options.connectTimeout), read: .seconds(options.readTimeout))
        // A POST is never sent elsewhere.
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: timeout)
        // A failed connection fails its attempt at once: the retries and their back-off are ours
        // (AsyncHTTPClient would otherwise try again until the connect timeout).
        config.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }

    deinit {
        // Without waiting: the last reference may go on any thread.
        client.shutdown { _ in }
    }

    public var name: String { options.model.map { "\($0) at \(options.url)" } ?? options.url.absoluteString }

    public func continuation(of text: String, maxTokens: Int, stop: [String], sampling: SamplingParams,
                             cancellation: Cancellation) throws -> Continuation {
        let start = Date()
        var calls = Calls()
        let reply = try complete(text, maxTokens: maxTokens, stop: stop, sampling: sampling, calls: &calls, cancellation: cancellation)
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
                let probe = try complete(text + kept, maxTokens: probeTokens, stop: [], sampling: .greedy, calls: &calls,
                                         cancellation: cancellation)
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

    func complete(_ prompt: String, maxTokens: Int, stop: [String], sampling: SamplingParams, calls: inout Calls,
                  cancellation: Cancellation) throws -> Reply {
        var body: [String: Any] = ["prompt": prompt, "max_tokens": maxTokens, "temperature": Double(sampling.temperature),
                                   "top_p": Double(sampling.topP), "stream": false]
        if let model = options.model { body["model"] = model }
        if !stop.isEmpty { body["stop"] = stop }
        if let seed = sampling.seed { body["seed"] = Int(truncatingIfNeeded: seed & 0x7FFF_FFFF) }
        // llama-server's names (vLLM takes top_k, min_p and ignore_eos too); the penalties that
        // count the answer's tokens are refused before a remote mode starts (ModeError.remoteSampling).
        if sampling.topK > 0 { body["top_k"] = sampling.topK }
        if sampling.minP > 0 { body["min_p"] = Double(sampling.minP) }
        if sampling.repeatPenalty != 1 {
            body["repeat_penalty"] = Double(sampling.repeatPenalty)
            body["repeat_last_n"] = sampling.repeatLastN
        }
        if sampling.ignoreEOS { body["ignore_eos"] = true }
        let data = try JSONSerialization.data(withJSONObject: body)

        var lastFailure = ""
        for attempt in 0...options.retries {
            if attempt > 0 {
                calls.retries += 1
                guard cancellation.sleep(options.backoff * Double(1 << (attempt - 1))) else { throw CancellationError() }
            }
            calls.requests += 1
            switch try post(data, cancellation: cancellation) {
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
        /// Worth a retry: the connection failed or timed out.
        case failure(String)
    }

    /// One POST, blocking this thread until the reply, a failure or a cancel.
    func post(_ body: Data, cancellation: Cancellation) throws -> PostResult {
        var headers = HTTPHeaders([("Content-Type", "application/json")])
        if let key = options.apiKey { headers.add(name: "Authorization", value: "Bearer \(key)") }
        let request = try HTTPClient.Request(url: endpoint, method: .POST, headers: headers, body: .bytes(body))
        // ResponseAccumulator traps on a cap outside 0...4 GiB.
        let cap = min(max(options.maxReply, 0), Int(UInt32.max))
        let task = client.execute(request: request, delegate: ResponseAccumulator(request: request, maxBodySize: cap),
                                  deadline: .now() + .seconds(options.timeout))
        do {
            let response = try cancellation.onCancel({ task.cancel() }) { try task.futureResult.wait() }
            return .success(Int(response.status.code), response.body.map { Data($0.readableBytesView) } ?? Data())
        } catch {
            if cancellation.isCancelled { throw CancellationError() }
            if error is ResponseAccumulator.ResponseTooBigError {
                throw LargeModelError.badResponse("\(endpoint) sent a reply over \(options.maxReply) bytes (--large-max-reply); the rest was not read")
            }
            return .failure(describe(error))
        }
    }

    /// What went wrong with a request, in words that name the limit it hit.
    func describe(_ error: Error) -> String {
        if let error = error as? HTTPParserError {
            return error == .invalidEOFState ? "the server closed the connection before the whole reply" : "the reply is not HTTP (\(error))"
        }
        if let error = error as? IOError { return "\(String(cString: strerror(error.errnoCode))) (errno \(error.errnoCode))" }
        guard let error = error as? HTTPClientError else { return String(describing: error) }
        switch error {
        case .connectTimeout: return "no connection within \(options.connectTimeout) s (--large-connect-timeout)"
        case .readTimeout: return "nothing received for \(options.readTimeout) s (--large-read-timeout)"
        case .deadlineExceeded: return "no whole reply within \(options.timeout) s (--large-timeout)"
        case .remoteConnectionClosed: return "the server closed the connection before the whole reply"
        default: return String(describing: error)
        }
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

private extension TimeAmount {
    static func seconds(_ s: Double) -> TimeAmount { .nanoseconds(Int64(s * 1e9)) }
}
