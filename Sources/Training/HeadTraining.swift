import Engine
import Eval
import Foundation
import Progress
import Relay

/// `relay train-relay`: RelayLLM's call head trained on the frozen small model by `RelayTrainer`,
/// warm-up then GRPO, with what makes a run resumable and readable: the problem sorting cache
/// (OUT.problems.json), the label cache (OUT.labels.json), the held-out choice of the warm-up's L2
/// penalty, the head written after every GRPO step, and an HTML report beside it.
public enum HeadTraining {
    public enum Stage: String, CaseIterable, Sendable { case warmup, grpo, both }

    public struct Settings: Sendable {
        /// The -m and -md arguments and the task as given: the caches' keys and the head's settings name them.
        public var largeName: String
        public var smallName: String
        public var task: String
        /// Train on `limit` problems from `offset` on (keep evaluation problems out).
        public var offset = 1000
        public var limit = 16
        public var stage = Stage.both
        /// The head file to write (JSON); the caches and the report go beside it.
        public var out: String
        /// A head to start from (e.g. a warm-up head for the GRPO stage).
        public var initial: String?
        /// Problems per GRPO step, and GRPO passes over the problems.
        public var batch = 2
        public var epochs = 1
        public var contextSize = 4096
        /// Sampling, labelling and optimisation; its stop strings come from the chat template.
        public var trainer = RelayTrainer.Settings()

        public init(largeName: String, smallName: String, task: String, out: String) {
            self.largeName = largeName
            self.smallName = smallName
            self.task = task
            self.out = out
        }
    }

    /// Trains a head for `small` calling `large` on `task`'s problems and writes it to `settings.out`;
    /// `progress` shows sorting, labelling and the GRPO steps, with lines for the held-out AUC and the files written.
    @discardableResult
    public static func run(large: Model, small: Model, task taskSet: TaskSet, template: ChatTemplate, settings s: Settings,
                           progress: ProgressBar) throws -> RelayHead {
        let t = s.trainer, out = s.out, stage = s.stage
        let problems = try problems(taskSet, offset: s.offset, limit: s.limit, template: template, tokenizer: small.tokenizer)
        var settings = t
        settings.stop = template.stopStrings
        var head = try s.initial.map(RelayHead.load)
            ?? RelayHead(model: small.config.name, dim: small.config.dim, lengths: Array(Set(RelayHead.defaultLengths + settings.probeLengths)).sorted())
        if let initial = s.initial, head.dim != small.config.dim {
            throw HeadError.mismatch(initial, detail: "hidden size \(head.dim), the small model's is \(small.config.dim)")
        }
        head.tags = t.tags
        // The models it is trained for: what finds it if it ships (Sources/ShippedFiles/Heads).
        (head.small, head.large) = (ModelIdentity.of(small), ModelIdentity.of(large))
        var training = head.training ?? RelayHead.Training()
        // A stage run alone prefixes its settings, so a GRPO run keeps the warm-up's beside its own.
        let prefix = stage == .both ? "" : stage.rawValue + "."
        training.config.merge([
            "large": URL(fileURLWithPath: large.file.path).lastPathComponent, "small": URL(fileURLWithPath: small.file.path).lastPathComponent,
            "task": s.task, "offset": "\(s.offset)", "limit": "\(s.limit)", "k": "\(t.k)", "group_size": "\(t.groupSize)", "batch": "\(s.batch)",
            "epochs": "\(s.epochs)", "lr": "\(t.lr)", "warmup_lr": "\(t.warmupLR)", "call_rate": "\(t.callRate)", "probes": "\(t.probes)",
            "probe_lengths": t.probeLengths.map(String.init).joined(separator: ","), "unprobed": "\(t.unprobed)", "decisive": "\(t.decisive)",
            "explore": "\(t.explore)", "tags": t.tags.rawValue,
            "max_tokens": "\(t.maxTokens)", "temperature": "\(t.temperature)", "seed": "\(t.seed)", "stage": stage.rawValue,
        ].map { (prefix + $0.key, $0.value) }) { _, new in new }
        head.training = training
        let trainer = RelayTrainer(small: Session(model: small, contextSize: s.contextSize), large: Session(model: large, contextSize: s.contextSize),
                                   head: head, settings: settings)

        // Unprobed warm-up labels need only small-model samples; the classes are for probes and GRPO.
        let needsClasses = stage != .warmup || t.probes > 0
        let sorted = needsClasses ? try sortProblems(problems, trainer: trainer, settings: s, progress: progress) : []
        if needsClasses {
            let counts = Dictionary(grouping: sorted, by: \.kind).mapValues(\.count)
            progress.note("sorted \(sorted.count) problems: " + ProblemClass.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", "))
        }

