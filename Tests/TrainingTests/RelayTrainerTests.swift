import Engine
import Foundation
import Relay
import Testing
import TestSupport
import Training

@Suite("RelayLLM's reward")
struct RewardTests {
    @Test("the reward follows the paper on hand-made cases")
    func reward() {
        // solvable
        #expect(Reward.value(.solvable, correct: true, calls: 0, rho: 0) == 1.5)
        #expect(Reward.value(.solvable, correct: true, calls: 2, rho: 0.25) == 0.75)
        #expect(Reward.value(.solvable, correct: false, calls: 0, rho: 0) == 0)
        #expect(Reward.value(.solvable, correct: false, calls: 1, rho: 0.1) == 0)
        // teacher-dependent
        #expect(Reward.value(.teacherDependent, correct: true, calls: 1, rho: 0.1) == 0.9)
        #expect(Reward.value(.teacherDependent, correct: false, calls: 0, rho: 0) == -1)
        #expect(Reward.value(.teacherDependent, correct: false, calls: 3, rho: 0.3) == 0)
        #expect(Reward.value(.teacherDependent, correct: true, calls: 0, rho: 0) == 0)
        // unsolvable
        #expect(Reward.value(.unsolvable, correct: false, calls: 2, rho: 0.3) == 0.3)
        #expect(Reward.value(.unsolvable, correct: false, calls: 0, rho: 0) == 0)
        #expect(ProblemClass(smallSolved: true, largeSolved: false) == .solvable)
        #expect(ProblemClass(smallSolved: false, largeSolved: true) == .teacherDependent)
        #expect(ProblemClass(smallSolved: false, largeSolved: false) == .unsolvable)
    }

    @Test("group-relative advantages are centred and scaled within the group")
    func advantages() {
        let a = RelayTrainer.advantages([1, 0, 0, 1])
        #expect(a == [1, -1, -1, 1])
        #expect(RelayTrainer.advantages([0.5, 0.5]) == [0, 0])
    }

    @Test("ranking AUC: 1 when every positive scores above every negative, ties count half")
    func rankingAUC() {
        #expect(RelayTrainer.auc([0.1, 0.9, 0.2, 0.8], [false, true, false, true]) == 1)
        #expect(RelayTrainer.auc([0.9, 0.1], [false, true]) == 0)
        #expect(RelayTrainer.auc([0.5, 0.5, 0.5], [true, false, false]) == 0.5)
    }
}

@Suite("RelayLLM head training", .serialized)
struct RelayTrainerTests {
    func pair() -> (small: Session, large: Session) {
        (Session(model: Models.smol, contextSize: 1024), Session(model: Models.smol, contextSize: 1024))
    }

    @Test("a tiny GRPO run on SmolLM2 changes the head and lowers the surrogate loss")
    func tinyGRPO() throws {
        let m = Models.smol
        var settings = RelayTrainer.Settings()
        settings.maxTokens = 24
        settings.groupSize = 4
        settings.seed = 7
        // Unsolvable: calls earn ρ, so rollouts with different calls get different rewards.
        let problem = RelayTrainer.Problem(id: "t", prompt: try chatPrompt(m, "What is 17 * 23?"), isCorrect: { _ in false })
        let head = RelayHead(model: m.config.name, dim: m.config.dim, rate: 0.15)
        let (small, large) = pair()
        let trainer = RelayTrainer(small: small, large: large, head: head, settings: settings)
        let stats = try trainer.grpoStep([(problem, .unsolvable)])
        #expect(stats.callsPerRollout > 0)
        #expect(stats.lossAfter < stats.lossBefore, "\(stats)")
        #expect(trainer.head != head)
    }

