import Eval
import Relay
import Foundation
import Testing

func sampleConfig(maxTokens: Int = 1024, largePath: String = "/models/large.gguf") -> EvalConfig {
    EvalConfig(task: "gsm8k", selection: Selection(limit: 3), maxTokens: maxTokens,
               models: [RoleKey.large: ModelInfo(path: largePath, sha256: "aa11", parameters: 1.5e9),
                        RoleKey.small: ModelInfo(path: "/models/small.gguf", sha256: "bb22", parameters: 0.5e9)])
}

func sampleRecord(_ id: String, _ mode: String, correct: Bool = true, seconds: Double = 1,
                  tokens: [String: Int] = [RoleKey.large: 10]) -> EvalRecord {
    EvalRecord(id: id, mode: mode, output: "… \\boxed{18}", extracted: "18", reference: correct ? "18" : "19",
               correct: correct, telemetry: Telemetry(tokens: tokens, seconds: seconds))
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

@Suite struct ResultStores {
    @Test func recordsAreWrittenOneJSONLineEachAndReadBack() throws {
        let dir = temporaryDirectory()
        var record = sampleRecord("0", "large", tokens: [RoleKey.large: 120, RoleKey.small: 30])
        record.drafted = 40
        record.accepted = 30
        record.handovers = 2
        record.prefillSeconds = [RoleKey.large: 0.5, RoleKey.small: 0.1]
        record.decodeSeconds = [RoleKey.large: 2.5, RoleKey.small: 0.4]
        record.tokensPerSecond = 50
        do {
            let store = try ResultStore(directory: dir, config: sampleConfig())
            try store.append(record)
            #expect(store.contains(id: "0", mode: "large"))
            #expect(!store.contains(id: "0", mode: "small"))
        }
        let text = readText(dir + "/results.jsonl")
        #expect(text.hasSuffix("}\n"))
        #expect(text.split(separator: "\n").count == 1)
        #expect(text.hasPrefix(#"{"acceptance_rate":null,"accepted":30,"#) && text.contains(#""correct":true,"decode_seconds":{"large":2.5,"small":0.4},"drafted":40"#))
        #expect(text.contains(#""id":"0","#) && text.contains(#""tokens":{"large":120,"small":30}"#))
        #expect(text.contains(#""prefill_seconds":{"large":0.5,"small":0.1}"#))
        #expect(text.contains(#""finish_reason":"stop""#))
        #expect(try ResultStore.readRecords(directory: dir) == [record])
        #expect(FileManager.default.fileExists(atPath: dir + "/config.json"))
    }

    @Test func recordLinesReadBackExactly() throws {
        var record = sampleRecord("x\"y", "random-router:rate=0.05")
        record.output = "Quote \" backslash \\ tab \t newline \n bell \u{07} ünïcode 🙂 \\boxed{\\frac{1}{2}}"
        record.extracted = nil
        record.seconds = 0.000012345
        record.tokensPerSecond = 1e20
        let line = try record.jsonLine()
        #expect(!line.contains("\n"))
        #expect(line.contains(#""extracted":null"#))
        #expect(try JSONDecoder().decode(EvalRecord.self, from: Data(line.utf8)) == record)
    }

    @Test func aRerunSkipsPairsAlreadyDoneAndAddsANewMode() throws {
        let dir = temporaryDirectory()
        do {
            let store = try ResultStore(directory: dir, config: sampleConfig())
            try store.append(sampleRecord("0", "large"))
            try store.append(sampleRecord("1", "large"))
        }
        let store = try ResultStore(directory: dir, config: sampleConfig())
        #expect(store.records.count == 2)
        let problems = (0..<3).map { Problem(id: "\($0)", question: "q\($0)", answer: "18") }
        var calls: [String] = []
        let counts = try Harness.run(problems: problems, modes: ["large", "small"], scoring: .gsm8k, store: store) { problem, mode in
            calls.append("\(problem.id)/\(mode)")
            return ("so \\boxed{18}", Telemetry(tokens: [mode: 5], seconds: 0.5))
        }
        #expect(calls == ["0/small", "1/small", "2/large", "2/small"])
        #expect(counts == RunCounts(ran: 4, skipped: 2, correct: 4))
        #expect(store.records.count == 6)
        #expect(try ResultStore.readRecords(directory: dir).count == 6)
    }

    @Test func anInterruptedRunLosesOnlyTheProblemInFlight() throws {
        struct Interrupted: Error {}
        let dir = temporaryDirectory()
        let problems = (0..<4).map { Problem(id: "\($0)", question: "q", answer: "\($0)") }
        var calls = 0
        #expect(throws: Interrupted.self) {
            let store = try ResultStore(directory: dir, config: sampleConfig())
            try Harness.run(problems: problems, modes: ["large"], scoring: .gsm8k, store: store) { problem, _ in
                calls += 1
                if calls == 3 { throw Interrupted() }
                return ("The answer is \(problem.answer).", Telemetry(tokens: [RoleKey.large: 7], seconds: 2))
            }
        }
        let saved = try ResultStore.readRecords(directory: dir)
        #expect(saved.map(\.id) == ["0", "1"])
        #expect(saved.allSatisfy { $0.correct && $0.tokensPerSecond == 3.5 })

        let store = try ResultStore(directory: dir, config: sampleConfig())
        var resumed: [String] = []
        let counts = try Harness.run(problems: problems, modes: ["large"], scoring: .gsm8k, store: store) { problem, _ in
            resumed.append(problem.id)
            return ("\\boxed{\(problem.answer)}", Telemetry(tokens: [RoleKey.large: 7], seconds: 2))
        }
        #expect(resumed == ["2", "3"])
        #expect(counts == RunCounts(ran: 2, skipped: 2, correct: 2))
    }

    @Test func aTornLastLineIsDroppedAndTruncated() throws {
        let dir = temporaryDirectory()
        do {
            let store = try ResultStore(directory: dir, config: sampleConfig())
            try store.append(sampleRecord("0", "large"))
            try store.append(sampleRecord("1", "large"))
        }
        let path = dir + "/results.jsonl"
        let intact = readText(path)
        // A crash in the middle of writing the third line.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"id":"2","mode":"large","correct":tr"#.utf8))
        handle.closeFile()

        // Reading alone skips it and changes nothing.
        #expect(try ResultStore.readRecords(directory: dir).map(\.id) == ["0", "1"])
        #expect(readText(path).count > intact.count)

        let store = try ResultStore(directory: dir, config: sampleConfig())
        #expect(store.records.map(\.id) == ["0", "1"])
        #expect(store.warnings.count == 1)
        #expect(store.warnings.first?.contains("incomplete last line") == true)
        #expect(readText(path) == intact)
        try store.append(sampleRecord("2", "large"))
        #expect(try ResultStore.readRecords(directory: dir).map(\.id) == ["0", "1", "2"])
    }

    @Test func aCompleteLastLineWithoutNewlineIsKept() throws {
        let dir = temporaryDirectory()
        do { _ = try ResultStore(directory: dir, config: sampleConfig()) }
        let encoder = JSONEncoder()
        let line = try encoder.encode(sampleRecord("5", "small"))
        try line.write(to: URL(fileURLWithPath: dir + "/results.jsonl"))
        let store = try ResultStore(directory: dir, config: sampleConfig())
        #expect(store.records.map(\.id) == ["5"])
        try store.append(sampleRecord("6", "small"))
        #expect(try ResultStore.readRecords(directory: dir).map(\.id) == ["5", "6"])
    }

    @Test func aBadLineBeforeTheEndIsAnError() throws {
        let dir = temporaryDirectory()
        do {
            let store = try ResultStore(directory: dir, config: sampleConfig())
            try store.append(sampleRecord("0", "large"))
        }
        let path = dir + "/results.jsonl"
        try ("garbage\n" + readText(path)).write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: EvalError.self) { try ResultStore(directory: dir, config: sampleConfig()) }
        #expect("\(error!)".contains("results.jsonl:1"))
    }

    @Test func aChangedConfigIsRefusedWithTheDifferingFields() throws {
        let dir = temporaryDirectory()
        do { _ = try ResultStore(directory: dir, config: sampleConfig()) }
        var changed = sampleConfig(maxTokens: 512)
        changed.models[RoleKey.small]?.sha256 = "cc33"
        let error = #expect(throws: EvalError.self) { try ResultStore(directory: dir, config: changed) }
        let message = "\(error!)"
        #expect(message.contains("max_tokens: 1024 → 512"))
        #expect(message.contains("models.small.sha256: \"bb22\" → \"cc33\""))
        #expect(!message.contains("\n"))
        // The stored configuration is untouched.
        #expect(try ResultStore.readConfig(directory: dir) == sampleConfig())
    }

    @Test func aMovedModelFileWithTheSameChecksumIsTheSameConfig() throws {
        let dir = temporaryDirectory()
        do { _ = try ResultStore(directory: dir, config: sampleConfig()) }
        #expect(throws: Never.self) { _ = try ResultStore(directory: dir, config: sampleConfig(largePath: "/elsewhere/large.gguf")) }
    }

    @Test func twoRunsCannotWriteIntoOneDirectory() throws {
        let dir = temporaryDirectory()
        let first = try ResultStore(directory: dir, config: sampleConfig())
        let error = #expect(throws: EvalError.self) { try ResultStore(directory: dir, config: sampleConfig()) }
        #expect("\(error!)".contains("another relay eval"))
        first.close()
        #expect(throws: Never.self) { _ = try ResultStore(directory: dir, config: sampleConfig()) }
    }
}

@Suite struct ModeLists {
    @Test func modesCarryParameters() throws {
        let specs = try ModeSpec.parseList("large,small,random-router:rate=0.05,seed=3,speculative:draft-max=4")
        #expect(specs.map(\.raw) == ["large", "small", "random-router:rate=0.05,seed=3", "speculative:draft-max=4"])
        #expect(specs[2].name == "random-router")
        #expect(specs[2].parameters.map(\.value) == ["0.05", "3"])
        #expect(try ModeSpec.parseList("large,large").count == 1)
    }

    @Test func unknownAndMalformedModesAreRefused() {
        #expect(throws: ModeError.unknown("huge")) { try ModeSpec.parseList("large,huge") }
        #expect(throws: ModeError.self) { try ModeSpec.parse("random-router:rate") }
        #expect(throws: ModeError.self) { try ModeSpec.parseList(" , ") }
    }
}
