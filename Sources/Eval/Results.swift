import Foundation
import Relay
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The results of `relay eval --out DIR`:
//   DIR/config.json     the configuration (EvalConfig), written by the first run
//   DIR/results.jsonl   one EvalRecord a line, appended and fsync'ed as each problem ends
//   DIR/.lock           held (flock) while a run writes, so two runs cannot share a directory
//   DIR/summary.md, summary.json, report.html   written by `Report.write`
// A re-run with the same configuration skips the (id, mode) pairs already in results.jsonl; a run
// with another configuration is refused. Modes are not part of the configuration, so a re-run
// with one more mode runs only that mode. A crash loses at most the problem in flight: a torn
// last line is dropped (and truncated away) when the directory is opened again.
//
// One line of results.jsonl, keys sorted: the scoring fields
//   id                 string   problem id ("17", "algebra/12")
//   mode               string   full mode string, parameters included ("random-router:rate=0.05")
//   correct            bool
//   extracted          string|null   the final answer found in the output
//   reference          string   the reference answer
//   output             string   the answer as a user sees it (relay tags removed)
// and the generation's `Telemetry` (Sources/Relay/Telemetry.swift): tokens by model, drafts,
// hand-overs, calls, seconds by model, finish_reason, as `relay generate --json` and the server give them.

/// Model roles, the keys of the per-role objects in the results.
public enum RoleKey {
    public static let large = "large"
    public static let small = "small"
    /// Display order of roles.
    public static let order = [large, small]

    /// Role names in display order: `large`, `small`, then the others sorted.
    public static func sorted<S: Sequence>(_ keys: S) -> [String] where S.Element == String {
        let all = Set(keys)
        return order.filter(all.contains) + all.subtracting(order).sorted()
    }
}

/// The result of one problem under one mode: one line of `results.jsonl`: the scoring fields and
/// the generation's `Telemetry` (`record.seconds` reads `record.telemetry.seconds`).
@dynamicMemberLookup
public struct EvalRecord: Codable, Sendable, Equatable {
    public var id: String
    /// The full mode string, parameters included (`random-router:rate=0.05`).
    public var mode: String
    /// The answer as a user sees it (relay tags removed).
    public var output: String
    /// The extracted final answer, nil when there is none.
    public var extracted: String?
    public var reference: String
    public var correct: Bool
    public var telemetry: Telemetry

    public init(id: String, mode: String, output: String, extracted: String?, reference: String, correct: Bool, telemetry: Telemetry) {
        self.id = id
        self.mode = mode
        self.output = output
        self.extracted = extracted
        self.reference = reference
        self.correct = correct
        self.telemetry = telemetry
        self.telemetry.mode = nil
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<Telemetry, T>) -> T {
        get { telemetry[keyPath: path] }
        set { telemetry[keyPath: path] = newValue }
    }

    /// All generated tokens.
    public var totalTokens: Int { telemetry.tokens.values.reduce(0, +) }

    enum CodingKeys: String, CodingKey {
        case id, mode, output, extracted, reference, correct
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(FlexibleID.self, forKey: .id).value
        mode = try c.decode(String.self, forKey: .mode)
        output = try c.decode(String.self, forKey: .output)
        extracted = try c.decodeIfPresent(String.self, forKey: .extracted)
        reference = try c.decode(String.self, forKey: .reference)
        correct = try c.decode(Bool.self, forKey: .correct)
        telemetry = try Telemetry(from: decoder)
        telemetry.mode = nil
    }

    public func encode(to encoder: Encoder) throws {
        try telemetry.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        for (key, text) in [(CodingKeys.id, id), (.mode, mode), (.reference, reference), (.output, output)] { try c.encode(text, forKey: key) }
        try c.encode(correct, forKey: .correct)
        try c.encode(extracted, forKey: .extracted)   // null when there is none
    }

    /// The record as one line of JSON (no newline), keys sorted.
    public func jsonLine() throws -> String { String(decoding: try Telemetry.encoder().encode(self), as: UTF8.self) }
}

