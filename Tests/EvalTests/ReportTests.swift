import Eval
import Foundation
import Progress
import Testing

/// large: 10 problems, 7 right, 2 s each, 100 large tokens each.
/// small: the same 10, 4 right, 0.5 s each, 100 small tokens each.
/// relay: problems 0–4 only, 4 right, 1 s each, 20 large + 80 small tokens each.
func fakeRecords(largeCorrect: Int = 7) -> [EvalRecord] {
    var records: [EvalRecord] = []
    for i in 0..<10 {
        records.append(sampleRecord("\(i)", "large", correct: i < largeCorrect, seconds: 2, tokens: [RoleKey.large: 100]))
        records.append(sampleRecord("\(i)", "small", correct: i < 4, seconds: 0.5, tokens: [RoleKey.small: 100]))
        if i < 5 {
            records.append(sampleRecord("\(i)", "relay", correct: i < 4, seconds: 1, tokens: [RoleKey.large: 20, RoleKey.small: 80]))
        }
    }
    return records
}

let fakeParameters: [String: Double] = [RoleKey.large: 1.5e9, RoleKey.small: 0.5e9]

@Suite struct Summaries {
    @Test func accuracyComesWithAWilsonInterval() throws {
        let summary = Report.summarize(fakeRecords(), parameters: fakeParameters)
        #expect(summary.modes.map(\.mode) == ["large", "small", "relay"])
        #expect(summary.problems == 10)
        let large = try #require(summary.mode("large"))
        #expect(large.n == 10)
        #expect(large.correct == 7)
        #expect(large.accuracy == 0.7)
        #expect(abs(large.ciLow - 0.3968) < 1e-4)
        #expect(abs(large.ciHigh - 0.8922) < 1e-4)
    }

    @Test func speedUpShareAndCostAreRelativeToLargeOnSharedProblems() throws {
        let summary = Report.summarize(fakeRecords(), parameters: fakeParameters)
        let large = try #require(summary.mode("large"))
        let small = try #require(summary.mode("small"))
        let relay = try #require(summary.mode("relay"))
        #expect(large.speedup == 1)
        #expect(large.largeShare == 1)
        #expect(large.relativeCost == 1)
        #expect(small.speedup == 4)
        #expect(small.largeShare == 0)
        #expect(abs((small.relativeCost ?? 0) - 1.0 / 3) < 1e-12)
        // relay ran 5 problems: large took 10 s on them, relay 5 s.
        #expect(relay.sharedWithLarge == 5)
        #expect(relay.speedup == 2)
        #expect(relay.largeShare == 0.2)
        #expect(abs((relay.relativeCost ?? 0) - 70.0 / 150) < 1e-12)
        #expect(relay.meanSeconds == 1)
        #expect(relay.accuracy == 0.8)
    }

    @Test func aDraftingModeGetsItsCeilingIfVerifyingCostOnePlainStep() throws {
        // large: 101 tokens in 10 s of decoding (0.1 s a token). speculative: the same 101 tokens
        // in 41 rounds (60 of 80 drafts accepted), 4 s of small-model decoding (0.05 s a draft).
        var large = sampleRecord("0", "large", seconds: 10, tokens: [RoleKey.large: 101])
        large.generatedTokens = 101
        large.decodeSeconds = [RoleKey.large: 10]
        var spec = sampleRecord("0", "speculative", seconds: 8, tokens: [RoleKey.large: 101])
        spec.generatedTokens = 101
        (spec.drafted, spec.accepted) = (80, 60)
        spec.decodeSeconds = [RoleKey.small: 4]
        let m = try #require(Report.summarize([large, spec]).mode("speculative"))
        let b = try #require(m.draftBound)
        #expect(abs(b.costRatio - 0.5) < 1e-12 && abs(b.tokensPerRound - 101.0 / 41) < 1e-12)
        #expect(abs(b.bound - 10.1 / (4 + 4.1)) < 1e-12)   // 101 steps of 0.1 s against 4 s + 41 steps
        #expect(m.sameAsLarge == 1)
        #expect(Report.draftBounds(Report.summarize([large, spec])).first?.contains("at most 1.25×: measured 1.25×") == true)
    }

