import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one progress bar of every long command: model and data fetch and their sha256 checks, eval,
/// calibrate and train-relay. On a terminal (standard error) it is redrawn in place, at most ten
/// times a second, with the rate and the time left:
///
///     qwen2.5-coder-1.5b ██████░░░░░░░░░░░░░░  412.0 MB / 1117.3 MB  96.3 MB/s  ETA 7s
///     eval ███████░░░░░░░░░░░░░  37/200  9.8 s/problem  ETA 26m37s  acc 64.9%  small #1042
///
/// Elsewhere (a log, CI) it prints the same text as a plain line at each tenth of the way, so a log
/// gets at most eleven lines per phase. Lines given to `note` go above the bar.
public final class ProgressBar: @unchecked Sendable {
    public enum Unit: Sendable, Equatable {
        case bytes
        /// Counted things, named in the singular ("problem", "step").
        case items(String)
    }

    public let terminal: Bool
    private let width: Int
    private let write: (String) -> Void
    private let clock: () -> Double
    private let lock = NSLock()
    private var label = ""
    private var unit = Unit.items("item")
    private var total = 0.0
    private var done = 0.0
    private var startDone = 0.0
    private var started = 0.0
    private var detail = ""
    private var drawn = false
    private var lastDraw = -Double.infinity
    private var lastTenth = -1

    /// `terminal` defaults to whether standard error is one; `write` to standard error.
    public init(terminal: Bool = isatty(2) != 0, width: Int = 20, write: ((String) -> Void)? = nil,
                clock: (() -> Double)? = nil) {
        self.terminal = terminal
        self.width = width
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
        self.clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    }

    /// Starts a phase: `total` of `unit`, `done` of them already done (by an earlier run: they do
    /// not count towards the rate).
    public func start(_ label: String, total: Double, unit: Unit, done: Double = 0) {
        lock.withLock { begin(label, total: total, unit: unit, done: done) }
    }

    /// For callers that report events: `done` of `total` in the phase `label`, begun when it is new.
    public func show(_ label: String, done: Double, total: Double, unit: Unit) {
        lock.withLock {
            if label != self.label || total != self.total || unit != self.unit { begin(label, total: total, unit: unit, done: done) }
            self.done = done
            draw(force: false)
        }
    }

    private func begin(_ label: String, total: Double, unit: Unit, done: Double) {
        clear()
        (self.label, self.total, self.unit, self.done, startDone) = (label, total, unit, done, done)
        started = clock()
        detail = ""
        lastTenth = -1
        lastDraw = -.infinity
        draw(force: true)
    }

    /// Moves to `done`, with an optional text after the numbers.
    public func update(_ done: Double, detail: String? = nil) {
        lock.withLock {
            self.done = done
            if let detail { self.detail = detail }
            draw(force: false)
        }
    }

    public func advance(_ by: Double = 1, detail: String? = nil) {
        lock.withLock {
            done += by
            if let detail { self.detail = detail }
            draw(force: false)
        }
    }

    /// A line of its own above the bar.
    public func note(_ line: String) {
        lock.withLock {
            clear()
            write(line + "\n")
            if terminal && total > 0 && done < total { draw(force: true) }
        }
    }

    /// Ends the phase: the bar is cleared on a terminal (elsewhere its last line was printed),
    /// then `line`, if any, is printed.
    public func finish(_ line: String? = nil) {
        lock.withLock {
            if !terminal, total > 0, lastTenth < 10 { write(text() + "\n") }
            clear()
            total = 0
            if let line { write(line + "\n") }
        }
    }

    private func clear() {
        if terminal && drawn { write("\r\u{1B}[K") }
        drawn = false
    }

    private func draw(force: Bool) {
        guard total > 0 else { return }
        let now = clock()
        if terminal {
            guard force || done >= total || now - lastDraw >= 0.1 else { return }
            lastDraw = now
            write("\r\u{1B}[K" + text())
            drawn = true
        } else {
            let tenth = Int(10 * min(1, done / total))
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            write(text() + "\n")
        }
    }

    private func text() -> String {
        let elapsed = clock() - started
        let rate = elapsed > 0.05 && done > startDone ? (done - startDone) / elapsed : nil
        return Self.line(label: label, done: done, total: total, unit: unit, rate: rate, detail: detail, width: width)
    }

    /// The text of the bar (without `\r`): pure, for tests. `rate` is in units per second.
    public static func line(label: String, done: Double, total: Double, unit: Unit, rate: Double?, detail: String = "",
                            width: Int = 20) -> String {
        let fraction = total > 0 ? max(0, min(1, done / total)) : 0
        let filled = Int((fraction * Double(width)).rounded(.down))
        var s = label.isEmpty ? "" : label + " "
        s += String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        switch unit {
        case .bytes: s += "  \(formatMB(Int64(done))) / \(formatMB(Int64(total)))"
        case .items: s += "  \(Int(done))/\(Int(total))"
        }
        if let rate, rate > 0 {
            switch unit {
            case .bytes: s += String(format: "  %.1f MB/s", rate / 1e6)
            case .items(let name): s += rate >= 1 ? String(format: "  %.1f %@/s", rate, name) : String(format: "  %.1f s/%@", 1 / rate, name)
            }
            if done < total { s += "  ETA " + duration((total - done) / rate) }
        }
        if !detail.isEmpty { s += "  " + detail }
        return s
    }

    /// `42s`, `6m12s`, `2h05m`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let t = Int(seconds.rounded())
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m"
    }
}

/// `12.3 MB` (1 MB = 10^6 bytes).
public func formatMB(_ bytes: Int64) -> String {
    String(format: "%.1f MB", Double(bytes) / 1_000_000)
}
