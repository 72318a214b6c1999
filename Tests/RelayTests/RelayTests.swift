import Assets
import Engine
import Foundation
import Relay
import Testing
import TestSupport

enum Models {
    nonisolated(unsafe) static let smol = try! Model(path: AssetStore().modelPath("smollm2-135m"))
    nonisolated(unsafe) static let qwen = try! Model(path: AssetStore().modelPath("qwen2.5-coder-0.5b"))
}

func chatPrompt(_ m: Model, _ text: String) throws -> [Int32] {
    let template = try ChatTemplate.detect(from: m.file.metadata["tokenizer.chat_template"]?.string)
    return m.tokenizer.encode(template.render([ChatMessage(role: "user", content: text)]), addBOS: m.tokenizer.addBOS)
}

@Suite("Speculative decoding", .serialized)
struct SpeculativeTests {
    /// SmolLM2 drafting for itself (full draft vocabulary: a pruned one makes the drafter another
    /// model), greedy, against plain greedy decoding of the same prompt.
    func againstPlain(_ text: String, maxTokens: Int, lookup: Int = 0) throws -> (plain: RelayResult, fast: RelayResult, spec: Speculative) {
        let m = Models.smol
        let prompt = try chatPrompt(m, text)
        var options = GenerationOptions()
        options.maxTokens = maxTokens
        options.sampling = .greedy
        let plain = try generate(Solo(session: Session(model: m, contextSize: 512), role: .large, sampling: .greedy),
                                 prompt: prompt, tokenizer: m.tokenizer, contextSize: 512, options: options)
        var params = DraftParams()
        params.vocabulary = 0
        params.lookup = lookup
        let spec = try Speculative(target: Session(model: m, contextSize: 512), draft: Session(model: m, contextSize: 512),
                                   sampling: .greedy, draftParams: params)
        return (plain, try generate(spec, prompt: prompt, tokenizer: m.tokenizer, contextSize: 512, options: options), spec)
    }

    @Test("at temperature 0 speculative output equals plain greedy decoding, and drafting with the model itself accepts every draft")
    func greedyExact() throws {
        let (plain, fast, _) = try againstPlain("List three fruits and say why each is healthy.", maxTokens: 80)
        #expect(fast.tokens == plain.tokens)
        #expect(fast.text == plain.text)
        #expect(fast.drafted > 0 && fast.accepted == fast.drafted)
        #expect(fast.tokensByRole[.large] == fast.tokens.count)
    }

    @Test("under penalties and a bias, greedy speculative output still equals greedy plain decoding, and differs from it without them")
    func greedyExactUnderPenalties() throws {
        let m = Models.smol
        let prompt = try chatPrompt(m, "Write a short poem about the sea, the sea and the sea.")
        var sampling = SamplingParams.greedy
        (sampling.frequencyPenalty, sampling.presencePenalty, sampling.repeatPenalty) = (0.8, 0.5, 1.1)
        sampling.answerStart = prompt.count
        let comma = m.tokenizer.encode(",", addBOS: false)[0]
        sampling.logitBias = [comma: -100]
        var options = GenerationOptions()
        options.maxTokens = 60
        options.sampling = sampling
        func plain(_ s: SamplingParams) throws -> RelayResult {
            try generate(Solo(session: Session(model: m, contextSize: 512), role: .large, sampling: s),
                         prompt: prompt, tokenizer: m.tokenizer, contextSize: 512, options: options)
        }
        var params = DraftParams()
        params.vocabulary = 0
        let spec = try Speculative(target: Session(model: m, contextSize: 512), draft: Session(model: m, contextSize: 512),
                                   sampling: sampling, draftParams: params)
        let penalised = try plain(sampling), fast = try generate(spec, prompt: prompt, tokenizer: m.tokenizer, contextSize: 512, options: options)
        #expect(fast.tokens == penalised.tokens)
        #expect(fast.drafted > 0)
        #expect(!penalised.tokens.contains(comma))
        var free = SamplingParams.greedy
        free.answerStart = prompt.count
        #expect(try plain(free).tokens != penalised.tokens)
    }

