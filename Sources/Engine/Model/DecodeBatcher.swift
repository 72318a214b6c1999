import Foundation

/// Merges the rows that several threads (server slots) run on one model at the same moment into
/// one `Model.forward` over all of them. Decoding reads every weight once per forward whatever
/// the number of rows, so a batch of 4 costs little more than 1.
///
/// A row is queued; if no thread is running a batch of this model, its thread leads: it runs
/// every queued row as one forward and wakes the others with their outputs; otherwise it waits
/// for the leader. No thread waits for a timer when alone: only when sequences of the last two
/// batches are missing from the queue does the leader wait (at most 5 ms) for them. Waiting for
/// the last batch's size alone is not enough: 4 slots then settle into rotating batches of 3, the
/// one left behind always joining the next batch with two of the others.
/// A batch of one is the forward its row makes alone, so one client gets exactly the numbers it
/// got before.
public final class DecodeBatcher: @unchecked Sendable {
    final class Step {
        let row: Model.Row
        var output: Result<Model.Output, any Error>?
        init(_ row: Model.Row) { self.row = row }
    }

    private let condition = NSCondition()
    private var pending: [Step] = []
    /// Forwards run and rows (decode steps) they carried, over every model (steps / batches is the mean batch).
    nonisolated(unsafe) private static var counts = (batches: 0, steps: 0)
    private static let countsLock = NSLock()
    public static var totals: (batches: Int, steps: Int) { countsLock.withLock { counts } }
    /// The caches of the last two batches: the sequences expected in the next one.
    private var recent: [Set<ObjectIdentifier>] = [[], []]
    /// A thread is running a batch; the others wait on `condition` for their outputs.
    private var leading = false
    static let wait = 0.005

    /// Runs `row` in one forward with the rows other threads queue meanwhile; returns its output.
    func run(_ row: Model.Row, model: Model) throws -> Model.Output {
        try model.check(row)   // a bad row fails alone, not the batch it would join
        let step = Step(row)
        condition.lock()
        defer { condition.unlock() }
        pending.append(step)
        condition.broadcast()
        while step.output == nil {
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
            recent = [recent[1], Set(batch.map { ObjectIdentifier($0.row.cache) })]
            condition.unlock()
            let outputs = Result(catching: { try model.forward(batch.map(\.row)) })
            Self.countsLock.withLock { Self.counts.batches += 1; Self.counts.steps += batch.count }
            condition.lock()
            for (i, s) in batch.enumerated() { s.output = outputs.map { $0[i] } }
            leading = false
            condition.broadcast()
        }
        return try step.output!.get()
    }
}
