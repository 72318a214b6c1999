import Foundation
import Progress
import Relay

// The evaluation loop, independent of how text is generated: the runner passes a closure that
// runs one problem under one mode and reports what happened (`Generation`); the loop skips what is
// done, scores, appends each result to the store as soon as it exists, and drives the progress bar.

/// What one decoding mode produced for one problem (filled in by the runner): the answer as a
/// user sees it (relay tags removed) and the generation's telemetry.
public typealias Generation = (output: String, telemetry: Telemetry)

/// What `Harness.run` did.
public struct RunCounts: Sendable, Equatable {
    /// Pairs run now.
    public var ran: Int
    /// Pairs skipped because results.jsonl already had them.
    public var skipped: Int
    /// Correct answers among those run now.
    public var correct: Int

    public init(ran: Int, skipped: Int, correct: Int) {
        self.ran = ran
        self.skipped = skipped
        self.correct = correct
    }
}

public enum Harness {
    /// The record of one generation, scored.
    public static func record(problem: Problem, mode: String, generation g: Generation, scoring: ScoringStyle) -> EvalRecord {
        let (extracted, correct) = Scorer.score(style: scoring, output: g.output, reference: problem.answer)
        return EvalRecord(id: problem.id, mode: mode, output: g.output, extracted: extracted, reference: problem.answer,
                          correct: correct, telemetry: g.telemetry)
    }

    /// Runs every (problem, mode) pair that `store` does not hold yet: problem by problem, each
    /// under all modes in turn (so an interrupted run still has paired results). Each result is
    /// scored and appended (fsync'ed) before the next generation starts, so an interruption loses
    /// at most the pair in flight. `onRecord` sees each new record (e.g. for verbose output).
    @discardableResult
    public static func run(problems: [Problem], modes: [String], scoring: ScoringStyle, store: ResultStore,
                           progress: ProgressBar? = nil, onRecord: ((EvalRecord) -> Void)? = nil,
                           generate: (Problem, String) throws -> Generation) throws -> RunCounts {
        var counts = RunCounts(ran: 0, skipped: 0, correct: 0)
        counts.skipped = problems.reduce(0) { sum, problem in
            sum + modes.filter { store.contains(id: problem.id, mode: $0) }.count
        }
        progress?.start("eval", total: Double(problems.count * modes.count), unit: .items("problem"), done: Double(counts.skipped))
        defer { progress?.finish() }
        // The accuracy of this run's answers, and what runs now.
        func detail(_ current: String) -> String {
            (counts.ran > 0 ? String(format: "acc %.1f%%  ", 100 * Double(counts.correct) / Double(counts.ran)) : "") + current
        }
        for problem in problems {
            for mode in modes where !store.contains(id: problem.id, mode: mode) {
                progress?.advance(0, detail: detail("\(mode) #\(problem.id)"))
                let generation = try generate(problem, mode)
                let record = record(problem: problem, mode: mode, generation: generation, scoring: scoring)
                try store.append(record)
                counts.ran += 1
                if record.correct { counts.correct += 1 }
                progress?.advance(1, detail: detail(""))
                onRecord?(record)
            }
        }
        return counts
    }
}
