import Foundation

/// Merges the rows that several threads (server slots) run on one model at the same moment into
/// one `Model.forward` over all of them: decode steps, verifications of drafts, catch-up and check
/// forwards and prompt prefill alike. Decoding reads every weight once per forward whatever the
/// number of rows, so a batch of 4 costs little more than 1.
///
/// A row is queued; if no thread is running a batch of this model, its thread leads: it runs the
/// queued rows as one forward and wakes the others with their outputs; otherwise it waits for the
/// leader. With a step budget (`-b`), one forward takes at most that many positions, shortest rows
/// first: a long prompt is prefilled a chunk per step, so the streams decoding beside it slow down
/// instead of stopping. No thread waits for a timer when alone: only when sequences of the last two
/// batches are missing from the queue does the leader wait (at most 5 ms) for them. Waiting for
/// the last batch's size alone is not enough: 4 slots then settle into rotating batches of 3, the
/// one left behind always joining the next batch with two of the others.
/// A batch of one row is the forward that row makes alone, so one client gets exactly the numbers
/// it got before; the logits of a position do not depend on how rows are cut or combined.
public final class Batcher: @unchecked Sendable {
    final class Job {
        let row: Model.Row
        /// Tokens of the row already run (earlier chunks), and their outputs so far.
        var done = 0
        var logits: [Float] = [], hidden: [Float] = []
        var result: Result<Model.Output, any Error>?
        /// In the forward a leader is running (its outputs are not in yet).
        var running = false
        var abandoned = false
        init(_ row: Model.Row) { self.row = row }
        var remaining: Int { row.tokens.count - done }

        /// The next `n` tokens as a row of their own, wanting the logits of the row's wanted positions among them.
        func chunk(_ n: Int) -> Model.Row {
            let first = row.firstWanted - done
            return Model.Row(cache: row.cache, tokens: Array(row.tokens[done ..< done + n]),
                             logits: first >= n ? .none : .from(max(first, 0)), vocabulary: row.vocabulary, keepsHidden: row.keepsHidden)
        }
    }

    private let condition = NSCondition()
    private var pending: [Job] = []
    /// How many positions one forward may take while other sequences share the steps.
    public enum StepBudget: Sendable, Equatable {
        /// No limit: the forward itself cuts at `maxBatch` (one process, one sequence).
        case unlimited
        /// At most this many (`-b N`).
        case positions(Int)
        /// As many as keep the step within twice the cost of the rows' plain steps, from the
        /// measured cost of forwards by positions: a long prompt then at most doubles the gap
        /// between the other streams' tokens, on any machine (`-b 0`).
        case auto
    }

    /// Set once by the server from `-b`.
    public var stepBudget: StepBudget {
        get { condition.withLock { budget } }
        set { condition.withLock { budget = newValue } }
    }
    private var budget = StepBudget.unlimited
    /// Engine time of every forward by its positions (the auto budget's estimate).
    private var stepCosts = CostCurve()
    /// Forwards run, rows and positions they carried, over every model (rows / forwards is the mean batch).
    nonisolated(unsafe) private static var counts = (forwards: 0, rows: 0, positions: 0)
    private static let countsLock = NSLock()
    public static var totals: (forwards: Int, rows: Int, positions: Int) { countsLock.withLock { counts } }
    /// Positions per sequence in the last forward, and the sequences of the one before: together
    /// the sequences expected in the next one.
    private var last: [ObjectIdentifier: Int] = [:]
    private var previous: Set<ObjectIdentifier> = []
    /// When each sequence last ran here, until it is `finished`. One seen within `shareWindow`
    /// still shares the model: a speculative slot leaves the small model's batches while it
    /// verifies and the large model's while it drafts, and a prompt that took the whole model
    /// meanwhile (256 positions: seconds) would stall it.
    private var seen: [ObjectIdentifier: UInt64] = [:]
    static let shareWindow: UInt64 = 5_000_000_000
    /// A thread is running a batch; the others wait on `condition` for their outputs.
    private var leading = false
    static let wait = 0.005

    /// Engine time of forwards in which every position wanted logits (decode steps, verifications,
    /// drafts), by their positions: what one more row would cost in the next one.
    private var costs = CostCurve()

    /// The cost curve of this model's forwards, and the positions that rows other than `cache`'s
    /// carried in the last one (the batch a row of `cache` is about to join).
    public func batch(besides cache: KVCache) -> (costs: CostCurve, others: Int) {
        condition.withLock {
            let me = ObjectIdentifier(cache)
            return (costs, last.reduce(0) { $0 + ($1.key == me ? 0 : $1.value) })
        }
    }

