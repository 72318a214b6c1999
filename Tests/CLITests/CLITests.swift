import Foundation
import Testing
import TestSupport

/// Runs the built `relay` executable (in the same build folder as this test bundle).
struct Relay {
    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["RELAY_BIN"] { return b }
        // The test bundle sits beside the products of the same build configuration.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("relay").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/release/relay").path
    }()

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String], stdin: String? = nil, binary: String = Relay.binary) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

let home = ProcessInfo.processInfo.environment["RELAY_HOME"] ?? NSHomeDirectory() + "/.cache/relay"
let smol = home + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"

func scratchCopy(of path: String, bytes limit: Int? = nil, patch: (inout [UInt8]) -> Void = { _ in }) throws -> String {
    var data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    if let limit { data = Array(data.prefix(limit)) }
    patch(&data)
    let dir = URL(fileURLWithPath: Scratch.directory("cli"))
    let out = dir.appendingPathComponent("model.gguf").path
    _ = FileManager.default.createFile(atPath: out, contents: Data(data))
    return out
}

func replaceFirst(_ needle: String, with replacement: String, in data: inout [UInt8]) {
    let n = Array(needle.utf8), r = Array(replacement.utf8)
    precondition(n.count == r.count)
    var i = 0
    while i + n.count <= data.count {
        if data[i] == n[0] && Array(data[i ..< i + n.count]) == n {
            data.replaceSubrange(i ..< i + n.count, with: r)
            return
        }
        i += 1
    }
}

