import Engine
import Foundation
import Relay
import Testing

/// A large model that always writes the same answer, honouring stop strings the way servers do
/// (the continuation ends at the first stop string, which is reported and included).
final class ScriptedLarge: LargeModel, @unchecked Sendable {
    let answer: String
    let failing: Bool
    private(set) var calls: [(text: String, maxTokens: Int, stop: [String])] = []
    init(_ answer: String, failing: Bool = false) {
        self.answer = answer
        self.failing = failing
    }
    var name: String { "scripted" }

    func continuation(of text: String, maxTokens: Int, stop: [String], sampling: SamplingParams, cancellation: Cancellation) throws -> Continuation {
        calls.append((text, maxTokens, stop))
        if failing { throw LargeModelError.unavailable("connection refused (3 attempts)") }
        let hits = stop.compactMap { s in answer.range(of: s).map { (s, $0) } }
        if let (s, r) = hits.min(by: { $0.1.lowerBound < $1.1.lowerBound }) {
            return Continuation(text: String(answer[..<r.upperBound]), stop: s, ended: false)
        }
        return Continuation(text: answer, ended: true)
    }
}

@Suite("Text-level large model (remote backend)", .serialized)
struct TextLargeTests {
    static func pair(_ large: LargeModel) -> SessionPair {
        SessionPair(large: nil, small: Session(model: Models.smol, contextSize: 512), remote: large)
    }

    static func run(_ mode: String, _ large: LargeModel, cues: [String] = [], fallback: Bool = false,
                    maxTokens: Int = 40) throws -> RelayResult {
        var settings = Mode.Settings()
        settings.sampling = .greedy
        settings.cues = cues.isEmpty ? nil : CueSet(model: nil, cues: cues.map { CueSet.Cue(text: $0, delta: 0, count: 1) })
        settings.largeFailureToSmall = fallback
        let strategy = try Mode.make(mode, sessions: pair(large), settings: settings)
        var options = GenerationOptions()
        options.maxTokens = maxTokens
        options.sampling = .greedy
        let m = Models.smol
        return try generate(strategy, prompt: try chatPrompt(m, "What is 2 + 2?"), tokenizer: m.tokenizer, contextSize: 512, options: options)
    }

    @Test("mode large writes exactly the remote text and ends where the remote model ends")
    func large() throws {
        let answer = "We add 2 and 2. The answer is 4."
        let r = try Self.run("large", ScriptedLarge(answer))
        #expect(r.text == answer)
        #expect(r.finishReason == .eos)
        #expect(r.tokensByRole[.large] == r.tokens.count && r.tokensByRole[.small] == nil)
        #expect(r.remote?.requests == 1)
    }

    @Test("relaygen sends the cues as stop strings, keeps the cut cue, and hands the sentence to the small model")
    func relayGen() throws {
        let large = ScriptedLarge("First we look at the numbers. So we add them together.")
        let r = try Self.run("relaygen", large, cues: ["So"], maxTokens: 30)
        #expect(r.text.hasPrefix("First we look at the numbers. So"))
        #expect(r.handovers >= 1)
        #expect(r.segments.first?.role == .large && r.segments.count >= 2 && r.segments[1].role == .small)
        #expect(r.segments[0].text.hasSuffix(" So"))
        #expect(large.calls.first?.stop.contains("So") == true)
        #expect(large.calls.first?.stop.contains("\\boxed") == true)
    }

    @Test("a failing remote model fails the request, or with the fallback the small model finishes and it is reported")
    func fallback() throws {
        #expect(throws: LargeModelError.self) { try Self.run("large", ScriptedLarge("", failing: true)) }
        let r = try Self.run("large", ScriptedLarge("", failing: true), fallback: true, maxTokens: 8)
        #expect(r.largeFailure?.contains("unavailable") == true)
        // The small model wrote the whole answer: up to the budget, or less if it ended the text.
        #expect((1...8).contains(r.tokensByRole[.small] ?? 0) && r.tokensByRole[.large] == nil)
        #expect(r.finishReason == .length ? r.tokensByRole[.small] == 8 : r.finishReason == .eos)
    }

    @Test("a router's calls go to the remote model: one request of max_tokens = n per call, never a relay tag")
    func routerCalls() throws {
        let large = ScriptedLarge("Two plus two makes four, so the answer is 4.")
        let r = try Self.run("confidence-router:threshold=1,call=3", large, maxTokens: 30)
        #expect(r.calls.count >= 2 && r.calls.allSatisfy { $0.requested == 3 && $0.written <= 3 })
        #expect(large.calls.count >= r.calls.count - 1 && large.calls.count <= r.calls.count)
        #expect(large.calls.allSatisfy { $0.maxTokens == 3 && !$0.text.contains("call>") })
        #expect(r.segments.first?.text == "<call>3</call>" && r.segments.count >= 3 && r.segments[1].role == .large)
        #expect(r.remote?.requests == large.calls.count)
    }

    @Test("modes that need the large model's logits say they need a local large model")
    func logitModes() {
        for mode in ["speculative", "relaygen-sd"] {
            #expect { try Self.run(mode, ScriptedLarge("x"), cues: ["So"]) } throws: { error in
                "\(error)".contains("local large model")
            }
        }
    }

    @Test("a remote large model refuses the penalties that count the answer's token ids; the small mode takes them")
    func remoteSampling() throws {
        for (setting, configure) in [("presence_penalty", { (s: inout SamplingParams) in s.presencePenalty = 1 }),
                                     ("frequency_penalty", { $0.frequencyPenalty = 1 }), ("logit_bias", { $0.logitBias = [5: -100] })] {
            var settings = Mode.Settings()
            configure(&settings.sampling)
            #expect(throws: ModeError.remoteSampling(mode: "large", setting: setting)) {
                try Mode.make("large", sessions: Self.pair(ScriptedLarge("x")), settings: settings)
            }
            _ = try Mode.make("small", sessions: Self.pair(ScriptedLarge("x")), settings: settings)
        }
    }
}