    /// Gives up the queued row of `cache` (its client left): it throws `CancellationError` at once,
    /// or if a forward is running it, when that forward ends; prompt chunks not run yet never run.
    public func abandon(_ cache: KVCache) {
        condition.withLock {
            for j in pending where j.row.cache === cache {
                j.abandoned = true
                if !j.running { j.result = .failure(CancellationError()) }
            }
            pending.removeAll { $0.result != nil }
            condition.broadcast()
        }
    }

    /// The sequence of `cache` has ended (its generation returned): the batches to come neither
    /// wait for it nor count it as sharing the model.
    public func finished(_ cache: KVCache) {
        condition.withLock {
            let id = ObjectIdentifier(cache)
            (seen[id], last[id]) = (nil, nil)
            previous.remove(id)
        }
    }

    /// The auto budget for a step whose rows' plain steps take `plain` positions: the most
    /// positions (at least one more, so a prompt always advances) whose estimated cost stays
    /// within twice theirs. 16 until two sizes were measured.
    private func autoLimit(plain positions: Int, most: Int) -> Int {
        guard let plain = stepCosts.ms(positions) else { return max(16, positions + 1) }
        var (low, high) = (positions + 1, max(most, positions + 1))   // the answer lies in low...high
        while low < high {
            let mid = (low + high + 1) / 2
            if let c = stepCosts.ms(mid), c <= 2 * plain { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// Runs `row` in forwards with the rows other threads queue meanwhile; returns its output.
    func run(_ row: Model.Row, model: Model) throws -> Model.Output {
        try model.check(row)   // a bad row fails alone, not the batch it would join
        let job = Job(row)
        condition.lock()
        defer { condition.unlock() }
        pending.append(job)
        condition.broadcast()
        while job.result == nil {
            guard !leading else {
                // Another thread is running a batch; it wakes everyone when done.
                condition.wait()
                continue
            }
            // Lead: wait a moment for the rest of the last batch, then run what fits this step.
            leading = true
            let deadline = Date().addingTimeInterval(Self.wait)
            let expected = previous.union(last.keys).count
            while pending.count < expected, condition.wait(until: deadline) {}
            // Alone, a prompt runs a full forward (`maxBatch` positions) per step: as fast as
            // unchunked, and a request that arrives meanwhile waits for one chunk at most.
            let now = DispatchTime.now().uptimeNanoseconds
            seen = seen.filter { now - $0.value < Self.shareWindow }
            let shared = pending.count > 1 || expected > 1
                || seen.keys.contains { id in !pending.contains { ObjectIdentifier($0.row.cache) == id } }
            let limit: Int
            switch budget {
            case .unlimited: limit = Int.max
            case .positions(let b): limit = shared ? max(b, 1) : max(b, model.maxBatch)
            case .auto:
                // A row that wants every position's logits (a decode step, a verification, a draft)
                // is a plain step of that many positions, so it runs whole; a prompt's counts one.
                let plain = pending.reduce(0) { $0 + ($1.row.firstWanted == 0 ? $1.remaining : 1) }
                limit = shared ? autoLimit(plain: plain, most: model.maxBatch) : model.maxBatch
            }
            var batch: [(job: Job, n: Int)] = [], used = 0
            for j in pending.sorted(by: { $0.remaining < $1.remaining }) where used < limit {
                let n = min(j.remaining, limit - used)
                batch.append((j, n)); used += n
            }
            for (j, _) in batch { j.running = true }
            previous = Set(last.keys)
            last = Dictionary(batch.map { (ObjectIdentifier($0.job.row.cache), $0.n) }, uniquingKeysWith: +)
            for id in last.keys { seen[id] = now }
            let rows = batch.map { $0.job.chunk($0.n) }
            condition.unlock()
            let start = DispatchTime.now().uptimeNanoseconds
            let outputs = Result(catching: { try model.forward(rows) })
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            Self.countsLock.withLock { Self.counts.forwards += 1; Self.counts.rows += batch.count; Self.counts.positions += used }
            condition.lock()
            if rows.allSatisfy({ $0.firstWanted == 0 }) { costs.observe(used, ms: ms) }
            stepCosts.observe(used, ms: ms)
            for (i, (j, n)) in batch.enumerated() {
                j.running = false
                if j.abandoned { j.result = .failure(CancellationError()); continue }
                switch outputs {
                case .failure(let error):
                    j.result = .failure(error)
                case .success(let out) where j.done == 0 && n == j.row.tokens.count:
                    j.result = .success(out[i])   // the whole row in one step: no copy into the job
                case .success(let out):
                    j.logits += out[i].logits; j.hidden += out[i].hidden; j.done += n
                    if j.remaining == 0 { j.result = .success(Model.Output(logits: j.logits, hidden: j.hidden)) }
                }
            }
            pending.removeAll { $0.result != nil }
            leading = false
            condition.broadcast()
        }
        return try job.result!.get()
    }
}