@Suite("relay command line", .serialized)
struct CLITests {
    @Test("generate --raw --temp 0 prints only the continuation on stdout and timings on stderr")
    func generateRaw() throws {
        let r = try Relay.run(["generate", "-m", smol, "-p", "The capital of France is", "--raw", "--temp", "0", "-n", "8", "-t", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"), "\(r.stdout)")
        #expect(!r.stdout.contains("tok/s"))
        #expect(r.stderr.contains("tok/s"))
    }

    @Test("generate --json prints one JSON object")
    func generateJSON() throws {
        let r = try Relay.run(["generate", "-m", smol, "-p", "Say hi.", "--temp", "0", "-n", "6", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["generated_tokens"] as? Int == 6)
        #expect(object?["text"] is String)
    }

    @Test("the same seed gives the same sampled text")
    func seeded() throws {
        let args = ["generate", "-m", smol, "-p", "Write a short poem about the sea.", "-n", "24", "--seed", "7", "--temp", "1.0"]
        let a = try Relay.run(args), b = try Relay.run(args)
        #expect(a.status == 0 && a.stdout == b.stdout && !a.stdout.isEmpty)
    }

    @Test("tokenize prints token ids as JSON")
    func tokenize() throws {
        let r = try Relay.run(["tokenize", "-m", smol], stdin: "Hello world")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[19556, 905]")
    }

    @Test("perplexity scores the second half of each chunk as llama-perplexity does, from text or token ids, and keeps those logits")
    func perplexity() throws {
        let dir = Scratch.directory("perplexity")
        let text = dir + "/text.txt", ids = dir + "/ids.json", logits = dir + "/logits.f32"
        let prose = (1...12).map { "Paragraph \($0). The river runs past the mill, and the miller counts the sacks of flour he sold today.\n" }.joined()
        try prose.write(toFile: text, atomically: true, encoding: .utf8)
        let tokens = try Relay.run(["tokenize", "-m", smol], stdin: prose)
        try tokens.stdout.write(toFile: ids, atomically: true, encoding: .utf8)
        let a = try Relay.run(["perplexity", "-m", smol, "-c", "64", "--chunks", "3", "-f", text, "--logits-out", logits])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.hasPrefix("[1]") && a.stdout.contains("[3]") && !a.stdout.contains("[4]"), "\(a.stdout)")
        let b = try Relay.run(["perplexity", "-m", smol, "-c", "64", "--chunks", "3", "--token-ids", ids])
        #expect(b.stdout == a.stdout, "the same ids from a file: \(b.stdout)")
        // The kept rows are positions 32...62 of each chunk; their next-token NLL gives the printed perplexity.
        let V = 49152, id = try JSONDecoder().decode([Int32].self, from: Data(tokens.stdout.utf8))
        let rows = try Data(contentsOf: URL(fileURLWithPath: logits)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(rows.count == 3 * 31 * V)
        var nll = 0.0
        for c in 0 ..< 3 {
            for (r, p) in (32 ..< 63).enumerated() {
                let row = rows[(c * 31 + r) * V ..< (c * 31 + r + 1) * V], top = Double(row.max()!)
                nll += top + log(row.reduce(0.0) { $0 + exp(Double($1) - top) }) - Double(row[row.startIndex + Int(id[c * 64 + p + 1])])
            }
        }
        let printed = a.stdout.split(separator: "=").last!.split(separator: "+").first!.trimmingCharacters(in: .whitespaces)
        #expect(abs(exp(nll / 93) - Double(printed)!) < 1e-3 * Double(printed)!, "\(exp(nll / 93)) against \(printed)")
        let short = try Relay.run(["perplexity", "-m", smol, "-c", "4096", "-f", text])
        #expect(short.status != 0 && short.stderr.contains("fewer than one chunk of 4096 (-c)"), "\(short.stderr)")
    }

    @Test("bad input gets one clear error line and a non-zero exit", arguments: [
        ("missing file", "/nonexistent/x.gguf", "not a file"),
        ("unknown model name", "no-such-model", "unknown model"),
    ])
    func badModelArgument(_ c: (String, String, String)) throws {
        let r = try Relay.run(["generate", "-m", c.1, "-p", "hi", "-n", "1"])
        #expect(r.status != 0)
        #expect(r.stderr.lowercased().contains(c.2), "\(c.0): \(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test("a broken GGUF file gets a clear error, never a crash", arguments: [
        ("truncated header", "truncated"),
        ("truncated data", "truncated"),
        ("wrong magic", "not a GGUF file"),
        ("unsupported architecture", "architecture 'mamba' is not supported"),
        ("unsupported tensor type", "which Relay's kernels do not support"),
    ])
    func brokenFile(_ c: (String, String)) throws {
        let path: String
        switch c.0 {
        case "truncated header": path = try scratchCopy(of: smol, bytes: 100_000)
        case "truncated data": path = try scratchCopy(of: smol, bytes: 90_000_000)
        case "wrong magic": path = try scratchCopy(of: smol, bytes: 1_000_000) { $0[0] = 0x50; $0[1] = 0x4B }
        case "unsupported architecture":
            path = try scratchCopy(of: smol) { replaceFirst("llama", with: "mamba", in: &$0) }
        default:
            // Re-label a Q4_1 tensor as IQ4_NL (type 20): a 32-element block that fits in the same bytes,
            // so the file parses and the loader must reject the type.
            path = try scratchCopy(of: smol) { data in
                let name = Array("blk.0.attn_q.weight".utf8)
                var i = 0
                while Array(data[i ..< i + name.count]) != name { i += 1 }
                data[i + name.count + 4 + 16] = 20
            }
        }
        let r = try Relay.run(["generate", "-m", path, "-p", "hi", "-n", "1"])
        #expect(r.status != 0 && r.status < 128, "\(c.0): exit \(r.status)")
        #expect(r.stderr.contains(c.1), "\(c.0): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count <= 2, "\(c.0): \(r.stderr)")
    }

    @Test("a prompt longer than the context is a clear error")
    func promptTooLong() throws {
        let r = try Relay.run(["generate", "-m", smol, "-p", String(repeating: "word ", count: 200), "-c", "64", "-n", "4"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("context holds 64"), "\(r.stderr)")
    }

    @Test("a context larger than memory is a clear error saying what it needs, not an abort", arguments: [
        (["generate", "-p", "hi", "-n", "1", "-c", "100000000"], "needs 4.2 TiB"),
        (["generate", "-p", "hi", "-n", "1", "-c", "9223372036854775807"], "-c/--ctx-size must be in 1...1073741824"),
        (["serve", "--port", "0", "-c", "1000000", "-np", "4096"], "4096 sequences"),
        (["serve", "--port", "0", "-b", "100000"], "-b must be in 0...4096"),
    ])
    func contextTooLarge(_ c: ([String], String)) throws {
        let r = try Relay.run([c.0[0], "-m", smol] + c.0.dropFirst())
        #expect(r.status == 1 || r.status == 64, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(c.1), "\(r.stderr)")
    }

    @Test("out-of-range sampling flags are refused naming the flag and its range", arguments: [
        (["--presence-penalty", "5"], "--presence-penalty must be in [-2, 2]"),
        (["--frequency-penalty=-3"], "--frequency-penalty must be in [-2, 2]"),
        (["--repeat-last-n=-5"], "--repeat-last-n must be -1 (all) or at least 0"),
    ])
    func samplingFlags(_ c: ([String], String)) throws {
        let r = try Relay.run(["generate", "-m", smol, "-p", "hi", "-n", "1"] + c.0)
        #expect(r.status == 64, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(c.1), "\(r.stderr)")
    }

    @Test("an unknown chat template is a clear error naming the flag")
    func unknownTemplate() throws {
        let r = try Relay.run(["generate", "-m", smol, "-p", "hi", "--chat-template", "alpaca"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("chat"), "\(r.stderr)")
    }
}

@Suite("relay eval end to end", .serialized)
struct EvalCLITests {
    let out = Scratch.directory("eval")

    func lines(_ file: String) throws -> [[String: Any]] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    @Test("runs GSM8K problems under three modes, resumes, refuses a changed config, and writes reports")
    func endToEnd() throws {
        let args = ["eval", "--task", "gsm8k", "--limit", "3", "-m", smol, "-md", smol, "--modes", "large,small,speculative",
                    "--max-tokens", "48", "--out", out, "-t", "2", "--draft-vocab", "0"]
        let first = try Relay.run(args)
        #expect(first.status == 0, "\(first.stderr)")
        let records = try lines(out + "/results.jsonl")
        #expect(records.count == 9)
        for key in ["id", "mode", "output", "extracted", "reference", "correct", "tokens", "seconds"] {
            #expect(records.allSatisfy { $0.keys.contains(key) }, "missing \(key)")
        }
        // Same model as drafter and target: speculative output equals plain greedy, every draft
        // accepted (with the full draft vocabulary: a pruned one makes the drafter another model).
        for id in Set(records.map { $0["id"] as! String }) {
            let byMode = Dictionary(uniqueKeysWithValues: records.filter { $0["id"] as! String == id }.map { ($0["mode"] as! String, $0) })
            #expect(byMode["speculative"]?["output"] as? String == byMode["large"]?["output"] as? String)
            #expect(byMode["speculative"]?["drafted"] as? Int == byMode["speculative"]?["accepted"] as? Int)
        }
        for file in ["summary.md", "summary.json", "report.html", "config.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        #expect(first.stdout.contains("speculative"))

        // Re-running skips what is done.
        let again = try Relay.run(args)
        #expect(again.status == 0)
        #expect(try lines(out + "/results.jsonl").count == 9)

        // A changed config is refused and nothing is lost.
        var changed = args
        changed[changed.firstIndex(of: "48")!] = "32"
        let refused = try Relay.run(changed)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("max"), "\(refused.stderr)")
        #expect(try lines(out + "/results.jsonl").count == 9)
    }

    @Test("an unknown task or mode is one clear error line")
    func badTaskOrMode() throws {
        let badTask = try Relay.run(["eval", "--task", "nope", "-m", smol, "--modes", "large", "--out", out])
        #expect(badTask.status != 0 && badTask.stderr.contains("nope"), "\(badTask.stderr)")
        let badMode = try Relay.run(["eval", "--task", "gsm8k", "-m", smol, "--modes", "fastest", "--out", out])
        #expect(badMode.status != 0 && badMode.stderr.contains("fastest"), "\(badMode.stderr)")
        let badVocab = try Relay.run(["generate", "-m", smol, "-md", smol, "--mode", "speculative", "--draft-vocab=-5", "-p", "x"])
        #expect(badVocab.status != 0 && badVocab.stderr.contains("--draft-vocab"), "\(badVocab.stderr)")
        let badLookup = try Relay.run(["generate", "-m", smol, "-md", smol, "--mode", "speculative", "--draft-lookup", "1", "-p", "x"])
        #expect(badLookup.status != 0 && badLookup.stderr.contains("--draft-lookup must be 0"), "\(badLookup.stderr)")
        let badModeLookup = try Relay.run(["generate", "-m", smol, "-md", smol, "--mode", "speculative:draft-lookup=1", "-p", "x"])
        #expect(badModeLookup.status != 0 && badModeLookup.stderr.contains("draft-lookup=1 is not valid"), "\(badModeLookup.stderr)")
        let badLengths = try Relay.run(["train-relay", "-m", smol, "-md", smol, "--task", "gsm8k", "--probe-lengths", "8,x", "--out", out + "/h.json"])
        #expect(badLengths.status != 0 && badLengths.stderr.contains("--probe-lengths '8,x'"), "\(badLengths.stderr)")
        let badCounts = try Relay.run(["bench", "-m", smol, "--verify-counts", "1,,4"])
        #expect(badCounts.status != 0 && badCounts.stderr.contains("--verify-counts '1,,4'"), "\(badCounts.stderr)")
        let tooMany = try Relay.run(["bench", "-m", smol, "-p", "0", "-n", "0", "--sequence-counts", "1,100000"])
        #expect(tooMany.status != 0 && tooMany.stderr.contains("at most"), "\(tooMany.stderr)")
        let badModeVocab = try Relay.run(["generate", "-m", smol, "-md", smol, "--mode", "speculative:draft-vocab=-1", "-p", "x"])
        #expect(badModeVocab.status != 0 && badModeVocab.stderr.contains("draft-vocab=-1 is not valid"), "\(badModeVocab.stderr)")
        let badAdaptive = try Relay.run(["generate", "-m", smol, "-md", smol, "--mode", "speculative", "--draft-adaptive", "maybe", "-p", "x"])
        #expect(badAdaptive.status != 0 && badAdaptive.stderr.contains("--draft-adaptive must be on or off"), "\(badAdaptive.stderr)")
    }
}

@Suite("relay eval killed and resumed", .serialized)
struct EvalKillTests {
    /// Lines of results.jsonl as text (the last may be torn).
    func rawLines(_ file: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: file) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    func key(_ line: String) -> String? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return "\(o["id"] ?? "")|\(o["mode"] ?? "")"
    }

    @Test("SIGKILL in the middle of a run: resuming leaves no torn or duplicated line and redoes only unfinished problems")
    func killAndResume() throws {
        let out = Scratch.directory("evalkill")
        // Short problems of our own, so that the three runs take seconds.
        let task = out + "/sums.jsonl"
        let problems = (1...8).map { #"{"id": "sum-\#($0)", "question": "What is \#($0) + \#($0 * 3)?", "answer": "\#($0 * 4)"}"# }
        try problems.joined(separator: "\n").write(toFile: task, atomically: true, encoding: .utf8)
        let args = ["eval", "--task", task, "-m", smol, "--modes", "large", "--max-tokens", "24", "--out", out + "/run", "-t", "2"]
        let file = out + "/run/results.jsonl"
        var kept: [String] = []   // complete lines written before each kill
        for killAt in [2, 5] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Relay.binary)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(300)
            while rawLines(file).count < killAt, p.isRunning, Date() < deadline { usleep(2_000) }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal, "the run finished before it could be killed")
            kept = rawLines(file).filter { key($0) != nil }
        }
        let last = try Relay.run(args)
        #expect(last.status == 0, "\(last.stderr)")
        let final = rawLines(file)
        let keys = final.map(key)
        #expect(keys.allSatisfy { $0 != nil }, "a torn line survived")
        #expect(final.count == 8 && Set(keys).count == 8, "\(final.count) lines, \(Set(keys).count) distinct")
        // What was complete before the last kill is still there, unchanged (not redone: its
        // timings would differ).
        #expect(kept.count >= 5)
        for line in kept { #expect(final.contains(line)) }
    }
}
