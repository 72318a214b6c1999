import Engine
import Foundation
import Relay

/// Training of RelayLLM's call head with the backbone frozen, in two stages (arXiv 2601.05167,
/// scaled to a head): a supervised warm-up on positions where the large model's help pays, then
/// GRPO on the head's call decisions with the paper's reward.
///
/// Limits: rollouts are sequential on the CPU, so groups and problem counts are small; the GRPO
/// objective is the clipped surrogate without a KL term (the head starts from the warm-up).
public final class RelayTrainer {
    /// A training problem: its prompt tokens and a scorer of an answer's text.
    public struct Problem {
        public var id: String
        public var prompt: [Int32]
        public var isCorrect: (String) -> Bool
        public init(id: String, prompt: [Int32], isCorrect: @escaping (String) -> Bool) {
            self.id = id
            self.prompt = prompt
            self.isCorrect = isCorrect
        }
    }

    public struct Settings: Sendable {
        public var maxTokens = 384
        /// Sampling of rollouts (the paper samples at 0.7).
        public var temperature: Float = 0.7
        public var stop: [String] = []
        /// Small-model samples per problem when sorting it.
        public var k = 4
        /// Decisive disagreements probed with continuations per wrong warm-up rollout, and the call
        /// lengths tried there, shortest first. 0: no probes; the first `unprobed` decisive
        /// disagreements of a wrong rollout are positives with length `unprobedLength` (affordable
        /// at scale: labelling costs one teacher-forced pass per rollout).
        public var probes = 2
        public var probeLengths = [8, 32]
        public var unprobed = 3
        public var unprobedLength = 8
        /// Least large-model margin p(its token) − p(small token) for a disagreement to count as decisive.
        public var decisive: Float = 0.3
        /// Positions without help kept per rollout as negatives (a random subset).
        public var negatives = 48
        public var warmupEpochs = 300
        public var warmupLR: Float = 0.02
        /// L2 penalty on the head's weights (not biases) in the warm-up fit.
        public var warmupL2: Float = 0
        /// Largest share of positions where the warm-up head fires at inference.
        public var callRate: Float = 0.005
        public var groupSize = 4
        public var lr: Float = 0.01
        /// Optimisation passes over each GRPO batch, and the ratio clip.
        public var innerSteps = 4
        public var clip: Float = 0.2
        /// Floor rate of calls in GRPO rollouts (exploration; inference does not use it).
        public var explore: Float = 0.003
        /// Whether the small model reads the tags the head wrote in rollouts and probes.
        public var tags = TagVisibility.hidden
        public var seed: UInt64 = 0
        public init() {}
    }

    public let small: Session
    public let large: Session
    public var settings: Settings
    public var head: RelayHead
    var adam: Adam
    var rng: Xoshiro256

    public init(small: Session, large: Session, head: RelayHead, settings: Settings) {
        self.small = small
        self.large = large
        self.head = head
        self.settings = settings
        adam = Adam(count: head.parameterCount)
        rng = Xoshiro256(seed: settings.seed)
    }

    var tokenizer: Tokenizer { small.model.tokenizer }

    func options() -> GenerationOptions {
        var o = GenerationOptions()
        o.maxTokens = settings.maxTokens
        o.stop = settings.stop
        o.sampling.temperature = settings.temperature
        o.sampling.seed = rng.next()
        return o
    }

    // MARK: - Sorting

    /// What sorting learned about a problem: its class and the small model's samples.
    public struct Sorted: Codable, Sendable {
        public var id: String
        public var kind: ProblemClass
        public var smallSamples: [[Int32]]
        public var smallCorrect: [Bool]
        public var largeCorrect: Bool
    }

    /// One sampled answer of the small model alone, and whether it is correct.
    public func sample(_ p: Problem) throws -> (tokens: [Int32], correct: Bool) {
        let o = options()
        let r = try generate(Solo(session: small, role: .small, sampling: o.sampling), prompt: p.prompt, tokenizer: tokenizer,
                             contextSize: small.contextSize, options: o)
        return (r.tokens, p.isCorrect(r.answer))
    }

