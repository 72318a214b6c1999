import Engine
import Eval
import Foundation
import Progress
import Relay

/// `relay calibrate`: large-model traces (generated, or read from an earlier run's file), the small
/// model's margins over them (`Calibration`), and the cues that mark stretches it finds easy,
/// written as a cue file with an HTML page beside it.
public enum CueCalibration {
    /// Where the traces come from.
    public enum Source {
        /// The large model answers these problems greedily; the traces are written beside the cue
        /// file (OUT.traces.jsonl) so that a later run can re-score them without the large model.
        case problems([Problem])
        /// A JSONL file of traces, one `Calibration.Trace` a line.
        case file(String)
    }

    public struct Settings: Sendable {
        /// The cue file to write; the traces and the HTML page go beside it.
        public var out: String
        /// Most tokens per trace.
        public var maxTokens = 512
        /// Keep at most this many cues, and only cues seen at least `minCount` times.
        public var topCues: Int?
        public var minCount = 2
        public var contextSize = 4096
        public init(out: String) { self.out = out }
    }

    public struct Result: Sendable {
        /// The cues kept, best first.
        public var cues: [Calibration.CueScore]
        /// The HTML page written beside the cue file.
        public var html: String
    }

    /// Calibrates cues for `large` writing and `small` taking over; `progress` shows the traces as
    /// they are generated, then a summary line.
    @discardableResult
    public static func run(large: Model, small: Model, source: Source, template: ChatTemplate, settings: Settings,
                           progress: ProgressBar) throws -> Result {
        let out = settings.out
        let tok = large.tokenizer
        let list: [Calibration.Trace]
        switch source {
        case .file(let traces): list = try readTraces(traces)
        case .problems(let problems):
            list = try generateTraces(large: large, problems: problems, template: template, settings: settings,
                                      to: out + ".traces.jsonl", progress: progress)
        }
        let scored = try score(list, small: small, tokenizer: tok, contextSize: settings.contextSize)
        var cues = Calibration.score(traces: scored).filter { $0.delta > 0 && $0.count >= settings.minCount }
        if let topCues = settings.topCues { cues = Array(cues.prefix(topCues)) }
        let set = CueSet(model: "\(large.config.name) + \(small.config.name)",
                         cues: cues.map { CueSet.Cue(text: $0.text, delta: $0.delta, count: $0.count) },
                         large: ModelIdentity.of(large), small: ModelIdentity.of(small))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try enc.encode(set).write(to: URL(fileURLWithPath: out))
        let html = pagePath(beside: out)
        try CalibrationPage.render(cues: Calibration.score(traces: scored), kept: Set(cues.map(\.text)), example: scored.first ?? [])
            .write(toFile: html, atomically: true, encoding: .utf8)
        let mean = scored.flatMap { $0.map(\.margin) }.reduce(0, +) / Float(max(1, scored.reduce(0) { $0 + $1.count }))
        progress.note(String(format: "%d traces, %d tokens, mean margin %.3f; kept %d cues → %@ (page: %@)",
                        scored.count, scored.reduce(0) { $0 + $1.count }, mean, cues.count, out, html))
        return Result(cues: cues, html: html)
    }

    /// Traces from a JSONL file; errors name the file and line.
    public static func readTraces(_ traces: String) throws -> [Calibration.Trace] {
        guard let text = try? String(contentsOfFile: traces, encoding: .utf8) else { throw TrainingError.unreadableTraces(traces) }
        var list: [Calibration.Trace] = []
        for (i, line) in text.split(separator: "\n").enumerated() {
            do { list.append(try JSONDecoder().decode(Calibration.Trace.self, from: Data(line.utf8))) } catch {
                throw TrainingError.notATrace(traces, line: i + 1, detail: "\(error)")
            }
        }
        return list
    }