    @Test func withoutALargeRunThereIsNoSpeedUp() throws {
        let summary = Report.summarize(fakeRecords().filter { $0.mode != "large" }, parameters: fakeParameters)
        #expect(summary.modes.allSatisfy { $0.speedup == nil && $0.relativeCost == nil })
        let html = Report.html(summary, records: [])
        #expect(html.contains("needs results of mode large"))
    }

    @Test func theMarkdownTableHasOneRowPerMode() throws {
        let summary = Report.summarize(fakeRecords(), parameters: fakeParameters)
        let table = Report.table(summary)
        let rows = table.split(separator: "\n")
        #expect(rows.count == 5)
        #expect(rows[2] == "| large | 10 | 70.0% (39.7–89.2) | 2.00 s | 1.00× | 100.0% | 1.00 |")
        #expect(rows[3] == "| small | 10 | 40.0% (16.8–68.7) | 0.50 s | 4.00× | 0.0% | 0.33 |")
    }

    @Test func reportFilesAreWrittenWithTheExpectedNumbers() throws {
        let dir = temporaryDirectory()
        do {
            let store = try ResultStore(directory: dir, config: sampleConfig())
            for record in fakeRecords() { try store.append(record) }
        }
        let summary = try Report.write(directory: dir)
        // Parameters come from config.json.
        #expect(summary.parameters == fakeParameters)
        let markdown = readText(dir + "/summary.md")
        #expect(markdown.hasPrefix("# relay eval: GSM8K"))
        #expect(markdown.contains("| relay | 5 | 80.0% (37.6–96.4) | 1.00 s | 2.00× | 20.0% | 0.47 |"))

        let json = try #require(FileManager.default.contents(atPath: dir + "/summary.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let modes = try #require(object["modes"] as? [[String: Any]])
        #expect(modes.map { $0["mode"] as? String } == ["large", "small", "relay"])
        #expect(modes[1]["speedup"] as? Double == 4)
        #expect(modes[2]["large_share"] as? Double == 0.2)
        #expect(modes[0]["accuracy"] as? Double == 0.7)
        #expect(object["task"] as? String == "gsm8k")

        let html = readText(dir + "/report.html")
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg"))
        #expect(html.contains("Accuracy vs speed-up"))
        #expect(html.contains("Accuracy vs large-model share"))
        #expect(html.contains("Latency per problem"))
        #expect(html.contains("70.0%"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"))
        #expect(!html.contains("https://"))
    }

    @Test func htmlEscapesAnswers() {
        var records = fakeRecords()
        let i = records.firstIndex { $0.id == "4" && $0.mode == "small" }!
        records[i].extracted = "<script>alert(1)</script>"
        let html = Report.html(Report.summarize(records), records: records)
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;"))
    }
}

@Suite struct Comparisons {
    @Test func mcnemarIsExact() {
        #expect(Stats.mcnemarExact(b: 0, c: 0) == 1)
        #expect(abs(Stats.mcnemarExact(b: 1, c: 6) - 0.125) < 1e-12)
        #expect(abs(Stats.mcnemarExact(b: 0, c: 2) - 0.5) < 1e-12)
        #expect(abs(Stats.mcnemarExact(b: 3, c: 3) - 1) < 1e-12)
        // 0 of 20 discordant pairs in A's favour: 2 / 2^20.
        #expect(abs(Stats.mcnemarExact(b: 0, c: 20) - 2 / 1_048_576) < 1e-15)
    }

