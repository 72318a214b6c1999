import Foundation

// `summary.md`, `summary.json` and `report.html` of a results directory.
//
// Per mode: n, accuracy with its 95% Wilson interval, mean and median latency, speed-up vs large
// (total seconds of `large` over total seconds of the mode, on the problems both ran), the share of
// generated tokens written by the large model, and the cost relative to large (parameter-weighted
// generated tokens, Σ_role params(role) · tokens(role), over the same shared problems).

/// The numbers of one mode.
public struct ModeSummary: Codable, Sendable, Equatable {
    public var mode: String
    public var n: Int
    public var correct: Int
    public var accuracy: Double
    /// 95% Wilson interval of the accuracy.
    public var ciLow: Double
    public var ciHigh: Double
    public var meanSeconds: Double
    public var medianSeconds: Double
    public var totalSeconds: Double
    /// Generated tokens by role, summed.
    public var tokens: [String: Int]
    public var meanTokens: Double
    /// tokens[large] / all tokens; nil without tokens.
    public var largeShare: Double?
    /// All tokens / all seconds.
    public var tokensPerSecond: Double?
    /// Problems this mode shares with the `large` mode (the basis of speed-up and cost).
    public var sharedWithLarge: Int
    /// Total seconds of large / total seconds of this mode, on the shared problems.
    public var speedup: Double?
    /// Parameter-weighted tokens of this mode / those of large, on the shared problems.
    public var relativeCost: Double?
    public var meanHandovers: Double?
    /// accepted / drafted, when drafts were counted.
    public var acceptance: Double?
    /// Outputs cut at the token limit (finish_reason `length`).
    public var truncated: Int
    /// Outputs without an extractable answer.
    public var unanswered: Int
    /// Shared problems whose output is exactly large's.
    public var sameAsLarge: Int?
    /// Modes that draft: what speculation could give at most if verification were free.
    public var draftBound: DraftBound?

    enum CodingKeys: String, CodingKey {
        case mode, n, correct, accuracy
        case ciLow = "ci_low", ciHigh = "ci_high"
        case meanSeconds = "mean_seconds", medianSeconds = "median_seconds", totalSeconds = "total_seconds"
        case tokens
        case meanTokens = "mean_tokens"
        case largeShare = "large_share"
        case tokensPerSecond = "tokens_per_second"
        case sharedWithLarge = "shared_with_large"
        case speedup
        case relativeCost = "relative_cost"
        case meanHandovers = "mean_handovers"
        case acceptance, truncated, unanswered
        case sameAsLarge = "same_as_large", draftBound = "draft_bound"
    }
}

/// The ceiling on a drafting mode's speed-up, from the eval's own counts (Leviathan et al. 2023's
/// formula with measured numbers): if verifying a round's drafts cost no more than one plain step
/// of the large model, the mode would take R plain steps (R rounds, each ending with a token of
/// the large model's own) plus the small model's decoding, against G steps of large alone.
public struct DraftBound: Codable, Sendable, Equatable {
    /// The small model's decode seconds per drafted token over large's decode seconds per token.
    public var costRatio: Double
    /// Tokens the large model is credited with per verification round (accepted drafts + 1).
    public var tokensPerRound: Double
    public var bound: Double

    enum CodingKeys: String, CodingKey {
        case costRatio = "cost_ratio", tokensPerRound = "tokens_per_round", bound
    }
}

/// The summary of a results directory (`summary.json`).
public struct Summary: Codable, Sendable {
    public var task: String?
    /// Distinct problems in the results.
    public var problems: Int
    /// The mode speed-up and cost are relative to.
    public var baseline: String
    /// Parameter counts by role used for the cost column.
    public var parameters: [String: Double]
    public var modes: [ModeSummary]
    public var config: EvalConfig?

    public func mode(_ name: String) -> ModeSummary? { modes.first { $0.mode == name } }
}

public enum Report {
    /// The mode that speed-up, cost and the large-model share line refer to.
    public static let baseline = "large"

    // MARK: Numbers