    /// Samples the small model alone k times and the large model alone once (greedy).
    public func sort(_ p: Problem) throws -> Sorted {
        var samples: [[Int32]] = [], correct: [Bool] = []
        for _ in 0..<settings.k {
            let s = try sample(p)
            samples.append(s.tokens)
            correct.append(s.correct)
        }
        var o = options()
        o.sampling = .greedy
        let r = try generate(Solo(session: large, role: .large, sampling: .greedy), prompt: p.prompt, tokenizer: tokenizer,
                             contextSize: large.contextSize, options: o)
        let largeCorrect = p.isCorrect(r.answer)
        return Sorted(id: p.id, kind: ProblemClass(smallSolved: correct.contains(true), largeSolved: largeCorrect),
                      smallSamples: samples, smallCorrect: correct, largeCorrect: largeCorrect)
    }

    // MARK: - Warm-up

    /// A labelled position: raw features, whether to call, and the length index when calling.
    public struct Example: Sendable {
        public var features: [Float]
        public var call: Bool
        public var choice: Int
        public init(features: [Float], call: Bool, choice: Int) {
            self.features = features
            self.call = call
            self.choice = choice
        }
    }

    /// Per-position features of the small model over `prompt + tokens` (teacher-forced, in
    /// chunks so a 150k-vocabulary logits block stays small), and the large model's next-token
    /// choice and its margin over the small model's token at every position.
    func teacherForced(prompt: [Int32], tokens: [Int32], chunk: Int = 48) throws -> (features: [[Float]], largeChoice: [Int32], margin: [Float]) {
        let V = small.model.config.vocabSize, D = small.model.config.dim
        var features: [[Float]] = [], choice: [Int32] = [], margin: [Float] = []
        small.keepsHidden = true
        defer { small.keepsHidden = false }
        var start = 0
        while start < tokens.count {
            let end = min(start + chunk, tokens.count)
            let input = prompt + tokens[..<(end - 1)]
            let from = prompt.count - 1 + start
            let s = try small.sync(to: Array(input), logitsFrom: from)
            let l = try large.sync(to: Array(input), logitsFrom: from)
            for r in 0 ..< end - start {
                let row = r * V ..< (r + 1) * V
                s.withUnsafeBufferPointer { b in
                    features.append(RelayHead.features(logits: UnsafeBufferPointer(rebasing: b[row]), hidden: Array(small.hidden[r * D ..< (r + 1) * D])))
                }
                l.withUnsafeBufferPointer { b in
                    let x = UnsafeBufferPointer(rebasing: b[row])
                    let best = argmax(x)
                    let m = x[Int(best)]
                    var z: Float = 0
                    for v in x { z += expf(v - m) }
                    choice.append(best)
                    margin.append((1 - expf(x[Int(tokens[start + r])] - m)) / z)
                }
            }
            start = end
        }
        return (features, choice, margin)
    }