/// An id written as a string or a number.
struct FlexibleID: Decodable {
    let value: String
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { value = s } else { value = String(try c.decode(Int64.self)) }
    }
}

// MARK: - Configuration

/// A model as used by a run.
public struct ModelInfo: Codable, Sendable, Equatable {
    /// Where the file was (informational: a moved file with the same sha256 is the same model).
    public var path: String
    public var sha256: String
    /// Parameter count, used to weigh tokens in the cost column of the reports.
    public var parameters: Double?

    public init(path: String, sha256: String, parameters: Double? = nil) {
        self.path = path
        self.sha256 = sha256
        self.parameters = parameters
    }
}

/// Decoding settings (mirrors the engine's `SamplingParams`; nil = not used / default).
public struct SamplingConfig: Codable, Sendable, Equatable {
    /// 0 = greedy.
    public var temperature: Double
    public var topK: Int?
    public var topP: Double?
    public var minP: Double?
    public var repeatPenalty: Double?
    public var repeatLastN: Int?
    public var seed: UInt64?

    public init(temperature: Double = 0, topK: Int? = nil, topP: Double? = nil, minP: Double? = nil,
                repeatPenalty: Double? = nil, repeatLastN: Int? = nil, seed: UInt64? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case temperature
        case topK = "top_k"
        case topP = "top_p"
        case minP = "min_p"
        case repeatPenalty = "repeat_penalty"
        case repeatLastN = "repeat_last_n"
        case seed
    }

    /// `greedy` or `temperature 0.7, top-k 40, …` (a repeat penalty other than 1 is named).
    public var summary: String {
        var parts: [String] = []
        if temperature <= 0 {
            parts.append("greedy")
        } else {
            parts.append("temperature \(Report.trim(temperature, digits: 3))")
            if let topK { parts.append("top-k \(topK)") }
            if let topP { parts.append("top-p \(Report.trim(topP, digits: 3))") }
            if let minP { parts.append("min-p \(Report.trim(minP, digits: 3))") }
            if let seed { parts.append("seed \(seed)") }
        }
        if let repeatPenalty, repeatPenalty != 1 {
            parts.append("repeat penalty \(Report.trim(repeatPenalty, digits: 3))" + (repeatLastN.map { " over \($0) tokens" } ?? ""))
        }
        return parts.joined(separator: ", ")
    }
}

/// Everything that must not change between the parts of one run (`DIR/config.json`).
/// Modes are not part of it.
public struct EvalConfig: Codable, Sendable, Equatable {
    /// `gsm8k`, `math500`, `math-train` or the task file's path.
    public var task: String
    public var selection: Selection
    /// Appended to each problem to form the user message.
    public var promptSuffix: String
    /// The system prompt; nil = the chat template's default.
    public var systemPrompt: String?
    public var maxTokens: Int
    public var sampling: SamplingConfig
    /// Models by role (`large` = `-m`, `small` = `-md`).
    public var models: [String: ModelInfo]
    /// Anything else the runner wants pinned (e.g. engine version, chat template hash).
    public var extra: [String: String]?

    public init(task: String, selection: Selection = Selection(), promptSuffix: String = Prompt.defaultSuffix,
                systemPrompt: String? = nil, maxTokens: Int = 1024, sampling: SamplingConfig = SamplingConfig(),
                models: [String: ModelInfo], extra: [String: String]? = nil) {
        self.task = task
        self.selection = selection
        self.promptSuffix = promptSuffix
        self.systemPrompt = systemPrompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.models = models
        self.extra = extra
    }

    enum CodingKeys: String, CodingKey {
        case task, selection
        case promptSuffix = "prompt_suffix"
        case systemPrompt = "system_prompt"
        case maxTokens = "max_tokens"
        case sampling, models, extra
    }

    /// Parameter counts by role, where known.
    public var parameters: [String: Double] {
        models.compactMapValues(\.parameters)
    }