    @Test("a lookup finds what followed the last occurrence of the longest repeated suffix")
    func lookupFindsContinuation() {
        let context: [Int32] = [5, 6, 7, 8, 1, 6, 7, 9, 2, 6, 7]
        // Trigram [2, 6, 7] never occurred before; bigram [6, 7] last did at 5, followed by 9, 2, 6, 7.
        #expect(Speculative.lookup(context, longest: 3, limit: 3) == [9, 2, 6])
        #expect(Speculative.lookup(context + [9], longest: 3, limit: 4) == [2, 6, 7, 9])
        #expect(Speculative.lookup([1, 2, 3, 4], longest: 3, limit: 4).isEmpty)
        #expect(Speculative.lookup(context, longest: 0, limit: 4).isEmpty)
        // A continuation stops at the end of the context.
        #expect(Speculative.lookup([3, 4, 3, 4], longest: 2, limit: 8) == [3, 4])
    }

    @Test("drafts looked up in the context keep greedy output exact, and are used when the text repeats")
    func lookupGreedyExact() throws {
        let (plain, fast, spec) = try againstPlain("Repeat this sentence three times: the quick brown fox jumps over the lazy dog.",
                                                   maxTokens: 60, lookup: 3)
        #expect(fast.tokens == plain.tokens)
        #expect(spec.lookedUp > 0 && spec.lookupAccepted > 0 && spec.lookupAccepted <= spec.lookedUp)
        #expect(fast.accepted - spec.lookupAccepted == fast.drafted - spec.lookedUp)   // the model's own drafts all pass
    }

    @Test("a looked-up draft is verified only when it is expected to pay more than a drafting round")
    func lookupAgainstDrafting() {
        var c = DraftController()
        #expect(c.lookupLength(available: 3, small: 2) == 3)   // nothing measured yet
        for _ in 0..<50 {
            for n in 1...5 { c.observeVerify(positions: n, ms: 30 + 5 * Double(n - 1)) }
            c.observeDraft(steps: 2, ms: 20)
            c.observeAcceptance(proposed: 4, accepted: 4)
            c.observeLookup(proposed: 4, accepted: 4)
        }
        #expect(c.lookupLength(available: 4, small: 2) == 4)   // free and accepted: take it all
        for _ in 0..<200 { c.observeLookup(proposed: 4, accepted: 0) }
        #expect(c.lookupLength(available: 4, small: 2) == 0)   // never accepted: let the small model draft
    }

    @Test("the adaptive draft length follows measured costs: several drafts when verifying is cheap, none when it is not")
    func draftController() {
        func trained(verify: (Int) -> Double, draft: Double, acceptance: Double) -> DraftController {
            var c = DraftController()
            for round in 0..<200 {
                let n = round % 5 + 1
                c.observeVerify(positions: n, ms: verify(n))
                c.observeDraft(steps: 4, ms: 4 * draft)
                c.observeAcceptance(proposed: 10, accepted: Double(round % 10) < acceptance * 10 ? 10 : 0)
            }
            return c
        }
        var fresh = DraftController()
        #expect(fresh.length(max: 4) == 4)   // nothing measured yet: draft fully
        // Verifying 5 positions costs 2x one: drafting pays (1.5B with the packed kernels).
        var cheap = trained(verify: { 30 + 7.5 * Double($0 - 1) }, draft: 10, acceptance: 0.9)
        #expect(abs((cheap.verifyMs(5) ?? 0) - 60) < 1e-6)
        #expect(cheap.length(max: 4) >= 2)
        // Verifying costs 25 ms a position more: plain decoding is faster, except for one
        // exploring round in every 16.
        var dear = trained(verify: { 30 + 25 * Double($0 - 1) }, draft: 12, acceptance: 0.9)
        let lengths = (0..<32).map { _ in dear.length(max: 4) }
        #expect(lengths.filter { $0 == 0 }.count == 30 && lengths.filter { $0 == 4 }.count == 2)
        // Flat while memory-bound, then linear (the 1.5B here): each n keeps its own cost, unseen
        // n lie on the line through their neighbours, and one draft is worth proposing.
        let measured: [Int: Double] = [1: 26, 2: 27, 3: 34, 5: 44]
        var flat = DraftController()
        for _ in 0..<20 { for (n, ms) in measured { flat.observeVerify(positions: n, ms: ms) } }
        #expect(abs((flat.verifyMs(2) ?? 0) - 27) < 1e-6 && abs((flat.verifyMs(4) ?? 0) - 39) < 1e-6 && abs((flat.verifyMs(6) ?? 0) - 49) < 1e-6)
        flat.observeDraft(steps: 1, ms: 8)
        #expect(flat.length(max: 4) >= 1)
    }