    @Test func comparingTwoRunsPairsProblemsPerMode() throws {
        let a = fakeRecords()
        let b = fakeRecords(largeCorrect: 9)
        let comparisons = Compare.compare(a, b)
        #expect(comparisons.map(\.mode) == ["large", "small", "relay"])
        let large = comparisons[0]
        #expect(large.shared == 10)
        #expect(large.correctA == 7 && large.correctB == 9)
        #expect(large.onlyA == 0 && large.onlyB == 2)
        #expect(abs(large.pValue - 0.5) < 1e-12)
        #expect(comparisons[1].pValue == 1)
    }

    @Test func theComparisonTextNamesRunsConfigChangesAndModes() throws {
        let dirA = temporaryDirectory("A"), dirB = temporaryDirectory("B")
        do {
            let store = try ResultStore(directory: dirA, config: sampleConfig())
            for r in fakeRecords() { try store.append(r) }
        }
        do {
            let store = try ResultStore(directory: dirB, config: sampleConfig(maxTokens: 512))
            for r in fakeRecords(largeCorrect: 9) where r.mode != "relay" { try store.append(r) }
        }
        let text = try Compare.compare(directoryA: dirA, directoryB: dirB)
        #expect(text.contains("A: \(dirA) (GSM8K, 10 problems, modes large, small, relay)"))
        #expect(text.contains("max_tokens: 1024 → 512"))
        let largeLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("large ") })
        #expect(largeLine.contains("70.0%"))
        #expect(largeLine.contains("90.0%"))
        #expect(largeLine.contains("+20.0 pp"))
        #expect(largeLine.contains("0.500"))
        #expect(text.contains("only in A: relay"))
    }
}

@Suite struct ProgressBars {
    @Test func theBarShowsDoneRateAndETA() {
        let line = ProgressBar.line(label: "eval", done: 5, total: 10, unit: .items("problem"), rate: 0.5, detail: "acc 80.0%  large #5", width: 10)
        #expect(line == "eval █████░░░░░  5/10  2.0 s/problem  ETA 10s  acc 80.0%  large #5")
        #expect(ProgressBar.line(label: "", done: 3, total: 10, unit: .items("step"), rate: nil, width: 4) == "█░░░  3/10")
        #expect(ProgressBar.line(label: "smol", done: 50e6, total: 200e6, unit: .bytes, rate: 25e6, width: 4)
                == "smol █░░░  50.0 MB / 200.0 MB  25.0 MB/s  ETA 6s")
        #expect(ProgressBar.line(label: "x", done: 4, total: 4, unit: .items("step"), rate: 2, width: 2) == "x ██  4/4  2.0 step/s")
        #expect(ProgressBar.duration(372) == "6m12s")
        #expect(ProgressBar.duration(7500) == "2h05m")
    }

    @Test func liveOnATerminalPlainLinesElsewhere() throws {
        final class Sink: @unchecked Sendable { var text = "" }
        final class Clock: @unchecked Sendable { var t = 0.0 }
        let plain = Sink(), live = Sink(), clock = Clock()
        for (sink, terminal) in [(plain, false), (live, true)] {
            clock.t = 0
            let bar = ProgressBar(terminal: terminal, write: { sink.text += $0 }, clock: { clock.t })
            bar.start("eval", total: 20, unit: .items("problem"), done: 0)
            for _ in 0..<20 {
                clock.t += 1
                bar.advance(1, detail: "acc 100.0%")
            }
            bar.note("a line")
            bar.finish("done")
        }
        // Elsewhere: one line at the start and one per tenth, no carriage returns.
        let lines = plain.text.split(separator: "\n")
        #expect(!plain.text.contains("\r") && lines.count == 13, "\(lines)")
        #expect(lines[1] == "eval ██░░░░░░░░░░░░░░░░░░  2/20  1.0 problem/s  ETA 18s  acc 100.0%")
        #expect(lines.suffix(2) == ["a line", "done"])
        // On a terminal: redrawn in place, cleared before a line of its own.
        #expect(live.text.contains("\r\u{1B}[K") && live.text.contains("20/20") && live.text.hasSuffix("a line\ndone\n"))
    }
}
