import Foundation

/// Merges decode steps that several threads (server slots) make on one model at the same moment
/// into one forward over all their sequences (`Model.forwardSequences`). Decoding reads every
/// weight once per forward whatever the number of rows, so a batch of 4 costs little more than 1.
///
/// No thread waits for a timer when alone: a step is queued, then the thread takes the engine
/// lock; if another thread's batch already computed it, it returns; otherwise it runs every queued
/// step of this model as one batch. Only when the previous batch had more sequences than are
/// queued now does it wait (at most 5 ms) for the rest to arrive, so slots decoding in step stay
/// in one batch instead of splitting into alternating small ones. A batch of one takes the
/// single-sequence path, so one client gets exactly the numbers it got before.
public final class DecodeBatcher: @unchecked Sendable {
    final class Step {
        let token: Int32
        let cache: KVCache
        var logits: [Float]?
        init(token: Int32, cache: KVCache) {
            self.token = token
            self.cache = cache
        }
    }

    private let condition = NSCondition()
    private var pending: [Step] = []
    /// Forwards run and decode steps they carried, over every model (steps / batches is the mean batch).
    nonisolated(unsafe) private static var counts = (batches: 0, steps: 0)
    private static let countsLock = NSLock()
    public static var totals: (batches: Int, steps: Int) { countsLock.withLock { counts } }
    private var lastBatch = 1
    static let wait = 0.005

    func run(_ token: Int32, cache: KVCache, model: Model) -> [Float] {
        let step = Step(token: token, cache: cache)
        condition.withLock {
            pending.append(step)
            condition.broadcast()
        }
        Model.engineLock.lock()
        defer { Model.engineLock.unlock() }
        while true {
            if let logits = condition.withLock({ step.logits }) { return logits }
            let batch: [Step] = condition.withLock {
                let deadline = Date().addingTimeInterval(Self.wait)
                while pending.count < lastBatch, condition.wait(until: deadline) {}
                let taken = Array(pending.prefix(model.maxBatch))
                pending.removeFirst(taken.count)
                lastBatch = taken.count
                return taken
            }
            Self.countsLock.withLock { Self.counts.batches += 1; Self.counts.steps += batch.count }
            let logits: [[Float]]
            if batch.count == 1 {
                logits = [model.evaluate([batch[0].token], cache: batch[0].cache, firstLogitRow: 0)]
            } else {
                let V = model.config.vocabSize
                var out = [Float](repeating: 0, count: batch.count * V)
                out.withUnsafeMutableBufferPointer { model.forwardSequences(batch.map(\.token), caches: batch.map(\.cache), into: $0.baseAddress!) }
                logits = (0..<batch.count).map { Array(out[$0 * V ..< ($0 + 1) * V]) }
            }
            condition.withLock { for (s, l) in zip(batch, logits) { s.logits = l } }
        }
    }
}