    /// The fields that differ from `other`, as `max_tokens: 1024 → 512`, ignoring model paths.
    public func differences(from other: EvalConfig) -> [String] {
        let a = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(other))) ?? [:]
        let b = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(self))) ?? [:]
        var out: [String] = []
        diffJSON(a, b, path: "", into: &out)
        return out
    }
}

private func diffJSON(_ a: Any?, _ b: Any?, path: String, into out: inout [String]) {
    if path.hasPrefix("models."), path.hasSuffix(".path") { return }
    if let da = a as? [String: Any], let db = b as? [String: Any] {
        for key in Set(da.keys).union(db.keys).sorted() {
            diffJSON(da[key], db[key], path: path.isEmpty ? key : path + "." + key, into: &out)
        }
        return
    }
    let sa = jsonText(a), sb = jsonText(b)
    if sa != sb { out.append("\(path): \(shorten(sa)) → \(shorten(sb))") }
}

private func jsonText(_ value: Any?) -> String {
    guard let value, !(value is NSNull) else { return "none" }
    if let s = value as? String { return "\"" + s.replacingOccurrences(of: "\n", with: "\\n") + "\"" }
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
        return String(decoding: data, as: UTF8.self)
    }
    return "\(value)"
}

private func shorten(_ s: String) -> String {
    s.count > 48 ? String(s.prefix(45)) + "…" : s
}

// MARK: - Store

/// `DIR/config.json` and `DIR/results.jsonl` of one run. Holds an exclusive lock on
/// `DIR/.lock` while open, so that two runs cannot write into one directory.
public final class ResultStore {
    public let directory: String
    public var resultsPath: String { directory + "/results.jsonl" }
    public var configPath: String { directory + "/config.json" }
    public let config: EvalConfig
    /// The records read back and appended, in file order, one per (id, mode).
    public private(set) var records: [EvalRecord]
    /// Things repaired while opening (a torn last line dropped), for the user.
    public private(set) var warnings: [String] = []

    private var done: Set<String>
    private var fd: Int32 = -1
    private var lockFD: Int32 = -1

    /// Opens (creating when needed) `directory`: writes `config.json` on the first run, refuses a
    /// different configuration, reads back `results.jsonl`, dropping and truncating a torn last line.
    public init(directory: String, config: EvalConfig) throws {
        self.directory = (directory as NSString).standardizingPath
        self.config = config
        records = []
        done = []
        do {
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        } catch {
            throw EvalError.io("cannot create \(self.directory): \(error.localizedDescription)")
        }
        lockFD = open(self.directory + "/.lock", O_CREAT | O_RDWR, 0o644)
        guard lockFD >= 0 else { throw EvalError.io("cannot open \(self.directory)/.lock") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            _ = Glibc_close(lockFD); lockFD = -1
            throw EvalError.io("another relay eval is writing to \(self.directory)")
        }

        let fm = FileManager.default
        if fm.fileExists(atPath: configPath) {
            let stored = try ResultStore.readConfig(directory: self.directory)
            let differences = config.differences(from: stored)
            if !differences.isEmpty {
                throw EvalError.configMismatch(directory: self.directory, differences: differences)
            }
        } else {
            if let size = (try? fm.attributesOfItem(atPath: resultsPath))?[.size] as? NSNumber, size.intValue > 0 {
                throw EvalError.io("\(resultsPath) exists without config.json: use another --out directory")
            }
            try writeAtomically(try ResultStore.encodeConfig(config), to: configPath)
        }

        let (loaded, repairs) = try ResultStore.load(resultsPath, repair: true)
        warnings = repairs
        for record in loaded where done.insert(key(record.id, record.mode)).inserted {
            records.append(record)
        }
        fd = open(resultsPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw EvalError.io("cannot open \(resultsPath) for writing") }
    }

    deinit { close() }

    /// Releases the file and the lock.
    public func close() {
        if fd >= 0 { _ = Glibc_close(fd); fd = -1 }
        if lockFD >= 0 { flock(lockFD, LOCK_UN); _ = Glibc_close(lockFD); lockFD = -1 }
    }

    /// Whether `id` has a result under `mode`.
    public func contains(id: String, mode: String) -> Bool {
        done.contains(key(id, mode))
    }

