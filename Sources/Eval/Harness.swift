import Foundation

// The evaluation loop, independent of how text is generated: the runner passes a closure that
// runs one problem under one mode and reports what happened (`Generation`); the loop skips what is
// done, scores, appends each result to the store as soon as it exists, and drives the progress bar.

/// What one decoding mode produced for one problem (filled in by the runner).
public struct Generation: Sendable {
    /// The answer as a user sees it (relay tags removed).
    public var output: String
    /// Generated tokens by role (`RoleKey.large`, `RoleKey.small`).
    public var tokens: [String: Int]
    public var drafted: Int?
    public var accepted: Int?
    public var handovers: Int?
    /// RelayLLM modes: calls of the large model and the tokens they asked for.
    public var calls: Int?
    public var requested: Int?
    /// Wall time of the generation, prefill included (model loading excluded).
    public var seconds: Double
    public var prefillSeconds: [String: Double]?
    public var decodeSeconds: [String: Double]?
    /// `stop`, `length`, …
    public var finishReason: String?

    public init(output: String, tokens: [String: Int], drafted: Int? = nil, accepted: Int? = nil, handovers: Int? = nil,
                calls: Int? = nil, requested: Int? = nil, seconds: Double, prefillSeconds: [String: Double]? = nil, decodeSeconds: [String: Double]? = nil,
                finishReason: String? = nil) {
        self.output = output
        self.tokens = tokens
        self.drafted = drafted
        self.accepted = accepted
        self.handovers = handovers
        self.calls = calls
        self.requested = requested
        self.seconds = seconds
        self.prefillSeconds = prefillSeconds
        self.decodeSeconds = decodeSeconds
        self.finishReason = finishReason
    }
}

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

/// A mode with parameters: `random-router:rate=0.05,seed=3`.
public struct ModeSpec: Sendable, Equatable {
    /// The full string, recorded as the mode of each result.
    public var raw: String
    public var name: String
    /// Parameters in the order given.
    public var parameters: [(key: String, value: String)]

    public static func == (a: ModeSpec, b: ModeSpec) -> Bool {
        a.raw == b.raw && a.name == b.name && a.parameters.map(\.key) == b.parameters.map(\.key)
            && a.parameters.map(\.value) == b.parameters.map(\.value)
    }

    public func parameter(_ key: String) -> String? {
        parameters.last { $0.key == key }?.value
    }

    /// Parses one mode: `name` or `name:key=value,key=value`.
    public static func parse(_ text: String) throws -> ModeSpec {
        let raw = text.trimmingCharacters(in: .whitespaces)
        let pieces = raw.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(pieces[0])
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw EvalError.badMode(raw, detail: "expected NAME or NAME:key=value,key=value")
        }
        var parameters: [(key: String, value: String)] = []
        if pieces.count == 2 {
            for item in pieces[1].split(separator: ",", omittingEmptySubsequences: false) {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                    throw EvalError.badMode(raw, detail: "parameter '\(item)' is not key=value")
                }
                parameters.append((String(kv[0]), String(kv[1])))
            }
        }
        return ModeSpec(raw: raw, name: name, parameters: parameters)
    }

    /// Parses a `--modes` list. Commas separate modes and also a mode's parameters: an item with
    /// `=` but no `:` continues the previous mode (`large,random-router:rate=0.05,seed=3,small`).
    /// Names not in `known` (when given) are refused; duplicates are dropped.
    public static func parseList(_ text: String, known: [String]? = nil) throws -> [ModeSpec] {
        var groups: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true).map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if item.contains("="), !item.contains(":"), let last = groups.last, last.contains(":") {
                groups[groups.count - 1] = last + "," + item
            } else {
                groups.append(item)
            }
        }
        guard !groups.isEmpty else { throw EvalError.badMode(text, detail: "no modes given") }
        var specs: [ModeSpec] = []
        for group in groups {
            let spec = try parse(group)
            if let known, !known.contains(spec.name) { throw EvalError.unknownMode(spec.name, known: known) }
            if !specs.contains(where: { $0.raw == spec.raw }) { specs.append(spec) }
        }
        return specs
    }
}

public enum Harness {
    /// The record of one generation, scored.
    public static func record(problem: Problem, mode: String, generation g: Generation, scoring: ScoringStyle) -> EvalRecord {
        let (extracted, correct) = Scorer.score(style: scoring, output: g.output, reference: problem.answer)
        let total = g.tokens.values.reduce(0, +)
        return EvalRecord(id: problem.id, mode: mode, output: g.output, extracted: extracted, reference: problem.answer,
                          correct: correct, tokens: g.tokens, drafted: g.drafted, accepted: g.accepted, handovers: g.handovers,
                          calls: g.calls, requested: g.requested,
                          seconds: g.seconds, prefillSeconds: g.prefillSeconds, decodeSeconds: g.decodeSeconds,
                          tokensPerSecond: g.seconds > 0 ? Double(total) / g.seconds : nil, finishReason: g.finishReason)
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
        progress?.start(total: problems.count * modes.count, alreadyDone: counts.skipped)
        defer { progress?.finish() }
        for problem in problems {
            for mode in modes where !store.contains(id: problem.id, mode: mode) {
                progress?.begin(mode: mode, id: problem.id)
                let generation = try generate(problem, mode)
                let record = record(problem: problem, mode: mode, generation: generation, scoring: scoring)
                try store.append(record)
                counts.ran += 1
                if record.correct { counts.correct += 1 }
                progress?.update(correct: record.correct, seconds: record.seconds)
                onRecord?(record)
            }
        }
        return counts
    }
}
