import Assets
import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Relay
import Remote
import Testing
import TestSupport

/// SmolLM2-135M, the real small model (only the remote large model is fake).
enum Smol {
    static let model: Model? = {
        let path = AssetStore().modelPath("smollm2-135m")
        return FileManager.default.fileExists(atPath: path) ? try? Model(path: path) : nil
    }()
}

/// How long `condition` took to hold, polling every 10 ms; nil if it did not within `seconds`.
func secondsUntil(_ seconds: Double, _ condition: () -> Bool) -> Double? {
    let start = Date()
    while Date().timeIntervalSince(start) < seconds {
        if condition() { return Date().timeIntervalSince(start) }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return nil
}

@Suite("A slot blocked on a hanging remote model is released when its client leaves", .serialized)
struct ReleaseTests {
    @Test("generate with the remote large model ends within a second of a cancel while the backend hangs")
    func generation() throws {
        guard let model = Smol.model else { try Test.cancel("SmolLM2-135M not fetched") }
        let backend = try FakeBackend(.hang)
        defer { backend.stop() }
        let pair = SessionPair(large: nil, small: Session(model: model, contextSize: 512), remote: remote(backend, read: 60, timeout: 60))
        let cancellation = Cancellation()
        var settings = Mode.Settings()
        settings.cancellation = cancellation
        var options = GenerationOptions()
        options.maxTokens = 16
        options.cancellation = cancellation
        let strategy = try Mode.make("large", sessions: pair, settings: settings)
        let generation = options
        let prompt = model.tokenizer.encode("Once upon a time", addBOS: true, parseSpecial: false)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<RelayResult, Error>?
        Thread {
            result = Result { try generate(strategy, prompt: prompt, tokenizer: model.tokenizer, contextSize: 512, options: generation) }
            done.signal()
        }.start()
        let arrived = backend.waitForRequests(1)
        try #require(arrived)
        Thread.sleep(forTimeInterval: 0.2)
        let start = Date()
        cancellation.cancel()
        let returned = done.wait(timeout: .now() + 10) == .success
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "generate: returned %.4f s after the cancel", seconds))
        try #require(returned, "no return within 10 s of the cancel")
        let r = try #require(try result?.get())
        #expect(r.finishReason == .stop && r.tokens.isEmpty)
        #expect(seconds < 1, "\(seconds) s")
    }

    @Test("relay serve -np 1: a client that disconnects while the backend hangs frees the slot within a second")
    func serve() throws {
        guard Smol.model != nil else { try Test.cancel("SmolLM2-135M not fetched") }
        let backend = try FakeBackend(.hang)
        defer { backend.stop() }
        let server = try Serve(["--large-url", backend.url.absoluteString, "-md", "smollm2-135m", "-np", "1",
                                "--large-read-timeout", "600", "--large-timeout", "600"])
        defer { server.stop() }
        let body = #"{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0, "relay_mode": "large"}"#
        let connection = HTTP.connect(server.port)
        let client = try #require(connection)
        HTTP.send(client, "POST", "/v1/completions", body)
        let arrived = backend.waitForRequests(1)
        try #require(arrived)
        Thread.sleep(forTimeInterval: 0.3)
        let busy = server.busySlots()
        #expect(busy == 1)
        close(client)
        let freed = secondsUntil(5) { server.busySlots() == 0 }
        print("relay serve: the slot was free \(freed.map { String(format: "%.3f s", $0) } ?? "> 5 s") after its client left")
        #expect(freed.map { $0 < 1 } == true, "slot freed after \(freed.map { "\($0) s" } ?? "more than 5 s")")
        // The only slot takes the next request (one the small model answers alone).
        let small = #"{"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0, "relay_mode": "small"}"#
        let reply = HTTP.request(server.port, "POST", "/v1/completions", small)
        #expect(reply.hasPrefix("HTTP/1.1 200"), "\(reply.prefix(300))")
    }
}

