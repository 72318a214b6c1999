import Foundation

/// Merges decode steps that several threads (server slots) make on one model at the same moment
/// into one forward over all their sequences (`Model.forwardSequences`). Decoding reads every
/// weight once per forward whatever the number of rows, so a batch of 4 costs little more than 1.
///
/// A step is queued; if no thread is running a batch of this model, its thread leads: it runs
/// every queued step as one forward and wakes the others with their logits; otherwise it waits
/// for the leader. No thread waits for a timer when alone: only when sequences of the last two
/// batches are missing from the queue does the leader wait (at most 5 ms) for them. Waiting for
/// the last batch's size alone is not enough: 4 slots then settle into rotating batches of 3, the
/// one left behind always joining the next batch with two of the others.
/// A batch of one takes the single-sequence path, so one client gets exactly the numbers it got
/// before.
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
    /// The caches of the last two batches: the sequences expected in the next one.
    private var recent: [Set<ObjectIdentifier>] = [[], []]
    /// A thread is running a batch; the others wait on `condition` for their logits.
    private var leading = false
    static let wait = 0.005

    func run(_ token: Int32, cache: KVCache, model: Model) -> [Float] {
        let step = Step(token: token, cache: cache)
        condition.lock()
        defer { condition.unlock() }
        pending.append(step)
        condition.broadcast()
        while step.logits == nil {
            guard !leading else {
                // Another thread is running a batch; it wakes everyone when done.
                condition.wait()
                continue
            }
            // Lead: wait a moment for the rest of the last batch, then run everything queued.
            leading = true
            let deadline = Date().addingTimeInterval(Self.wait)
            let expected = min(recent[0].union(recent[1]).count, model.maxBatch)
            while pending.count < expected, condition.wait(until: deadline) {}
            let batch = Array(pending.prefix(model.maxBatch))
            pending.removeFirst(batch.count)
            recent = [recent[1], Set(batch.map { ObjectIdentifier($0.cache) })]
            condition.unlock()
            let logits = Model.engineLock.withLock { Self.evaluate(batch, model: model) }
            Self.countsLock.withLock { Self.counts.batches += 1; Self.counts.steps += batch.count }
            condition.lock()
            for (s, l) in zip(batch, logits) { s.logits = l }
            leading = false
            condition.broadcast()
        }
        return step.logits!
    }

    /// One forward for the batch (the single-sequence path for a batch of one).
    static func evaluate(_ batch: [Step], model: Model) -> [[Float]] {
        if batch.count == 1 {
            return [model.evaluate([batch[0].token], cache: batch[0].cache, firstLogitRow: 0).logits]
        }
        let V = model.config.vocabSize
        var out = [Float](repeating: 0, count: batch.count * V)
        out.withUnsafeMutableBufferPointer { model.forwardSequences(batch.map(\.token), caches: batch.map(\.cache), into: $0.baseAddress!) }
        return (0..<batch.count).map { Array(out[$0 * V ..< ($0 + 1) * V]) }
    }
}
