import Engine
import Foundation
import Relay
import Testing
import TestSupport

@Suite("RelayLLM tags and rho")
struct RelayTagTests {
    @Test("tags are matched on text: spaces, n = 0, huge n, malformed, nested, from an offset")
    func parsing() {
        #expect(RelayTag.firstCall(in: "So <call>8</call> then", from: 0)?.n == 8)
        #expect(RelayTag.firstCall(in: "<call> 12 \n</call>", from: 0)?.n == 12)
        #expect(RelayTag.firstCall(in: "<call>0</call>", from: 0)?.n == 0)
        #expect(RelayTag.firstCall(in: "<call>99999999999999999999999</call>", from: 0)?.n == Int.max)
        for malformed in ["<call>x</call>", "<call>8", "<call>-3</call>", "<call>8</cal>", "call>8</call>", "<call>1 2</call>"] {
            #expect(RelayTag.firstCall(in: malformed, from: 0) == nil, "\(malformed)")
        }
        let nested = "<call><call>4</call></call>"
        #expect(RelayTag.firstCall(in: nested, from: 0)?.n == 4)
        #expect(RelayTag.strip("a<call>3</call>b<call><call>4</call></call>c<call>x</call>d</call>") == "abcd")
        // A consumed tag is not matched again.
        let text = "x<call>5</call>y<call>6</call>"
        let first = RelayTag.firstCall(in: text, from: 0)!
        #expect(first.n == 5 && RelayTag.firstCall(in: text, from: first.end)?.n == 6)
        #expect(RelayTag.firstCall(in: text, from: text.utf8.count) == nil)
    }

    @Test("tags that removal itself forms are removed too, and only ASCII digits count (fuzz finds)")
    func fuzzFinds() {
        // The relayllm-tags fuzz target's input: removing `<call>` and `</call>` left `<call>۳8365</call>`.
        let found = ".ll<<call>call>\u{06F3}8365</ca</call>ll>"
        #expect(RelayTag.firstCall(in: RelayTag.strip(found), from: 0) == nil)
        #expect(!RelayTag.strip(found).contains("<call>"))
        #expect(RelayTag.strip("<<call>call>8</c</call>all>") == "")
        // Arabic-Indic three is a digit to `\d` but not to Int(): it must not read as a call at the limit.
        #expect(RelayTag.firstCall(in: "<call>\u{06F3}</call>", from: 0) == nil)
    }

    @Test("rho follows the paper on hand-made cases")
    func rho() {
        #expect(Reward.rho(requested: [], length: 100) == 0)
        #expect(Reward.rho(requested: [8, 12], length: 100) == 0.2)
        #expect(Reward.rho(requested: [5000], length: 10_000) == 0.4096)   // each call counts at most 4096
        #expect(Reward.rho(requested: [64], length: 32) == 1)              // capped at 1
    }

    @Test("a bad head file is refused with what is wrong")
    func badHeadFile() throws {
        let dir = URL(fileURLWithPath: Scratch.directory("head"))
        var head = RelayHead(model: "t", dim: 4)
        head.callWeights.removeLast()
        let short = dir.appendingPathComponent("short.json").path
        try head.write(to: short)
        #expect { try RelayHead.load(short) } throws: { "\($0)".contains("callWeights has 5 values, expected 6") && "\($0)".contains(short) }
        let broken = dir.appendingPathComponent("broken.json").path
        _ = FileManager.default.createFile(atPath: broken, contents: Data("{\"dim\": ".utf8))
        #expect(throws: HeadError.self) { try RelayHead.load(broken) }
        #expect(throws: HeadError.self) { try RelayHead.load(dir.appendingPathComponent("missing.json").path) }
        let good = dir.appendingPathComponent("good.json").path
        try RelayHead(model: "t", dim: 4).write(to: good)
        #expect(try RelayHead.load(good) == RelayHead(model: "t", dim: 4))
    }
}

@Suite("RelayLLM protocol", .serialized)
struct RelayLLMTests {
    /// A raw prompt after which SmolLM2 writes more tags itself, one token at a time.
    static let tagPrompt = String(repeating: "<call>4</call> ", count: 6).dropLast()

