import Foundation

/// `relay eval compare DIR1 DIR2`: per mode, accuracy and latency of run B against run A on the
/// problems both ran under that mode, with the exact McNemar test on paired correctness.
public enum Compare {
    /// One mode's comparison.
    public struct ModeComparison: Sendable, Equatable {
        public var mode: String
        /// Problems both runs have under this mode.
        public var shared: Int
        public var correctA: Int
        public var correctB: Int
        /// A right and B wrong; A wrong and B right.
        public var onlyA: Int
        public var onlyB: Int
        /// Exact McNemar p-value (two-sided).
        public var pValue: Double
        public var meanSecondsA: Double
        public var meanSecondsB: Double

        public var accuracyA: Double { shared > 0 ? Double(correctA) / Double(shared) : 0 }
        public var accuracyB: Double { shared > 0 ? Double(correctB) / Double(shared) : 0 }
        /// Total time of B over total time of A (below 1: B is faster).
        public var timeRatio: Double? { meanSecondsA > 0 ? meanSecondsB / meanSecondsA : nil }
    }

    /// The comparisons of the modes both record sets have, in A's mode order.
    public static func compare(_ a: [EvalRecord], _ b: [EvalRecord]) -> [ModeComparison] {
        var modes: [String] = []
        for r in a where !modes.contains(r.mode) { modes.append(r.mode) }
        let bModes = Set(b.map(\.mode))
        var out: [ModeComparison] = []
        for mode in modes where bModes.contains(mode) {
            let bByID = Dictionary(b.filter { $0.mode == mode }.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
            var c = ModeComparison(mode: mode, shared: 0, correctA: 0, correctB: 0, onlyA: 0, onlyB: 0, pValue: 1,
                                   meanSecondsA: 0, meanSecondsB: 0)
            var secondsA = 0.0, secondsB = 0.0
            var seen = Set<String>()
            for ra in a where ra.mode == mode && seen.insert(ra.id).inserted {
                guard let rb = bByID[ra.id] else { continue }
                c.shared += 1
                if ra.correct { c.correctA += 1 }
                if rb.correct { c.correctB += 1 }
                if ra.correct && !rb.correct { c.onlyA += 1 }
                if !ra.correct && rb.correct { c.onlyB += 1 }
                secondsA += ra.seconds
                secondsB += rb.seconds
            }
            if c.shared > 0 {
                c.meanSecondsA = secondsA / Double(c.shared)
                c.meanSecondsB = secondsB / Double(c.shared)
            }
            c.pValue = Stats.mcnemarExact(b: c.onlyA, c: c.onlyB)
            out.append(c)
        }
        return out
    }

    /// Reads two results directories and returns the comparison as text.
    public static func compare(directoryA: String, directoryB: String) throws -> String {
        let a = try ResultStore.readRecords(directory: directoryA)
        let b = try ResultStore.readRecords(directory: directoryB)
        let configA = try? ResultStore.readConfig(directory: directoryA)
        let configB = try? ResultStore.readConfig(directory: directoryB)
        return text(compare(a, b), a: a, b: b, nameA: directoryA, nameB: directoryB, configA: configA, configB: configB)
    }

    /// The report: the runs, how their configurations differ, a table, and modes only one run has.
    public static func text(_ comparisons: [ModeComparison], a: [EvalRecord], b: [EvalRecord], nameA: String, nameB: String,
                            configA: EvalConfig? = nil, configB: EvalConfig? = nil) -> String {
        var lines: [String] = []
        func describe(_ records: [EvalRecord], _ config: EvalConfig?) -> String {
            let problems = Set(records.map(\.id)).count
            var modes: [String] = []
            for r in records where !modes.contains(r.mode) { modes.append(r.mode) }
            return (config.map { "\(Report.taskTitle($0.task)), " } ?? "") + "\(problems) problems, modes \(modes.joined(separator: ", "))"
        }
        lines.append("A: \(nameA) (\(describe(a, configA)))")
        lines.append("B: \(nameB) (\(describe(b, configB)))")
        if let configA, let configB {
            let differences = configB.differences(from: configA)
            lines.append(differences.isEmpty ? "configuration: the same" : "configuration differences (A → B): " + differences.joined(separator: "; "))
        }
        lines.append("")
        if comparisons.isEmpty {
            lines.append("no mode in common")
        } else {
            let header = ["mode", "shared", "acc A", "acc B", "Δ acc", "A✓B✗", "A✗B✓", "McNemar p", "mean s A", "mean s B", "time B/A"]
            var rows: [[String]] = []
            for c in comparisons {
                rows.append([
                    c.mode, "\(c.shared)",
                    Report.percent(c.accuracyA), Report.percent(c.accuracyB),
                    String(format: "%+.1f pp", 100 * (c.accuracyB - c.accuracyA)),
                    "\(c.onlyA)", "\(c.onlyB)",
                    formatP(c.pValue),
                    String(format: "%.2f", c.meanSecondsA), String(format: "%.2f", c.meanSecondsB),
                    c.timeRatio.map { String(format: "%.2f×", $0) } ?? "—",
                ])
            }
            lines += alignedTable(header: header, rows: rows, leftAligned: [0])
            lines.append("")
            lines.append("Δ acc: accuracy of B minus A on the shared problems; McNemar p: exact two-sided test on the problems where exactly one run is right (below 0.05: unlikely to be chance).")
        }
        let modesA = Set(a.map(\.mode)), modesB = Set(b.map(\.mode))
        let onlyA = modesA.subtracting(modesB).sorted(), onlyB = modesB.subtracting(modesA).sorted()
        if !onlyA.isEmpty { lines.append("only in A: " + onlyA.joined(separator: ", ")) }
        if !onlyB.isEmpty { lines.append("only in B: " + onlyB.joined(separator: ", ")) }
        return lines.joined(separator: "\n") + "\n"
    }

    static func formatP(_ p: Double) -> String {
        if p >= 0.9995 { return "1" }
        if p < 0.001 { return String(format: "%.1e", p) }
        return String(format: "%.3f", p)
    }

    /// Columns padded to their widest cell; right-aligned unless listed.
    static func alignedTable(header: [String], rows: [[String]], leftAligned: Set<Int>) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return leftAligned.contains(i) ? cell + pad : pad + cell
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return [line(header)] + rows.map(line)
    }
}