    /// Labels of one small-model rollout. A correct rollout needs no help: its positions are
    /// negatives, its first one and its decisive disagreements with the large model all of them. In a wrong one, the
    /// answer's first position and the most decisive disagreements with the large model are probed: the
    /// large model is called there for each probe length in turn and the small model finishes; the
    /// first length that leads to a correct answer makes a positive, none a negative. Without
    /// probes, the first `unprobed` decisive disagreements are positives; the rest of them are
    /// left out (neither label is sure there).
    public func label(_ p: Problem, rollout tokens: [Int32], correct: Bool) throws -> [Example] {
        guard !tokens.isEmpty else { return [] }
        let tf = try teacherForced(prompt: p.prompt, tokens: tokens)
        var examples: [Example] = []
        var labelled = Set<Int>()
        let disagreements = tokens.indices.filter { tf.largeChoice[$0] != tokens[$0] && tf.margin[$0] >= settings.decisive }
        if correct {
            // Hard negatives: the answer's first position and where the large model disagreed; the
            // answer came out right without help.
            let negatives = [0] + disagreements.filter { $0 != 0 }
            for t in negatives { examples.append(Example(features: tf.features[t], call: false, choice: 0)) }
            labelled.formUnion(negatives)
        } else {
            if settings.probes == 0 {
                let choice = lengthIndex(settings.unprobedLength)
                for (i, t) in disagreements.enumerated() {
                    labelled.insert(t)
                    if i < settings.unprobed { examples.append(Example(features: tf.features[t], call: true, choice: choice)) }
                }
            }
            // The answer's first position (where the plan is written), then the disagreements
            // where the large model is most sure.
            let candidates = [0] + disagreements.sorted(by: { tf.margin[$0] > tf.margin[$1] }).filter { $0 != 0 }
            for t in candidates.prefix(settings.probes) {
                labelled.insert(t)
                var choice: Int?
                for n in settings.probeLengths {
                    if try continuation(p, prefix: Array(tokens[..<t]), call: n) {
                        choice = lengthIndex(n)
                        break
                    }
                }
                examples.append(Example(features: tf.features[t], call: choice != nil, choice: choice ?? 0))
            }
        }
        var rest = tokens.indices.filter { !labelled.contains($0) }
        rest.shuffle(using: &rng)
        for t in rest.prefix(settings.negatives) { examples.append(Example(features: tf.features[t], call: false, choice: 0)) }
        return examples
    }

    /// The head's call length nearest to n.
    func lengthIndex(_ n: Int) -> Int {
        head.lengths.indices.min { abs(head.lengths[$0] - n) < abs(head.lengths[$1] - n) }!
    }

    /// Sets the head's feature standardisation from the small model's features over rollouts
    /// (when GRPO starts without a warm-up).
    public func standardise(over rollouts: [(Problem, [Int32])]) throws {
        var rows: [[Float]] = []
        for (p, tokens) in rollouts where !tokens.isEmpty { rows += try teacherForced(prompt: p.prompt, tokens: tokens).features }
        head.standardise(from: rows)
    }

    /// Whether calling the large model for n tokens after `prefix` of the answer, then letting the
    /// small model finish, gives a correct answer.
    func continuation(_ p: Problem, prefix: [Int32], call n: Int) throws -> Bool {
        let strategy = RelayLLM(small: small, large: large, policy: CallOnce(n), sampling: options().sampling)
        strategy.policyTags = settings.tags
        var o = options()
        o.maxTokens = max(1, settings.maxTokens - prefix.count)
        let r = try generate(strategy, prompt: p.prompt + prefix, tokenizer: tokenizer, contextSize: small.contextSize, options: o)
        return p.isCorrect(tokenizer.decode(prefix) + r.answer)
    }