extension ReleaseTests {
    @Test("relay serve -np 1: a streaming client that disconnects after the first text while the backend hangs frees the slot within a second")
    func serveStream() throws {
        guard Smol.model != nil else { try Test.cancel("SmolLM2-135M not fetched") }
        let backend = try FakeBackend(.answerThenHang(" there lived a fox who liked to read books about the sea"))
        defer { backend.stop() }
        let server = try Serve(["--large-url", backend.url.absoluteString, "-md", "smollm2-135m", "-np", "1",
                                "--large-read-timeout", "600", "--large-timeout", "600"])
        defer { server.stop() }
        let body = #"{"prompt": "Once upon a time", "max_tokens": 64, "temperature": 0, "relay_mode": "large", "stream": true}"#
        let connection = HTTP.connect(server.port)
        let client = try #require(connection)
        HTTP.send(client, "POST", "/v1/completions", body)
        // The header and the first event may arrive in separate reads.
        var received = ""
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let until = Date().addingTimeInterval(10)
        while !received.contains("data:"), Date() < until {
            let got = recv(client, &chunk, chunk.count, 0)
            guard got > 0 else { break }
            received += String(decoding: chunk[..<got], as: UTF8.self)
        }
        #expect(received.contains("data:"), "\(received.prefix(300))")
        let asked = backend.waitForRequests(2)
        try #require(asked)
        Thread.sleep(forTimeInterval: 0.3)
        let busy = server.busySlots()
        #expect(busy == 1)
        close(client)
        let freed = secondsUntil(10) { server.busySlots() == 0 }
        print("relay serve, streaming: the slot was free \(freed.map { String(format: "%.3f s", $0) } ?? "> 10 s") after its client left")
        #expect(freed.map { $0 < 1 } == true, "slot freed after \(freed.map { "\($0) s" } ?? "more than 10 s")")
    }
}

/// `relay serve` on a free port, run from the build folder of this test bundle.
final class Serve {
    let process: Process
    let port: Int

    init(_ arguments: [String]) throws {
        let log = Scratch.directory("serve") + "/stderr.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        self.process = process
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--port", "0"] + arguments
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var port: Int?
        _ = secondsUntil(120) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"listening on http://[0-9.]+:([0-9]+)"#, options: .regularExpression) {
                port = Int(text[r].split(separator: ":").last!)
            }
            return port != nil || !process.isRunning
        }
        guard let port else {
            process.terminate()
            throw POSIXError(.ECONNREFUSED)
        }
        self.port = port
    }

    /// SIGINT, and SIGKILL if it has not stopped 10 s later (a slot that stays blocked keeps it).
    func stop() {
        process.interrupt()
        if secondsUntil(10, { !process.isRunning }) == nil { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// The `relay_slots_busy` gauge of /metrics.
    func busySlots() -> Int? {
        let text = HTTP.request(port, "GET", "/metrics")
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("relay_slots_busy ") }) else { return nil }
        return Double(line.split(separator: " ")[1]).map { Int($0) }   // Prometheus writes gauges as 1.0
    }

    static let binary: String = {
        // The test bundle sits beside the products of the same build configuration.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("relay").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/release/relay"
    }()
}

/// HTTP/1.1 over a plain socket: a client that can leave in the middle of a request.
enum HTTP {
    static func connect(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if !connected { close(fd) }
        // A reply that does not come fails the test instead of hanging it.
        var wait = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        return connected ? fd : nil
    }

    static func send(_ fd: Int32, _ method: String, _ path: String, _ body: String = "") {
        let text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n\(body)"
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The whole response, head and body; empty if the connection failed.
    static func request(_ port: Int, _ method: String, _ path: String, _ body: String = "") -> String {
        guard let fd = connect(port) else { return "" }
        defer { close(fd) }
        send(fd, method, path, body)
        var data = [UInt8](), chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { break }
            data += chunk[..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }
}
