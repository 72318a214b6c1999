import Engine
import Foundation
import Testing

@Suite("Several sequences in one forward", .serialized)
struct MultiSequenceTests {
    static let models: [(String, () -> Model)] = [("smollm2", { TestModels.smol }), ("qwen2.5-0.5b", { TestModels.qwenSmall })]
    static let prompts = ["The quick brown fox", "def add(a, b):\n    return", "Once upon a time, in a land far away, there", "1, 2, 3,"]

    @Test("a batched decode step gives each sequence exactly the logits of its own single-sequence step", arguments: [0, 1])
    func batchedDecodeMatchesSingle(index: Int) throws {
        let m = Self.models[index].1()
        let prompts = Self.prompts.map { m.tokenizer.encode($0, addBOS: m.tokenizer.addBOS) }
        // Sequences of different lengths, so each attends over its own number of positions.
        let batched = prompts.map { _ in m.makeCache(capacity: 64) }
        let single = prompts.map { _ in m.makeCache(capacity: 64) }
        for (i, p) in prompts.enumerated() {
            _ = try m.forward(Array(p.dropLast()), cache: batched[i])
            _ = try m.forward(Array(p.dropLast()), cache: single[i])
        }
        var next = prompts.map { $0.last! }
        for _ in 0..<3 {
            let rows = try m.forward(zip(next, batched).map { Model.Row(cache: $1, tokens: [$0]) }).map(\.logits)
            for i in prompts.indices {
                let alone = try m.forward([next[i]], cache: single[i])
                #expect(rows[i] == alone, "sequence \(i): logits differ")
                #expect(batched[i].count == single[i].count)
            }
            next = rows.map { row in Int32(row.indices.max { row[$0] < row[$1] }!) }
        }
    }

    @Test("rows of several tokens, split across chunks of one forward, get exactly what each row gets alone", arguments: [0, 1])
    func rowsMatchAlone(index: Int) throws {
        let m = Self.models[index].1()
        let chunked = try Model(path: m.file.path, maxBatch: 4)   // rows span chunks, chunks hold parts of several rows
        let prompts = Self.prompts.map { m.tokenizer.encode($0, addBOS: m.tokenizer.addBOS) }
        let wanted: [Model.LogitsWanted] = [.last, .all, .from(3), .all]
        func rows(_ model: Model) -> [Model.Row] {
            prompts.indices.map { i in
                Model.Row(cache: model.makeCache(capacity: 64), tokens: prompts[i], logits: wanted[i], vocabulary: i == 3 ? 300 : nil, keepsHidden: i == 1)
            }
        }
        let together = try chunked.forward(rows(chunked))
        for (i, row) in rows(m).enumerated() {
            let alone = try m.forward([row])[0]
            #expect(together[i].logits == alone.logits && together[i].hidden == alone.hidden, "row \(i)")
            let positions = [1, prompts[i].count, prompts[i].count - 3, prompts[i].count][i]
            #expect(alone.logits.count == positions * (i == 3 ? 300 : m.config.vocabSize) && alone.hidden.count == (i == 1 ? positions * m.config.dim : 0))
        }
    }