    /// Fits the head to warm-up examples: standardisation from the data, then class-balanced
    /// logistic loss on the call unit and cross-entropy on the length of positives (full batch,
    /// Adam). Last, the call bias is lowered until the head fires on at most `callRate` of the
    /// negatives (a random sample of positions). Returns the loss per epoch.
    @discardableResult
    public func warmup(_ examples: [Example]) -> [Double] {
        head.standardise(from: examples.map(\.features))
        // Without a single positive there is nothing to learn about when to call: keep the prior
        // (a rare call), which lets GRPO still explore calls.
        guard examples.contains(where: \.call) else { return [] }
        let zs = examples.map { head.standardised($0.features) }
        let positives = examples.filter(\.call).count, negatives = examples.count - positives
        let wPos = positives > 0 ? Float(examples.count) / Float(2 * positives) : 0
        let wNeg = negatives > 0 ? Float(examples.count) / Float(2 * negatives) : 0
        var optimiser = Adam(count: head.parameterCount)
        var curve: [Double] = []
        for _ in 0..<settings.warmupEpochs {
            var grad = [Float](repeating: 0, count: head.parameterCount)
            var loss = 0.0
            for (x, z) in zip(examples, zs) {
                let (c, u) = head.logits(z)
                let p = sigmoid(c)
                let w = x.call ? wPos : wNeg
                loss -= Double(w * (x.call ? logf(max(p, 1e-7)) : logf(max(1 - p, 1e-7))))
                var dLength: [Float]?
                if x.call {
                    let q = softmax(u)
                    loss -= Double(logf(max(q[x.choice], 1e-7)))
                    dLength = q.indices.map { q[$0] - ($0 == x.choice ? 1 : 0) }
                }
                head.accumulate(into: &grad, z: z, dCall: w * (p - (x.call ? 1 : 0)), dLengths: dLength)
            }
            let n = Float(examples.count)
            if settings.warmupL2 > 0 { loss += Double(head.penalise(&grad, l2: settings.warmupL2 * n)) }
            head.apply(optimiser.step(grad.map { $0 / n }, lr: settings.warmupLR))
            curve.append(loss / Double(n))
        }
        // Keep the inference call rate small: shift the bias below the (1 − callRate) quantile
        // of the call logit over the negatives.
        let logits = zip(examples, zs).filter { !$0.0.call }.map { head.logits($0.1).call }.sorted()
        if !logits.isEmpty {
            let q = logits[min(logits.count - 1, Int(Float(logits.count) * (1 - settings.callRate)))]
            if q > 0 { head.callBias -= q }
        }
        return curve
    }

    /// The examples whose small-model top-1 probability is under `threshold`: where the confidence
    /// router's signal says little, so a head must know more there to beat the router.
    public func uncertain(_ examples: [Example], below threshold: Float) -> [Example] {
        examples.filter { $0.features[head.dim] < threshold }
    }

    /// How well the head ranks call positions above the others on `examples` (ROC AUC), next to
    /// the confidence router's signal, a low small-model top-1 probability. Nil without both labels.
    public func rankingAUC(_ examples: [Example]) -> (head: Double, confidence: Double)? {
        let labels = examples.map(\.call)
        guard labels.contains(true), labels.contains(false) else { return nil }
        let headScores = examples.map { Double(head.evaluate($0.features).pCall) }
        let confidence = examples.map { -Double($0.features[head.dim]) }
        return (RelayTrainer.auc(headScores, labels), RelayTrainer.auc(confidence, labels))
    }

