import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Relay

/// How long a connection may take over each part of its life, and how many may be open.
public struct ConnectionLimits: Sendable {
    /// A kept-alive connection with no request in progress, or a client that reads nothing of its
    /// answer, is closed after this long.
    public var idle: Duration = .seconds(60)
    /// From a new connection, or from the first byte of a request, to the end of its header.
    public var headers: Duration = .seconds(10)
    /// From the end of a request's header to the end of its body.
    public var body: Duration = .seconds(60)
    /// Open connections; more are closed at once.
    public var maxConnections = 256
    public init() {}
}

/// The HTTP/1.1 child channel: Hummingbird's, with a `ConnectionGuard` on every connection and a
/// cap on how many are open.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let open: OpenConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let first: any RemovableChannelHandler
        if open.admit() {
            channel.closeFuture.whenComplete { [open] _ in open.release() }
            first = ConnectionGuard.BytesSide(ConnectionGuard(limits))
        } else {
            // Over the cap. (Setup runs before the channel is registered: a close here with a
            // failed setup left the socket open.)
            first = CloseWhenActive()
        }
        do {
            // First in the pipeline, so that it sees the bytes of a header that is not complete yet.
            try channel.pipeline.syncOperations.addHandler(first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let parts = (first as? ConnectionGuard.BytesSide).map { [ConnectionGuard.PartsSide($0.owner)] } ?? []
        return HTTP1Channel(responder: responder, configuration: .init(additionalChannelHandlers: parts)).setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}

/// Closes a connection over the cap as soon as it is open, before anything is read.
final class CloseWhenActive: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.close(promise: nil) }
    }
    func channelActive(context: ChannelHandlerContext) { context.close(promise: nil) }
}

/// Counts open connections against `ConnectionLimits.maxConnections`.
final class OpenConnections: @unchecked Sendable {
    let limit: Int
    let metrics: Metrics
    private let lock = NSLock()
    private var count = 0
    init(limit: Int, metrics: Metrics) {
        self.limit = limit
        self.metrics = metrics
    }

    func admit() -> Bool {
        let admitted = lock.withLock {
            guard count < limit else { return false }
            count += 1
            return true
        }
        metrics.connection(admitted: admitted)
        return admitted
    }

    func release() { lock.withLock { count -= 1 } }
    var current: Int { lock.withLock { count } }
}

/// One connection's deadlines, and its watch for a client that goes away during a request.
///
/// It follows the connection through two handlers: `bytes` sees what arrives before the HTTP
/// decoder (the start of a header that is not complete), `parts` sees decoded request parts and the
/// response parts written. At any time at most one deadline runs: the header's, the body's, idle,
/// or a client not reading its answer; when it passes, the connection is closed. A request being
/// answered has no deadline: a generation may take long.
///
/// The disconnect watch does not read the request stream (Hummingbird's
/// `consumeWithInboundCloseHandler` does, and so could take the next request's head away from the
/// connection's loop): it sees the channel go inactive, or its input close, and cancels the
/// generation the connection's current request attached.
final class ConnectionGuard: @unchecked Sendable {
    enum Wait: Equatable {
        case headers, idle, unread
        case body(Int)
    }

    let limits: ConnectionLimits

    // Event-loop state.
    private var heads = 0, ends = 0, answers = 0  // request heads and ends read; responses finished
    private var headerStarted = true                // a new connection is expected to send a header
    private var writable = true
    private var waiting: Wait?
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    // Shared with the request's task.
    private let lock = NSLock()
    private var gone = false
    private var current: Cancellation?

    init(_ limits: ConnectionLimits) { self.limits = limits }

    /// The guard of the connection a request came on.
    static func of(_ channel: any Channel) async -> ConnectionGuard? {
        try? await channel.pipeline.handler(type: PartsSide.self).map(\.owner).get()
    }

    /// The generation to cancel if the client goes away; replaces the previous request's.
    func attach(_ cancel: Cancellation) {
        let gone = lock.withLock {
            current = cancel
            return self.gone
        }
        if gone { cancel.cancel() }
    }

    fileprivate func disconnected() {
        let cancel = lock.withLock {
            gone = true
            return current
        }
        cancel?.cancel()
    }

    // MARK: Event-loop side

    fileprivate func added(_ context: ChannelHandlerContext) {
        self.context = context
        update()
    }

    fileprivate func removed() {
        timer?.cancel()
        timer = nil
        context = nil
    }

    fileprivate func bytesArrived() {
        // Bytes outside a body start a header (or continue one).
        if ends == heads && !headerStarted {
            headerStarted = true
            update()
        }
    }

    fileprivate func read(_ part: HTTPRequestPart) {
        switch part {
        case .head: heads += 1; headerStarted = false
        case .body: return
        case .end: ends += 1
        }
        update()
    }

    fileprivate func wrote(_ part: HTTPResponsePart) {
        if case .end = part {
            answers += 1
            update()
        }
    }

    fileprivate func writabilityChanged(_ writable: Bool) {
        self.writable = writable
        update()
    }

    /// The deadline that applies now.
    private var wanted: Wait? {
        // A body being read: the body deadline, once every request before it is answered (a
        // pipelined request waits for those answers without a deadline).
        if ends < heads { return answers >= ends ? .body(ends) : nil }
        if answers < heads { return writable ? nil : .unread }
        return headerStarted ? .headers : .idle
    }

    private func update() {
        let wanted = self.wanted
        guard wanted != waiting, let context else { return }
        timer?.cancel()
        timer = nil
        waiting = wanted
        let delay: Duration
        switch wanted {
        case nil: return
        case .headers: delay = limits.headers
        case .body: delay = limits.body
        case .idle, .unread: delay = limits.idle
        }
        timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(delay)) { [weak self] in
            guard let self, self.waiting == wanted else { return }
            self.context?.close(promise: nil)
        }
    }

    /// Sees raw bytes, before the HTTP decoder.
    final class BytesSide: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let owner: ConnectionGuard
        init(_ owner: ConnectionGuard) { self.owner = owner }

        func handlerAdded(context: ChannelHandlerContext) { owner.added(context) }
        func handlerRemoved(context: ChannelHandlerContext) { owner.removed() }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            owner.bytesArrived()
            context.fireChannelRead(data)
        }
    }

    /// Sees decoded request parts and the response parts written.
    final class PartsSide: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        let owner: ConnectionGuard
        init(_ owner: ConnectionGuard) { self.owner = owner }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            owner.read(unwrapInboundIn(data))
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            owner.wrote(unwrapOutboundIn(data))
            context.write(data, promise: promise)
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            owner.writabilityChanged(context.channel.isWritable)
            context.fireChannelWritabilityChanged()
        }

        func channelInactive(context: ChannelHandlerContext) {
            owner.disconnected()
            context.fireChannelInactive()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // The client closed its side (the server allows half-closed connections).
            if case ChannelEvent.inputClosed? = event as? ChannelEvent { owner.disconnected() }
            context.fireUserInboundEventTriggered(event)
        }
    }
}