    @Test("sharing forwards with busy slots, drafting stops where the batch's plain tokens are cheaper; alone it pays")
    func draftLengthKnowsTheBatch() {
        // The 1.5B's shape: flat up to 4 positions, then 10 ms per position; a draft step 10 ms alone, 20 ms for 4 rows.
        var large = CostCurve(), small = CostCurve()
        for n in 1...12 { large.observe(n, ms: n <= 4 ? 40 : 40 + 10 * Double(n - 4)) }
        for n in 1...4 { small.observe(n, ms: 10 + 10 * Double(n - 1) / 3) }
        var c = DraftController()
        for n in 1...5 { c.observeVerify(positions: n, ms: large.ms(n)!) }
        c.observeDraft(steps: 4, ms: 40)
        for _ in 0..<100 { c.observeAcceptance(proposed: 4, accepted: 4) }
        #expect(c.length(max: 4) >= 3)   // alone: verifying 4 positions costs what one does
        // Three other sequences' steps in the batch: a plain token costs a quarter of a forward, a
        // drafting round a forward of its own; drafting stops, and no round explores.
        let busy = DraftController.Batch(large: large, others: 3, small: small, draftOthers: 3)
        #expect(abs((c.costs(busy)?.verify(1) ?? 0) - 10) < 1e-9 && abs((c.costs(busy)?.verify(5) ?? 0) - 50) < 1e-9)
        #expect((0..<40).map { _ in c.length(max: 4, batch: busy) }.allSatisfy { $0 == 0 })
        // Verifying alone is cheap enough against one other sequence's half of a forward: drafting pays.
        var flat = CostCurve()
        for n in 1...8 { flat.observe(n, ms: 40 + Double(n - 1)) }
        #expect(c.length(max: 4, batch: DraftController.Batch(large: flat, others: 1, small: small, draftOthers: 0)) >= 2)
    }

    @Test("the rejection rule keeps the target distribution exactly, for a drafted and for a looked-up token",
          arguments: [[Candidate(id: 3, p: 0.4), Candidate(id: 1, p: 0.3), Candidate(id: 0, p: 0.2), Candidate(id: 4, p: 0.1)],
                      [Candidate(id: 1, p: 1)]])
    func rejectionSamplingIsExact(q: [Candidate]) {
        let p = [Candidate(id: 0, p: 0.5), Candidate(id: 1, p: 0.3), Candidate(id: 2, p: 0.15), Candidate(id: 3, p: 0.05)]
        var rng = Xoshiro256(seed: 99)
        let n = 200_000
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<n {
            var r = rng.unit(), x: Int32 = 4
            for c in q { r -= c.p; if r < 0 { x = c.id; break } }
            counts[Int(Speculative.resolve(x, p: p, q: q, rng: &rng).0)] += 1
        }
        // Chi-square against p over ids 0...3 (3 degrees of freedom; 16.27 is the 0.001 quantile).
        var chi2 = 0.0
        for c in p {
            let expected = Double(n) * Double(c.p)
            chi2 += pow(Double(counts[Int(c.id)]) - expected, 2) / expected
        }
        #expect(counts[4] == 0)
        #expect(chi2 < 16.27, "chi2 \(chi2), counts \(counts)")
    }

