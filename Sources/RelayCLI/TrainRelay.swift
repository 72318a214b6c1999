import ArgumentParser
import Assets
import Engine
import Eval
import Foundation
import Relay

extension RelayCommand {
    struct TrainRelay: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-relay",
            abstract: "Train RelayLLM's call head on the frozen small model: warm-up, then GRPO.",
            discussion: """
            Problems are first sorted by sampling the small model alone (--k samples) and the large model alone \
            (solvable, teacher-dependent, unsolvable; cached in OUT.problems.json). Warm-up labels positions where the \
            large model's help leads to a correct answer; GRPO samples --group-size rollouts per problem and pushes up \
            the group-relative advantage of the head's decisions. Train on problems disjoint from every evaluation set: \
            the default is GSM8K test problems from --offset 1000 on, while evaluations use the first ones.
            """)

        enum Stage: String, ExpressibleByArgument, CaseIterable { case warmup, grpo, both }

        @OptionGroup var model: ModelOptions

        @Option(help: "gsm8k, math500, math-train, or a JSONL file of {\"id\",\"question\",\"answer\"}.")
        var task = "gsm8k"
        @Option(help: "Skip the first K problems (keep evaluation problems out).") var offset = 1000
        @Option(help: "Problems to train on.") var limit = 16
        @Option(help: "warmup, grpo or both.") var stage = Stage.both
        @Option(help: "Head file to write (JSON); an HTML report is written beside it.") var out: String
        @Option(help: "Start from this head (e.g. a warm-up head for --stage grpo).") var initial: String?
        @Option(help: "Small-model samples per problem when sorting.") var k = 4
        @Option(name: .customLong("group-size"), help: "Rollouts per problem in a GRPO group.") var groupSize = 4
        @Option(help: "Problems per GRPO step.") var batch = 2
        @Option(help: "GRPO passes over the problems.") var epochs = 1
        @Option(help: "GRPO learning rate (Adam).") var lr: Float = 0.01
        @Option(name: .customLong("warmup-lr"), help: "Warm-up learning rate (Adam).") var warmupLR: Float = 0.02
        @Option(name: .customLong("call-rate"), help: "Largest share of positions where the warm-up head calls at inference.") var callRate: Float = 0.005
        @Option(help: "Positions probed per wrong warm-up rollout: the answer's first, then the most decisive disagreements (0: the first --unprobed disagreements are positives, unprobed).") var probes = 2
        @Option(name: .customLong("probe-lengths"), help: "Call lengths tried at a probed position, shortest first (comma separated); a new head chooses among these and 4, 8, 16, 32.")
        var probeLengths = "8,32"
        @Option(help: "With --probes 0: decisive disagreements per wrong rollout labelled as calls.") var unprobed = 3
        @Option(help: "Least large-model margin p(its token) − p(small token) for a disagreement to be decisive.") var decisive: Float = 0.3
        @Option(help: "Floor rate of calls in GRPO rollouts (exploration).") var explore: Float = 0.003
        @Option(help: "visible: the small model reads the tags the head writes (the paper's protocol); hidden: they stay out of its context (a frozen model never saw them). Stored in the head, which runs that way.")
        var tags = TagVisibility.hidden
        @Option(name: .customLong("max-tokens"), help: "Most tokens per rollout.") var maxTokens = 384
        @Option(name: .customLong("temp"), help: "Sampling temperature of rollouts.") var temperature: Float = 0.7
        @Option(help: "Seed of sampling and of the head's decisions.") var seed: UInt64 = 0

        func validate() throws {
            guard limit > 0, k > 0, groupSize > 1, batch > 0, epochs > 0 else {
                throw ValidationError("--limit, --k, --batch and --epochs must be positive and --group-size at least 2")
            }
            guard lr > 0, warmupLR > 0, (0...1).contains(callRate) else { throw ValidationError("learning rates must be positive and --call-rate in 0...1") }
            guard lengths != nil else { throw ValidationError("--probe-lengths '\(probeLengths)': expected positive numbers, comma separated, such as 8,32") }
        }

        /// --probe-lengths as numbers, sorted; nil when malformed.
        var lengths: [Int]? { positiveIntegers(probeLengths)?.sorted() }

        func run() throws {
            guard model.draftModel != nil else { throw ValidationError("training needs the small model: pass -md SMALL") }
            let (loaded, draft) = try model.load(large: true, small: true)
            let large = loaded!, small = draft!
            let template = try model.template(for: small)
            let taskSet = try TaskLoader.load(task, dataDirectory: AssetStore().dataDir)
            let selected = Selection(offset: offset, limit: limit).apply(taskSet.problems)
            guard !selected.isEmpty else { throw ValidationError("no problems after --offset \(offset)") }
            let tok = small.tokenizer
            let problems = selected.map { p in
                RelayTrainer.Problem(id: p.id, prompt: tok.encode(template.render([ChatMessage(role: "user", content: Prompt.userMessage(p))]), addBOS: tok.addBOS),
                                     isCorrect: { Scorer.score(style: taskSet.scoring, output: $0, reference: p.answer).correct })
            }

            var settings = RelayTrainer.Settings()
            settings.maxTokens = maxTokens
            settings.temperature = temperature
            settings.stop = template.stopStrings
            settings.k = k
            settings.probes = probes
            settings.probeLengths = lengths!   // checked in validate()
            settings.unprobed = unprobed
            settings.decisive = decisive
            settings.explore = explore
            settings.tags = tags
            settings.warmupLR = warmupLR
            settings.callRate = callRate
            settings.groupSize = groupSize
            settings.lr = lr
            settings.seed = seed
            var head = try initial.map(RelayHead.load)
                ?? RelayHead(model: small.config.name, dim: small.config.dim, lengths: Array(Set(RelayHead.defaultLengths + settings.probeLengths)).sorted())
            if let initial, head.dim != small.config.dim {
                throw HeadError.mismatch(initial, detail: "hidden size \(head.dim), the small model's is \(small.config.dim)")
            }
            head.tags = tags
            // The models it is trained for: what finds it if it ships (Sources/ShippedFiles/Heads).
            (head.small, head.large) = (ModelIdentity.of(small), ModelIdentity.of(large))
            var training = head.training ?? RelayHead.Training()
            // A stage run alone prefixes its settings, so a GRPO run keeps the warm-up's beside its own.
            let prefix = stage == .both ? "" : stage.rawValue + "."
            training.config.merge([
                "large": URL(fileURLWithPath: large.file.path).lastPathComponent, "small": URL(fileURLWithPath: small.file.path).lastPathComponent,
                "task": task, "offset": "\(offset)", "limit": "\(limit)", "k": "\(k)", "group_size": "\(groupSize)", "batch": "\(batch)",
                "epochs": "\(epochs)", "lr": "\(lr)", "warmup_lr": "\(warmupLR)", "call_rate": "\(callRate)", "probes": "\(probes)", "probe_lengths": "\(probeLengths)", "unprobed": "\(unprobed)", "decisive": "\(decisive)", "explore": "\(explore)", "tags": tags.rawValue,
                "max_tokens": "\(maxTokens)", "temperature": "\(temperature)", "seed": "\(seed)", "stage": stage.rawValue,
            ].map { (prefix + $0.key, $0.value) }) { _, new in new }
            head.training = training
            let trainer = RelayTrainer(small: Session(model: small, contextSize: model.ctxSize), large: Session(model: large, contextSize: model.ctxSize),
                                       head: head, settings: settings)

            // Unprobed warm-up labels need only small-model samples; the classes are for probes and GRPO.
            let needsClasses = stage != .warmup || probes > 0
            let sorted = needsClasses ? try sortProblems(problems, trainer: trainer) : []
            if needsClasses {
                let counts = Dictionary(grouping: sorted, by: \.kind).mapValues(\.count)
                note("sorted \(sorted.count) problems: " + ProblemClass.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", "))
            }

            if stage != .grpo {
                var examples: [RelayTrainer.Example] = [], heldOut: [RelayTrainer.Example] = []
                let labels = LabelCache(path: out + ".labels.json",
                                        key: "\(model.model)|\(model.draftModel ?? "")|\(task)|max=\(maxTokens)|temp=\(temperature)|seed=\(seed)|k=\(k)|probes=\(probes)+start|lengths=\(settings.probeLengths)|unprobed=\(unprobed)|decisive=\(decisive)" + (probes > 0 ? "|tags=\(tags)" : ""))
                for (i, p) in problems.enumerated() {
                    let e: [RelayTrainer.Example], correct: Bool
                    if let known = labels.known[p.id] {
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
                    note("warm-up labels \(i + 1)/\(problems.count) \(p.id) (\(correct ? "correct" : "wrong")): \(e.filter(\.call).count) positive of \(e.count)")
                }
                let start = trainer.head
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
                trainer.head = start
                trainer.settings.warmupL2 = chosen?.l2 ?? 0
                examples += heldOut
                let positives = examples.filter(\.call).count
                let curve = trainer.warmup(examples)
                trainer.head.training?.curves["warmup_loss"] = curve
                trainer.head.training?.config["warmup.examples"] = "\(examples.count)"
                trainer.head.training?.config["warmup.positives"] = "\(positives)"
                trainer.head.training?.config["warmup.l2"] = "\(trainer.settings.warmupL2)"
                if !report.isEmpty { trainer.head.training?.config["warmup.heldout_auc"] = report.joined(separator: "; ") }
                note(String(format: "warm-up: %d examples, %d positive, L2 %g; loss %.4f → %.4f", examples.count, positives,
                            trainer.settings.warmupL2, curve.first ?? 0, curve.last ?? 0))
                try trainer.head.write(to: out)
            } else if initial == nil {
                try trainer.standardise(over: zip(problems, sorted).map { ($0.0, $0.1.smallSamples[0]) })
            }

            if stage != .warmup {
                // GRPO learns only where rewards differ within a group; every class can differ.
                let pairs = zip(problems, sorted).map { ($0.0, $0.1.kind) }
                let steps = epochs * ((pairs.count + batch - 1) / batch)
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
                    note(progressLine(step: step + 1, of: steps, stats))
                    try trainer.head.write(to: out)
                }
            }
            let html = out.hasSuffix(".json") ? String(out.dropLast(5)) + ".html" : out + ".html"
            try TrainingPage.render(trainer.head, sorted: sorted).write(toFile: html, atomically: true, encoding: .utf8)
            note("head → \(out) (report: \(html))")
        }

        /// Sorts the problems, reusing OUT.problems.json for those already sorted with these settings.
        func sortProblems(_ problems: [RelayTrainer.Problem], trainer: RelayTrainer) throws -> [RelayTrainer.Sorted] {
            let cache = out + ".problems.json"
            struct Cache: Codable { var key: String; var problems: [RelayTrainer.Sorted] }
            let key = "\(model.model)|\(model.draftModel ?? "")|\(task)|k=\(k)|max=\(maxTokens)|temp=\(temperature)|seed=\(seed)"
            var known: [String: RelayTrainer.Sorted] = [:]
            if let data = FileManager.default.contents(atPath: cache), let c = try? JSONDecoder().decode(Cache.self, from: data), c.key == key {
                for s in c.problems { known[s.id] = s }
            }
            var result: [RelayTrainer.Sorted] = []
            for (i, p) in problems.enumerated() {
                if let s = known[p.id] { result.append(s); continue }
                let start = Date()
                let s = try trainer.sort(p)
                known[p.id] = s
                result.append(s)
                try JSONEncoder().encode(Cache(key: key, problems: Array(known.values))).write(to: URL(fileURLWithPath: cache))
                note(String(format: "sorting %d/%d %@: small %d/%d correct, large %@ → %@ (%.0f s)", i + 1, problems.count, p.id,
                            s.smallCorrect.filter { $0 }.count, s.smallCorrect.count, s.largeCorrect ? "correct" : "wrong",
                            s.kind.rawValue, Date().timeIntervalSince(start)))
            }
            return result
        }

        func progressLine(step: Int, of total: Int, _ s: RelayTrainer.StepStats) -> String {
            let width = 20, filled = width * step / max(total, 1)
            return String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
                + String(format: "  step %d/%d  reward %+.3f  calls/rollout %.2f  large share %.1f%%  acc %.0f%%  loss %.4f → %.4f",
                         step, total, s.reward, s.callsPerRollout, s.largeShare * 100, s.accuracy * 100, s.lossBefore, s.lossAfter)
        }
    }
}

/// Warm-up labels per problem, kept beside the head (OUT.labels.json) so that refitting the head
/// costs no model time; reused only under the same settings. Features are stored as base64 Float32.
final class LabelCache {
    struct Entry: Codable { var id: String; var correct: Bool; var calls: [Bool]; var choices: [Int]; var features: [String] }
    struct File: Codable { var key: String; var problems: [Entry] }
    let path: String, key: String
    private(set) var known: [String: (correct: Bool, examples: [RelayTrainer.Example])] = [:]
    private var entries: [Entry] = []

    init(path: String, key: String) {
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

    func add(_ id: String, correct: Bool, examples: [RelayTrainer.Example]) throws {
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

extension TagVisibility: ExpressibleByArgument {}
