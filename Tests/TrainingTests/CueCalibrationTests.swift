import Engine
import Eval
import Foundation
import Relay
import Testing
import TestSupport
import Training

@Suite("RelayGen's cue calibration", .serialized)
struct CueCalibrationTests {
    @Test("a cue's delta is the mean margin in the sentence after it minus the mean margin elsewhere")
    func handMadeScore() throws {
        let trace: [(piece: String, margin: Float)] = [("We", 0.2), (" add", 0.2), (".", 0.2), (" So,", 0.2), (" it", 0.9), (" is", 0.9), (" 5.", 0.9), (" Done", 0.2)]
        let scores = Calibration.score(traces: [trace], pool: ["So,", "Done"])
        let so = try #require(scores.first { $0.text == "So," })
        #expect(so.count == 1 && abs(so.meanInside - 0.9) < 1e-6 && abs(so.delta - 0.7) < 1e-6)
        #expect(scores.first?.text == "So,")
        // Nothing follows the last cue: it has no sentence to score.
        #expect(!scores.contains { $0.text == "Done" })
    }

    @Test("calibrating SmolLM2 against itself writes traces, cue file and page; re-scoring the traces file gives the same cues")
    func smolRoundTrip() throws {
        let m = Models.smol
        let dir = Scratch.directory("calibrate")
        let problems = [Problem(id: "p1", question: "What is 12 * 3? Explain step by step.", answer: "36"),
                        Problem(id: "p2", question: "A train goes 60 km in 1.5 hours. What is its speed? Explain.", answer: "40")]
        var settings = CueCalibration.Settings(out: dir + "/cues.json")
        (settings.maxTokens, settings.minCount, settings.contextSize) = (64, 1, 512)
        let template = try ChatTemplate.detect(from: m.file.metadata["tokenizer.chat_template"]?.string)
        let log = Log()
        let first = try CueCalibration.run(large: m, small: m, source: .problems(problems), template: template, settings: settings, progress: log.bar)
        // Not a terminal: the bar's line at the start and at each tenth of the way, then the summary.
        #expect(log.lines.first?.hasPrefix("traces ░") == true && log.lines.contains { $0.contains("2/2") && $0.contains("p2: ") }, "\(log.lines)")
        #expect(log.lines.last?.contains("kept \(first.cues.count) cues") == true, "\(log.lines)")
        #expect(first.html == dir + "/cues.html" && FileManager.default.fileExists(atPath: first.html))
        #expect(first.cues.allSatisfy { $0.delta > 0 })
        let written = try JSONDecoder().decode(CueSet.self, from: Data(contentsOf: URL(fileURLWithPath: settings.out)))
        #expect(written.cues.map(\.text) == first.cues.map(\.text) && written.model == "\(m.config.name) + \(m.config.name)")

        let traces = try CueCalibration.readTraces(dir + "/cues.json.traces.jsonl")
        #expect(traces.map(\.id) == ["p1", "p2"] && traces.allSatisfy { !$0.tokens.isEmpty && $0.tokens.count <= 64 })
        let scored = try CueCalibration.score(traces, small: m, tokenizer: m.tokenizer, contextSize: 512)
        #expect(scored.map(\.count) == traces.map(\.tokens.count))
        #expect(scored.allSatisfy { $0.allSatisfy { (0...1).contains($0.margin) } })
        // A model re-scoring its own greedy text is mostly sure of it.
        let margins = scored.flatMap { $0.map(\.margin) }
        #expect(margins.reduce(0, +) / Float(margins.count) > 0.5)

        settings.out = dir + "/again.json"
        let again = try CueCalibration.run(large: m, small: m, source: .file(dir + "/cues.json.traces.jsonl"), template: template, settings: settings, progress: Log().bar)
        #expect(again.cues.map(\.text) == first.cues.map(\.text))
        #expect(zip(again.cues, first.cues).allSatisfy { abs($0.delta - $1.delta) < 1e-9 })
        #expect(!FileManager.default.fileExists(atPath: dir + "/again.json.traces.jsonl"))

        let bad = dir + "/bad.jsonl"
        try (String(decoding: try JSONEncoder().encode(traces[0]), as: UTF8.self) + "\n{\"id\": 1}\n").write(toFile: bad, atomically: true, encoding: .utf8)
        #expect { try CueCalibration.readTraces(bad) } throws: { "\($0)".hasPrefix("\(bad) line 2 is not a trace") }
        #expect { try CueCalibration.readTraces(dir + "/missing.jsonl") } throws: { "\($0)" == "cannot read traces file \(dir)/missing.jsonl" }
    }
}
