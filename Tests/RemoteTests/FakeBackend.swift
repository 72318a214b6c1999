import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A misbehaving OpenAI-compatible completions server on 127.0.0.1, at a port the system picks:
/// plain blocking sockets, one thread per connection, each connection reads one request and
/// answers as `behaviour` says (always with `Connection: close`).
final class FakeBackend: @unchecked Sendable {
    enum Behaviour: Sendable {
        /// 200 with a completion of this text.
        case answer(String)
        /// Reads the request and never answers.
        case hang
        /// Answers the first request with this text, then hangs.
        case answerThenHang(String)
        /// 200 and a Content-Length, then the body one byte a second.
        case trickle
        /// HTTP 500 to the first `n` requests, then the answer.
        case failFirst(Int, then: String)
        /// 200 with a body that is not JSON.
        case junk
        /// 200 with a completion this many bytes long, announced by a Content-Length or chunked.
        case huge(Int, announced: Bool)
        /// 200 with a Content-Length, part of the body, then the connection closes.
        case closeMidReply
    }

    struct Request {
        var head: String
        var body: Data
    }

    let behaviour: Behaviour
    private(set) var port = 0
    private let listener: Int32
    private let condition = NSCondition()
    private var stopped = false
    private var open: Set<Int32> = []
    private var received: [Request] = []
    private var sent = 0

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }
    var requests: [Request] { condition.withLock { received } }
    /// Bytes of replies the system took from this server (sent, or in its socket buffers).
    var bytesSent: Int { condition.withLock { sent } }

    init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 64) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { close(listener); throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Stops accepting, ends every connection and wakes every waiting handler (tests must call it:
    /// the accepting thread holds the server).
    func stop() {
        condition.withLock {
            guard !stopped else { return }
            stopped = true
            for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
            condition.broadcast()
        }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    /// Waits until `n` requests came in; false after `seconds`.
    func waitForRequests(_ n: Int, seconds: Double = 10) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return condition.withLock {
            while received.count < n { guard condition.wait(until: deadline) else { return false } }
            return true
        }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let fd = accept(listener, nil, nil)
            let accepted: Bool = condition.withLock {
                guard fd >= 0, !stopped else { return false }
                open.insert(fd)
                return true
            }
            guard accepted else {
                if fd >= 0 { close(fd) }
                if condition.withLock({ stopped }) { return }
                continue
            }
            Thread { [self] in
                serve(fd)
                condition.withLock { _ = open.remove(fd) }
                close(fd)
            }.start()
        }
    }

    private func serve(_ fd: Int32) {
        guard let request = read(fd) else { return }
        let index: Int = condition.withLock {
            received.append(request)
            condition.broadcast()
            return received.count - 1
        }
        switch behaviour {
        case .answer(let text):
            reply(fd, 200, Self.completion(text))
        case .hang:
            _ = wait(seconds: .infinity)
        case .answerThenHang(let text):
            if index == 0 { reply(fd, 200, Self.completion(text)) } else { _ = wait(seconds: .infinity) }
        case .trickle:
            let body = Self.completion("slowly")
            guard write(fd, Self.head(200, length: body.count)) else { return }
            for byte in body {
                guard write(fd, Data([byte])), wait(seconds: 1) else { return }
            }
        case .failFirst(let n, let text):
            if index < n { reply(fd, 500, Data("{\"error\": \"overloaded\"}".utf8)) } else { reply(fd, 200, Self.completion(text)) }
        case .junk:
            reply(fd, 200, Data("{\"choices\": [{\"text\": oops".utf8))
        case .huge(let size, let announced):
            let open = Data("{\"choices\": [{\"text\": \"".utf8), close = Data("\"}]}".utf8)
            let piece = Data(repeating: UInt8(ascii: "a"), count: 64 << 10)
            guard write(fd, announced ? Self.head(200, length: open.count + size + close.count)
                                      : Self.head(200, extra: "Transfer-Encoding: chunked\r\n")) else { return }
            func part(_ data: Data) -> Bool {
                announced ? write(fd, data) : write(fd, Data((String(data.count, radix: 16) + "\r\n").utf8) + data + Data("\r\n".utf8))
            }
            guard part(open) else { return }
            var left = size
            while left > 0 {
                guard part(piece.prefix(left)) else { return }
                left -= min(left, piece.count)
            }
            guard part(close) else { return }
            if !announced { _ = write(fd, Data("0\r\n\r\n".utf8)) }
        case .closeMidReply:
            let body = Self.completion("cut short")
            _ = write(fd, Self.head(200, length: body.count) + body.prefix(body.count / 2))
        }
    }

    static func completion(_ text: String) -> Data {
        try! JSONSerialization.data(withJSONObject: ["object": "text_completion",
                                                     "choices": [["index": 0, "text": text, "finish_reason": "length"]]])
    }

    static func head(_ status: Int, length: Int? = nil, extra: String = "") -> Data {
        Data(("HTTP/1.1 \(status) \(status == 200 ? "OK" : "Internal Server Error")\r\nContent-Type: application/json\r\n"
            + (length.map { "Content-Length: \($0)\r\n" } ?? "") + extra + "Connection: close\r\n\r\n").utf8)
    }

    private func reply(_ fd: Int32, _ status: Int, _ body: Data) {
        _ = write(fd, Self.head(status, length: body.count) + body)
    }

    /// One request: the head up to its blank line and a body of its Content-Length.
    private func read(_ fd: Int32) -> Request? {
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let blank = Data("\r\n\r\n".utf8)
        while true {
            if let end = data.range(of: blank) {
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first ?? 0
                if data.count - end.upperBound >= length {
                    return Request(head: head, body: Data(data[end.upperBound ..< end.upperBound + length]))
                }
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { return nil }
            data.append(contentsOf: chunk[..<n])
        }
    }

    /// Sends all of `data`; false once the peer is gone or the server stopped.
    private func write(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                guard n > 0 else { return false }
                offset += n
                condition.withLock { sent += n }
            }
            return true
        }
    }

    /// Sleeps up to `seconds`; false if the server stopped meanwhile.
    private func wait(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return condition.withLock {
            // NSCondition.wait(until:) traps on Date.distantFuture on Linux.
            while !stopped { if !seconds.isFinite { condition.wait() } else if !condition.wait(until: deadline) { return true } }
            return false
        }
    }
}