    /// ROC AUC: the chance that a random positive scores above a random negative (ties count half).
    public static func auc(_ scores: [Double], _ labels: [Bool]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0, i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] { rankSum += rank }
            i = j + 1
        }
        let p = Double(labels.filter { $0 }.count), n = Double(labels.count) - p
        return (rankSum - p * (p + 1) / 2) / (p * n)
    }

    // MARK: - GRPO

    /// One rollout under the current head, sampling its decisions.
    public struct Rollout {
        public var decisions: [HeadDecision]
        public var reward: Double
        public var correct: Bool
        public var calls: Int
        public var rho: Double
        public var largeShare: Double
    }

    public struct StepStats: Sendable {
        public var reward: Double
        public var accuracy: Double
        /// Calls per rollout, and the large model's share of generated tokens.
        public var callsPerRollout: Double
        public var largeShare: Double
        /// The surrogate loss on the batch before and after the update.
        public var lossBefore: Double
        public var lossAfter: Double
    }

    /// A group of rollouts of one problem under the current head, scored with the paper's reward.
    public func group(_ p: Problem, kind: ProblemClass) throws -> [Rollout] {
        var rollouts: [Rollout] = []
        for _ in 0..<settings.groupSize {
            let policy = HeadPolicy(head: head, samplingSeed: rng.next(), explore: settings.explore)
            let o = options()
            let strategy = RelayLLM(small: small, large: large, policy: policy, sampling: o.sampling)
            strategy.policyTags = settings.tags
            let r = try generate(strategy, prompt: p.prompt, tokenizer: tokenizer, contextSize: small.contextSize, options: o)
            let correct = p.isCorrect(r.answer)
            rollouts.append(Rollout(decisions: policy.decisions, reward: Reward.value(kind, correct: correct, calls: r.calls.count, rho: r.rho),
                                    correct: correct, calls: r.calls.count, rho: r.rho, largeShare: r.largeShare))
        }
        return rollouts
    }

    /// Group-relative advantages: (r − mean) / std within each group (zero when all are equal).
    public static func advantages(_ rewards: [Double]) -> [Double] {
        let mean = rewards.reduce(0, +) / Double(max(rewards.count, 1))
        let variance = rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(rewards.count, 1))
        let std = variance.squareRoot()
        return rewards.map { std > 1e-9 ? ($0 - mean) / std : 0 }
    }

    /// The clipped surrogate loss −mean_i (1/|D_i|) Σ_t min(r_t A_i, clip(r_t) A_i) and its gradient,
    /// r_t the ratio of the head's probability of decision t now to when it was taken.
    func surrogate(_ batch: [(decisions: [HeadDecision], advantage: Double)]) -> (loss: Double, grad: [Float]) {
        var grad = [Float](repeating: 0, count: head.parameterCount)
        var loss = 0.0
        let eps = settings.clip
        for (decisions, a) in batch where !decisions.isEmpty {
            let A = Float(a), scale = 1 / Float(decisions.count * batch.count)
            for d in decisions {
                let z = head.standardised(d.features)
                let (c, u) = head.logits(z)
                let p = sigmoid(c), q = softmax(u)
                let e = settings.explore, pe = RelayHead.explored(p, e)
                let prob = d.called ? pe * q[d.choice] : 1 - pe
                let ratio = prob / max(d.probability, 1e-12)
                let clipped = min(max(ratio, 1 - eps), 1 + eps)
                loss -= Double(min(ratio * A, clipped * A) * scale)
                // The clipped branch is constant: no gradient where it is the smaller one.
                if (A >= 0 && ratio > 1 + eps) || (A < 0 && ratio < 1 - eps) { continue }
                let g = -A * ratio * scale   // d loss / d log π
                // d log p'/dc with p' = e + (1 − e) p: (1 − e) p (1 − p) / p' when calling, −p otherwise.
                let dCall = g * (d.called ? (1 - e) * p * (1 - p) / pe : -p)
                let dLength = d.called ? q.indices.map { g * (($0 == d.choice ? 1 : 0) - q[$0]) } : nil
                head.accumulate(into: &grad, z: z, dCall: dCall, dLengths: dLength)
            }
        }
        return (loss, grad)
    }

    /// One GRPO step over a batch of problems: a group of rollouts each, advantages within the
    /// group, `innerSteps` Adam updates of the clipped surrogate.
    public func grpoStep(_ problems: [(Problem, ProblemClass)]) throws -> StepStats {
        var rollouts: [Rollout] = []
        var batch: [(decisions: [HeadDecision], advantage: Double)] = []
        for (p, kind) in problems {
            let g = try group(p, kind: kind)
            rollouts += g
            for (r, a) in zip(g, RelayTrainer.advantages(g.map(\.reward))) { batch.append((r.decisions, a)) }
        }
        return update(batch, rollouts: rollouts)
    }

    /// The optimisation half of a GRPO step, on rollouts already scored.
    public func update(_ batch: [(decisions: [HeadDecision], advantage: Double)], rollouts: [Rollout]) -> StepStats {
        let before = surrogate(batch).loss
        for _ in 0..<settings.innerSteps {
            let (_, grad) = surrogate(batch)
            head.apply(adam.step(grad, lr: settings.lr))
        }
        let after = surrogate(batch).loss
        let n = Double(max(rollouts.count, 1))
        return StepStats(reward: rollouts.reduce(0) { $0 + $1.reward } / n,
                         accuracy: Double(rollouts.filter(\.correct).count) / n,
                         callsPerRollout: Double(rollouts.reduce(0) { $0 + $1.calls }) / n,
                         largeShare: rollouts.reduce(0) { $0 + $1.largeShare } / n,
                         lossBefore: before, lossAfter: after)
    }
}