        if stage != .grpo {
            try warmup(trainer, problems: problems, sorted: sorted, settings: s, progress: progress)
        } else if s.initial == nil {
            try trainer.standardise(over: zip(problems, sorted).map { ($0.0, $0.1.smallSamples[0]) })
        }
        if stage != .warmup {
            try grpo(trainer, problems: problems, sorted: sorted, settings: s, progress: progress)
        }
        let html = pagePath(beside: out)
        try TrainingPage.render(trainer.head, sorted: sorted).write(toFile: html, atomically: true, encoding: .utf8)
        progress.note("head → \(out) (report: \(html))")
        return trainer.head
    }

    /// `limit` of the task's problems from `offset` on, as chat prompts for the small model, each
    /// scored with the task's scorer.
    public static func problems(_ taskSet: TaskSet, offset: Int, limit: Int, template: ChatTemplate,
                                tokenizer tok: Tokenizer) throws -> [RelayTrainer.Problem] {
        let selected = Selection(offset: offset, limit: limit).apply(taskSet.problems)
        guard !selected.isEmpty else { throw TrainingError.noProblems(offset: offset) }
        return selected.map { p in
            RelayTrainer.Problem(id: p.id, prompt: tok.encode(template.render([ChatMessage(role: "user", content: Prompt.userMessage(p))]), addBOS: tok.addBOS),
                                 isCorrect: { Scorer.score(style: taskSet.scoring, output: $0, reference: p.answer).correct })
        }
    }

    /// The warm-up stage: labels per problem (from OUT.labels.json when known), the L2 penalty
    /// chosen on held-out problems, the fit on all of them; writes the head.
    static func warmup(_ trainer: RelayTrainer, problems: [RelayTrainer.Problem], sorted: [RelayTrainer.Sorted], settings s: Settings,
                       progress: ProgressBar) throws {
        let t = s.trainer
        let needsClasses = !sorted.isEmpty
        var examples: [RelayTrainer.Example] = [], heldOut: [RelayTrainer.Example] = []
        let labels = LabelCache(path: s.out + ".labels.json",
                                key: "\(s.largeName)|\(s.smallName)|\(s.task)|max=\(t.maxTokens)|temp=\(t.temperature)|seed=\(t.seed)|k=\(t.k)|probes=\(t.probes)+start|lengths=\(t.probeLengths)|unprobed=\(t.unprobed)|decisive=\(t.decisive)" + (t.probes > 0 ? "|tags=\(t.tags)" : ""))
        progress.start("warm-up labels", total: Double(problems.count), unit: .items("problem"),
                       done: Double(problems.filter { labels.known[$0.id] != nil }.count))
        for (i, p) in problems.enumerated() {
            let e: [RelayTrainer.Example], correct: Bool
            let cached = labels.known[p.id]
            if let known = cached {
                (e, correct) = (known.examples, known.correct)
            } else {
                // Label the first wrong sample (where help can pay), else the first one.
                let rollout: (tokens: [Int32], correct: Bool)
                if needsClasses {
                    let s = sorted[i], j = s.smallCorrect.firstIndex(of: false) ?? 0
                    rollout = (s.smallSamples[j], s.smallCorrect[j])
                } else {
                    rollout = try trainer.sample(p)
                }
                (e, correct) = (try trainer.label(p, rollout: rollout.tokens, correct: rollout.correct), rollout.correct)
                try labels.add(p.id, correct: correct, examples: e)
            }
            // Every fifth problem is held out to choose the L2 penalty and to measure ranking.
            if i % 5 == 4 { heldOut += e } else { examples += e }
            progress.advance(cached == nil ? 1 : 0, detail: "\(p.id) (\(correct ? "correct" : "wrong")): \(e.filter(\.call).count) positive of \(e.count)")
        }
        progress.finish()
        let (l2, report) = chooseL2(trainer, examples: examples, heldOut: heldOut, progress: progress.note)
        trainer.settings.warmupL2 = l2
        examples += heldOut
        let positives = examples.filter(\.call).count
        let curve = trainer.warmup(examples)
        trainer.head.training?.curves["warmup_loss"] = curve
        trainer.head.training?.config["warmup.examples"] = "\(examples.count)"
        trainer.head.training?.config["warmup.positives"] = "\(positives)"
        trainer.head.training?.config["warmup.l2"] = "\(trainer.settings.warmupL2)"
        if !report.isEmpty { trainer.head.training?.config["warmup.heldout_auc"] = report.joined(separator: "; ") }
        progress.note(String(format: "warm-up: %d examples, %d positive, L2 %g; loss %.4f → %.4f", examples.count, positives,
                    trainer.settings.warmupL2, curve.first ?? 0, curve.last ?? 0))
        try trainer.head.write(to: s.out)
    }

    /// The warm-up's L2 penalty: each of 0, 0.01, … 100 is fitted on `examples` and the one whose
    /// head ranks `heldOut` best (ROC AUC) is chosen; 0 when `heldOut` lacks a label. Leaves the
    /// trainer's head as it found it. Returns the penalty and a line per penalty tried.
    public static func chooseL2(_ trainer: RelayTrainer, examples: [RelayTrainer.Example], heldOut: [RelayTrainer.Example],
                                progress note: (String) -> Void) -> (l2: Float, report: [String]) {
        let start = trainer.head, startL2 = trainer.settings.warmupL2
        defer { (trainer.head, trainer.settings.warmupL2) = (start, startL2) }
        var chosen: (l2: Float, auc: Double)?
        var report: [String] = []
        for l2 in [Float(0), 0.01, 0.1, 1, 10, 100] {
            trainer.head = start
            trainer.settings.warmupL2 = l2
            trainer.warmup(examples)
            guard let auc = trainer.rankingAUC(heldOut) else { break }
            var line = String(format: "L2 %g: AUC head %.3f, low top-1 probability %.3f", l2, auc.head, auc.confidence)
            let uncertain = trainer.uncertain(heldOut, below: 0.6)
            if let u = trainer.rankingAUC(uncertain) {
                line += String(format: " (top-1 under 0.6, %d examples, %d positive: %.3f, %.3f)",
                               uncertain.count, uncertain.filter(\.call).count, u.head, u.confidence)
            }
            report.append(line)
            note("held out (\(heldOut.count) examples, \(heldOut.filter(\.call).count) positive): " + report.last!)
            if auc.head > chosen?.auc ?? -1 { chosen = (l2, auc.head) }
        }
        return (chosen?.l2 ?? 0, report)
    }

    /// The GRPO stage: `epochs` passes over the problems in batches; the head is written after every step.
    static func grpo(_ trainer: RelayTrainer, problems: [RelayTrainer.Problem], sorted: [RelayTrainer.Sorted], settings s: Settings,
                     progress: ProgressBar) throws {
        let batch = s.batch
        // GRPO learns only where rewards differ within a group; every class can differ.
        let pairs = zip(problems, sorted).map { ($0.0, $0.1.kind) }
        let steps = s.epochs * ((pairs.count + batch - 1) / batch)
        progress.start("GRPO", total: Double(steps), unit: .items("step"))
        defer { progress.finish() }
        for step in 0..<steps {
            let start = (step * batch) % pairs.count
            let slice = (0..<min(batch, pairs.count)).map { pairs[(start + $0) % pairs.count] }
            let stats = try trainer.grpoStep(slice)
            var curves = trainer.head.training?.curves ?? [:]
            curves["grpo_reward", default: []].append(stats.reward)
            curves["grpo_accuracy", default: []].append(stats.accuracy)
            curves["grpo_calls_per_rollout", default: []].append(stats.callsPerRollout)
            curves["grpo_large_share", default: []].append(stats.largeShare)
            curves["grpo_loss", default: []].append(stats.lossBefore)
            trainer.head.training?.curves = curves
            progress.advance(1, detail: stepDetail(stats))
            try trainer.head.write(to: s.out)
        }
    }

    /// Sorts the problems, reusing OUT.problems.json for those already sorted with these settings.
    static func sortProblems(_ problems: [RelayTrainer.Problem], trainer: RelayTrainer, settings s: Settings,
                             progress: ProgressBar) throws -> [RelayTrainer.Sorted] {
        let t = s.trainer
        let cache = s.out + ".problems.json"
        struct Cache: Codable { var key: String; var problems: [RelayTrainer.Sorted] }
        let key = "\(s.largeName)|\(s.smallName)|\(s.task)|k=\(t.k)|max=\(t.maxTokens)|temp=\(t.temperature)|seed=\(t.seed)"
        var known: [String: RelayTrainer.Sorted] = [:]
        if let data = FileManager.default.contents(atPath: cache), let c = try? JSONDecoder().decode(Cache.self, from: data), c.key == key {
            for s in c.problems { known[s.id] = s }
        }
        var result: [RelayTrainer.Sorted] = []
        progress.start("sorting", total: Double(problems.count), unit: .items("problem"), done: Double(problems.filter { known[$0.id] != nil }.count))
        defer { progress.finish() }
        for p in problems {
            if let s = known[p.id] { result.append(s); continue }
            let s = try trainer.sort(p)
            known[p.id] = s
            result.append(s)
            try JSONEncoder().encode(Cache(key: key, problems: Array(known.values))).write(to: URL(fileURLWithPath: cache))
            progress.advance(1, detail: "\(p.id): small \(s.smallCorrect.filter { $0 }.count)/\(s.smallCorrect.count) correct, large \(s.largeCorrect ? "correct" : "wrong") → \(s.kind.rawValue)")
        }
        return result
    }

    static func stepDetail(_ s: RelayTrainer.StepStats) -> String {
        String(format: "reward %+.3f  calls/rollout %.2f  large share %.1f%%  acc %.0f%%  loss %.4f → %.4f",
               s.reward, s.callsPerRollout, s.largeShare * 100, s.accuracy * 100, s.lossBefore, s.lossAfter)
    }
}