    @Test("a pair without one shared vocabulary is a clear error")
    func vocabularyMismatch() {
        #expect(throws: RelayError.self) {
            try Speculative(target: Session(model: Models.qwen, contextSize: 64), draft: Session(model: Models.smol, contextSize: 64),
                            sampling: .greedy, draftParams: DraftParams())
        }
        do {
            _ = try Mode.make("relaygen", sessions: SessionPair(large: Session(model: Models.qwen, contextSize: 64), small: Session(model: Models.smol, contextSize: 64)),
                               settings: { var s = Mode.Settings(); s.cues = CueSet(model: nil, cues: [.init(text: "So", delta: 1, count: 1)]); return s }())
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("vocabulary"))
        }
    }
}

@Suite("RelayGen", .serialized)
struct RelayGenTests {
    @Test("hands over at a cue at a word boundary, and back at the end of the sentence")
    func handOverRules() throws {
        let m = Models.smol
        let cues = [" the", "The", "is", "a"].map { $0.trimmingCharacters(in: .whitespaces) }
        let large = Solo(session: Session(model: m, contextSize: 1024), role: .large, sampling: .greedy)
        let small = Solo(session: Session(model: m, contextSize: 1024), role: .small, sampling: .greedy)
        let relay = try RelayGen(large: large, small: small, tokenizer: m.tokenizer, settings: RelayGen.Settings(cues: cues))
        var options = GenerationOptions()
        options.maxTokens = 160
        options.sampling = .greedy
        let prompt = try chatPrompt(m, "Describe the city of Paris in a few sentences.")
        let r = try generate(relay, prompt: prompt, tokenizer: m.tokenizer, contextSize: 1024, options: options)
        #expect(r.segments.count >= 3, "\(r.segments)")
        #expect(r.handovers > 0)
        var before = ""
        for (i, seg) in r.segments.enumerated() {
            if seg.role == .small && !before.hasSuffix("\\boxed") {
                // A small segment starts right after a cue at a word boundary ...
                let cue = cues.first { before.hasSuffix($0) }
                #expect(cue != nil, "small segment \(i) does not follow a cue: …\(before.suffix(20))")
                if let cue { #expect([nil, " ", "\n"].contains(before.dropLast(cue.count).last), "cue inside a word: …\(before.suffix(20))") }
                // ... and, unless the answer ended, runs to the end of a sentence.
                if i + 1 < r.segments.count {
                    let t = seg.text
                    #expect(t.hasSuffix(".") || t.hasSuffix("!") || t.hasSuffix("?") || t.contains("\n\n"), "small segment \(i) ends mid-sentence: \(t)")
                }
            }
            before += seg.text
        }
        // Same model on both sides: the relay writes what the model alone writes.
        let alone = try generate(Solo(session: Session(model: m, contextSize: 1024), role: .large, sampling: .greedy),
                                 prompt: prompt, tokenizer: m.tokenizer, contextSize: 1024, options: options)
        #expect(r.text == alone.text)
        #expect((r.tokensByRole[.small] ?? 0) > 0 && (r.tokensByRole[.large] ?? 0) > 0)
    }

    @Test("with small-p-min the large model takes a segment back at the small model's first unsure token")
    func smallConfidenceGate() throws {
        let m = Models.smol
        func run(_ pMin: Float) throws -> RelayResult {
            var settings = RelayGen.Settings(cues: ["The", "is", "a"])
            settings.smallPMin = pMin
            let relay = try RelayGen(large: Solo(session: Session(model: m, contextSize: 1024), role: .large, sampling: .greedy),
                                 small: Solo(session: Session(model: m, contextSize: 1024), role: .small, sampling: .greedy),
                                 tokenizer: m.tokenizer, settings: settings)
            var options = GenerationOptions()
            options.maxTokens = 96
            options.sampling = .greedy
            return try generate(relay, prompt: try chatPrompt(m, "Describe the city of Paris in a few sentences."), tokenizer: m.tokenizer,
                                contextSize: 1024, options: options)
        }
        let open = try run(0), never = try run(1), some = try run(0.5)
        // p(top1) < 1 always: every segment goes back to the large model before its first token.
        #expect(never.handovers > 0 && never.tokensByRole[.small] == nil)
        let smallShare = { (r: RelayResult) in r.tokensByRole[.small] ?? 0 }
        #expect(smallShare(open) > smallShare(some) && smallShare(some) > 0)
        // The same model on both sides: the text does not change.
        #expect(open.text == never.text && open.text == some.text)
    }

    @Test("with check-p-min the large model checks each small segment and takes over at its first implausible token")
    func largeModelCheck() throws {
        let m = Models.smol
        // The small side samples hot, so it often writes what the greedy large side would not.
        var hot = SamplingParams()
        hot.temperature = 1.5
        hot.seed = 7
        var options = GenerationOptions()
        options.maxTokens = 96
        options.sampling = .greedy
        let prompt = try chatPrompt(m, "Describe the city of Paris in a few sentences.")
        func run(_ pMin: Float, small sampling: SamplingParams, every: Int = 0, vocabulary: Int? = nil) throws -> (RelayResult, RelayGen) {
            var settings = RelayGen.Settings(cues: ["The", "is", "a"])
            settings.checkPMin = pMin
            settings.checkEvery = every
            settings.checkedVocabulary = vocabulary
            let relay = try RelayGen(large: Solo(session: Session(model: m, contextSize: 1024), role: .large, sampling: .greedy),
                                     small: Solo(session: Session(model: m, contextSize: 1024), role: .small, sampling: sampling),
                                     tokenizer: m.tokenizer, settings: settings, sampling: .greedy)
            return (try generate(relay, prompt: prompt, tokenizer: m.tokenizer, contextSize: 1024, options: options), relay)
        }
        let alone = try generate(Solo(session: Session(model: m, contextSize: 1024), role: .large, sampling: .greedy),
                                 prompt: prompt, tokenizer: m.tokenizer, contextSize: 1024, options: options)
        // The same greedy model on both sides agrees with itself: every small token is kept.
        let (same, sameRelay) = try run(1, small: .greedy)
        #expect(same.text == alone.text && sameRelay.corrections == 0 && (same.tokensByRole[.small] ?? 0) > 0)
        // 1 keeps only the large model's own choices, so its greedy text; a lenient check replaces
        // fewer tokens; no check keeps whatever the small model wrote.
        let (open, _) = try run(0, small: hot), (lenient, lenientRelay) = try run(0.01, small: hot), (strict, strictRelay) = try run(1, small: hot)
        #expect(strict.text == alone.text && strictRelay.corrections > 0)
        #expect(lenientRelay.corrections < strictRelay.corrections && lenient.tokensByRole[.small] != nil)
        #expect(open.text != alone.text)
        // Checking every 2 tokens keeps the same tokens; only the forwards differ.
        let (sameChunked, _) = try run(1, small: .greedy, every: 2), (strictChunked, strictChunkedRelay) = try run(1, small: hot, every: 2)
        #expect(sameChunked.text == alone.text && sameChunked.tokensByRole == same.tokensByRole)
        #expect(strictChunked.text == alone.text && strictChunkedRelay.corrections > 0)
        // Segments written from the first 300 token ids only: a strict check still restores the
        // large model's greedy text.
        let (narrow, narrowRelay) = try run(1, small: .greedy, every: 4, vocabulary: 300)
        #expect(narrow.text == alone.text && narrowRelay.corrections > 0)
    }

    @Test("a malformed or empty cue file is a clear error")
    func badCueFile() throws {
        let dir = URL(fileURLWithPath: Scratch.directory("cues"))
        for (name, body) in [("broken.json", "{\"cues\": [ {\"text\": "), ("empty.json", "{\"cues\": []}")] {
            let path = dir.appendingPathComponent(name).path
            _ = FileManager.default.createFile(atPath: path, contents: Data(body.utf8))
            #expect(throws: CueError.self) { try CueSet.load(path) }
        }
        #expect(throws: CueError.self) { try CueSet.load(dir.appendingPathComponent("missing.json").path) }
    }
}