    /// Summarises records per mode. `modes` fixes the order (default: `large`, `small`, then the
    /// others as they first appear); `parameters` are parameter counts by role (default: from the
    /// config's models).
    public static func summarize(_ records: [EvalRecord], modes: [String]? = nil, parameters: [String: Double]? = nil,
                                 config: EvalConfig? = nil) -> Summary {
        let params = parameters ?? config?.parameters ?? [:]
        var byMode: [String: [EvalRecord]] = [:]
        var appearance: [String] = []
        for record in records {
            if byMode[record.mode] == nil { appearance.append(record.mode) }
            byMode[record.mode, default: []].append(record)
        }
        let order = modeOrder(modes: modes, present: appearance)
        let baselineByID = Dictionary((byMode[baseline] ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })

        var summaries: [ModeSummary] = []
        for mode in order {
            let rs = byMode[mode] ?? []
            guard !rs.isEmpty else { continue }
            let n = rs.count
            let correct = rs.filter(\.correct).count
            let (low, high) = Stats.wilson(successes: correct, n: n)
            let seconds = rs.map(\.seconds)
            let total = seconds.reduce(0, +)
            var tokens: [String: Int] = [:]
            for r in rs { for (role, count) in r.tokens { tokens[role, default: 0] += count } }
            let allTokens = tokens.values.reduce(0, +)

            // Speed-up and cost on the problems both this mode and large ran.
            let shared = rs.filter { baselineByID[$0.id] != nil }
            var speedup: Double?
            var cost: Double?
            if !shared.isEmpty {
                let modeSeconds = shared.map(\.seconds).reduce(0, +)
                let largeSeconds = shared.map { baselineByID[$0.id]!.seconds }.reduce(0, +)
                if modeSeconds > 0 { speedup = largeSeconds / modeSeconds }
                if let modeCost = weightedTokens(shared, params),
                   let largeCost = weightedTokens(shared.map { baselineByID[$0.id]! }, params), largeCost > 0 {
                    cost = modeCost / largeCost
                }
            }
            // Drafting modes: the ceiling on their speed-up if verification were free.
            var bound: DraftBound?
            let sharedDrafted = shared.map(\.drafted).reduce(0, +)
            if sharedDrafted > 0 {
                let largeDecode = shared.map { baselineByID[$0.id]!.decodeSeconds[RoleKey.large] ?? 0 }.reduce(0, +)
                let largeTokens = shared.map { max(baselineByID[$0.id]!.generatedTokens - 1, 0) }.reduce(0, +)
                let smallDecode = shared.map { $0.decodeSeconds[RoleKey.small] ?? 0 }.reduce(0, +)
                let rounds = shared.map { ($0.tokens[RoleKey.large] ?? 0) - $0.accepted }.reduce(0, +)
                if largeDecode > 0, largeTokens > 0, smallDecode > 0, rounds > 0 {
                    let step = largeDecode / Double(largeTokens)
                    let generated = Double(shared.map(\.generatedTokens).reduce(0, +))
                    bound = DraftBound(costRatio: smallDecode / Double(sharedDrafted) / step,
                                       tokensPerRound: Double(shared.map { $0.tokens[RoleKey.large] ?? 0 }.reduce(0, +)) / Double(rounds),
                                       bound: generated * step / (smallDecode + Double(rounds) * step))
                }
            }
            let handovers = rs.compactMap(\.handovers)
            let drafted = rs.compactMap(\.drafted).reduce(0, +)
            let accepted = rs.compactMap(\.accepted).reduce(0, +)
            summaries.append(ModeSummary(
                mode: mode, n: n, correct: correct, accuracy: Double(correct) / Double(n), ciLow: low, ciHigh: high,
                meanSeconds: total / Double(n), medianSeconds: Stats.quantile(seconds.sorted(), 0.5), totalSeconds: total,
                tokens: tokens, meanTokens: Double(allTokens) / Double(n),
                largeShare: allTokens > 0 ? Double(tokens[RoleKey.large] ?? 0) / Double(allTokens) : nil,
                tokensPerSecond: total > 0 ? Double(allTokens) / total : nil,
                sharedWithLarge: shared.count, speedup: speedup, relativeCost: cost,
                meanHandovers: handovers.isEmpty ? nil : Double(handovers.reduce(0, +)) / Double(handovers.count),
                acceptance: drafted > 0 ? Double(accepted) / Double(drafted) : nil,
                truncated: rs.filter { $0.finishReason == "length" }.count,
                unanswered: rs.filter { $0.extracted == nil }.count,
                sameAsLarge: shared.isEmpty || mode == baseline ? nil : shared.filter { $0.output == baselineByID[$0.id]!.output }.count,
                draftBound: bound))
        }
        return Summary(task: config?.task, problems: Set(records.map(\.id)).count, baseline: baseline,
                       parameters: params, modes: summaries, config: config)
    }

    /// Σ over records and roles of parameters(role) · tokens(role); nil when a role with tokens
    /// has no parameter count.
    static func weightedTokens(_ records: [EvalRecord], _ params: [String: Double]) -> Double? {
        var total = 0.0
        for r in records {
            for (role, count) in r.tokens where count > 0 {
                guard let p = params[role] else { return nil }
                total += p * Double(count)
            }
        }
        return total
    }

    static func modeOrder(modes: [String]?, present: [String]) -> [String] {
        if let modes {
            return modes + present.filter { !modes.contains($0) }
        }
        let first = RoleKey.order.filter(present.contains)
        return first + present.filter { !first.contains($0) }
    }

    // MARK: Files

    /// Writes `summary.md`, `summary.json` and `report.html` into `directory` from its
    /// `results.jsonl` and `config.json`. Returns the summary.
    @discardableResult
    public static func write(directory: String, modes: [String]? = nil, parameters: [String: Double]? = nil) throws -> Summary {
        let records = try ResultStore.readRecords(directory: directory)
        let config = try? ResultStore.readConfig(directory: directory)
        let summary = summarize(records, modes: modes, parameters: parameters, config: config)
        try write(summary, records: records, to: directory)
        return summary
    }

    /// Writes the three report files of `summary` into `directory`.
    public static func write(_ summary: Summary, records: [EvalRecord], to directory: String) throws {
        try writeFile(Data(markdown(summary).utf8), directory + "/summary.md")
        try writeFile(json(summary), directory + "/summary.json")
        try writeFile(Data(html(summary, records: records).utf8), directory + "/report.html")
    }

