import Foundation

/// Stops one generation from outside (the server, when its client leaves). The synchronous code
/// running it polls `isCancelled` between steps, and a call that blocks (a remote model's request,
/// its retry back-off) registers a handler that unblocks it at once. Set once, never reset.
public final class Cancellation: @unchecked Sendable {
    private let condition = NSCondition()
    private var cancelled = false
    private var handlers: [Int: @Sendable () -> Void] = [:]
    private var lastHandler = 0

    public init() {}

    public var isCancelled: Bool { condition.withLock { cancelled } }

    /// Cancels, and runs the handlers registered now, on this thread.
    public func cancel() {
        let run: [@Sendable () -> Void] = condition.withLock {
            guard !cancelled else { return [] }
            cancelled = true
            condition.broadcast()
            defer { handlers.removeAll() }
            return Array(handlers.values)
        }
        for handler in run { handler() }
    }

    /// Runs `body` with `handler` registered: a cancel while `body` runs calls `handler`, and if
    /// this is already cancelled `handler` runs at once, before `body`.
    public func onCancel<T>(_ handler: @escaping @Sendable () -> Void, during body: () throws -> T) rethrows -> T {
        let id: Int? = condition.withLock {
            guard !cancelled else { return nil }
            lastHandler += 1
            handlers[lastHandler] = handler
            return lastHandler
        }
        if id == nil { handler() }
        defer { if let id { condition.withLock { _ = handlers.removeValue(forKey: id) } } }
        return try body()
    }

    /// Waits `seconds`, or until cancelled; false when cancelled.
    public func sleep(_ seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return condition.withLock {
            while !cancelled, condition.wait(until: deadline) {}
            return !cancelled
        }
    }
}