    /// A trainer of a head with 3 hidden features (5 in all) and 200 synthetic examples, every
    /// `every`-th a call whose features `shift` moves.
    func synthetic(seed: UInt64, every: Int, choice: Int, settings: RelayTrainer.Settings,
                   shift: (inout [Float]) -> Void) -> (RelayTrainer, [RelayTrainer.Example]) {
        let (small, large) = pair()
        let trainer = RelayTrainer(small: small, large: large, head: RelayHead(model: "t", dim: 3), settings: settings)
        var rng = Xoshiro256(seed: seed)
        let examples = (0..<200).map { i -> RelayTrainer.Example in
            let call = i % every == 0
            var x = (0..<5).map { _ in rng.unit() }
            if call { shift(&x) }
            return RelayTrainer.Example(features: x, call: call, choice: call ? choice : 0)
        }
        return (trainer, examples)
    }

    @Test("the warm-up fit separates labelled positions and keeps the call rate under the limit")
    func warmupFit() throws {
        var settings = RelayTrainer.Settings()
        settings.warmupEpochs = 100
        settings.callRate = 0.05
        let (trainer, examples) = synthetic(seed: 1, every: 10, choice: 2, settings: settings) { x in x = x.map { $0 + 2 } }
        let curve = trainer.warmup(examples)
        #expect(curve.last! < curve.first!)
        let p = examples.map { trainer.head.evaluate($0.features) }
        let firesOnNegatives = zip(examples, p).filter { !$0.0.call && $0.1.pCall > 0.5 }.count
        #expect(Double(firesOnNegatives) <= 0.05 * 180 + 1)
        #expect(zip(examples, p).filter { $0.0.call }.allSatisfy { $0.1.pCall > 0.5 && $0.1.lengths.firstIndex(of: $0.1.lengths.max()!) == 2 })
    }

    @Test("the warm-up's L2 penalty falls on the hidden-state weights, not on the confidence features")
    func warmupPenalty() throws {
        var settings = RelayTrainer.Settings()
        settings.warmupEpochs = 200
        settings.warmupL2 = 100
        // Calls follow the top-1 probability feature (index 3) and one hidden feature (index 0) alike.
        let (trainer, examples) = synthetic(seed: 2, every: 4, choice: 0, settings: settings) { x in x[0] += 2; x[3] += 2 }
        trainer.warmup(examples)
        let w = trainer.head.callWeights
        #expect(abs(w[3]) > 1 && abs(w[0]) < 0.1, "\(w)")
    }

    @Test("unprobed warm-up labels: the first decisive disagreements of a wrong rollout call, a correct rollout never does")
    func unprobedLabels() throws {
        let m = Models.smol
        var settings = RelayTrainer.Settings()
        settings.probes = 0
        settings.unprobed = 2
        settings.decisive = 0   // every disagreement is decisive
        settings.negatives = 1000
        let (small, large) = pair()
        let trainer = RelayTrainer(small: small, large: large, head: RelayHead(model: m.config.name, dim: m.config.dim), settings: settings)
        let problem = RelayTrainer.Problem(id: "t", prompt: try chatPrompt(m, "What is the capital of France?"), isCorrect: { _ in false })
        // Words the model would not write next: the large model (the same weights) disagrees at several of them.
        let rollout = m.tokenizer.encode(" zebra umbrella quantum paris violin", addBOS: false)
        let wrong = try trainer.label(problem, rollout: rollout, correct: false)
        #expect(wrong.filter(\.call).count == 2)
        #expect(wrong.filter(\.call).allSatisfy { trainer.head.lengths[$0.choice] == settings.unprobedLength })
        #expect(wrong.count < rollout.count, "later decisive disagreements get no label")
        let right = try trainer.label(problem, rollout: rollout, correct: true)
        #expect(right.count == rollout.count && !right.contains(where: \.call))
        // Without random negatives or decisive disagreements a correct rollout still labels its first position.
        trainer.settings.negatives = 0
        trainer.settings.decisive = 2
        #expect(try trainer.label(problem, rollout: rollout, correct: true).map(\.call) == [false])
    }
}