/// Warm-up labels per problem, kept beside the head (OUT.labels.json) so that refitting the head
/// costs no model time; reused only under the same settings. Features are stored as base64 Float32.
public final class LabelCache {
    struct Entry: Codable { var id: String; var correct: Bool; var calls: [Bool]; var choices: [Int]; var features: [String] }
    struct File: Codable { var key: String; var problems: [Entry] }
    let path: String, key: String
    public private(set) var known: [String: (correct: Bool, examples: [RelayTrainer.Example])] = [:]
    private var entries: [Entry] = []

    public init(path: String, key: String) {
        self.path = path
        self.key = key
        guard let data = FileManager.default.contents(atPath: path), let file = try? JSONDecoder().decode(File.self, from: data), file.key == key else { return }
        for e in file.problems {
            let features = e.features.map { b64 -> [Float] in
                let d = Data(base64Encoded: b64) ?? Data()
                return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            guard features.count == e.calls.count, e.choices.count == e.calls.count else { continue }
            known[e.id] = (e.correct, (0..<e.calls.count).map { RelayTrainer.Example(features: features[$0], call: e.calls[$0], choice: e.choices[$0]) })
            entries.append(e)
        }
    }

    public func add(_ id: String, correct: Bool, examples: [RelayTrainer.Example]) throws {
        entries.append(Entry(id: id, correct: correct, calls: examples.map(\.call), choices: examples.map(\.choice),
                             features: examples.map { x in x.features.withUnsafeBufferPointer { Data(buffer: $0).base64EncodedString() } }))
        known[id] = (correct, examples)
        try JSONEncoder().encode(File(key: key, problems: entries)).write(to: URL(fileURLWithPath: path))
    }
}

/// The training report: the problem classes, the settings and one chart per curve.
enum TrainingPage {
    static func chart(_ name: String, _ values: [Double]) -> String {
        guard !values.isEmpty else { return "" }
        let w = 420.0, h = 160.0, pad = 30.0
        let lo = values.min()!, hi = values.max()!
        let span = hi - lo > 1e-12 ? hi - lo : 1
        let points = values.enumerated().map { i, v in
            let x = pad + (w - 2 * pad) * (values.count > 1 ? Double(i) / Double(values.count - 1) : 0.5)
            let y = h - pad - (h - 2 * pad) * (v - lo) / span
            return String(format: "%.1f,%.1f", x, y)
        }.joined(separator: " ")
        return """
        <figure><figcaption>\(name) (\(values.count) points)</figcaption><svg width='\(Int(w))' height='\(Int(h))'>
        <rect x='\(pad)' y='\(pad)' width='\(w - 2 * pad)' height='\(h - 2 * pad)' fill='none' stroke='#ccc'/>
        <polyline points='\(points)' fill='none' stroke='#2f5d9c' stroke-width='2'/>
        <text x='2' y='\(pad + 4)' font-size='11'>\(String(format: "%.3g", hi))</text>
        <text x='2' y='\(h - pad)' font-size='11'>\(String(format: "%.3g", lo))</text></svg></figure>
        """
    }