    func run(_ relay: RelayLLM, prompt: [Int32], maxTokens: Int, check: ((RelayLLM) -> Void)? = nil) throws -> RelayResult {
        var options = GenerationOptions()
        options.maxTokens = maxTokens
        options.sampling = .greedy
        return try generate(relay, prompt: prompt, tokenizer: Models.smol.tokenizer, contextSize: 1024, options: options) { _, _, _ in
            check?(relay)
            return true
        }
    }

    func pair() -> (small: Session, large: Session) {
        (Session(model: Models.smol, contextSize: 1024), Session(model: Models.smol, contextSize: 1024))
    }

    @Test("tags the small model writes token by token start calls, and the large model never sees a tag")
    func modelWrittenTags() throws {
        let m = Models.smol
        #expect(m.tokenizer.encode("<call>4</call>", addBOS: false).count > 1)
        let (small, large) = pair()
        let relay = RelayLLM(small: small, large: large, policy: nil, sampling: .greedy)
        let prompt = m.tokenizer.encode(String(Self.tagPrompt), addBOS: false)
        var started = 0
        let r = try run(relay, prompt: prompt, maxTokens: 120) { relay in
            // What the large model received when the call started: the user's prompt, then the
            // answer without tags (what it writes itself is its own business).
            guard relay.calls > started else { return }
            started = relay.calls
            let input = relay.callInput
            #expect(Array(input.prefix(prompt.count)) == prompt)
            #expect(!m.tokenizer.decode(Array(input.dropFirst(prompt.count))).contains("call"), "the large model saw a tag")
        }
        #expect(r.text.hasPrefix(" <call>4</call>"), "\(r.text)")
        #expect(!r.calls.isEmpty && started == r.calls.count)
        #expect(r.calls.allSatisfy { $0.requested == 4 && $0.written <= 4 })
        #expect(r.tokensByRole[.large] == r.calls.reduce(0) { $0 + $1.written })
        #expect(!r.answer.contains("<call>4</call>"))
        #expect(r.rho == Reward.rho(requested: r.calls.map(\.requested), length: r.tokens.count))
    }

