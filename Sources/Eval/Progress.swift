import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A progress bar on standard error:
///
///     ███████████░░░░░░░░░░░░░  37/200  acc 64.9%  9.8 s/problem  ETA 26m37s  small #1042
///
/// (problems done out of all problem × mode pairs, running accuracy of this session, mean time
/// per problem, time left, the mode and problem in flight). It is redrawn in place with `\r` only
/// when standard error is a terminal; otherwise it prints nothing at all (logs stay clean; the
/// results file is the record), as the issue asks ("quiet when stderr is not a terminal").
public final class ProgressBar {
    public let enabled: Bool
    private let width: Int
    private let write: (String) -> Void
    private var total = 0
    private var done = 0
    private var session = 0
    private var correct = 0
    private var seconds = 0.0
    private var mode = ""
    private var id = ""
    private var drawn = false

    /// `enabled` defaults to whether standard error is a terminal; `write` to standard error.
    public init(enabled: Bool = isatty(2) != 0, width: Int = 24, write: ((String) -> Void)? = nil) {
        self.enabled = enabled
        self.width = width
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// Starts counting: `total` pairs, of which `alreadyDone` were done by an earlier run.
    public func start(total: Int, alreadyDone: Int) {
        self.total = total
        done = alreadyDone
        session = 0
        correct = 0
        seconds = 0
        draw()
    }

    /// A pair starts running.
    public func begin(mode: String, id: String) {
        self.mode = mode
        self.id = id
        draw()
    }

    /// A pair is done.
    public func update(correct isCorrect: Bool, seconds s: Double) {
        done += 1
        session += 1
        if isCorrect { correct += 1 }
        seconds += s
        draw()
    }

    /// Clears the bar (the caller prints the summary).
    public func finish() {
        if enabled && drawn { write("\r\u{1B}[K") }
        drawn = false
    }

    private func draw() {
        guard enabled else { return }
        write("\r\u{1B}[K" + ProgressBar.line(done: done, total: total, sessionDone: session, correct: correct,
                                              seconds: seconds, current: mode.isEmpty ? nil : "\(mode) #\(id)", width: width))
        drawn = true
    }

    /// The text of the bar (without `\r`): pure, for tests.
    public static func line(done: Int, total: Int, sessionDone: Int, correct: Int, seconds: Double,
                            current: String?, width: Int = 24) -> String {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let filled = Int((fraction * Double(width)).rounded(.down))
        var s = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        s += "  \(done)/\(total)"
        if sessionDone > 0 {
            s += String(format: "  acc %.1f%%", 100 * Double(correct) / Double(sessionDone))
            let mean = seconds / Double(sessionDone)
            s += String(format: "  %.1f s/problem", mean)
            s += "  ETA " + duration(mean * Double(max(0, total - done)))
        }
        if let current, done < total { s += "  " + current }
        return s
    }

    /// `42s`, `6m12s`, `2h05m`.
    public static func duration(_ seconds: Double) -> String {
        let t = Int(seconds.rounded())
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m"
    }
}