    /// Appends one record as a line and flushes it to disk (fsync) before returning.
    public func append(_ record: EvalRecord) throws {
        guard fd >= 0 else { throw EvalError.io("\(resultsPath) is closed") }
        var data = Data(try record.jsonLine().utf8)
        data.append(UInt8(ascii: "\n"))
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw EvalError.io("cannot write \(resultsPath): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        guard fsync(fd) == 0 else { throw EvalError.io("cannot flush \(resultsPath): \(String(cString: strerror(errno)))") }
        if done.insert(key(record.id, record.mode)).inserted { records.append(record) }
    }

    private func key(_ id: String, _ mode: String) -> String { id + "\u{1F}" + mode }

    // MARK: Reading without a store

    /// The configuration stored in `directory`.
    public static func readConfig(directory: String) throws -> EvalConfig {
        let path = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw EvalError.io("cannot read \(path)") }
        do {
            return try JSONDecoder().decode(EvalConfig.self, from: data)
        } catch {
            throw EvalError.io("cannot read \(path): not a relay eval configuration (\(error))")
        }
    }

    /// The records of `directory/results.jsonl` (read-only: a torn last line is skipped, not
    /// truncated), one per (id, mode), the first one winning.
    public static func readRecords(directory: String) throws -> [EvalRecord] {
        let path = directory + "/results.jsonl"
        guard FileManager.default.fileExists(atPath: path) else { throw EvalError.io("no results in \(directory) (\(path) not found)") }
        var seen = Set<String>()
        return try load(path, repair: false).records.filter { seen.insert($0.id + "\u{1F}" + $0.mode).inserted }
    }

    static func encodeConfig(_ config: EvalConfig) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(config)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Parses a results file. A last line that does not parse (a write cut short by a crash) is
    /// dropped (and, with `repair`, truncated away); a bad line before it is an error.
    static func load(_ path: String, repair: Bool) throws -> (records: [EvalRecord], warnings: [String]) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], []) }
        var records: [EvalRecord] = []
        var warnings: [String] = []
        let decoder = JSONDecoder()
        var start = 0
        var lineNumber = 0
        let bytes = [UInt8](data)
        while start < bytes.count {
            lineNumber += 1
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n"))
            let end = newline ?? bytes.count
            let line = bytes[start..<end]
            let next = newline.map { $0 + 1 } ?? bytes.count
            let isLast = bytes[next...].allSatisfy { $0 == 0x0A || $0 == 0x20 || $0 == 0x0D || $0 == 0 }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
                start = next
                continue
            }
            if let record = try? decoder.decode(EvalRecord.self, from: Data(line)) {
                records.append(record)
                if newline == nil && repair {
                    // Complete the line so that the next append starts a new one.
                    try appendBytes([UInt8(ascii: "\n")], to: path)
                }
                start = next
                continue
            }
            guard isLast else {
                throw EvalError.malformedLine(file: path, line: lineNumber, detail: "not a result record; repair or remove the line")
            }
            if repair {
                guard truncate(path, off_t(start)) == 0 else {
                    throw EvalError.io("cannot truncate \(path): \(String(cString: strerror(errno)))")
                }
                warnings.append("\(path): dropped an incomplete last line (line \(lineNumber), \(bytes.count - start) bytes), left by an interrupted run")
            } else {
                warnings.append("\(path): skipped an incomplete last line (line \(lineNumber))")
            }
            break
        }
        return (records, warnings)
    }

    private static func appendBytes(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND)
        guard fd >= 0 else { throw EvalError.io("cannot open \(path) for writing") }
        defer { _ = Glibc_close(fd) }
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else { throw EvalError.io("cannot write \(path)") }
    }

    private func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { throw EvalError.io("cannot write \(temporary)") }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 { fsync(fd); _ = Glibc_close(fd) }
        guard rename(temporary, path) == 0 else { throw EvalError.io("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}

/// `close(2)`, which `ResultStore.close()` hides.
@inline(__always) func Glibc_close(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}
