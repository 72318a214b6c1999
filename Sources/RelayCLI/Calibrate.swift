import ArgumentParser
import Assets
import Engine
import Eval
import Foundation
import Relay

extension RelayCommand {
    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find RelayGen's cue phrases: where the small model is sure of the large model's text.",
            discussion: "Generates large-model traces (or reads --traces), re-scores them with the small model, and writes the cues with delta > 0 to --out, with an HTML page beside it. Calibrate on problems disjoint from the evaluation set (e.g. --task math-train).")

        @OptionGroup var model: ModelOptions

        @Option(help: "Task whose problems the large model answers (see `relay eval --help`).")
        var task = "math-train"

        @Option(help: "Problems to trace.") var limit = 20
        @Option(help: "Skip the first K problems.") var offset = 0
        @Option(name: .customLong("max-tokens"), help: "Most tokens per trace.") var maxTokens = 512
        @Option(help: "Read traces from this JSONL file instead of generating them (written beside --out otherwise).")
        var traces: String?
        @Option(name: .customLong("top-cues"), help: "Keep at most K cues.") var topCues: Int?
        @Option(name: .customLong("min-count"), help: "Keep only cues seen at least this often in the traces.") var minCount = 2
        @Option(help: "Cue file to write.") var out: String

        func run() throws {
            guard model.draftModel != nil else { throw ValidationError("calibration needs the small model: pass -md SMALL") }
            let (loaded, draft) = try model.load(large: true, small: true)
            let large = loaded!, small = draft!
            let tok = large.tokenizer
            let template = try model.template(for: large)
            var list: [Calibration.Trace] = []
            let traceFile = traces ?? (out + ".traces.jsonl")
            if let traces {
                guard let text = try? String(contentsOfFile: traces, encoding: .utf8) else { throw ValidationError("cannot read traces file \(traces)") }
                for (i, line) in text.split(separator: "\n").enumerated() {
                    do { list.append(try JSONDecoder().decode(Calibration.Trace.self, from: Data(line.utf8))) } catch {
                        throw ValidationError("\(traces) line \(i + 1) is not a trace: \(error)")
                    }
                }
            } else {
                let problems = Selection(offset: offset, limit: limit).apply(try TaskLoader.load(task, dataDirectory: AssetStore().dataDir).problems)
                let solo = Solo(session: Session(model: large, contextSize: model.ctxSize), role: .large, sampling: .greedy)
                var options = GenerationOptions()
                options.maxTokens = maxTokens
                options.sampling = .greedy
                options.stop = template.stopStrings
                guard FileManager.default.createFile(atPath: traceFile, contents: nil) else { throw ValidationError("cannot write \(traceFile)") }
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: traceFile))
                for (i, p) in problems.enumerated() {
                    let prompt = tok.encode(template.render([ChatMessage(role: "user", content: Prompt.userMessage(p))]), addBOS: tok.addBOS)
                    let r = try Relay.generate(solo, prompt: prompt, tokenizer: tok, contextSize: model.ctxSize, options: options)
                    let trace = Calibration.Trace(id: p.id, prompt: prompt, tokens: r.tokens)
                    list.append(trace)
                    handle.write(try JSONEncoder().encode(trace) + Data("\n".utf8))
                    note(String(format: "trace %d/%d: %@, %d tokens, %.1f s", i + 1, problems.count, p.id, r.tokens.count, r.seconds))
                }
                try handle.close()
            }
            let session = Session(model: small, contextSize: model.ctxSize)
            var scored: [[(piece: String, margin: Float)]] = []
            for trace in list where !trace.tokens.isEmpty {
                let margins = try Calibration.margins(of: trace, session: session)
                scored.append(zip(trace.tokens, margins).map { (tok.decode([$0.0]), $0.1) })
            }
            var cues = Calibration.score(traces: scored).filter { $0.delta > 0 && $0.count >= minCount }
            if let topCues { cues = Array(cues.prefix(topCues)) }
            let set = CueSet(model: "\(large.config.name) + \(small.config.name)",
                             cues: cues.map { CueSet.Cue(text: $0.text, delta: $0.delta, count: $0.count) },
                             large: ModelIdentity.of(large), small: ModelIdentity.of(small))
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try enc.encode(set).write(to: URL(fileURLWithPath: out))
            let html = out.hasSuffix(".json") ? String(out.dropLast(5)) + ".html" : out + ".html"
            try CalibrationPage.render(cues: Calibration.score(traces: scored), kept: Set(cues.map(\.text)), example: scored.first ?? [])
                .write(toFile: html, atomically: true, encoding: .utf8)
            let mean = scored.flatMap { $0.map(\.margin) }.reduce(0, +) / Float(max(1, scored.reduce(0) { $0 + $1.count }))
            note(String(format: "%d traces, %d tokens, mean margin %.3f; kept %d cues → %@ (page: %@)",
                        scored.count, scored.reduce(0) { $0 + $1.count }, mean, cues.count, out, html))
            for c in cues.prefix(15) { writeOut(String(format: "%-16@ delta %+.3f  n=%d\n", "\"\(c.text)\"" as NSString, c.delta, c.count)) }
        }
    }
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
