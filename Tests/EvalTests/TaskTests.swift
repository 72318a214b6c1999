import Eval
import Foundation
import Testing
import TestSupport

/// The data directory `relay data fetch` fills ($RELAY_HOME/data, default ~/.cache/relay/data).
let dataDirectory = TaskLoader.defaultDataDirectory()

/// A fresh empty directory, removed with the test process's scratch folder.
func temporaryDirectory(_ name: String = #function) -> String { Scratch.directory(name) }

@Suite struct RealDataSets {
    @Test func gsm8kHasAllTestProblemsWithShortAnswers() throws {
        let set = try TaskLoader.load("gsm8k", dataDirectory: dataDirectory)
        #expect(set.problems.count == 1319)
        #expect(set.scoring == .gsm8k)
        #expect(Set(set.problems.map(\.id)).count == 1319)
        let first = try #require(set.problems.first)
        #expect(first.id == "0")
        #expect(first.question.hasPrefix("Janet’s ducks lay 16 eggs per day."))
        #expect(first.answer == "18")
        let byID = Dictionary(uniqueKeysWithValues: set.problems.map { ($0.id, $0) })
        #expect(byID["611"]?.answer == "1,450,000")
        #expect(byID["489"]?.answer == "-10")
        // Every reference reads as a number.
        #expect(set.problems.allSatisfy { Scorer.plainNumber($0.answer) != nil })
    }

    @Test func math500TakesTheLastBoxOfTheSolutionAsReference() throws {
        let set = try TaskLoader.load("math500", dataDirectory: dataDirectory)
        #expect(set.problems.count == 500)
        #expect(set.scoring == .math)
        let byID = Dictionary(uniqueKeysWithValues: set.problems.map { ($0.id, $0) })
        // doc.answer is "\le(3,\frac{\pi}{2}\right)" and "357" here; the solutions are intact.
        #expect(byID["0"]?.answer == "\\left( 3, \\frac{\\pi}{2} \\right)")
        #expect(byID["36"]?.answer == "3, 5, 7")
        #expect(byID["99"]?.answer == "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}")
        #expect(byID["0"]?.question.hasPrefix("Convert the point $(0,3)$ in rectangular coordinates") == true)
        // Every reference equals itself after normalisation (none normalises to nothing).
        #expect(set.problems.allSatisfy { Scorer.isCorrect(style: .math, extracted: $0.answer, reference: $0.answer) })
    }

    @Test func mathTrainIsTheMATHTestSetWithoutMath500() throws {
        let train = try TaskLoader.load("math-train", dataDirectory: dataDirectory)
        let test = try TaskLoader.load("math500", dataDirectory: dataDirectory)
        #expect(train.problems.count == 4500)
        #expect(train.note.contains("4500 problems"))
        #expect(train.note.contains("5000"))
        let evalTexts = Set(test.problems.map { TaskLoader.normalizedProblemText($0.question) })
        #expect(train.problems.allSatisfy { !evalTexts.contains(TaskLoader.normalizedProblemText($0.question)) })
        #expect(Set(train.problems.map(\.id)).count == 4500)
        #expect(train.problems.first?.id == "algebra/0")
        #expect(train.problems.contains { $0.id.hasPrefix("precalculus/") })
    }

    @Test func theUserMessageIsTheProblemAndTheInstruction() throws {
        let problem = Problem(id: "1", question: "What is 2+2?", answer: "4")
        #expect(Prompt.userMessage(problem) == "What is 2+2?\nPlease reason step by step, and put your final answer within \\boxed{}.")
    }
}

@Suite struct TaskFilesAndErrors {
    @Test func aJSONLFileTakesNumericOrStringIDs() throws {
        let dir = temporaryDirectory()
        let path = dir + "/mine.jsonl"
        try """
        {"id": 7, "question": "1+1?", "answer": "2"}

        {"id": "b", "question": "2+2?", "answer": 4}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let set = try TaskLoader.load(path)
        #expect(set.problems == [Problem(id: "7", question: "1+1?", answer: "2"), Problem(id: "b", question: "2+2?", answer: "4")])
        #expect(set.scoring == .gsm8k)

        try #"{"id": 1, "question": "Simplify.", "answer": "\\frac{1}{2}"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try TaskLoader.load(path).scoring == .math)
    }

    @Test func aMalformedLineIsReportedWithFileAndLineNumber() throws {
        let dir = temporaryDirectory()
        let path = dir + "/bad.jsonl"
        try """
        {"id": 1, "question": "a", "answer": "1"}
        {"id": 2, "question": "b", "answer": 
        """.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: EvalError.malformedLine(file: path, line: 2, detail: "not valid JSON")) { try TaskLoader.load(path) }
        #expect("\(EvalError.malformedLine(file: path, line: 2, detail: "not valid JSON"))" == "\(path):2: malformed line: not valid JSON")

        try #"{"id": 1, "answer": "1"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: EvalError.self) { try TaskLoader.load(path) }
        try "{\"id\": 1, \"question\": \"a\", \"answer\": \"1\"}\n{\"id\": 1, \"question\": \"b\", \"answer\": \"2\"}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: EvalError.duplicateID(file: path, line: 2, id: "1")) { try TaskLoader.load(path) }
    }

    @Test func missingDataNamesTheFetchCommand() throws {
        let dir = temporaryDirectory()
        let error = #expect(throws: EvalError.self) { try TaskLoader.load("gsm8k", dataDirectory: dir) }
        #expect(error == .missingData(task: "gsm8k", path: dir + "/gsm8k.jsonl.gz"))
        #expect("\(error!)".contains("relay data fetch"))
    }

    @Test func aDamagedGzipFileIsAnError() throws {
        let dir = temporaryDirectory()
        try Data("not gzip".utf8).write(to: URL(fileURLWithPath: dir + "/gsm8k.jsonl.gz"))
        let error = #expect(throws: EvalError.self) { try TaskLoader.load("gsm8k", dataDirectory: dir) }
        #expect("\(error!)".contains("cannot decompress"))
    }

    @Test func anUnknownTaskListsTheKnownOnes() {
        let error = #expect(throws: EvalError.self) { try TaskLoader.load("gsm9k", dataDirectory: "/nonexistent") }
        #expect(error == .unknownTask("gsm9k", known: ["gsm8k", "math500", "math-train"]))
        #expect("\(error!)".contains("gsm8k, math500, math-train"))
    }

    @Test func theDefaultDataDirectoryFollowsRelayHome() {
        #expect(TaskLoader.defaultDataDirectory(environment: ["RELAY_HOME": "/srv/relay"]) == "/srv/relay/data")
        #expect(TaskLoader.defaultDataDirectory(environment: [:]).hasSuffix("/.cache/relay/data"))
    }
}

@Suite struct Selections {
    @Test func splitMix64MatchesTheReferenceOutputs() {
        var rng = SplitMix64(seed: 1_234_567)
        #expect([rng.next(), rng.next(), rng.next()] == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    @Test func aSeededShuffleIsTheSameEverywhere() {
        // Values computed independently (Python) from the same SplitMix64 + Fisher–Yates.
        let selection = Selection(shuffle: true, seed: 42)
        #expect(selection.apply(Array(0..<10)) == [0, 9, 5, 8, 6, 4, 7, 2, 1, 3])
        #expect(Selection(limit: 10, shuffle: true, seed: 7).apply(Array(0..<1319)) == [738, 1165, 785, 369, 492, 670, 206, 977, 1291, 608])
        #expect(selection.apply(Array(0..<10)) == selection.apply(Array(0..<10)))
        #expect(Selection(shuffle: true, seed: 43).apply(Array(0..<10)) != selection.apply(Array(0..<10)))
    }

    @Test func offsetAndLimitCutTheShuffledOrderIntoDisjointParts() {
        let all = Array(0..<100)
        let order = Selection(shuffle: true, seed: 3).apply(all)
        let first = Selection(offset: 0, limit: 30, shuffle: true, seed: 3).apply(all)
        let second = Selection(offset: 30, limit: 30, shuffle: true, seed: 3).apply(all)
        #expect(first == Array(order[0..<30]))
        #expect(second == Array(order[30..<60]))
        #expect(Set(first).isDisjoint(with: second))
        #expect(Selection(offset: 95, limit: 30).apply(all) == Array(95..<100))
        #expect(Selection(offset: 200).apply(all).isEmpty)
        #expect(Selection().apply(all) == all)
        #expect(Selection(limit: 3).apply(all) == [0, 1, 2])
    }
}