    static func render(_ head: RelayHead, sorted: [RelayTrainer.Sorted]) -> String {
        let counts = Dictionary(grouping: sorted, by: \.kind).mapValues(\.count)
        let classes = ProblemClass.allCases.map { "<tr><td>\($0.rawValue)</td><td>\(counts[$0] ?? 0)</td></tr>" }.joined()
        let config = (head.training?.config ?? [:]).sorted { $0.key < $1.key }
            .map { "<tr><td>\(CalibrationPage.escape($0.key))</td><td>\(CalibrationPage.escape($0.value))</td></tr>" }.joined()
        let charts = (head.training?.curves ?? [:]).sorted { $0.key < $1.key }.map { chart($0.key, $0.value) }.joined()
        return """
        <!doctype html><html><head><meta charset='utf-8'><title>RelayLLM head training</title>
        <style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
        figure{display:inline-block;margin:0.5em} td{padding:2px 10px;border-bottom:1px solid #eee}</style></head>
        <body><h1>RelayLLM call head: \(CalibrationPage.escape(head.model))</h1>
        <p>Hidden size \(head.dim), call lengths \(head.lengths.map(String.init).joined(separator: ", ")),
        call bias \(String(format: "%.3f", head.callBias)), threshold \(head.threshold).</p>
        <h2>Problems by class</h2><table>\(classes)</table>
        <h2>Curves</h2>\(charts)
        <h2>Settings</h2><table>\(config)</table></body></html>
        """
    }
}

