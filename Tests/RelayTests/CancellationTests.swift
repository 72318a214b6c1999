import Foundation
import Relay
import Testing

@Suite("Cancellation")
struct CancellationTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }

    @Test("a handler runs once on cancel while its body runs, at once when already cancelled, and not after its body")
    func handlers() {
        let c = Cancellation(), during = Counter(), after = Counter()
        c.onCancel({ after.add() }) {}
        c.onCancel({ during.add() }) {
            c.cancel()
            c.cancel()
        }
        #expect(c.isCancelled && during.value == 1 && after.value == 0)
        let late = Counter()
        let ranFirst = c.onCancel({ late.add() }) { late.value == 1 }
        #expect(ranFirst)
    }

    @Test("sleep returns false as soon as another thread cancels, true after its time otherwise")
    func sleep() {
        let c = Cancellation()
        #expect(c.sleep(0.01))
        Thread {
            Thread.sleep(forTimeInterval: 0.1)
            c.cancel()
        }.start()
        let start = Date()
        #expect(!c.sleep(30))
        #expect(Date().timeIntervalSince(start) < 5)
    }
}