    @Test("a router's call is written as a tag into the transcript; turn and budget limits hold")
    func routerLimits() throws {
        let m = Models.smol
        let prompt = try chatPrompt(m, "Write a short story about a cat.")
        // Threshold 1: the router fires at every position it may; the paper's limit is 5 calls.
        var (small, large) = pair()
        let five = try run(RelayLLM(small: small, large: large, policy: ConfidenceRouter(threshold: 1, call: 4), sampling: .greedy),
                           prompt: prompt, maxTokens: 120)
        #expect(five.calls.count == 5)
        (small, large) = pair()
        var limits = RelayLLM.Limits()
        limits.maxCalls = 3
        var relay = RelayLLM(small: small, large: large, policy: ConfidenceRouter(threshold: 1, call: 6), sampling: .greedy, limits: limits)
        var r = try run(relay, prompt: prompt, maxTokens: 120)
        #expect(r.calls.count == 3)
        #expect(r.calls.allSatisfy { $0.requested == 6 })
        // The small model may copy the tag after the third call; those stay text.
        #expect(r.text.components(separatedBy: "<call>6</call>").count - 1 >= 3)
        #expect(!r.answer.contains("<call>"))
        #expect((r.tokensByRole[.large] ?? 0) == r.calls.reduce(0) { $0 + $1.written })

        // A budget of the tag plus 10 tokens: the first call is cut to 10 tokens and no later one fits.
        (small, large) = pair()
        limits = RelayLLM.Limits()
        limits.budget = m.tokenizer.encode("<call>16</call>", addBOS: false).count + 10
        relay = RelayLLM(small: small, large: large, policy: ConfidenceRouter(threshold: 1, call: 16), sampling: .greedy, limits: limits)
        r = try run(relay, prompt: prompt, maxTokens: 60)
        #expect(r.calls.map(\.requested) == [10], "\(r.calls)")

        // By default (tags=hidden) the transcript keeps the router's tags, the small model's context does not;
        // tags=visible shows them to it.
        for tags in ["hidden", "visible"] {
            (small, large) = pair()
            let router = try #require(try Mode.make("confidence-router:threshold=1,call=4,turns=2" + (tags == "hidden" ? "" : ",tags=\(tags)"),
                                                    sessions: SessionPair(large: large, small: small), settings: Mode.Settings()) as? RelayLLM)
            r = try run(router, prompt: prompt, maxTokens: 40)
            #expect(r.calls.count == 2 && r.text.hasPrefix("<call>4</call>"), "\(r.text)")
            #expect(m.tokenizer.decode(Array(small.tokens.dropFirst(prompt.count))).contains("<call>") == (tags == "visible"), "\(tags)")
        }
        // A head runs with the visibility it was trained with (a file without it was trained
        // visible), unless the mode says otherwise.
        let headed = { (tags: TagVisibility?, mode: String) in
            var head = RelayHead(model: m.config.name, dim: m.config.dim)
            head.tags = tags
            var withHead = Mode.Settings()
            withHead.head = .head(head, path: "head.json")
            return try Mode.make(mode, sessions: SessionPair(large: large, small: small), settings: withHead) as? RelayLLM
        }
        #expect(try headed(.hidden, "relayllm")?.policyTags == .hidden)
        #expect(try headed(nil, "relayllm")?.policyTags == .visible)
        #expect(try headed(.visible, "relayllm:tags=hidden")?.policyTags == .hidden)

        // Rate 0 never calls; modes are built by name with their parameters.
        (small, large) = pair()
        let none = try Mode.make("random-router:rate=0,call=8", sessions: SessionPair(large: large, small: small), settings: Mode.Settings())
        var options = GenerationOptions()
        options.maxTokens = 20
        options.sampling = .greedy
        #expect(try generate(none, prompt: prompt, tokenizer: m.tokenizer, contextSize: 1024, options: options).calls.isEmpty)
        // The oracle calls only where the large model disagrees: never when it is the same model.
        (small, large) = pair()
        let same = try Mode.make("oracle-router:margin=0", sessions: SessionPair(large: large, small: small), settings: Mode.Settings())
        #expect(try generate(same, prompt: prompt, tokenizer: m.tokenizer, contextSize: 1024, options: options).calls.isEmpty)
        #expect(large.tokens.count == small.tokens.count)
        let bad = [("confidence-router", "threshold", "2"), ("speculative", "adaptive", "maybe"), ("speculative", "draft-max", "-1"),
                   ("speculative", "draft-p-min", "1.5"), ("relaygen-sd", "check-p-min", "x"), ("relaygen", "top-cues", "0"), ("relayllm", "threshold", "1"),
                   ("relayllm", "tags", "maybe"), ("oracle-router", "margin", "-0.1")]
        for (mode, key, value) in bad {
            #expect(throws: ModeError.self, "\(mode):\(key)=\(value)") {
                try Mode.make("\(mode):\(key)=\(value)", sessions: SessionPair(large: large, small: small), settings: Mode.Settings())
            }
        }
    }

    @Test("the learned head reads the hidden state after the final norm, which the normal forward does not change")
    func hiddenState() throws {
        let m = Models.smol
        let tokens = m.tokenizer.encode("The capital of France is", addBOS: false)
        let plain = try m.forward(tokens, cache: m.makeCache(capacity: 64), logits: .all)
        let out = try m.forward([Model.Row(cache: m.makeCache(capacity: 64), tokens: tokens, logits: .all, keepsHidden: true)])[0]
        let (logits, hidden) = (out.logits, out.hidden)
        #expect(logits == plain)
        #expect(hidden.count == tokens.count * m.config.dim)
        #expect(hidden.allSatisfy(\.isFinite) && hidden.contains { $0 != 0 })
    }

    @Test("the head shipped for Qwen2.5-Coder-0.5B loads, fits the model and is what relayllm uses by default")
    func shippedHead() throws {
        let head = try #require(try RelayHead.shipped(for: Models.qwen))
        #expect(head.dim == Models.qwen.config.dim && head.problem == nil)
        #expect(head.training?.curves["warmup_loss"]?.isEmpty == false && head.training?.curves["grpo_reward"]?.isEmpty == false)
        #expect(try RelayHead.shipped(for: Models.smol) == nil)
        let s = Session(model: Models.qwen, contextSize: 64)
        let relay = try #require(try Mode.make("relayllm", sessions: SessionPair(large: s, small: Session(model: Models.qwen, contextSize: 64)),
                                                settings: Mode.Settings()) as? RelayLLM)
        #expect((relay.policy as? HeadPolicy)?.head == head)
        #expect(relay.policyTags == head.trainedTags)
    }
}