    @Test("sessions decoding on four threads at once get exactly the greedy tokens they get alone")
    func concurrentSessions() throws {
        let m = TestModels.smol
        let prompts = Self.prompts.map { m.tokenizer.encode($0, addBOS: m.tokenizer.addBOS) }
        func greedy(_ session: Session, _ prompt: [Int32]) throws -> [Int32] {
            var context = prompt
            for _ in 0..<24 {
                let logits = try session.sync(to: context)
                context.append(Int32(logits.indices.max { logits[$0] < logits[$1] }!))
            }
            return Array(context[prompt.count...])
        }
        let alone = try prompts.map { try greedy(Session(model: m, contextSize: 128), $0) }
        nonisolated(unsafe) var together = [[Int32]](repeating: [], count: prompts.count)
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            together[i] = (try? greedy(Session(model: m, contextSize: 128), prompts[i])) ?? []
        }
        #expect(together == alone)
    }

    @Test("prompts cut into steps of a budget, verifications and drafts on four threads get exactly what they get alone",
          arguments: [Batcher.StepBudget.positions(5), .auto])
    func mixedRowsUnderBudget(budget: Batcher.StepBudget) throws {
        let m = try Model(path: TestModels.smol.file.path, maxBatch: 5)
        m.batcher.stepBudget = budget   // 5: shorter than every prompt, each is prefilled over several steps (alone: maxBatch)
        let prompts = Self.prompts.map { m.tokenizer.encode($0 + " and then, a little later,", addBOS: m.tokenizer.addBOS) }
        // A speculative-shaped loop: a step of 3 positions with logits from the first, a narrowed
        // vocabulary step, then plain decoding; returns every logit it saw.
        func work(_ session: Session, _ prompt: [Int32]) throws -> [Float] {
            var seen = try session.sync(to: prompt), context = prompt
            func argmax(_ l: ArraySlice<Float>) -> Int32 { Int32(l.indices.max { l[$0] < l[$1] }! - l.startIndex) }
            for round in 0..<6 {
                let logits: [Float]
                switch round % 3 {
                case 0: logits = try session.sync(to: context + [11, 12], logitsFrom: context.count - 1)
                case 1: logits = try session.sync(to: context, vocabulary: 300)
                default: logits = try session.sync(to: context)
                }
                seen += logits
                context.append(argmax(logits[..<min(logits.count, 300)]))
            }
            return seen
        }
        let alone = try prompts.map { try work(Session(model: TestModels.smol, contextSize: 128), $0) }
        nonisolated(unsafe) var together = [[Float]](repeating: [], count: prompts.count)
        let before = Batcher.totals
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            together[i] = (try? work(Session(model: m, contextSize: 128), prompts[i])) ?? []
        }
        for i in prompts.indices { #expect(together[i] == alone[i], "sequence \(i)") }
        let after = Batcher.totals, positions = after.positions - before.positions
        #expect(positions >= prompts.reduce(0) { $0 + $1.count } && after.forwards - before.forwards >= positions / 5)   // maxBatch 5 under either budget
    }

    @Test("a prompt abandoned part-way stops at its current chunk, leaves its session usable, and the others run on")
    func abandonedPrompt() throws {
        let m = try Model(path: TestModels.smol.file.path, maxBatch: 4)   // alone, a prompt runs maxBatch positions a step
        m.batcher.stepBudget = .positions(2)
        let long = Array(repeating: m.tokenizer.encode(" and the fox ran on", addBOS: false), count: 40).flatMap { $0 }
        let session = Session(model: m, contextSize: 512), other = Session(model: m, contextSize: 512)
        nonisolated(unsafe) var thrown: (any Error)?
        let done = DispatchSemaphore(value: 0)
        Thread { do { try session.sync(to: long) } catch { thrown = error }; done.signal() }.start()
        while Batcher.totals.forwards == 0 || session.cache.count < 4 { usleep(1000) }
        m.batcher.abandon(session.cache)
        done.wait()
        #expect(thrown is CancellationError)
        #expect(session.cache.count == 0 && session.tokens.isEmpty)
        let prompt = Array(long.prefix(9))
        #expect(try session.sync(to: prompt) == other.sync(to: prompt))
    }

    @Test("a sequence that ran lately shares the model until it is finished: only meanwhile does the budget cut a prompt that is alone")
    func sharingEndsWithTheSequence() throws {
        let m = try Model(path: TestModels.smol.file.path, maxBatch: 8)
        m.batcher.stepBudget = .positions(2)
        let prompt = Array(Array(repeating: m.tokenizer.encode(" and the fox ran on", addBOS: false), count: 4).flatMap { $0 }.prefix(16))
        func forwards(_ body: () throws -> Void) rethrows -> Int {
            let before = Batcher.totals.forwards
            try body()
            return Batcher.totals.forwards - before
        }
        let other = Session(model: m, contextSize: 64), first = Session(model: m, contextSize: 64)
        try other.sync(to: [1, 2, 3])   // then it drafts, verifies elsewhere or waits: still a sequence of this model
        #expect(try forwards { try first.sync(to: prompt) } == (prompt.count + 1) / 2)
        m.batcher.finished(other.cache)
        m.batcher.finished(first.cache)
        let second = Session(model: m, contextSize: 64)
        #expect(try forwards { try second.sync(to: prompt) } == (prompt.count + 7) / 8)   // alone: maxBatch a step
    }

    @Test("a cache given twice in one batch is refused")
    func duplicateCache() throws {
        let m = TestModels.smol
        let cache = m.makeCache(capacity: 8)
        #expect(throws: ModelError.self) { try m.forward([Model.Row(cache: cache, tokens: [1]), Model.Row(cache: cache, tokens: [2])]) }
    }
}
