import Engine
import Eval
import Foundation
import Relay
import Testing
import TestSupport
import Training

/// What `relay train-relay` does around RelayTrainer, which lived in the CLI and went untested there.
@Suite("relay train-relay's library work", .serialized)
struct HeadTrainingTests {
    func trainer(dim: Int, settings: RelayTrainer.Settings) -> RelayTrainer {
        RelayTrainer(small: Session(model: Models.smol, contextSize: 512), large: Session(model: Models.smol, contextSize: 512),
                     head: RelayHead(model: "t", dim: dim), settings: settings)
    }

    @Test("the label cache gives back SmolLM2's labels exactly, keeps earlier entries, and gives nothing under other settings")
    func labelCache() throws {
        let m = Models.smol
        var settings = RelayTrainer.Settings()
        settings.probes = 0
        settings.decisive = 0
        let trainer = trainer(dim: m.config.dim, settings: settings)
        let problem = RelayTrainer.Problem(id: "t", prompt: try chatPrompt(m, "What is the capital of France?"), isCorrect: { _ in false })
        let rollout = m.tokenizer.encode(" zebra umbrella quantum paris violin", addBOS: false)
        let wrong = try trainer.label(problem, rollout: rollout, correct: false), right = try trainer.label(problem, rollout: rollout, correct: true)
        #expect(wrong.contains(where: \.call) && !right.contains(where: \.call))
        let path = Scratch.directory("labels") + "/head.json.labels.json"
        try LabelCache(path: path, key: "a").add("wrong", correct: false, examples: wrong)

        let reloaded = LabelCache(path: path, key: "a")
        try reloaded.add("right", correct: true, examples: right)
        let known = LabelCache(path: path, key: "a").known
        #expect(known.keys.sorted() == ["right", "wrong"])
        for (id, correct, examples) in [("wrong", false, wrong), ("right", true, right)] {
            let k = try #require(known[id])
            #expect(k.correct == correct)
            #expect(k.examples.map(\.features) == examples.map(\.features))
            #expect(k.examples.map(\.call) == examples.map(\.call) && k.examples.map(\.choice) == examples.map(\.choice))
        }
        #expect(LabelCache(path: path, key: "b").known.isEmpty)
    }

    @Test("the L2 sweep keeps the penalty whose head ranks held-out positions best and leaves the head as it was")
    func l2Sweep() throws {
        var settings = RelayTrainer.Settings()
        settings.warmupEpochs = 100
        // 24 noisy hidden features and few training examples; calls follow a low top-1 probability (feature 24).
        let dim = 24
        let trainer = trainer(dim: dim, settings: settings)
        var rng = Xoshiro256(seed: 3)
        func examples(_ n: Int) -> [RelayTrainer.Example] {
            (0..<n).map { i in
                let call = i % 4 == 0
                var x = (0..<dim + 2).map { _ in rng.unit() }
                if call { x[dim] -= 0.4 }
                return RelayTrainer.Example(features: x, call: call, choice: 0)
            }
        }
        let train = examples(40), heldOut = examples(200)
        let start = trainer.head
        var lines: [String] = []
        let (l2, report) = HeadTraining.chooseL2(trainer, examples: train, heldOut: heldOut) { lines.append($0) }
        #expect(report.count == 6 && lines.count == 6)
        #expect(l2 > 0, "an unpenalised fit learns the noise: \(report)")
        #expect(trainer.head == start && trainer.settings.warmupL2 == 0)

        func heldOutAUC(_ l2: Float) -> Double {
            trainer.head = start
            trainer.settings.warmupL2 = l2
            trainer.warmup(train)
            return trainer.rankingAUC(heldOut)!.head
        }
        let best = heldOutAUC(l2)
        for other: Float in [0, 0.01, 0.1, 1, 10, 100] { #expect(best >= heldOutAUC(other), "L2 \(l2) against \(other)") }
        // Without held-out positives there is nothing to rank: no penalty.
        let none = HeadTraining.chooseL2(trainer, examples: train, heldOut: heldOut.filter { !$0.call }) { _ in }
        #expect(none.l2 == 0 && none.report.isEmpty)
    }

    @Test("a warm-up run writes the head, its label cache and report, and a second run takes the labels from the cache")
    func warmupRun() throws {
        let m = Models.smol
        let dir = Scratch.directory("train")
        let tasks = TaskSet(name: "sums", problems: [Problem(id: "a", question: "What is 2 + 3?", answer: "5"),
                                                     Problem(id: "b", question: "What is 4 + 4?", answer: "8")], scoring: .gsm8k, note: "")
        var s = HeadTraining.Settings(largeName: "smol", smallName: "smol", task: "sums", out: dir + "/head.json")
        (s.offset, s.limit, s.stage, s.contextSize) = (0, 2, .warmup, 512)
        (s.trainer.maxTokens, s.trainer.probes, s.trainer.decisive, s.trainer.warmupEpochs) = (16, 0, 0, 20)
        let template = try ChatTemplate.detect(from: m.file.metadata["tokenizer.chat_template"]?.string)
        let log = Log()
        let head = try HeadTraining.run(large: m, small: m, task: tasks, template: template, settings: s, progress: log.bar)
        let lines = log.lines
        #expect(try RelayHead.load(s.out) == head)
        #expect(head.training?.config["warmup.probe_lengths"] == "8,32" && head.training?.config["warmup.stage"] == "warmup")
        #expect(FileManager.default.fileExists(atPath: dir + "/head.html") && FileManager.default.fileExists(atPath: s.out + ".labels.json"))
        #expect(lines.contains { $0.hasPrefix("warm-up labels") && $0.contains("2/2") } && lines.last == "head → \(s.out) (report: \(dir)/head.html)")

        // The same ids with other questions: labelled anew they would give another head.
        var other = tasks
        other.problems = tasks.problems.map { Problem(id: $0.id, question: "Name a colour.", answer: $0.answer) }
        let again = try HeadTraining.run(large: m, small: m, task: other, template: template, settings: s, progress: Log().bar)
        #expect(again == head)
        // No problem from the offset on is an error that names the offset.
        s.offset = 5
        #expect { try HeadTraining.run(large: m, small: m, task: tasks, template: template, settings: s, progress: Log().bar) } throws: {
            "\($0)" == "no problems after --offset 5"
        }
    }
}