    /// The large model's greedy answers to `problems`, each written to `traceFile` as soon as it is done.
    public static func generateTraces(large: Model, problems: [Problem], template: ChatTemplate, settings: Settings, to traceFile: String,
                                      progress: ProgressBar) throws -> [Calibration.Trace] {
        let tok = large.tokenizer
        var list: [Calibration.Trace] = []
        let solo = Solo(session: Session(model: large, contextSize: settings.contextSize), role: .large, sampling: .greedy)
        var options = GenerationOptions()
        options.maxTokens = settings.maxTokens
        options.sampling = .greedy
        options.stop = template.stopStrings
        guard FileManager.default.createFile(atPath: traceFile, contents: nil) else { throw TrainingError.unwritable(traceFile) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: traceFile))
        progress.start("traces", total: Double(problems.count), unit: .items("trace"))
        defer { progress.finish() }
        for p in problems {
            let prompt = tok.encode(template.render([ChatMessage(role: "user", content: Prompt.userMessage(p))]), addBOS: tok.addBOS)
            let r = try generate(solo, prompt: prompt, tokenizer: tok, contextSize: settings.contextSize, options: options)
            let trace = Calibration.Trace(id: p.id, prompt: prompt, tokens: r.tokens)
            list.append(trace)
            handle.write(try JSONEncoder().encode(trace) + Data("\n".utf8))
            progress.advance(1, detail: "\(p.id): \(r.tokens.count) tokens")
        }
        try handle.close()
        return list
    }

    /// Each non-empty trace as the text piece of every token with the small model's margin there.
    public static func score(_ list: [Calibration.Trace], small: Model, tokenizer tok: Tokenizer,
                             contextSize: Int) throws -> [[(piece: String, margin: Float)]] {
        let session = Session(model: small, contextSize: contextSize)
        var scored: [[(piece: String, margin: Float)]] = []
        for trace in list where !trace.tokens.isEmpty {
            let margins = try Calibration.margins(of: trace, session: session)
            scored.append(zip(trace.tokens, margins).map { (tok.decode([$0.0]), $0.1) })
        }
        return scored
    }
}

/// Errors in what a training command was given; the CLI reports them as it reports bad flags.
public enum TrainingError: Error, CustomStringConvertible {
    case unreadableTraces(String)
    case notATrace(String, line: Int, detail: String)
    case unwritable(String)
    case noProblems(offset: Int)

    public var description: String {
        switch self {
        case .unreadableTraces(let path): return "cannot read traces file \(path)"
        case .notATrace(let path, let line, let detail): return "\(path) line \(line) is not a trace: \(detail)"
        case .unwritable(let path): return "cannot write \(path)"
        case .noProblems(let offset): return "no problems after --offset \(offset)"
        }
    }
}

/// The HTML page written beside a JSON file: OUT.json → OUT.html.
func pagePath(beside out: String) -> String {
    out.hasSuffix(".json") ? String(out.dropLast(5)) + ".html" : out + ".html"
}

/// The calibration page: delta per cue as bars, and one trace coloured by the small model's margin.
enum CalibrationPage {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func render(cues: [Calibration.CueScore], kept: Set<String>, example: [(piece: String, margin: Float)]) -> String {
        let shown = Array(cues.prefix(40))
        let maxAbs = max(shown.map { abs($0.delta) }.max() ?? 0.01, 0.01)
        let rowH = 18, width = 760, mid = 380
        var bars = ""
        for (i, c) in shown.enumerated() {
            let y = i * rowH + 4
            let w = Int(Double(mid - 150) * abs(c.delta) / maxAbs)
            let x = c.delta >= 0 ? mid : mid - w
            let color = kept.contains(c.text) ? "#2f7d4f" : (c.delta >= 0 ? "#9cc9a9" : "#c96b5c")
            bars += "<text x='\(mid - 240)' y='\(y + 12)' font-size='12' text-anchor='end'>\(escape(c.text))</text>"
            bars += "<rect x='\(x)' y='\(y)' width='\(max(w, 1))' height='\(rowH - 5)' fill='\(color)'/>"
            bars += String(format: "<text x='%d' y='%d' font-size='11' fill='#555'>%+.3f (n=%d)</text>", width - 150, y + 12, c.delta, c.count)
        }
        bars += "<line x1='\(mid)' x2='\(mid)' y1='0' y2='\(shown.count * rowH + 4)' stroke='#333'/>"
        var trace = ""
        for x in example {
            let m = max(0, min(1, Double(x.margin)))
            let hue = Int(m * 120)   // red (unsure) ... green (sure)
            trace += "<span style='background:hsl(\(hue),70%,85%)' title='margin \(String(format: "%.2f", m))'>\(escape(x.piece))</span>"
        }
        return """
        <!doctype html><html><head><meta charset='utf-8'><title>RelayGen calibration</title>
        <style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}
        .trace{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:13px;line-height:1.6;border:1px solid #ddd;padding:1em}</style></head>
        <body><h1>RelayGen calibration</h1>
        <p>delta = mean margin p(top1) − p(top2) of the small model inside the sentence after a cue, minus the mean margin elsewhere.
        Dark green: kept cues.</p>
        <svg width='\(width)' height='\(shown.count * rowH + 10)'>\(bars)</svg>
        <h2>An example trace, coloured by the small model's margin</h2><p>Green: the small model is sure of the large model's next token; red: unsure.</p>
        <div class='trace'>\(trace)</div></body></html>
        """
    }
}
