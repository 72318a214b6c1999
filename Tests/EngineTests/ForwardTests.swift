import Engine
import Foundation
import Testing

@Suite("Forward pass and KV cache")
struct ForwardTests {
    static let models: [(String, () -> Model)] = [("smollm2", { TestModels.smol }), ("qwen2.5-0.5b", { TestModels.qwenSmall })]

    @Test("a forward over many positions gives the logits of one position at a time", arguments: [0, 1])
    func batchMatchesSingle(index: Int) throws {
        let m = Self.models[index].1()
        let tokens = m.tokenizer.encode("The quick brown fox jumps over the lazy dog. Then it", addBOS: m.tokenizer.addBOS)
        let batched = m.makeCache(capacity: 64)
        let all = try m.forward(tokens, cache: batched, logits: .all)
        let single = m.makeCache(capacity: 64)
        let V = m.config.vocabSize
        for (i, t) in tokens.enumerated() {
            let row = try m.forward([t], cache: single)
            let batchRow = Array(all[i * V ..< (i + 1) * V])
            #expect(row == batchRow, "position \(i): logits differ")
        }
        #expect(batched.count == tokens.count && single.count == tokens.count)
    }

    @Test("truncating the cache and re-running gives the same logits", arguments: [0, 1])
    func truncateAndRerun(index: Int) throws {
        let m = Self.models[index].1()
        let tokens = m.tokenizer.encode("def fibonacci(n):\n    if n < 2:\n        return n", addBOS: m.tokenizer.addBOS)
        let cache = m.makeCache(capacity: 128)
        let first = try m.forward(tokens, cache: cache)
        _ = try m.forward([1, 2, 3, 4, 5], cache: cache)
        cache.truncate(to: tokens.count - 1)
        let again = try m.forward([tokens.last!], cache: cache)
        #expect(first == again)
    }

    @Test("a prompt longer than the context is a clear error")
    func contextOverflow() throws {
        let m = TestModels.smol
        let cache = m.makeCache(capacity: 8)
        #expect(throws: ModelError.self) { try m.forward(Array(repeating: 1, count: 9), cache: cache) }
        #expect(cache.count == 0)
        do { _ = try m.forward(Array(repeating: 1, count: 9), cache: cache) } catch {
            #expect("\(error)".contains("context holds 8"))
        }
    }

    @Test("Session.sync prefills only what is new")
    func syncReusesPrefix() throws {
        let m = TestModels.smol
        let s = Session(model: m, contextSize: 64)
        let a = m.tokenizer.encode("One two three four five", addBOS: false)
        let b = a + m.tokenizer.encode(" six seven", addBOS: false)
        _ = try s.sync(to: a)
        #expect(s.prefillTokens == a.count)
        let viaSync = try s.sync(to: b)
        #expect(s.prefillTokens == b.count)  // only the two new tokens were added
        let fresh = try m.forward(b, cache: m.makeCache(capacity: 64))
        #expect(viaSync == fresh)
    }
}

@Suite("Sampler")
struct SamplerTests {
    let logits: [Float] = (0..<1000).map { Float(($0 * 7919) % 1000) / 100 }

    @Test("temperature 0 is argmax")
    func greedy() {
        var s = Sampler(.greedy)
        let id = logits.withUnsafeBufferPointer { s.sample($0) }
        #expect(id == Int32(logits.firstIndex(of: logits.max()!)!))
    }

    @Test("the same seed gives the same tokens")
    func seeded() {
        var p = SamplingParams()
        p.seed = 1234
        var a = Sampler(p), b = Sampler(p)
        let x = (0..<50).map { _ in logits.withUnsafeBufferPointer { a.sample($0) } }
        let y = (0..<50).map { _ in logits.withUnsafeBufferPointer { b.sample($0) } }
        #expect(x == y)
        #expect(Set(x).count > 1)
    }

    @Test("top-k, top-p and min-p keep the expected candidates")
    func chain() {
        var p = SamplingParams()
        p.topK = 5; p.topP = 1; p.minP = 0; p.temperature = 1
        let d5 = logits.withUnsafeBufferPointer { Sampler(p).distribution($0) }
        #expect(d5.count == 5)
        #expect(abs(d5.map(\.p).reduce(0, +) - 1) < 1e-5)
        p.minP = 0.5
        let dm = logits.withUnsafeBufferPointer { Sampler(p).distribution($0) }
        // logits 9.99, 9.98, ... differ by 0.01: all top five are above half of the best.
        #expect(dm.count == 5)
        p.topK = 0; p.minP = 0.9
        let dmin = logits.withUnsafeBufferPointer { Sampler(p).distribution($0) }
        #expect(dmin.count == 11)  // exp(-0.1) = 0.905 ≥ 0.9, exp(-0.11) < 0.9
    }

    @Test("repetition penalty lowers repeated tokens")
    func penalty() {
        var p = SamplingParams.greedy
        p.repeatPenalty = 2
        let best = Int32(logits.firstIndex(of: logits.max()!)!)
        var s = Sampler(p)
        let id = logits.withUnsafeBufferPointer { s.sample($0, history: [best]) }
        #expect(id != best)
    }

    @Test("presence and frequency penalties follow OpenAI's formula over the answer's tokens only")
    func openAIPenalties() {
        // Token 0 leads token 1 by 0.9; token 0 was written twice in the answer, once in the prompt.
        let l: [Float] = [3, 2.1, 1, 0]
        let history: [Int32] = [0, 2, /* answer: */ 0, 0]
        func pick(_ configure: (inout SamplingParams) -> Void) -> Int32 {
            var p = SamplingParams.greedy
            p.answerStart = 2
            configure(&p)
            var s = Sampler(p)
            return l.withUnsafeBufferPointer { s.sample($0, history: history) }
        }
        #expect(pick { _ in } == 0)
        #expect(pick { $0.frequencyPenalty = 0.4 } == 0)   // 3 - 2 x 0.4 = 2.2 > 2.1
        #expect(pick { $0.frequencyPenalty = 0.5 } == 1)   // 3 - 2 x 0.5 = 2.0 < 2.1
        #expect(pick { $0.presencePenalty = 0.8 } == 0)    // 3 - 0.8 = 2.2
        #expect(pick { $0.presencePenalty = 1 } == 1)      // 3 - 1 = 2.0
        // The prompt's token 2 is not the answer's: a penalty below zero lifts only answer tokens.
        #expect(pick { $0.presencePenalty = -2; $0.logitBias = [0: -10] } == 1)
        var p = SamplingParams.greedy
        p.presencePenalty = 1
        let dist = l.withUnsafeBufferPointer { Sampler(p).distribution($0, history: history) }
        #expect(dist.first?.id == 1)  // answerStart 0: every history token counts
    }

    @Test("logit_bias adds to a logit before the chain: -100 bans a token, +100 forces one")
    func logitBias() {
        let best = Int32(logits.firstIndex(of: logits.max()!)!)
        var p = SamplingParams()
        p.seed = 7
        p.logitBias = [best: -100]
        var s = Sampler(p)
        let drawn = (0..<200).map { _ in logits.withUnsafeBufferPointer { s.sample($0) } }
        #expect(!drawn.contains(best))
        p.logitBias = [3: 100]
        s = Sampler(p)
        #expect((0..<50).allSatisfy { _ in logits.withUnsafeBufferPointer { s.sample($0) } == 3 })
        var g = Sampler(.greedy)
        g.params.logitBias = [best: -.infinity]
        #expect(logits.withUnsafeBufferPointer { g.sample($0) } != best)
    }
}