/// Calls the large model for n tokens at the first decision, then never (warm-up probes).
final class CallOnce: CallPolicy {
    var n: Int?
    init(_ n: Int) { self.n = n }
    var needsHidden: Bool { false }
    func decide(logits: UnsafeBufferPointer<Float>, hidden: [Float], context: [Int32]) -> Int? {
        defer { n = nil }
        return n
    }
}

/// Adam over a flat parameter vector; `step` returns the change to add.
struct Adam {
    var m: [Float], v: [Float]
    var t = 0
    let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8

    init(count: Int) {
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    mutating func step(_ grad: [Float], lr: Float) -> [Float] {
        t += 1
        let c1 = 1 - powf(beta1, Float(t)), c2 = 1 - powf(beta2, Float(t))
        var delta = grad
        for i in grad.indices {
            m[i] = beta1 * m[i] + (1 - beta1) * grad[i]
            v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i]
            delta[i] = -lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
        }
        return delta
    }
}

extension RelayHead {
    /// Parameters in the flat order of gradients: call weights, call bias, length weights, length biases.
    var parameterCount: Int { features + 1 + lengths.count * (features + 1) }

    /// Adds the gradient of one position, given d loss / d call logit and / d length logits.
    func accumulate(into grad: inout [Float], z: [Float], dCall: Float, dLengths: [Float]?) {
        let F = features
        if dCall != 0 {
            for i in 0..<F { grad[i] += dCall * z[i] }
            grad[F] += dCall
        }
        guard let dLengths else { return }
        let base = F + 1
        for k in lengths.indices where dLengths[k] != 0 {
            for i in 0..<F { grad[base + k * F + i] += dLengths[k] * z[i] }
            grad[base + lengths.count * F + k] += dLengths[k]
        }
    }

    mutating func apply(_ delta: [Float]) {
        let F = features, K = lengths.count
        for i in 0..<F { callWeights[i] += delta[i] }
        callBias += delta[F]
        for i in 0..<K * F { lengthWeights[i] += delta[F + 1 + i] }
        for k in 0..<K { lengthBias[k] += delta[F + 1 + K * F + k] }
    }

    /// Adds the gradient of (l2 / 2)·‖weights of the hidden state‖² and returns that penalty. The
    /// biases and the confidence features (top-1 probability, entropy) are free: the penalty keeps
    /// 896 hidden-state weights from fitting noise without pulling the head away from the
    /// confidence signal it can always use.
    func penalise(_ grad: inout [Float], l2: Float) -> Float {
        let F = features, base = F + 1
        var sum: Float = 0
        func add(_ g: Int, _ w: Float) {
            grad[g] += l2 * w
            sum += w * w
        }
        for i in 0..<dim { add(i, callWeights[i]) }
        for k in lengths.indices {
            for i in 0..<dim { add(base + k * F + i, lengthWeights[k * F + i]) }
        }
        return l2 / 2 * sum
    }

    /// Sets `mean` and `scale` to the mean and standard deviation of each feature.
    mutating func standardise(from rows: [[Float]]) {
        guard !rows.isEmpty else { return }
        let n = Float(rows.count)
        for i in 0..<features {
            var s: Float = 0, s2: Float = 0
            for r in rows { s += r[i]; s2 += r[i] * r[i] }
            let m = s / n
            mean[i] = m
            scale[i] = max((s2 / n - m * m).squareRoot(), 1e-3)
        }
    }
}