    private static func writeFile(_ data: Data, _ path: String) throws {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw EvalError.io("cannot write \(path): \(error.localizedDescription)")
        }
    }

    public static func json(_ summary: Summary) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var data = try encoder.encode(summary)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    // MARK: Markdown

    /// The table printed at the end of a run and written to `summary.md`.
    public static func table(_ summary: Summary) -> String {
        var lines = [
            "| mode | n | accuracy (95% CI) | mean latency | speed-up vs large | large-model share | cost vs large |",
            "|:-----|--:|:------------------|-------------:|------------------:|------------------:|--------------:|",
        ]
        for m in summary.modes {
            lines.append("| \(m.mode) | \(m.n) | \(percent(m.accuracy)) (\(percent(m.ciLow, sign: false))–\(percent(m.ciHigh, sign: false))) | "
                + "\(seconds(m.meanSeconds)) | \(m.speedup.map(times) ?? "—") | \(m.largeShare.map { percent($0) } ?? "—") | "
                + "\(m.relativeCost.map { String(format: "%.2f", $0) } ?? "—") |")
        }
        return lines.joined(separator: "\n")
    }

    /// One line per drafting mode: its speed-up against the ceiling if verification were free.
    public static func draftBounds(_ summary: Summary) -> [String] {
        summary.modes.compactMap { m in
            guard let b = m.draftBound else { return nil }
            let measured = m.speedup.map { ": measured \(times($0)), \(percent($0 / b.bound)) of it" } ?? ""
            let same = m.sameAsLarge.map { "; \($0) of \(m.sharedWithLarge) outputs identical to large's" } ?? ""
            return "`\(m.mode)`: the small model costs \(String(format: "%.3f", b.costRatio)) of the large per drafted token, "
                + "a verification round gives \(String(format: "%.2f", b.tokensPerRound)) tokens (acceptance \(m.acceptance.map { percent($0) } ?? "—")); "
                + "if verifying cost one plain step, at most \(times(b.bound))\(measured)\(same)."
        }
    }

    public static func markdown(_ summary: Summary) -> String {
        var out = "# relay eval: \(summary.task.map(taskTitle) ?? "results")\n\n"
        out += describe(summary).map { "- \($0)" }.joined(separator: "\n") + "\n\n"
        out += table(summary) + "\n\n"
        var notes: [String] = []
        notes.append("Accuracy: share of problems whose extracted final answer equals the reference; the interval is the 95% Wilson score interval.")
        notes.append("Speed-up vs large: total seconds of `large` over total seconds of the mode, on the problems both ran (wall time per problem, prefill included, model loading excluded).")
        notes.append("Large-model share: generated tokens written by the large model over all generated tokens.")
        if summary.parameters.isEmpty {
            notes.append("Cost vs large: needs parameter counts of the models (not given).")
        } else {
            let ps = RoleKey.sorted(summary.parameters.keys).map { "\($0) \(compactCount(summary.parameters[$0]!))" }
            notes.append("Cost vs large: parameter-weighted generated tokens (Σ parameters × tokens per model; \(ps.joined(separator: ", "))) relative to `large`, on the same problems.")
        }
        notes += draftBounds(summary)
        let extras = summary.modes.filter { $0.truncated > 0 || $0.unanswered > 0 }
        for m in extras {
            notes.append("`\(m.mode)`: \(m.truncated) output\(m.truncated == 1 ? "" : "s") cut at the token limit, \(m.unanswered) without an extractable answer.")
        }
        out += notes.map { "- \($0)" }.joined(separator: "\n") + "\n"
        return out
    }

    /// Lines describing the run: problems, models, settings.
    static func describe(_ summary: Summary) -> [String] {
        var lines = ["\(summary.problems) problem\(summary.problems == 1 ? "" : "s")" + (summary.config.map { "; selection: \($0.selection.summary)" } ?? "")]
        if let config = summary.config {
            for role in RoleKey.sorted(config.models.keys) {
                let m = config.models[role]!
                var text = "\(role): \((m.path as NSString).lastPathComponent) (sha256 \(m.sha256.prefix(12))…"
                if let p = m.parameters { text += ", \(compactCount(p)) parameters" }
                lines.append(text + ")")
            }
            lines.append("decoding: \(config.sampling.summary), at most \(config.maxTokens) new tokens")
        }
        return lines
    }

    static func taskTitle(_ task: String) -> String {
        switch task {
        case "gsm8k": return "GSM8K"
        case "math500": return "MATH-500"
        case "math-train": return "MATH (train split)"
        default: return (task as NSString).lastPathComponent
        }
    }

    // MARK: Formatting

    static func percent(_ x: Double, sign: Bool = true) -> String {
        String(format: "%.1f", 100 * x) + (sign ? "%" : "")
    }

    static func seconds(_ s: Double) -> String {
        s < 10 ? String(format: "%.2f s", s) : String(format: "%.1f s", s)
    }

    static func times(_ x: Double) -> String { String(format: "%.2f×", x) }

    /// `1.5B`, `494M`, `135M`.
    static func compactCount(_ x: Double) -> String {
        if x >= 1e9 { return String(format: x >= 1e10 ? "%.0fB" : "%.1fB", x / 1e9) }
        if x >= 1e6 { return String(format: "%.0fM", x / 1e6) }
        if x >= 1e3 { return String(format: "%.0fK", x / 1e3) }
        return String(format: "%.0f", x)
    }

    // MARK: HTML

    static let palette = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563"]

    static func colors(_ summary: Summary) -> [String: String] {
        var out: [String: String] = [:]
        var next = 2
        for m in summary.modes {
            if m.mode == RoleKey.large { out[m.mode] = palette[0] } else if m.mode == RoleKey.small { out[m.mode] = palette[1] } else {
                out[m.mode] = palette[next % palette.count]
                next += 1
            }
        }
        return out
    }

    /// One self-contained page: the table, three SVG charts and the problems the modes disagree on.
    public static func html(_ summary: Summary, records: [EvalRecord]) -> String {
        let color = colors(summary)
        let title = "relay eval · " + (summary.task.map(taskTitle) ?? "results")
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(title))</title>
        <style>\(css)</style>
        </head><body><main>
        <header>
          <div class="eyebrow">relay eval</div>
          <h1>\(esc(summary.task.map(taskTitle) ?? "Results"))</h1>
          <ul class="meta">\(describe(summary).map { "<li>\(esc($0))</li>" }.joined())</ul>
        </header>

        """
        // Cards.
        h += "<section class=\"cards\">"
        for m in summary.modes {
            let c = color[m.mode] ?? palette[0]
            h += """
            <div class="card" style="--c:\(c)">
              <div class="card-mode" title="\(esc(m.mode))"><span class="dot"></span><span class="card-name">\(esc(m.mode))</span></div>
              <div class="card-big">\(percent(m.accuracy))</div>
              <div class="card-sub">CI \(percent(m.ciLow, sign: false))–\(percent(m.ciHigh)) · n \(m.n)</div>
              <div class="card-row"><span>speed-up</span><b>\(m.speedup.map(times) ?? "—")</b></div>
              <div class="card-row"><span>large share</span><b>\(m.largeShare.map { percent($0) } ?? "—")</b></div>
              <div class="card-row"><span>latency</span><b>\(seconds(m.meanSeconds))</b></div>
            </div>
            """
        }
        h += "</section>\n"

        // Table.
        h += "<section class=\"panel\"><h2>Summary</h2><table class=\"summary\"><thead><tr>"
        h += "<th>mode</th><th class=\"num\">n</th><th>accuracy (95% CI)</th><th class=\"num\">mean latency</th><th class=\"num\">median</th>"
        h += "<th class=\"num\">speed-up vs large</th><th class=\"num\">large-model share</th><th class=\"num\">cost vs large</th><th class=\"num\">tokens / s</th><th class=\"num\">mean tokens</th></tr></thead><tbody>"
        for m in summary.modes {
            let c = color[m.mode] ?? palette[0]
            h += "<tr><td><span class=\"dot\" style=\"--c:\(c)\"></span>\(esc(m.mode))</td><td class=\"num\">\(m.n)</td>"
            h += "<td><div class=\"acc\"><span class=\"acc-num\">\(percent(m.accuracy))</span>"
            h += "<span class=\"acc-bar\"><span class=\"acc-ci\" style=\"left:\(f1(100 * m.ciLow))%;width:\(f1(100 * (m.ciHigh - m.ciLow)))%;--c:\(c)\"></span>"
            h += "<span class=\"acc-pt\" style=\"left:\(f1(100 * m.accuracy))%;--c:\(c)\"></span></span>"
            h += "<span class=\"acc-ci-text\">\(percent(m.ciLow, sign: false))–\(percent(m.ciHigh, sign: false))</span></div></td>"
            h += "<td class=\"num\">\(seconds(m.meanSeconds))</td><td class=\"num\">\(seconds(m.medianSeconds))</td>"
            h += "<td class=\"num\">\(m.speedup.map(times) ?? "—")</td><td class=\"num\">\(m.largeShare.map { percent($0) } ?? "—")</td>"
            h += "<td class=\"num\">\(m.relativeCost.map { String(format: "%.2f", $0) } ?? "—")</td>"
            h += "<td class=\"num\">\(m.tokensPerSecond.map { String(format: "%.1f", $0) } ?? "—")</td>"
            h += "<td class=\"num\">\(String(format: "%.0f", m.meanTokens))</td></tr>"
        }
        h += "</tbody></table>"
        h += "<p class=\"note\">Speed-up and cost are measured on the problems a mode shares with <code>large</code>: total seconds of <code>large</code> over total seconds of the mode, and parameter-weighted generated tokens relative to <code>large</code>. Latency is wall time per problem, prefill included, model loading excluded.</p>"
        h += "</section>\n"

        // Charts.
        h += "<section class=\"grid\">"
        h += "<div class=\"panel\"><h2>Accuracy vs speed-up</h2>\(speedupChart(summary, color))<p class=\"note\">Higher and further right is better. Bars: 95% CI.</p></div>"
        h += "<div class=\"panel\"><h2>Accuracy vs large-model share</h2>\(shareChart(summary, color))<p class=\"note\">Dashed: the straight line from <code>small</code> to <code>large</code>, roughly what routing a random share of the work to the large model would give.</p></div>"
        h += "</section>\n"
        h += "<section class=\"panel\"><h2>Latency per problem</h2>\(latencyChart(summary, records, color))<p class=\"note\">Box: quartiles and median; whiskers: 1.5 × IQR; dots: problems; ◆: mean.</p></section>\n"

        // Problems where the modes disagree.
        h += disagreements(summary, records, color)

        if let config = summary.config, let data = try? ResultStore.encodeConfig(config) {
            h += "<section class=\"panel\"><details><summary>Configuration (config.json)</summary><pre>\(esc(String(decoding: data, as: UTF8.self)))</pre></details></section>\n"
        }
        h += "<footer>Generated by <code>relay eval</code> from results.jsonl.</footer>\n</main></body></html>\n"
        return h
    }

    static func disagreements(_ summary: Summary, _ records: [EvalRecord], _ color: [String: String]) -> String {
        let modes = summary.modes.map(\.mode)
        guard modes.count > 1 else { return "" }
        var byID: [String: [String: EvalRecord]] = [:]
        var ids: [String] = []
        for r in records {
            if byID[r.id] == nil { ids.append(r.id) }
            byID[r.id, default: [:]][r.mode] = r
        }
        let split = ids.filter { id in
            let outcomes = Set(modes.compactMap { byID[id]?[$0]?.correct })
            return outcomes.count > 1
        }
        let limit = 300
        var h = "<section class=\"panel\"><details><summary>Problems where the modes disagree (\(split.count) of \(ids.count))</summary>"
        h += "<table class=\"problems\"><thead><tr><th>id</th><th>reference</th>"
        for m in modes { h += "<th><span class=\"dot\" style=\"--c:\(color[m] ?? palette[0])\"></span>\(esc(m))</th>" }
        h += "</tr></thead><tbody>"
        for id in split.prefix(limit) {
            let row = byID[id]!
            let reference = row.values.first?.reference ?? ""
            h += "<tr><td class=\"mono\">\(esc(id))</td><td class=\"mono\">\(esc(reference))</td>"
            for m in modes {
                if let r = row[m] {
                    h += "<td class=\"\(r.correct ? "ok" : "bad")\"><span class=\"mark\">\(r.correct ? "✓" : "✗")</span> <span class=\"mono\">\(esc(shortAnswer(r.extracted)))</span></td>"
                } else {
                    h += "<td class=\"none\">—</td>"
                }
            }
            h += "</tr>"
        }
        h += "</tbody></table>"
        if split.count > limit { h += "<p class=\"note\">First \(limit) shown.</p>" }
        h += "</details></section>\n"
        return h
    }

    static func shortAnswer(_ s: String?) -> String {
        guard let s else { return "no answer" }
        return s.count > 40 ? String(s.prefix(37)) + "…" : s
    }

    // MARK: Charts

    struct Frame {
        let width = 520.0, height = 340.0
        let left = 58.0, right = 24.0, top = 18.0, bottom = 50.0
        var plotWidth: Double { width - left - right }
        var plotHeight: Double { height - top - bottom }
    }

    /// Accuracy axis from the intervals: round ticks, the axis from the first to the last.
    static func accuracyAxis(_ modes: [ModeSummary]) -> (domain: (Double, Double), ticks: [Double]) {
        var a = max(0, modes.map(\.ciLow).min() ?? 0)
        var b = min(1, modes.map(\.ciHigh).max() ?? 1)
        if b - a < 0.2 { a = max(0, a - 0.1); b = min(1, b + 0.1) }
        let ticks = niceTicks(a, b, count: 5).filter { $0 >= -1e-9 && $0 <= 1 + 1e-9 }
        return ((ticks.first ?? 0, ticks.last ?? 1), ticks)
    }

    static func svgOpen(_ frame: Frame, label: String) -> String {
        "<svg class=\"chart\" viewBox=\"0 0 \(f1(frame.width)) \(f1(frame.height))\" role=\"img\" aria-label=\"\(esc(label))\" xmlns=\"http://www.w3.org/2000/svg\">"
    }

    /// Grid, ticks and axis titles.
    static func axes(_ frame: Frame, x: (Double, Double), xTicks: [Double], xFormat: (Double) -> String, xTitle: String,
                     y: (Double, Double), yTicks: [Double], yFormat: (Double) -> String, yTitle: String) -> String {
        var s = ""
        let px = { (v: Double) in frame.left + (v - x.0) / (x.1 - x.0) * frame.plotWidth }
        let py = { (v: Double) in frame.top + (1 - (v - y.0) / (y.1 - y.0)) * frame.plotHeight }
        for t in yTicks {
            s += "<line class=\"grid\" x1=\"\(f1(frame.left))\" x2=\"\(f1(frame.left + frame.plotWidth))\" y1=\"\(f1(py(t)))\" y2=\"\(f1(py(t)))\"/>"
            s += "<text class=\"tick\" x=\"\(f1(frame.left - 8))\" y=\"\(f1(py(t) + 4))\" text-anchor=\"end\">\(esc(yFormat(t)))</text>"
        }
        for t in xTicks {
            s += "<line class=\"grid\" y1=\"\(f1(frame.top))\" y2=\"\(f1(frame.top + frame.plotHeight))\" x1=\"\(f1(px(t)))\" x2=\"\(f1(px(t)))\"/>"
            s += "<text class=\"tick\" y=\"\(f1(frame.top + frame.plotHeight + 18))\" x=\"\(f1(px(t)))\" text-anchor=\"middle\">\(esc(xFormat(t)))</text>"
        }
        s += "<line class=\"axis\" x1=\"\(f1(frame.left))\" x2=\"\(f1(frame.left + frame.plotWidth))\" y1=\"\(f1(frame.top + frame.plotHeight))\" y2=\"\(f1(frame.top + frame.plotHeight))\"/>"
        s += "<text class=\"axis-title\" x=\"\(f1(frame.left + frame.plotWidth / 2))\" y=\"\(f1(frame.height - 8))\" text-anchor=\"middle\">\(esc(xTitle))</text>"
        s += "<text class=\"axis-title\" transform=\"translate(14 \(f1(frame.top + frame.plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yTitle))</text>"
        return s
    }

    /// Points with their confidence intervals and labels. Each label goes to the first place
    /// around its point (right, left, above, below, …) that overlaps no point, interval or label.
    static func points(_ items: [(mode: String, x: Double, acc: Double, low: Double, high: Double)], frame: Frame,
                       px: (Double) -> Double, py: (Double) -> Double, color: [String: String]) -> String {
        struct Box {
            var x0, y0, x1, y1: Double
            func hits(_ o: Box) -> Bool { x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1 }
        }
        var obstacles: [Box] = []
        for item in items {
            let x = px(item.x)
            obstacles.append(Box(x0: x - 8, y0: py(item.acc) - 8, x1: x + 8, y1: py(item.acc) + 8))
            obstacles.append(Box(x0: x - 6, y0: py(item.high) - 2, x1: x + 6, y1: py(item.low) + 2))
        }
        let bounds = Box(x0: frame.left, y0: frame.top - 4, x1: frame.left + frame.plotWidth + frame.right - 2, y1: frame.top + frame.plotHeight)
        var s = ""
        for item in items {
            let c = color[item.mode] ?? palette[0]
            let x = px(item.x), y = py(item.acc)
            s += "<g class=\"pt\"><title>\(esc(item.mode)): \(percent(item.acc)) (\(percent(item.low, sign: false))–\(percent(item.high)))</title>"
            s += "<line x1=\"\(f1(x))\" x2=\"\(f1(x))\" y1=\"\(f1(py(item.low)))\" y2=\"\(f1(py(item.high)))\" stroke=\"\(c)\" stroke-width=\"2\" stroke-opacity=\"0.55\"/>"
            for v in [item.low, item.high] {
                s += "<line x1=\"\(f1(x - 5))\" x2=\"\(f1(x + 5))\" y1=\"\(f1(py(v)))\" y2=\"\(f1(py(v)))\" stroke=\"\(c)\" stroke-width=\"2\" stroke-opacity=\"0.55\"/>"
            }
            s += "<circle cx=\"\(f1(x))\" cy=\"\(f1(y))\" r=\"7\" fill=\"\(c)\" stroke=\"#fff\" stroke-width=\"2\"/></g>"
        }
        var labels: [Box] = []
        for item in items {
            let c = color[item.mode] ?? palette[0]
            let x = px(item.x), y = py(item.acc)
            let text = "\(item.mode) \(percent(item.acc))"
            let w = Double(text.count) * 7.4, h = 15.0
            // (left edge, baseline) candidates.
            var candidates: [(Double, Double)] = [
                (x + 12, y + 4), (x - 12 - w, y + 4),
                (x + 8, y - 12), (x - 8 - w, y - 12), (x + 8, y + 22), (x - 8 - w, y + 22),
                (x - w / 2, y - 16), (x - w / 2, y + 26),
            ]
            for k in 1...6 {
                let d = Double(k) * 16
                candidates += [(x + 12, y + 4 + d), (x + 12, y + 4 - d), (x - 12 - w, y + 4 + d), (x - 12 - w, y + 4 - d)]
            }
            func box(_ p: (Double, Double)) -> Box { Box(x0: p.0 - 2, y0: p.1 - 12, x1: p.0 + w + 2, y1: p.1 - 12 + h) }
            let inside = { (b: Box) in b.x0 >= bounds.x0 && b.x1 <= bounds.x1 && b.y0 >= bounds.y0 && b.y1 <= bounds.y1 }
            let choice = candidates.first { p in
                let b = box(p)
                return inside(b) && !obstacles.contains { $0.hits(b) } && !labels.contains { $0.hits(b) }
            } ?? candidates.first { p in inside(box(p)) && !labels.contains { $0.hits(box(p)) } } ?? candidates[0]
            labels.append(box(choice))
            s += "<text class=\"label\" x=\"\(f1(choice.0))\" y=\"\(f1(choice.1))\" fill=\"\(c)\">\(esc(text))</text>"
        }
        return s
    }

    static func placeholder(_ frame: Frame, _ text: String) -> String {
        svgOpen(frame, label: text) + "<rect x=\"1\" y=\"1\" width=\"\(f1(frame.width - 2))\" height=\"\(f1(frame.height - 2))\" rx=\"10\" class=\"empty\"/>"
            + "<text class=\"tick\" x=\"\(f1(frame.width / 2))\" y=\"\(f1(frame.height / 2))\" text-anchor=\"middle\">\(esc(text))</text></svg>"
    }

    static func speedupChart(_ summary: Summary, _ color: [String: String]) -> String {
        let frame = Frame()
        let modes = summary.modes.filter { $0.speedup != nil }
        guard !modes.isEmpty else { return placeholder(frame, "needs results of mode large") }
        let maxX = max(1.5, (modes.compactMap(\.speedup).max() ?? 1) * 1.15)
        let xTicks = niceTicks(0, maxX, count: 6)
        let x = (0.0, xTicks.last!)
        let (y, yTicks) = accuracyAxis(modes)
        let px = { (v: Double) in frame.left + (v - x.0) / (x.1 - x.0) * frame.plotWidth }
        let py = { (v: Double) in frame.top + (1 - (v - y.0) / (y.1 - y.0)) * frame.plotHeight }
        var s = svgOpen(frame, label: "accuracy vs speed-up")
        s += axes(frame, x: x, xTicks: xTicks, xFormat: { trim($0) + "×" }, xTitle: "speed-up vs large (×)",
                  y: y, yTicks: yTicks, yFormat: { trim(100 * $0) + "%" }, yTitle: "accuracy")
        s += "<line class=\"ref\" x1=\"\(f1(px(1)))\" x2=\"\(f1(px(1)))\" y1=\"\(f1(frame.top))\" y2=\"\(f1(frame.top + frame.plotHeight))\"/>"
        s += points(modes.map { ($0.mode, $0.speedup!, $0.accuracy, $0.ciLow, $0.ciHigh) }, frame: frame, px: px, py: py, color: color)
        return s + "</svg>"
    }

    static func shareChart(_ summary: Summary, _ color: [String: String]) -> String {
        let frame = Frame()
        let modes = summary.modes.filter { $0.largeShare != nil }
        guard !modes.isEmpty else { return placeholder(frame, "no token counts") }
        let x = (0.0, 1.0)
        let xTicks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
        let (y, yTicks) = accuracyAxis(modes)
        let px = { (v: Double) in frame.left + (v - x.0) / (x.1 - x.0) * frame.plotWidth }
        let py = { (v: Double) in frame.top + (1 - (v - y.0) / (y.1 - y.0)) * frame.plotHeight }
        var s = svgOpen(frame, label: "accuracy vs large-model share")
        s += axes(frame, x: x, xTicks: xTicks, xFormat: { trim(100 * $0) + "%" }, xTitle: "share of tokens written by the large model",
                  y: y, yTicks: yTicks, yFormat: { trim(100 * $0) + "%" }, yTitle: "accuracy")
        if let small = summary.mode(RoleKey.small), let large = summary.mode(RoleKey.large),
           let s0 = small.largeShare, let s1 = large.largeShare {
            s += "<line class=\"ref\" x1=\"\(f1(px(s0)))\" y1=\"\(f1(py(small.accuracy)))\" x2=\"\(f1(px(s1)))\" y2=\"\(f1(py(large.accuracy)))\"/>"
        }
        s += points(modes.map { ($0.mode, $0.largeShare!, $0.accuracy, $0.ciLow, $0.ciHigh) }, frame: frame, px: px, py: py, color: color)
        return s + "</svg>"
    }

    static func latencyChart(_ summary: Summary, _ records: [EvalRecord], _ color: [String: String]) -> String {
        let modes = summary.modes.map(\.mode)
        let longest = Double(modes.map(\.count).max() ?? 5)
        let width = 1060.0, left = min(290, max(130, longest * 8.6 + 30)), right = 30.0, top = 14.0, row = 58.0, bottom = 50.0
        let height = top + row * Double(max(1, modes.count)) + bottom
        var byMode: [String: [Double]] = [:]
        for r in records { byMode[r.mode, default: []].append(r.seconds) }
        let maxSeconds = max(1e-3, byMode.values.flatMap { $0 }.max() ?? 1)
        let xTicks = niceTicks(0, maxSeconds, count: 8)
        let x1 = xTicks.last!
        let plotWidth = width - left - right
        let px = { (v: Double) in left + v / x1 * plotWidth }
        var s = "<svg class=\"chart wide\" viewBox=\"0 0 \(f1(width)) \(f1(height))\" role=\"img\" aria-label=\"latency per problem\" xmlns=\"http://www.w3.org/2000/svg\">"
        let plotBottom = top + row * Double(modes.count)
        for t in xTicks {
            s += "<line class=\"grid\" x1=\"\(f1(px(t)))\" x2=\"\(f1(px(t)))\" y1=\"\(f1(top))\" y2=\"\(f1(plotBottom))\"/>"
            s += "<text class=\"tick\" x=\"\(f1(px(t)))\" y=\"\(f1(plotBottom + 18))\" text-anchor=\"middle\">\(trim(t)) s</text>"
        }
        s += "<text class=\"axis-title\" x=\"\(f1(left + plotWidth / 2))\" y=\"\(f1(height - 8))\" text-anchor=\"middle\">seconds per problem (wall time)</text>"
        for (i, mode) in modes.enumerated() {
            let values = (byMode[mode] ?? []).sorted()
            guard !values.isEmpty else { continue }
            let c = color[mode] ?? palette[0]
            let cy = top + row * (Double(i) + 0.5)
            if i % 2 == 0 {
                s += "<rect x=\"0\" y=\"\(f1(cy - row / 2))\" width=\"\(f1(width))\" height=\"\(f1(row))\" class=\"band\"/>"
            }
            let q1 = Stats.quantile(values, 0.25), q2 = Stats.quantile(values, 0.5), q3 = Stats.quantile(values, 0.75)
            let iqr = q3 - q1
            let lowWhisker = values.first { $0 >= q1 - 1.5 * iqr } ?? values[0]
            let highWhisker = values.last { $0 <= q3 + 1.5 * iqr } ?? values[values.count - 1]
            let mean = Stats.mean(values)
            s += "<text class=\"row-label\" x=\"\(f1(left - 14))\" y=\"\(f1(cy - 2))\" text-anchor=\"end\" fill=\"\(c)\">\(esc(mode))</text>"
            s += "<text class=\"tick\" x=\"\(f1(left - 14))\" y=\"\(f1(cy + 13))\" text-anchor=\"end\">median \(trim(q2, digits: 2)) s</text>"
            // Dots, jittered deterministically.
            var rng = SplitMix64(seed: UInt64(i) &+ 0x5EED)
            let step = max(1, values.count / 1500)
            for v in stride(from: 0, to: values.count, by: step).map({ values[$0] }) {
                let jitter = (Double(rng.next() % 1000) / 1000 - 0.5) * row * 0.55
                s += "<circle cx=\"\(f1(px(v)))\" cy=\"\(f1(cy + jitter))\" r=\"2.4\" fill=\"\(c)\" fill-opacity=\"0.28\"/>"
            }
            let boxHeight = row * 0.42
            s += "<line x1=\"\(f1(px(lowWhisker)))\" x2=\"\(f1(px(q1)))\" y1=\"\(f1(cy))\" y2=\"\(f1(cy))\" stroke=\"\(c)\" stroke-width=\"1.5\"/>"
            s += "<line x1=\"\(f1(px(q3)))\" x2=\"\(f1(px(highWhisker)))\" y1=\"\(f1(cy))\" y2=\"\(f1(cy))\" stroke=\"\(c)\" stroke-width=\"1.5\"/>"
            for w in [lowWhisker, highWhisker] {
                s += "<line x1=\"\(f1(px(w)))\" x2=\"\(f1(px(w)))\" y1=\"\(f1(cy - boxHeight / 3))\" y2=\"\(f1(cy + boxHeight / 3))\" stroke=\"\(c)\" stroke-width=\"1.5\"/>"
            }
            s += "<rect x=\"\(f1(px(q1)))\" y=\"\(f1(cy - boxHeight / 2))\" width=\"\(f1(max(1, px(q3) - px(q1))))\" height=\"\(f1(boxHeight))\" rx=\"3\" fill=\"\(c)\" fill-opacity=\"0.18\" stroke=\"\(c)\" stroke-width=\"1.5\"><title>\(esc(mode)): Q1 \(trim(q1, digits: 2)) s, median \(trim(q2, digits: 2)) s, Q3 \(trim(q3, digits: 2)) s</title></rect>"
            s += "<line x1=\"\(f1(px(q2)))\" x2=\"\(f1(px(q2)))\" y1=\"\(f1(cy - boxHeight / 2))\" y2=\"\(f1(cy + boxHeight / 2))\" stroke=\"\(c)\" stroke-width=\"3\"/>"
            let d = 5.0
            s += "<path d=\"M\(f1(px(mean))) \(f1(cy - d))L\(f1(px(mean) + d)) \(f1(cy))L\(f1(px(mean))) \(f1(cy + d))L\(f1(px(mean) - d)) \(f1(cy))Z\" fill=\"#fff\" stroke=\"\(c)\" stroke-width=\"1.5\"><title>mean \(trim(mean, digits: 2)) s</title></path>"
        }
        s += "<line class=\"axis\" x1=\"\(f1(left))\" x2=\"\(f1(left + plotWidth))\" y1=\"\(f1(plotBottom))\" y2=\"\(f1(plotBottom))\"/>"
        return s + "</svg>"
    }

    /// Round tick values covering [a, b].
    static func niceTicks(_ a: Double, _ b: Double, count: Int) -> [Double] {
        guard b > a else { return [a, a + 1] }
        let raw = (b - a) / Double(max(1, count))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let start = (a / step).rounded(.down) * step
        var ticks: [Double] = []
        var t = start
        while t < b + step * 0.999 {
            ticks.append((t / step).rounded() * step)
            t += step
        }
        return ticks
    }

    static func f1(_ x: Double) -> String {
        let s = String(format: "%.1f", x)
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }

    /// A tick label without needless decimals.
    static func trim(_ x: Double, digits: Int = 2) -> String {
        var s = String(format: "%.\(digits)f", x)
        while s.contains("."), s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func esc(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }

    static let css = """
    :root{--bg:#f5f6fa;--panel:#fff;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--soft:#f3f4f6}
    *{box-sizing:border-box}
    body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
    main{max-width:1120px;margin:0 auto;padding:36px 28px 48px}
    header{margin-bottom:22px}
    .eyebrow{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:var(--muted);font-weight:600}
    h1{font-size:30px;margin:4px 0 8px;letter-spacing:-.01em}
    h2{font-size:16px;margin:0 0 12px;font-weight:650}
    .meta{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px 10px;color:var(--muted);font-size:13px}
    .meta li{background:var(--panel);border:1px solid var(--line);border-radius:999px;padding:2px 10px}
    .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:14px;margin-bottom:18px}
    .card{background:var(--panel);border-radius:14px;padding:16px 18px;box-shadow:0 1px 2px rgba(0,0,0,.05),0 4px 14px rgba(0,0,0,.04);border-top:4px solid var(--c)}
    .card-mode{font-weight:650;font-size:14px;display:flex;align-items:center;gap:2px;min-width:0}
    .card-name{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
    .card-big{font-size:34px;font-weight:700;letter-spacing:-.02em;color:var(--c);margin:2px 0 0}
    .card-sub{font-size:12px;color:var(--muted);margin-bottom:10px}
    .card-row{display:flex;justify-content:space-between;font-size:13px;border-top:1px solid var(--soft);padding:4px 0}
    .card-row span{color:var(--muted)}
    .dot{display:inline-block;width:10px;height:10px;border-radius:50%;background:var(--c);margin-right:6px;vertical-align:baseline}
    .panel{background:var(--panel);border-radius:14px;padding:18px 20px;box-shadow:0 1px 2px rgba(0,0,0,.05),0 4px 14px rgba(0,0,0,.04);margin-bottom:18px;overflow-x:auto}
    .grid{display:grid;grid-template-columns:1fr 1fr;gap:18px}
    .grid .panel{margin-bottom:18px}
    @media (max-width:900px){.grid{grid-template-columns:1fr}}
    table{border-collapse:collapse;width:100%;font-size:14px}
    th{font-weight:600;color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.04em;text-align:left;border-bottom:1px solid var(--line);padding:8px 8px;vertical-align:bottom;line-height:1.3}
    td{padding:9px 8px;border-bottom:1px solid var(--soft);white-space:nowrap}
    tbody tr:last-child td{border-bottom:none}
    .num{text-align:right;font-variant-numeric:tabular-nums}
    .acc{display:flex;align-items:center;gap:10px;font-variant-numeric:tabular-nums}
    .acc-num{font-weight:650;min-width:48px}
    .acc-bar{position:relative;display:inline-block;width:90px;height:8px;background:var(--soft);border-radius:4px}
    .acc-ci{position:absolute;top:0;height:8px;border-radius:4px;background:var(--c);opacity:.35}
    .acc-pt{position:absolute;top:-3px;width:4px;height:14px;margin-left:-2px;border-radius:2px;background:var(--c)}
    .acc-ci-text{color:var(--muted);font-size:12px}
    .note{color:var(--muted);font-size:12.5px;margin:10px 0 0}
    code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:1px 5px;border-radius:4px}
    .mono{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
    svg.chart{width:100%;height:auto;display:block}
    svg .grid{stroke:#eef0f3;stroke-width:1}
    svg .axis{stroke:#9ca3af;stroke-width:1}
    svg .ref{stroke:#9ca3af;stroke-width:1.5;stroke-dasharray:5 5}
    svg .tick{fill:#6b7280;font-size:12px}
    svg .axis-title{fill:#374151;font-size:12.5px;font-weight:600}
    svg .label{font-size:13px;font-weight:650;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
    svg .row-label{font-size:14px;font-weight:650}
    svg .band{fill:#fafbfc}
    svg .empty{fill:#fafbfc;stroke:#e5e7eb;stroke-dasharray:4 4}
    details summary{cursor:pointer;font-weight:650}
    details[open] summary{margin-bottom:12px}
    pre{background:var(--soft);border-radius:8px;padding:12px;overflow-x:auto;font-size:12.5px}
    .problems th{text-transform:none;font-size:12.5px;letter-spacing:0}
    .problems td.ok{color:#047857}
    .problems td.bad{color:#b91c1c}
    .problems td.none{color:var(--muted)}
    .mark{font-weight:700}
    footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
    """
}
