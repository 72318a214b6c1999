import Engine
import Foundation
import Relay
import Remote
import Testing

/// What a call to the remote model gave, and how long it took.
struct Outcome {
    var result: Result<Continuation, Error>
    var seconds: Double

    var error: Error? { if case .failure(let e) = result { e } else { nil } }
    var message: String { error.map { String(describing: $0) } ?? "no error" }
    var unavailable: Bool { if case LargeModelError.unavailable? = error { true } else { false } }
    var badResponse: Bool { if case LargeModelError.badResponse? = error { true } else { false } }
    var cancelled: Bool { error is CancellationError }
}

/// A remote model with small limits, so that every fault ends within seconds.
func remote(_ backend: FakeBackend, retries: Int = 0, connect: Double = 1, read: Double = 1, timeout: Double = 3,
            maxReply: Int = 1 << 20, backoff: Double = 0.05, apiKey: String? = nil) -> RemoteLarge {
    var o = RemoteLarge.Options(url: backend.url)
    o.connectTimeout = connect
    o.readTimeout = read
    o.timeout = timeout
    o.maxReply = maxReply
    o.retries = retries
    o.backoff = backoff
    o.apiKey = apiKey
    return RemoteLarge(options: o)
}

func call(_ model: RemoteLarge, cancellation: Cancellation = Cancellation()) -> Outcome {
    let start = Date()
    let result = Result { try model.continuation(of: "Once upon a time", maxTokens: 8, stop: [], sampling: .greedy, cancellation: cancellation) }
    return Outcome(result: result, seconds: Date().timeIntervalSince(start))
}

/// Runs `call` on a thread of its own (as a server slot does) and cancels it once the backend has
/// received `requests` requests and `after` more seconds passed; the outcome's time counts from the
/// cancel. Nil if the call did not return within 10 s of it.
func cancelled(_ model: RemoteLarge, _ backend: FakeBackend, requests: Int = 1, after: Double = 0.2) -> Outcome? {
    let cancellation = Cancellation()
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var outcome: Outcome?
    Thread {
        outcome = call(model, cancellation: cancellation)
        done.signal()
    }.start()
    guard backend.waitForRequests(requests) else { return nil }
    Thread.sleep(forTimeInterval: after)
    let start = Date()
    cancellation.cancel()
    guard done.wait(timeout: .now() + 10) == .success, var o = outcome else { return nil }
    o.seconds = Date().timeIntervalSince(start)
    return o
}

@Suite("Remote large model against a misbehaving backend", .serialized)
struct RemoteFaultTests {
    @Test("a good answer: the text, one request of the documented shape")
    func good() throws {
        let backend = try FakeBackend(.answer(" there was a fox"))
        defer { backend.stop() }
        let o = call(remote(backend, apiKey: "k3y"))
        let c = try o.result.get()
        #expect(c.text == " there was a fox" && !c.ended && c.requests == 1 && c.retries == 0)
        let request = try #require(backend.requests.first)
        #expect(request.head.hasPrefix("POST /v1/completions HTTP/1.1"))
        #expect(request.head.lowercased().contains("content-type: application/json"))
        #expect(request.head.contains("Bearer k3y"))
        let body = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect(body["prompt"] as? String == "Once upon a time" && body["max_tokens"] as? Int == 8 && body["stream"] as? Bool == false)
    }

    @Test("a backend that never answers fails each attempt at the read timeout, then is unavailable")
    func hang() throws {
        let backend = try FakeBackend(.hang)
        defer { backend.stop() }
        let o = call(remote(backend, retries: 1, read: 0.5, timeout: 10))
        #expect(o.unavailable && o.message.contains("nothing received for 0.5 s"), "\(o.message)")
        #expect(backend.requests.count == 2)
        #expect(o.seconds >= 1 && o.seconds < 3, "\(o.seconds) s")
    }

    @Test("a backend that trickles a byte a second is cut at the total deadline of the attempt")
    func trickle() throws {
        let backend = try FakeBackend(.trickle)
        defer { backend.stop() }
        let o = call(remote(backend, read: 5, timeout: 1.5))
        #expect(o.unavailable && o.message.contains("no whole reply within 1.5 s"), "\(o.message)")
        #expect(o.seconds >= 1.5 && o.seconds < 3, "\(o.seconds) s")
    }

    @Test("HTTP 500 then 200: the retry gets the answer and is counted")
    func retry() throws {
        let backend = try FakeBackend(.failFirst(1, then: " the end"))
        defer { backend.stop() }
        let c = try call(remote(backend, retries: 2)).result.get()
        #expect(c.text == " the end" && c.requests == 2 && c.retries == 1)
    }

    @Test("HTTP 500 on every attempt: unavailable, with the status and the server's words")
    func alwaysFailing() throws {
        let backend = try FakeBackend(.failFirst(.max, then: ""))
        defer { backend.stop() }
        let o = call(remote(backend, retries: 2))
        #expect(o.unavailable && o.message.contains("HTTP 500") && o.message.contains("overloaded") && o.message.contains("3 attempts"), "\(o.message)")
        #expect(backend.requests.count == 3)
    }

    @Test("junk JSON is a bad response, not retried")
    func junk() throws {
        let backend = try FakeBackend(.junk)
        defer { backend.stop() }
        let o = call(remote(backend, retries: 2))
        #expect(o.badResponse && o.message.contains("did not answer with a completion") && o.message.contains("oops"), "\(o.message)")
        #expect(backend.requests.count == 1)
    }

    @Test("a 50 MB reply is refused at the cap without reading the rest", arguments: [true, false])
    func huge(announced: Bool) throws {
        let backend = try FakeBackend(.huge(50 << 20, announced: announced))
        defer { backend.stop() }
        let o = call(remote(backend, retries: 2, timeout: 30))
        #expect(o.badResponse && o.message.contains("over 1048576 bytes (--large-max-reply)"), "\(o.message)")
        #expect(backend.requests.count == 1 && o.seconds < 5, "\(o.seconds) s")
        // The client closed the connection: what the server got rid of is what socket buffers hold at most.
        Thread.sleep(forTimeInterval: 0.5)
        let sent = backend.bytesSent
        print("50 MB reply, \(announced ? "announced" : "chunked"): refused after \(String(format: "%.3f", o.seconds)) s, \(sent) bytes left the server")
        #expect(sent < 25 << 20, "\(sent) bytes sent")
    }

    @Test("a reply cut by a closed connection is retried, then unavailable, saying so")
    func closedMidReply() throws {
        let backend = try FakeBackend(.closeMidReply)
        defer { backend.stop() }
        let o = call(remote(backend, retries: 1))
        #expect(o.unavailable && o.message.contains("closed the connection"), "\(o.message)")
        #expect(backend.requests.count == 2 && o.seconds < 3, "\(o.seconds) s")
    }

    @Test("nothing listening: unavailable at once")
    func refused() throws {
        let backend = try FakeBackend(.hang)
        backend.stop()
        Thread.sleep(forTimeInterval: 0.2)
        let o = call(remote(backend, retries: 1))
        #expect(o.unavailable && o.message.contains("Connection refused") && o.seconds < 1, "\(o.message), \(o.seconds) s")
    }

    @Test("a cancel while the backend hangs returns within a second")
    func cancelWhileHanging() throws {
        let backend = try FakeBackend(.hang)
        defer { backend.stop() }
        let outcome = cancelled(remote(backend, retries: 2, read: 60, timeout: 60), backend)
        let o = try #require(outcome, "no return within 10 s of the cancel")
        print(String(format: "continuation: returned %.4f s after the cancel", o.seconds))
        #expect(o.cancelled, "\(o.message)")
        #expect(o.seconds < 1, "\(o.seconds) s")
        #expect(backend.requests.count == 1)
    }

    @Test("a cancel during the back-off before a retry returns within a second, with no further request")
    func cancelDuringBackoff() throws {
        let backend = try FakeBackend(.failFirst(.max, then: ""))
        defer { backend.stop() }
        let outcome = cancelled(remote(backend, retries: 2, backoff: 30), backend)
        let o = try #require(outcome, "no return within 10 s of the cancel")
        #expect(o.cancelled && o.seconds < 1, "\(o.message), \(o.seconds) s")
        #expect(backend.requests.count == 1)
    }
}
